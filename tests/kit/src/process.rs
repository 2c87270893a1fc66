//! Child processes for multi-process tests: killed (SIGKILL) and reaped when dropped, also when
//! the test panics; signalled by name; and free loopback ports for them to listen on.

use std::process::{Child, ChildStderr, ChildStdout, Command};
use std::time::{Duration, Instant};

/// How often [`Proc::interrupt`] looks whether the child has exited.
const POLL: Duration = Duration::from_millis(20);

/// A child process, killed when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Starts `command`.
    pub fn spawn(command: &mut Command) -> Proc {
        Proc {
            child: command.spawn().expect("start the process"),
        }
    }

    /// Its stdout, if it was piped (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Its stderr, if it was piped (once).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits up to `timeout` for it to exit: whether it
    /// exited successfully in time.
    pub fn interrupt(&mut self, timeout: Duration) -> bool {
        self.signal("INT");
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => return false,
            }
        }
    }

    /// SIGKILL, then reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name `kill` understands: `STOP`, `CONT`, ...) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Whether it is still running (not exited).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free at the time of asking (the OS picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
