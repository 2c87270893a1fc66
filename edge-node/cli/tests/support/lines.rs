//! The lines a child process prints, read on a thread of their own and waited for with a
//! deadline (never a sleep): a test waits for the line that says what it needs.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Lines read so far, and the channel bringing the next ones.
pub(crate) struct Lines {
    next: mpsc::Receiver<String>,
    seen: Vec<String>,
    name: String,
}

impl Lines {
    /// Reads `from` (a child's stdout or stderr) line by line; `name` names it in failures.
    pub(crate) fn new(name: &str, from: impl Read + Send + 'static) -> Lines {
        let (send, next) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            next,
            seen: Vec::new(),
            name: name.to_owned(),
        }
    }

    /// Every line read so far.
    pub(crate) fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Waits up to `timeout` for a line (after those already seen) for which `wanted` holds,
    /// and returns it; panics with everything read if none comes (or the stream ends).
    pub(crate) fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{what}: no such line from {} within {timeout:?}; it printed:\n{}",
                        self.name,
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{what}: {} ended first; it printed:\n{}",
                        self.name,
                        self.seen.join("\n")
                    )
                }
            }
        }
    }
}
