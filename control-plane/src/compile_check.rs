//! The upload compile check: the control plane does not link wasmtime, so it asks a configured
//! command (the `latchkey` binary's own `compile-module --check`) whether an uploaded component
//! compiles within the same bounds edge nodes compile under — an address-space limit
//! (`RLIMIT_AS`, set on the started child before it is sent a byte) and a wall-clock timeout
//! (the child is killed when it expires). Exit codes follow `compile-module`: 0 compiles, 1 does
//! not compile (stderr says why), 3 out of memory; an abort or segfault is also out of memory.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::error::RegistryError;

/// Most of the checker's stderr kept for an error message.
const MAX_MESSAGE: usize = 4096;

/// Default [`CompileCheck::memory_bytes`]: 2 GiB, as edge nodes.
pub const DEFAULT_COMPILE_MEMORY_BYTES: u64 = 2 << 30;
/// Default [`CompileCheck::timeout`]: 60 s, as edge nodes.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

/// A compile checker: a command and its bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileCheck {
    /// The program and its arguments; the component arrives on stdin.
    pub command: Vec<String>,
    /// Address space the check may use, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time the check may take.
    pub timeout: Duration,
}

impl CompileCheck {
    /// Runs the check on `component`: `Ok` if it compiles within the bounds; `TooLarge` naming the
    /// limit it broke; `Invalid` if it does not compile; `Unavailable` if the checker failed.
    pub async fn check(&self, component: Bytes) -> Result<(), RegistryError> {
        let Some((program, args)) = self.command.split_first() else {
            return Err(RegistryError::Unavailable(
                "the compile check command is empty".into(),
            ));
        };
        let failed = |what: String| {
            RegistryError::Unavailable(format!("the compile check ({program}) failed: {what}"))
        };
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("starting it: {e}")))?;
        let pid = child
            .id()
            .ok_or_else(|| failed("it exited at once".into()))?;
        limit_address_space(pid, self.memory_bytes)
            .map_err(|e| failed(format!("limiting its memory: {e}")))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let run = async move {
            // A checker that stops reading (it failed early) makes the write fail: its exit
            // says why.
            let _ = stdin.write_all(&component).await;
            drop(stdin);
            child.wait_with_output().await
        };
        let output = match tokio::time::timeout(self.timeout, run).await {
            Ok(output) => output.map_err(|e| failed(format!("waiting for it: {e}")))?,
            // Dropping the child kills it.
            Err(_) => {
                return Err(RegistryError::TooLarge(format!(
                    "compiling the module took longer than the compile time limit of {} ms; it was stopped",
                    self.timeout.as_millis()
                )));
            }
        };
        if output.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&output.stderr);
        let text = text.trim();
        let message = text.get(..MAX_MESSAGE.min(text.len())).unwrap_or(text);
        use std::os::unix::process::ExitStatusExt;
        let out_of_memory = || {
            RegistryError::TooLarge(format!(
                "compiling the module needed more than the compile memory limit of {} bytes",
                self.memory_bytes
            ))
        };
        match (output.status.code(), output.status.signal()) {
            (Some(1), _) => Err(RegistryError::Invalid(format!(
                "the module does not compile: {message}"
            ))),
            (Some(3), _) | (None, Some(6 | 11)) => Err(out_of_memory()),
            (code, signal) => Err(failed(format!(
                "exit code {code:?}, signal {signal:?}: {message}"
            ))),
        }
    }
}

fn limit_address_space(pid: u32, bytes: u64) -> std::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid as i32)
        .ok_or_else(|| std::io::Error::other(format!("bad pid {pid}")))?;
    let limit = rustix::process::Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    rustix::process::prlimit(Some(pid), rustix::process::Resource::As, limit)?;
    Ok(())
}
