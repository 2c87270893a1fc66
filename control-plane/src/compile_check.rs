//! The upload compile check: the control plane does not link wasmtime, so it asks a configured
//! command (the `latchkey` binary's own `compile-module --check`) whether an uploaded component
//! compiles within the same bounds edge nodes compile under — an address-space limit
//! (`RLIMIT_AS`, set on the started child before it is sent a byte) and a wall-clock timeout
//! (the child is killed when it expires). Exit codes follow `compile-module`: 0 compiles, 1 does
//! not compile (stderr says why), 3 out of memory; an abort or segfault is also out of memory.

use std::time::Duration;

use bytes::Bytes;

use latchkey_wire::bounded::{self, Bounds, Ended};

use crate::error::RegistryError;

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
        let mut command = tokio::process::Command::new(program);
        command.args(args);
        let bounds = Bounds {
            memory_bytes: self.memory_bytes,
            timeout: self.timeout,
        };
        let ended = bounded::run(command, component, bounds)
            .await
            .map_err(|e| failed(e.to_string()))?;
        match ended {
            Ended::Succeeded => Ok(()),
            Ended::Rejected(message) => Err(RegistryError::Invalid(format!(
                "the module does not compile: {message}"
            ))),
            Ended::OutOfMemory => Err(RegistryError::TooLarge(format!(
                "compiling the module needed more than the compile memory limit of {} bytes",
                self.memory_bytes
            ))),
            Ended::TimedOut => Err(RegistryError::TooLarge(format!(
                "compiling the module took longer than the compile time limit of {} ms; it was stopped",
                self.timeout.as_millis()
            ))),
            Ended::Failed {
                code,
                signal,
                message,
            } => Err(failed(format!(
                "exit code {code:?}, signal {signal:?}: {message}"
            ))),
        }
    }
}
