//! A child process bounded in memory and time and fed one input on stdin, and the exit codes of
//! `compile-module`, the program run that way: edge nodes run it to compile modules, the control
//! plane to check an upload compiles. Both read its end through [`run`], so they agree on what
//! each exit means.
//!
//! The address space is capped with `prlimit(RLIMIT_AS)` on the started child before it is sent
//! a byte; the child is killed when the timeout expires (or the future is dropped).

use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;

/// Exit code of `compile-module` for a component that does not compile (stderr says why).
pub const EXIT_REJECTED: u8 = 1;
/// Exit code of `compile-module` for bad arguments or unreadable input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `compile-module` when compilation ran out of memory (address space).
pub const EXIT_MEMORY: u8 = 3;
/// Most of the child's stderr kept for a message.
pub const MAX_MESSAGE: usize = 4096;

/// What the child may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Address space, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time.
    pub timeout: Duration,
}

/// How a bounded child ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Exit code 0.
    Succeeded,
    /// [`EXIT_REJECTED`], with the start of its stderr.
    Rejected(String),
    /// [`EXIT_MEMORY`], or an abort or segfault (an allocation that failed, a stack that could
    /// not grow).
    OutOfMemory,
    /// Still running when the timeout expired; it was killed.
    TimedOut,
    /// Any other end, with the start of its stderr.
    Failed {
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that ended it, if one did.
        signal: Option<i32>,
        /// The start of its stderr.
        message: String,
    },
}

/// The child could not be run (not a verdict on its input). Callers map it to their own
/// classified errors (a node's compile failure, the control plane's unavailable check).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program did not start (missing, not executable).
    #[error("starting it: {0}")]
    Start(std::io::Error),
    /// It ended before its id could be read, so it could not be bounded.
    #[error("it exited at once")]
    Gone,
    /// `prlimit` on it failed; it was not sent its input.
    #[error("limiting its memory: {0}")]
    Limit(std::io::Error),
    /// Reading its end failed.
    #[error("waiting for it: {0}")]
    Wait(std::io::Error),
}

/// Runs `command` with `input` on its stdin within `bounds`.
pub async fn run(
    mut command: tokio::process::Command,
    input: Bytes,
    bounds: Bounds,
) -> Result<Ended, RunError> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(RunError::Start)?;
    let pid = child.id().ok_or(RunError::Gone)?;
    limit_address_space(pid, bounds.memory_bytes).map_err(RunError::Limit)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let run = async move {
        // A child that stops reading (it failed early) makes the write fail: its exit says why.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
        child.wait_with_output().await
    };
    match tokio::time::timeout(bounds.timeout, run).await {
        Ok(output) => Ok(ended(&output.map_err(RunError::Wait)?)),
        // Dropping the child kills it.
        Err(_) => Ok(Ended::TimedOut),
    }
}

/// What an exit means.
fn ended(output: &std::process::Output) -> Ended {
    let message = || {
        let text = String::from_utf8_lossy(&output.stderr);
        let text = text.trim();
        text.get(..MAX_MESSAGE.min(text.len()))
            .unwrap_or(text)
            .to_owned()
    };
    match (output.status.code(), output.status.signal()) {
        (Some(0), _) => Ended::Succeeded,
        (Some(c), _) if c == i32::from(EXIT_REJECTED) => Ended::Rejected(message()),
        (Some(c), _) if c == i32::from(EXIT_MEMORY) => Ended::OutOfMemory,
        (None, Some(6 | 11)) => Ended::OutOfMemory,
        (code, signal) => Ended::Failed {
            code,
            signal,
            message: message(),
        },
    }
}

fn limit_address_space(pid: u32, bytes: u64) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("bad pid {pid}")))?;
    let limit = rustix::process::Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    rustix::process::prlimit(Some(pid), rustix::process::Resource::As, limit)?;
    Ok(())
}
