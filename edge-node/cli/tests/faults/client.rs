//! The faults test's client and its checker: one client increments the counter through a random
//! node per call, reads the value back after every failed `inc`, and the checker judges every
//! answer against the last value known to be committed (see the rules in `main.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::Method;
use latchkey_wire::ErrorCode;
use latchkey_wire::client::{Client, ClientError};
use rand::RngExt as _;
use rand::rngs::StdRng;
use tokio::time::Instant;

/// The client's timeout per call.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The counter's key.
pub(crate) const KEY: &str = "faults";
/// How long the client tries to read the value back after a failed `inc`.
pub(crate) const RESYNC_DEADLINE: Duration = Duration::from_secs(60);

/// A span of consecutive failed calls, ended by the next acknowledged `inc`.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    pub(crate) start: Duration,
    pub(crate) end: Option<Duration>,
    pub(crate) failed: u64,
    pub(crate) errors: BTreeMap<String, u64>,
}

/// What the client saw, and what it concluded.
#[derive(Default)]
pub(crate) struct Checker {
    /// The last value known to be committed.
    pub(crate) last: u64,
    pub(crate) acked: u64,
    /// When each acknowledged `inc` was answered.
    pub(crate) ack_times: Vec<Duration>,
    pub(crate) failed_incs: u64,
    pub(crate) failed_gets: u64,
    /// Failed `inc`s that the resync found applied / not applied.
    pub(crate) applied: u64,
    pub(crate) not_applied: u64,
    /// Failed `inc`s whose error said they had not taken effect (see [`definite`]).
    pub(crate) definite: u64,
    /// The error of the last failed `inc`, if it said the `inc` had not taken effect.
    pending_definite: Option<String>,
    pub(crate) violations: Vec<String>,
    /// Failed calls per error kind.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Failed calls per message (digits masked).
    pub(crate) messages: BTreeMap<String, u64>,
    pub(crate) windows: Vec<Window>,
    /// The client could not go on (a bounded wait ran out).
    pub(crate) fatal: Option<String>,
    /// One line per call.
    pub(crate) journal: Vec<String>,
}

/// `t` as RFC 3339 UTC with microseconds, like the processes' logs.
pub(crate) fn utc(t: std::time::SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let days = (since.as_secs() / 86_400) as i64;
    let in_day = since.as_secs() % 86_400;
    // Days to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        since.subsec_micros()
    )
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

pub(crate) fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Api(api) => format!("{} {}", api.code.status(), api.code),
        ClientError::Transport { .. } => "transport".into(),
        ClientError::Timeout { .. } => "client timeout".into(),
        ClientError::Decode { .. } => "decode".into(),
    }
}

/// The error's message with digits masked, so that messages differing only in ports, epochs or
/// durations count together.
pub(crate) fn error_shape(e: &ClientError) -> String {
    let text = match e {
        ClientError::Api(api) => format!("{}: {}", api.code, api.message),
        other => other.to_string(),
    };
    let mut shape = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !shape.ends_with('#') {
                shape.push('#');
            }
        } else {
            shape.push(c);
        }
        if shape.len() > 140 {
            shape.push('…');
            break;
        }
    }
    shape
}

impl Checker {
    pub(crate) fn violation(&mut self, at: Duration, what: &str) {
        let line = format!("+{}s {what}", secs(at));
        self.journal.push(format!("VIOLATION {line}"));
        self.violations.push(line);
    }

    pub(crate) fn failed(&mut self, start: Duration, e: &ClientError) {
        *self.errors.entry(error_kind(e)).or_default() += 1;
        *self.messages.entry(error_shape(e)).or_default() += 1;
        if self.windows.last().is_none_or(|w| w.end.is_some()) {
            self.windows.push(Window {
                start,
                end: None,
                failed: 0,
                errors: BTreeMap::new(),
            });
        }
        let window = self.windows.last_mut().expect("an open window");
        window.failed += 1;
        *window.errors.entry(error_kind(e)).or_default() += 1;
    }

    pub(crate) fn inc_acked(&mut self, start: Duration, end: Duration, node: &str, v: u64) {
        self.journal.push(format!(
            "+{}s..+{}s {node} inc -> {v}",
            secs(start),
            secs(end)
        ));
        self.acked += 1;
        self.ack_times.push(end);
        if let Some(window) = self.windows.last_mut()
            && window.end.is_none()
        {
            window.end = Some(end);
        }
        if v != self.last + 1 {
            let what = if v <= self.last {
                "duplicate or lost write"
            } else {
                "gap"
            };
            self.violation(
                end,
                &format!(
                    "{what}: inc through {node} acknowledged {v}, expected {}",
                    self.last + 1
                ),
            );
        }
        self.last = v;
    }

    pub(crate) fn inc_failed(
        &mut self,
        start: Duration,
        end: Duration,
        node: &str,
        e: &ClientError,
    ) {
        self.journal.push(format!(
            "+{}s..+{}s {node} inc FAILED: {e}",
            secs(start),
            secs(end)
        ));
        self.failed_incs += 1;
        self.pending_definite = definite(e).then(|| format!("{node}: {e}"));
        self.definite += u64::from(self.pending_definite.is_some());
        self.failed(start, e);
    }

    pub(crate) fn get_failed(
        &mut self,
        start: Duration,
        end: Duration,
        node: &str,
        e: &ClientError,
    ) {
        self.journal.push(format!(
            "+{}s..+{}s {node} get FAILED: {e}",
            secs(start),
            secs(end)
        ));
        self.failed_gets += 1;
        self.failed(start, e);
    }

    /// The value read back after a failed `inc`.
    pub(crate) fn resynced(&mut self, start: Duration, end: Duration, node: &str, v: u64) {
        self.journal.push(format!(
            "+{}s..+{}s {node} get -> {v} (resync)",
            secs(start),
            secs(end)
        ));
        let definite = self.pending_definite.take();
        if v == self.last {
            self.not_applied += 1;
        } else if v == self.last + 1 {
            self.applied += 1;
            self.last = v;
            if let Some(error) = definite {
                self.violation(
                    end,
                    &format!(
                        "an inc failed with an error saying it had not taken effect ({error}), but it was applied: get through {node} answered {v}"
                    ),
                );
            }
        } else {
            self.violation(
                end,
                &format!(
                    "after a failed inc, get through {node} answered {v}; expected {} or {}",
                    self.last,
                    self.last + 1
                ),
            );
            self.last = v;
        }
    }

    /// A 2xx answer that is not a number.
    pub(crate) fn bad_answer(&mut self, end: Duration, node: &str, method: &str, body: &str) {
        self.journal
            .push(format!("+{}s {node} {method} -> {body:?}", secs(end)));
        self.violation(
            end,
            &format!("{method} through {node} answered {body:?}, not a number"),
        );
    }
}

/// Whether a failed call's error says the call did not take effect: an answer from a node
/// with a retryable code (`unavailable`, `overloaded`, `timeout`, `misdirected`) or a refusal
/// (bad token, forbidden, not found). Transport failures, client timeouts and
/// `outcome_unknown` leave the outcome open.
pub(crate) fn definite(e: &ClientError) -> bool {
    match e {
        ClientError::Api(api) => {
            api.code.is_retryable()
                || matches!(
                    api.code,
                    ErrorCode::Unauthenticated | ErrorCode::Forbidden | ErrorCode::NotFound
                )
        }
        _ => false,
    }
}

/// The client's connection to one node.
pub(crate) struct Target {
    pub(crate) id: &'static str,
    pub(crate) client: Client,
}

/// Calls `method` on the counter; `Ok(Err(body))` is a 2xx answer that is not a number.
pub(crate) async fn call(
    target: &Target,
    method: &str,
) -> Result<Result<u64, String>, ClientError> {
    let body = target
        .client
        .send(
            Method::POST,
            &format!("/v1/actors/counter/{KEY}/{method}"),
            "application/json",
            Vec::new(),
            CLIENT_TIMEOUT,
        )
        .await?;
    Ok(serde_json::from_slice::<u64>(&body)
        .map_err(|_| String::from_utf8_lossy(&body).into_owned()))
}

pub(crate) fn lock(checker: &Mutex<Checker>) -> MutexGuard<'_, Checker> {
    checker
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Increments until `stop`, through a random node per call; after a failed `inc`, reads the
/// value back before going on.
pub(crate) async fn client_loop(
    targets: Vec<Target>,
    checker: Arc<Mutex<Checker>>,
    stop: Arc<AtomicBool>,
    t0: Instant,
    mut rng: StdRng,
) {
    while !stop.load(Ordering::Relaxed) {
        let target = &targets[rng.random_range(0..targets.len())];
        let start = t0.elapsed();
        let result = call(target, "inc").await;
        let end = t0.elapsed();
        match result {
            Ok(Ok(v)) => lock(&checker).inc_acked(start, end, target.id, v),
            Ok(Err(body)) => lock(&checker).bad_answer(end, target.id, "inc", &body),
            Err(e) => {
                lock(&checker).inc_failed(start, end, target.id, &e);
                if !resync(&targets, &checker, t0, &mut rng).await {
                    return;
                }
            }
        }
    }
}

/// Reads the value back after a failed `inc` (retrying until a `get` succeeds, for up to
/// [`RESYNC_DEADLINE`]); false if none did.
pub(crate) async fn resync(
    targets: &[Target],
    checker: &Mutex<Checker>,
    t0: Instant,
    rng: &mut StdRng,
) -> bool {
    let deadline = Instant::now() + RESYNC_DEADLINE;
    loop {
        let target = &targets[rng.random_range(0..targets.len())];
        let start = t0.elapsed();
        let result = call(target, "get").await;
        let end = t0.elapsed();
        match result {
            Ok(Ok(v)) => {
                lock(checker).resynced(start, end, target.id, v);
                return true;
            }
            Ok(Err(body)) => {
                lock(checker).bad_answer(end, target.id, "get", &body);
                return true;
            }
            Err(e) => {
                let mut checker = lock(checker);
                checker.get_failed(start, end, target.id, &e);
                if Instant::now() >= deadline {
                    checker.fatal = Some(format!(
                        "+{}s: no get succeeded within {RESYNC_DEADLINE:?} after a failed inc (last error: {e})",
                        secs(end)
                    ));
                    return false;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ----- the fleet -----
