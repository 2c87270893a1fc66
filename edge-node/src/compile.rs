//! Compiling module versions with bounds: the [`Compiler`] port, with [`InProcess`] (no bounds;
//! tests and benchmarks) and [`ChildProcess`], which compiles in a child process under an
//! address-space limit (`RLIMIT_AS`) and a wall-clock timeout (the child is killed when it
//! expires). The child is `<executable> compile-module` — a hidden subcommand of both binaries
//! that host nodes, served by [`child_main`] — which builds its engine through
//! [`crate::runtime::compile_config`] (the node's engine settings), reads the component's bytes
//! on stdin and writes `Engine::precompile_component`'s artifact to `--out` for the parent to
//! load with the same settings; with `--check` it only compiles (the control plane's upload
//! check).

use std::ffi::OsString;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use wasmtime::Engine;
use wasmtime::component::Component;

use latchkey_wire::bounded::{self, Bounds, EXIT_MEMORY, EXIT_REJECTED, EXIT_USAGE, Ended};

/// The bounds of one compilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileLimits {
    /// Address space the compiling process may use (`RLIMIT_AS`), in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time a compilation may take.
    pub timeout: Duration,
}

/// Default [`CompileLimits::memory_bytes`]: 2 GiB.
pub const DEFAULT_COMPILE_MEMORY_BYTES: u64 = 2 << 30;
/// Default [`CompileLimits::timeout`]: 60 s.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            memory_bytes: DEFAULT_COMPILE_MEMORY_BYTES,
            timeout: DEFAULT_COMPILE_TIMEOUT,
        }
    }
}

/// The compile bounds on a command line (the `edge-node` binary, `latchkey edge-node`).
#[derive(Clone, Debug, clap::Args)]
pub struct CompileArgs {
    /// Address space a module's compilation may use (a child process under `RLIMIT_AS`), in
    /// bytes.
    #[arg(long, default_value_t = DEFAULT_COMPILE_MEMORY_BYTES)]
    pub compile_memory_limit: u64,
    /// Wall-clock time a module's compilation may take, in milliseconds (the child is killed).
    #[arg(long, default_value_t = DEFAULT_COMPILE_TIMEOUT.as_millis() as u64)]
    pub compile_timeout_ms: u64,
}

impl CompileArgs {
    /// The limits these arguments describe.
    pub fn limits(&self) -> CompileLimits {
        CompileLimits {
            memory_bytes: self.compile_memory_limit,
            timeout: Duration::from_millis(self.compile_timeout_ms),
        }
    }
}

/// Why a module version could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// Compilation needed more address space than the limit.
    #[error("compiling the module needed more than the compile memory limit of {limit} bytes")]
    Memory {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Compilation took longer than the limit (the child was killed).
    #[error(
        "compiling the module took longer than the compile time limit of {limit_ms} ms; it was stopped"
    )]
    Timeout {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The component does not compile.
    #[error("the module does not compile: {0}")]
    Rejected(String),
    /// The compiler could not run (spawning, I/O, loading the artifact).
    #[error("the compiler could not run: {0}")]
    Failed(String),
}

impl CompileError {
    /// Whether compiling the same bytes again may succeed (only if the compiler itself failed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, CompileError::Failed(_))
    }

    /// Whether the module broke a compile limit.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            CompileError::Memory { .. } | CompileError::Timeout { .. }
        )
    }
}

/// A compilation in progress.
pub type Compiling<'a> = Pin<Box<dyn Future<Output = Result<Component, CompileError>> + Send + 'a>>;

/// Compiles module versions for an engine: the port the runtime compiles through.
pub trait Compiler: Send + Sync + fmt::Debug {
    /// Compiles `bytes` (version `content_id`) for `engine`, built by the runtime with an
    /// instance memory limit of `memory_limit` bytes.
    fn compile<'a>(
        &'a self,
        engine: &'a Engine,
        memory_limit: usize,
        content_id: &'a str,
        bytes: Bytes,
    ) -> Compiling<'a>;
}

/// Compiles in this process, without bounds (through the engine's own compiled-module cache, if
/// it has one). For tests and benchmarks.
#[derive(Clone, Copy, Debug, Default)]
pub struct InProcess;

impl Compiler for InProcess {
    fn compile<'a>(
        &'a self,
        engine: &'a Engine,
        _memory_limit: usize,
        _content_id: &'a str,
        bytes: Bytes,
    ) -> Compiling<'a> {
        let engine = engine.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
                .await
                .map_err(|e| CompileError::Failed(format!("compile task failed: {e}")))?
                .map_err(|e| CompileError::Rejected(format!("{e:#}")))
        })
    }
}

/// Compiles in a child process, `program args… compile-module-arguments`, under
/// [`CompileLimits`]. Artifacts are kept in `cache_dir` (owner-only), named by the version and
/// the engine's compatibility hash, so a version compiles once per node and engine settings.
#[derive(Clone, Debug)]
pub struct ChildProcess {
    program: PathBuf,
    args: Vec<OsString>,
    limits: CompileLimits,
    cache_dir: Option<PathBuf>,
}

impl ChildProcess {
    /// Runs `program` with `args` (e.g. this executable and `["compile-module"]`) under `limits`,
    /// keeping artifacts in `cache_dir` (a private temporary directory per compilation if
    /// `None`).
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        limits: CompileLimits,
        cache_dir: Option<PathBuf>,
    ) -> Self {
        ChildProcess {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            limits,
            cache_dir,
        }
    }

    /// This executable's `compile-module` subcommand under `limits`.
    pub fn this_executable(
        limits: CompileLimits,
        cache_dir: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let program = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("finding this executable to compile modules with: {e}"))?;
        Ok(Self::new(program, ["compile-module"], limits, cache_dir))
    }

    async fn compile_to(
        &self,
        engine: &Engine,
        memory_limit: usize,
        bytes: Bytes,
        out: &Path,
    ) -> Result<Component, CompileError> {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .arg("--instance-memory-limit")
            .arg(memory_limit.to_string())
            .arg("--out")
            .arg(out);
        run_limited(command, bytes, self.limits).await?;
        load(engine, out)
    }
}

static SCRATCH: AtomicU64 = AtomicU64::new(0);

impl Compiler for ChildProcess {
    fn compile<'a>(
        &'a self,
        engine: &'a Engine,
        memory_limit: usize,
        content_id: &'a str,
        bytes: Bytes,
    ) -> Compiling<'a> {
        Box::pin(async move {
            let failed =
                |what: &str, e: std::io::Error| CompileError::Failed(format!("{what}: {e}"));
            let Some(dir) = &self.cache_dir else {
                let scratch = tempfile::tempdir().map_err(|e| failed("a scratch directory", e))?;
                let out = scratch.path().join("module.cwasm");
                return self.compile_to(engine, memory_limit, bytes, &out).await;
            };
            let dir = dir.join("precompiled");
            crate::runtime::create_private_dir(&dir)
                .map_err(|e| failed("the artifact directory", e))?;
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut hasher);
            let name = format!("{content_id}-{:016x}.cwasm", hasher.finish());
            let artifact = dir.join(name);
            if artifact.exists()
                && let Ok(component) = load(engine, &artifact)
            {
                return Ok(component);
            }
            let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
            let partial = dir.join(format!("{}.partial-{}-{n}", content_id, std::process::id()));
            let result = self.compile_to(engine, memory_limit, bytes, &partial).await;
            if result.is_ok() {
                std::fs::rename(&partial, &artifact)
                    .map_err(|e| failed("keeping the artifact", e))?;
            } else {
                let _ = std::fs::remove_file(&partial);
            }
            result
        })
    }
}

/// Loads an artifact written by `compile-module` for `engine`.
#[allow(unsafe_code)]
fn load(engine: &Engine, path: &Path) -> Result<Component, CompileError> {
    // SAFETY: the file is an artifact of `Engine::precompile_component`, written by this
    // program's own `compile-module` child into a directory only this user may write (0700:
    // the node's cache directory, or a fresh private temporary directory), for an engine built
    // with the same settings (`runtime::compile_config`); wasmtime checks the artifact's header
    // (wasmtime version, target, engine settings) against `engine` and refuses a mismatch.
    unsafe { Component::deserialize_file(engine, path) }
        .map_err(|e| CompileError::Failed(format!("loading the compiled module: {e:#}")))
}

/// Runs `command` with `input` on its stdin under `limits`: its address space is capped
/// (`prlimit` on the started child, before it is sent a byte), and it is killed when the timeout
/// expires.
pub async fn run_limited(
    command: tokio::process::Command,
    input: Bytes,
    limits: CompileLimits,
) -> Result<(), CompileError> {
    let program = command.as_std().get_program().to_owned();
    let bounds = Bounds {
        memory_bytes: limits.memory_bytes,
        timeout: limits.timeout,
    };
    let ended = bounded::run(command, input, bounds)
        .await
        .map_err(|e| CompileError::Failed(format!("the compiler ({program:?}) failed: {e}")))?;
    match ended {
        Ended::Succeeded => Ok(()),
        Ended::Rejected(message) => Err(CompileError::Rejected(message)),
        Ended::OutOfMemory => Err(CompileError::Memory {
            limit: limits.memory_bytes,
        }),
        Ended::TimedOut => Err(CompileError::Timeout {
            limit_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        }),
        Ended::Failed {
            code,
            signal,
            message,
        } => Err(CompileError::Failed(format!(
            "the compiler failed (exit code {code:?}, signal {signal:?}): {message}"
        ))),
    }
}

/// The arguments of `compile-module`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "compile-module",
    about = "Compile a module read from stdin (internal)"
)]
struct ChildArgs {
    /// Only check that it compiles; write nothing.
    #[arg(long)]
    check: bool,
    /// Where to write the compiled artifact.
    #[arg(long, required_unless_present = "check")]
    out: Option<PathBuf>,
    /// The instance memory limit of the engine the artifact is for, in bytes.
    #[arg(long, default_value_t = crate::runtime::RuntimeConfig::default().memory_limit)]
    instance_memory_limit: usize,
}

/// Whether this process was started as `<executable> compile-module …`; then runs it (before
/// any async runtime starts) and returns its exit code.
pub fn child_if_asked() -> Option<u8> {
    let mut args = std::env::args_os();
    let _program = args.next();
    if args.next().as_deref() != Some(std::ffi::OsStr::new("compile-module")) {
        return None;
    }
    Some(child_main(args))
}

/// `compile-module`: reads a component on stdin, compiles it with the node's engine settings,
/// and writes the artifact to `--out` (or, with `--check`, nothing). Exit codes: 0 compiled,
/// 1 does not compile, 2 bad arguments or input, 3 out of memory.
pub fn child_main(args: impl IntoIterator<Item = OsString>) -> u8 {
    use clap::Parser as _;
    let args = match ChildArgs::try_parse_from(
        std::iter::once(OsString::from("compile-module")).chain(args),
    ) {
        Ok(args) => args,
        Err(e) => return fail(EXIT_USAGE, &e.to_string()),
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut bytes) {
        return fail(EXIT_USAGE, &format!("reading the module from stdin: {e}"));
    }
    let mut config = crate::runtime::compile_config(args.instance_memory_limit);
    // One thread: the address-space limit is the compilation's, not many threads' stacks.
    config.parallel_compilation(false);
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(e) => return fail(classify(&e), &format!("configuring wasmtime: {e:#}")),
    };
    let artifact = match engine.precompile_component(&bytes) {
        Ok(artifact) => artifact,
        Err(e) => return fail(classify(&e), &format!("{e:#}")),
    };
    if let Some(out) = args.out.filter(|_| !args.check) {
        let written = std::fs::File::create(&out).and_then(|mut f| f.write_all(&artifact));
        if let Err(e) = written {
            return fail(EXIT_USAGE, &format!("writing {}: {e}", out.display()));
        }
    }
    0
}

/// An error caused by the address-space limit (wasmtime reports failed mappings as errors).
fn classify(e: &wasmtime::Error) -> u8 {
    let text = format!("{e:#}").to_ascii_lowercase();
    if text.contains("out of memory") || text.contains("cannot allocate") || text.contains("mmap") {
        EXIT_MEMORY
    } else {
        EXIT_REJECTED
    }
}

#[allow(clippy::print_stderr)] // the child's only channel to its parent
fn fail(code: u8, message: &str) -> u8 {
    eprintln!("{message}");
    code
}
