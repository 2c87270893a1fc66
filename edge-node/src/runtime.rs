//! The one place that configures wasmtime: the engine (component model, pooling allocator,
//! epoch interruption), the linker (the actor world's host interfaces and WASI 0.2), the on-disk
//! cache of compiled components (keyed by content hash and engine settings), `InstancePre`s per
//! module version, and stores with a per-instance memory limit and a per-call CPU budget.
//! Versions are compiled through the configured [`Compiler`] (`compile.rs`): in a bounded child
//! process in the binaries, whose engine [`compile_config`] sets up like this one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::OnceCell;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    UpdateDeadline,
};

use crate::compile::{CompileError, Compiler, InProcess};
use crate::error::CallError;
use crate::host::HostState;

/// Generated bindings of the actor world (`actor-sdk/wit/actor.wit`). Host functions are async
/// (storage reads may go to the control plane; calls go to other actors).
#[allow(missing_docs, unreachable_pub)]
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "actor",
        path: "../actor-sdk/wit",
        imports: { default: async },
        exports: { default: async },
    });
}

/// A module version ready to instantiate.
pub type ActorPre = bindings::ActorPre<HostState>;

/// Runtime limits and sizes.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Most live instances (pooled slots).
    pub max_instances: u32,
    /// Linear memory limit per instance, in bytes.
    pub memory_limit: usize,
    /// CPU time a call may use.
    pub cpu_limit: Duration,
    /// Epoch tick: the granularity of CPU accounting and of yields to other tasks.
    pub tick: Duration,
    /// Where compiled components are cached (`None`: no disk cache).
    pub cache_dir: Option<PathBuf>,
    /// What compiles module versions ([`InProcess`] by default; the binaries compile in a
    /// bounded child process, [`crate::compile::ChildProcess`]).
    pub compiler: Arc<dyn Compiler>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 10_000,
            memory_limit: crate::config::defaults::MEMORY_LIMIT_MB << 20,
            cpu_limit: Duration::from_millis(crate::config::defaults::CPU_LIMIT_MS),
            tick: Duration::from_millis(10),
            cache_dir: None,
            compiler: Arc::new(InProcess),
        }
    }
}

/// Why a module version could not be prepared.
#[derive(Clone, Debug, thiserror::Error)]
#[error("module {content_id} cannot run here: {message}")]
pub struct PrepareError {
    /// The version.
    pub content_id: String,
    /// What went wrong.
    pub message: String,
}

/// The engine, linker and prepared module versions.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    modules: Mutex<HashMap<String, Arc<OnceCell<ActorPre>>>>,
    /// Versions whose compilation broke a compile limit: not compiled again (until they are no
    /// longer deployed), so calls to them cannot make the node compile a bomb over and over.
    refused: Mutex<HashMap<String, CompileError>>,
    ticker_stop: Arc<AtomicBool>,
}

/// The engine settings that compiled code depends on, shared by the node's engine and the
/// `compile-module` child: component model, epoch interruption, and the memory layout for an
/// instance memory limit of `memory_limit` bytes.
pub fn compile_config(memory_limit: usize) -> Config {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true);
    wasm.epoch_interruption(true);
    wasm.memory_reservation(memory_limit as u64);
    wasm.memory_guard_size(64 << 10);
    wasm
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let mut wasm = compile_config(config.memory_limit);
        let mut pool = PoolingAllocationConfig::default();
        let instances = config.max_instances;
        pool.total_component_instances(instances);
        // A Rust wasip2 component holds a few core instances, memories and tables.
        pool.total_core_instances(instances.saturating_mul(4));
        pool.total_memories(instances.saturating_mul(2));
        pool.total_tables(instances.saturating_mul(4));
        // A store keeps its async fiber stack for reuse, so every live instance holds one.
        pool.total_stacks(instances);
        pool.max_memory_size(config.memory_limit);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if let Some(dir) = &config.cache_dir {
            wasm.cache(Some(compiled_cache(dir)?));
        }
        let engine = Engine::new(&wasm).map_err(|e| {
            anyhow::anyhow!(
                "configuring wasmtime with {instances} pooled instance slots (each needs its own \
                 memory mappings; lower --max-activations or raise vm.max_map_count): {e:#}"
            )
        })?;
        let mut linker = Linker::<HostState>::new(&engine);
        bindings::Actor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticking, stop, tick) = (engine.clone(), Arc::clone(&ticker_stop), config.tick);
        std::thread::Builder::new()
            .name("latchkey-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    ticking.increment_epoch();
                }
            })?;
        Ok(Runtime {
            engine,
            linker,
            config,
            modules: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            ticker_stop,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The version `content_id`, compiled (from the disk cache if it is there) and linked once;
    /// `fetch` supplies the bytes the first time.
    pub async fn prepare<F, Fut>(&self, content_id: &str, fetch: F) -> Result<ActorPre, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<bytes::Bytes, CallError>>,
    {
        let cell = {
            let mut modules = self
                .modules
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(modules.entry(content_id.to_owned()).or_default())
        };
        let refused = |e: &CompileError| {
            CallError::LimitExceeded(
                PrepareError {
                    content_id: content_id.to_owned(),
                    message: e.to_string(),
                }
                .to_string(),
            )
        };
        if let Some(e) = self.lock_refused().get(content_id) {
            return Err(refused(e));
        }
        let pre = cell
            .get_or_try_init(|| async {
                let bytes = fetch().await?;
                let compiler = &self.config.compiler;
                let compiled = compiler
                    .compile(&self.engine, self.config.memory_limit, content_id, bytes)
                    .await;
                let component = match compiled {
                    Ok(component) => component,
                    Err(e) if e.is_limit() => {
                        self.lock_refused().insert(content_id.to_owned(), e.clone());
                        return Err(refused(&e));
                    }
                    Err(e) => return Err(prepare_failed(content_id, e.to_string())),
                };
                link(&self.linker, content_id, &component)
            })
            .await?;
        Ok(pre.clone())
    }

    fn lock_refused(&self) -> std::sync::MutexGuard<'_, HashMap<String, CompileError>> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A store for one instance, with the memory limiter and CPU accounting installed.
    pub fn new_store(&self, state: HostState) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|mut cx| {
            let budget = &mut cx.data_mut().cpu;
            if budget.ticks_left == 0 {
                budget.exceeded = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                budget.ticks_left -= 1;
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Arms the CPU budget for the next call on `store`.
    pub fn arm_cpu_budget(&self, store: &mut Store<HostState>) {
        let ticks =
            (self.config.cpu_limit.as_micros() / self.config.tick.as_micros().max(1)) as u64;
        let budget = &mut store.data_mut().cpu;
        budget.ticks_left = ticks.max(1);
        budget.exceeded = false;
        store.set_epoch_deadline(1);
    }

    /// Forgets prepared versions no longer deployed (they are recompiled, from the disk cache,
    /// if needed again).
    pub fn retain_versions(&self, keep: impl Fn(&str) -> bool) {
        let mut modules = self
            .modules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        modules.retain(|id, _| keep(id));
        drop(modules);
        self.lock_refused().retain(|id, _| keep(id));
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The on-disk cache of compiled components in `dir` (created if missing, with any missing
/// parents such as the node's data directory, owner-only: mode 0700). wasmtime wants an absolute
/// path; a relative one is resolved against the working directory here.
fn compiled_cache(dir: &Path) -> anyhow::Result<Cache> {
    let dir = std::path::absolute(dir).with_context(|| {
        format!(
            "resolving the compiled-module cache directory {}",
            dir.display()
        )
    })?;
    create_private_dir(&dir).with_context(|| {
        format!(
            "creating the compiled-module cache directory {}",
            dir.display()
        )
    })?;
    let mut cache = CacheConfig::new();
    cache.with_directory(&dir);
    Cache::new(cache).map_err(|e| {
        anyhow::anyhow!(
            "setting up the compiled-module cache in {}: {e:#}",
            dir.display()
        )
    })
}

/// Creates `dir` and its missing parents with mode 0700; an existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn prepare_failed(content_id: &str, message: String) -> CallError {
    CallError::Internal(
        PrepareError {
            content_id: content_id.to_owned(),
            message,
        }
        .to_string(),
    )
}

fn link(
    linker: &Linker<HostState>,
    content_id: &str,
    component: &wasmtime::component::Component,
) -> Result<ActorPre, CallError> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| prepare_failed(content_id, format!("{e:#}")))?;
    ActorPre::new(pre).map_err(|e| prepare_failed(content_id, format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_compiled_cache_and_the_data_directory_above_it_are_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("node-data");
        compiled_cache(&data.join("compiled")).unwrap();
        for dir in [&data, &data.join("compiled")] {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        }
    }
}
