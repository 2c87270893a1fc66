//! Real processes under faults (issue #6, part 3): a control plane and three edge nodes run as
//! `latchkey` processes on loopback, every node→control-plane link and every link into a node
//! (the address it advertises, which other nodes forward calls to) goes through a TCP proxy that
//! can cut it, and one client increments one durable counter in a loop through a randomly chosen
//! node while a fault schedule runs. The schedule cycles through four kinds of fault, each aimed
//! at the node that currently owns the counter where that matters (the owner is read from the
//! admin API):
//!
//! 1. SIGKILL the owner; restart it (same id, port and data dir) a few seconds later;
//! 2. SIGSTOP the owner for longer than the lease TTL, then SIGCONT;
//! 3. cut the owner's node→control-plane link for longer than the lease TTL (alternately
//!    resetting and blackholing it), then heal it;
//! 4. SIGKILL the control plane and start it again (same port and data dir).
//!
//! After each fault the schedule waits (boundedly) until the client has made progress again.
//!
//! # The checker
//!
//! The client keeps `last`, the last value known to be committed (0 at the start).
//!
//! - An `inc` acknowledged with value `v` must have `v == last + 1` (then `last = v`); anything
//!   else is a violation: a duplicate (`v <= last`), a gap (`v > last + 1`), or an acknowledged
//!   write that was lost (seen as a duplicate later).
//! - A failed call (any error status, transport failure or client timeout) is recorded as a
//!   failure with its error, never as a wrong value. Its outcome may be unknown (e.g. the node's
//!   commit answer was lost), so after a failed `inc` the client resynchronises with `get`
//!   (retrying, boundedly, until one succeeds) and requires the value to be `last` (the failed
//!   `inc` did not apply) or `last + 1` (it did; then `last = last + 1`); each case is counted,
//!   and any other value is a violation. If the failed `inc`'s error said it had not taken
//!   effect (a node's retryable answer — `unavailable`, `overloaded`, `timeout`, `misdirected` —
//!   or a refusal), finding it applied is a violation too: only `outcome_unknown`, a transport
//!   failure or a client timeout may leave an `inc` applied.
//! - At the end, a final `get` must answer `last`.
//!
//! The summary printed at the end (`--nocapture`, and in the assertion message on failure) gives
//! the operations, the faults injected by kind, the unavailability windows (spans of consecutive
//! failed calls), the resync outcomes and the violations, which must be 0. The client must also
//! make progress after every fault.
//!
//! `LATCHKEY_FAULTS_SECS` sets how long faults keep being injected (default 90 s, about 95 s in
//! all); `LATCHKEY_FAULTS_SEED` fixes the random choices (nodes called, fault durations);
//! `LATCHKEY_FAULTS_KEEP=1` keeps the logs under `/tmp/faults-evidence/` also when the run passes
//! (they are always kept when it fails).

mod client;
#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{
    CLIENT_TIMEOUT, Checker, KEY, RESYNC_DEADLINE, Target, call, client_loop, lock, secs, utc,
};
use latchkey_test_kit::cluster::healthz;
use latchkey_wire::client::Client;
use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use support::proxy::{Cut, Proxy};
use support::{Proc, control_plane, edge_node_with, free_port};
use tokio::time::Instant;

/// The edge nodes.
const NODE_IDS: [&str; 3] = ["n1", "n2", "n3"];
/// The lease TTL `support::control_plane` configures.
const LEASE_TTL: Duration = Duration::from_millis(2000);
/// The nodes' wall-clock limit per call (below the client's, so a node's answer usually arrives).
const NODE_CALL_TIMEOUT_MS: &str = "8000";
/// How long faults are injected by default, in seconds.
const DEFAULT_SECS: u64 = 90;
/// How long the system may take to make progress again after a fault is over.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);
/// How long a process may take to answer `/healthz` after it was (re)started.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Acknowledged `inc`s required after each fault before the next one.
const HEALTHY_ACKS: u64 = 5;
/// The shortest healthy interval between two faults.
const HEALTHY_MIN: Duration = Duration::from_secs(3);
/// Acknowledged `inc`s the whole run must reach.
const MIN_ACKS: u64 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    KillOwner,
    StopOwner,
    CutOwnerLink,
    RestartControlPlane,
}

const KINDS: [Kind; 4] = [
    Kind::KillOwner,
    Kind::StopOwner,
    Kind::CutOwnerLink,
    Kind::RestartControlPlane,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::KillOwner => "SIGKILL owner node (then restart it)",
            Kind::StopOwner => "SIGSTOP owner node past its lease (then SIGCONT)",
            Kind::CutOwnerLink => "cut owner's node→control-plane link (then heal)",
            Kind::RestartControlPlane => "restart the control plane (SIGKILL, start)",
        }
    }
}

/// One injected fault.
struct Fault {
    kind: Kind,
    start: Duration,
    /// When it was over (node restarted, resumed, link healed, control plane started).
    end: Duration,
    detail: String,
}

/// What the client did after a fault ended: when its first `inc` was acknowledged, and how many
/// were before the next fault started (or the run ended).
fn progress_after(faults: &[Fault], i: usize, checker: &Checker) -> (Option<Duration>, usize) {
    let from = faults[i].end;
    let until = faults.get(i + 1).map_or(Duration::MAX, |f| f.start);
    let acks = checker
        .ack_times
        .iter()
        .filter(|t| **t >= from && **t < until);
    (acks.clone().next().copied(), acks.count())
}

/// One edge node process and its proxies.
struct Node {
    id: &'static str,
    port: u16,
    token: String,
    /// This node → the control plane.
    cp_link: Proxy,
    /// Other nodes → this node (the address it advertises).
    ingress: Proxy,
    proc: Option<Proc>,
}

impl Node {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

struct Harness {
    dir: tempfile::TempDir,
    t0: Instant,
    /// `t0` on the wall clock (the processes' logs use it).
    started: std::time::SystemTime,
    seed: u64,
    cp_port: u16,
    cp: Option<Proc>,
    admin: Client,
    nodes: Vec<Node>,
    keep: bool,
    finished: bool,
}

impl Harness {
    async fn start(seed: u64) -> Harness {
        let t0 = Instant::now();
        let started = std::time::SystemTime::now();
        let dir = tempfile::tempdir().unwrap();
        let cp_port = free_port();
        let cp = control_plane(dir.path(), cp_port);
        let cp_url = format!("http://127.0.0.1:{cp_port}");
        if let Err(e) = wait_healthy(&cp_url, START_DEADLINE).await {
            panic!("the control plane did not start: {e}");
        }
        let token = std::fs::read_to_string(dir.path().join("cp/admin.token")).unwrap();
        let admin = Client::new(&cp_url, &token).with_timeout(Duration::from_secs(5));
        let mut nodes = Vec::new();
        for id in NODE_IDS {
            let port = free_port();
            nodes.push(Node {
                id,
                port,
                token: enrolment(&admin, id).await,
                cp_link: Proxy::start(&format!("{id}→cp"), cp_port).await,
                ingress: Proxy::start(&format!("→{id}"), port).await,
                proc: None,
            });
        }
        let mut harness = Harness {
            dir,
            t0,
            started,
            seed,
            cp_port,
            cp: Some(cp),
            admin,
            nodes,
            keep: std::env::var("LATCHKEY_FAULTS_KEEP").is_ok_and(|v| v == "1"),
            finished: false,
        };
        for i in 0..NODE_IDS.len() {
            harness.start_node(i);
        }
        for node in &harness.nodes {
            if let Err(e) = wait_healthy(&node.url(), START_DEADLINE).await {
                panic!("node {} did not start: {e}", node.id);
            }
        }
        harness
    }

    fn start_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        let cp_url = format!("http://127.0.0.1:{}", node.cp_link.port());
        let advertise = format!("127.0.0.1:{}", node.ingress.port());
        let proc = edge_node_with(
            self.dir.path(),
            node.id,
            node.port,
            &cp_url,
            &node.token,
            &[
                "--advertise",
                &advertise,
                "--call-timeout-ms",
                NODE_CALL_TIMEOUT_MS,
            ],
        );
        self.nodes[i].proc = Some(proc);
    }

    fn cp_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.cp_port)
    }

    /// The node holding the counter's live activation (waits up to 30 s for one).
    async fn owner(&self) -> Result<usize, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen;
        loop {
            match self.admin.activations(Some("counter")).await {
                Ok(list) => {
                    if let Some(i) = list
                        .iter()
                        .filter(|a| a.key == KEY && a.live)
                        .find_map(|a| NODE_IDS.iter().position(|id| *id == a.node_id))
                    {
                        return Ok(i);
                    }
                    seen = format!("{list:?}");
                }
                Err(e) => seen = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no live activation of counter/{KEY} for 30 s (last answer: {seen})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Injects one fault of `kind` (counting `n` faults of that kind so far).
    async fn inject(&mut self, kind: Kind, n: usize, rng: &mut StdRng) -> Result<Fault, String> {
        let detail;
        let start;
        match kind {
            Kind::KillOwner => {
                let o = self.owner().await?;
                start = self.t0.elapsed();
                if let Some(mut proc) = self.nodes[o].proc.take() {
                    proc.kill();
                }
                let down = Duration::from_millis(rng.random_range(1500..4500));
                tokio::time::sleep(down).await;
                self.start_node(o);
                let restarted = Instant::now();
                let url = self.nodes[o].url();
                wait_healthy(&url, START_DEADLINE)
                    .await
                    .map_err(|e| format!("node {} did not restart: {e}", NODE_IDS[o]))?;
                detail = format!(
                    "{}: down {} s, lease valid again {} s after the restart",
                    NODE_IDS[o],
                    secs(down),
                    secs(restarted.elapsed())
                );
            }
            Kind::StopOwner => {
                let o = self.owner().await?;
                let proc = self.nodes[o].proc.as_ref().expect("running");
                start = self.t0.elapsed();
                proc.signal("STOP");
                let stopped = LEASE_TTL + Duration::from_millis(rng.random_range(500..2500));
                tokio::time::sleep(stopped).await;
                proc.signal("CONT");
                let resumed = Instant::now();
                wait_healthy(&self.nodes[o].url(), START_DEADLINE)
                    .await
                    .map_err(|e| format!("node {} did not recover: {e}", NODE_IDS[o]))?;
                detail = format!(
                    "{}: stopped {} s, lease valid again {} s after SIGCONT",
                    NODE_IDS[o],
                    secs(stopped),
                    secs(resumed.elapsed())
                );
            }
            Kind::CutOwnerLink => {
                let o = self.owner().await?;
                let how = if n.is_multiple_of(2) {
                    Cut::Reset
                } else {
                    Cut::Blackhole
                };
                let link = &self.nodes[o].cp_link;
                start = self.t0.elapsed();
                link.cut(how);
                let cut = LEASE_TTL + Duration::from_millis(rng.random_range(1000..3000));
                tokio::time::sleep(cut).await;
                link.heal();
                let healed = Instant::now();
                wait_healthy(&self.nodes[o].url(), START_DEADLINE)
                    .await
                    .map_err(|e| format!("node {} did not recover: {e}", NODE_IDS[o]))?;
                detail = format!(
                    "{} ({how:?}): cut {} s, lease valid again {} s after healing",
                    link.name(),
                    secs(cut),
                    secs(healed.elapsed())
                );
            }
            Kind::RestartControlPlane => {
                start = self.t0.elapsed();
                if let Some(mut cp) = self.cp.take() {
                    cp.kill();
                }
                let down = Duration::from_millis(rng.random_range(0..1500));
                tokio::time::sleep(down).await;
                self.cp = Some(control_plane(self.dir.path(), self.cp_port));
                let restarted = Instant::now();
                wait_healthy(&self.cp_url(), START_DEADLINE)
                    .await
                    .map_err(|e| format!("the control plane did not restart: {e}"))?;
                detail = format!(
                    "down {} s, answering {} s after the restart",
                    secs(down),
                    secs(restarted.elapsed())
                );
            }
        }
        Ok(Fault {
            kind,
            start,
            end: self.t0.elapsed(),
            detail,
        })
    }

    /// Kills every process, then keeps the logs if the run failed (or if asked to).
    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        for node in &mut self.nodes {
            if let Some(mut proc) = node.proc.take() {
                proc.kill();
            }
        }
        if let Some(mut cp) = self.cp.take() {
            cp.kill();
        }
        if self.keep || std::thread::panicking() {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let to = Path::new("/tmp/faults-evidence").join(format!("{stamp}-seed-{}", self.seed));
            if std::fs::create_dir_all(&to).is_ok() {
                if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
                    for entry in entries.flatten() {
                        let path = entry.path();
                        if path.is_file() {
                            let _ = std::fs::copy(&path, to.join(entry.file_name()));
                        }
                    }
                }
                println!("logs kept in {}", to.display());
            }
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Waits until `GET {url}/healthz` answers 200, for up to `limit`.
/// A single-use enrolment capability for node `id` (retried while the control plane says so).
async fn enrolment(admin: &Client, id: &str) -> String {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        match admin.enrolment_token(id, None).await {
            Ok(minted) => return minted.token,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("making node {id}'s enrolment capability: {e}"),
        }
    }
}

async fn wait_healthy(url: &str, limit: Duration) -> Result<(), String> {
    let client = Client::new(url, "");
    let deadline = Instant::now() + limit;
    loop {
        match healthz(&client, Duration::from_secs(2)).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("{url} not healthy within {limit:?}: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

// ----- the summary -----

struct Run<'a> {
    seed: u64,
    started: std::time::SystemTime,
    fault_secs: u64,
    total: Duration,
    faults: &'a [Fault],
    checker: &'a Checker,
    final_value: Option<u64>,
    problem: Option<&'a str>,
}

fn summary(run: &Run<'_>) -> String {
    let c = run.checker;
    let mut s = String::new();
    let _ = writeln!(s, "==== Latchkey under faults: summary ====");
    let _ = writeln!(
        s,
        "seed {} (LATCHKEY_FAULTS_SEED), faults injected for {} s (LATCHKEY_FAULTS_SECS), run took {} s; offsets below count from {}",
        run.seed,
        run.fault_secs,
        secs(run.total),
        utc(run.started)
    );
    let _ = writeln!(
        s,
        "operations: {} inc acknowledged, {} inc failed; resync gets failed: {}; last value {}, final get {}",
        c.acked,
        c.failed_incs,
        c.failed_gets,
        c.last,
        run.final_value
            .map_or_else(|| "not read".to_owned(), |v| v.to_string())
    );
    let _ = writeln!(
        s,
        "resync after a failed inc: applied {} (failed but committed), not applied {}; {} failed incs had a definite error (must not have applied)",
        c.applied, c.not_applied, c.definite
    );
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for fault in run.faults {
        *by_kind.entry(fault.kind).or_default() += 1;
    }
    let _ = writeln!(s, "faults injected: {} in all", run.faults.len());
    for kind in KINDS {
        let _ = writeln!(
            s,
            "  {:>3} × {}",
            by_kind.get(&kind).copied().unwrap_or(0),
            kind.name()
        );
    }
    let _ = writeln!(s, "fault timeline (offsets from the start of the run):");
    for (i, fault) in run.faults.iter().enumerate() {
        let (first_ack, acks) = progress_after(run.faults, i, c);
        let _ = writeln!(
            s,
            "  +{:>8}s..+{:>8}s {:<19} {}; first ack {}, {acks} acks before the next fault (or the end)",
            secs(fault.start),
            secs(fault.end),
            format!("{:?}", fault.kind),
            fault.detail,
            first_ack.map_or_else(
                || "never".to_owned(),
                |t| format!("{} s after it ended", secs(t.saturating_sub(fault.end)))
            ),
        );
    }
    let spans: Vec<Duration> = c
        .windows
        .iter()
        .map(|w| w.end.unwrap_or(run.total).saturating_sub(w.start))
        .collect();
    let _ = writeln!(
        s,
        "unavailability windows (consecutive failed calls until the next ack): {}, longest {} s, {} s in all",
        c.windows.len(),
        secs(spans.iter().max().copied().unwrap_or_default()),
        secs(spans.iter().sum())
    );
    for (w, span) in c.windows.iter().zip(&spans).take(200) {
        let errors: Vec<String> = w.errors.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        let _ = writeln!(
            s,
            "  +{:>8}s for {:>7} s{}: {} failed calls ({})",
            secs(w.start),
            secs(*span),
            if w.end.is_none() { " (still open)" } else { "" },
            w.failed,
            errors.join(", ")
        );
    }
    let _ = writeln!(s, "failed calls by error:");
    for (kind, n) in &c.errors {
        let _ = writeln!(s, "  {n:>5} × {kind}");
    }
    let mut messages: Vec<(&String, &u64)> = c.messages.iter().collect();
    messages.sort_by(|a, b| b.1.cmp(a.1));
    let _ = writeln!(s, "failed calls by message (digits masked):");
    for (message, n) in messages.iter().take(20) {
        let _ = writeln!(s, "  {n:>5} × {message}");
    }
    let _ = writeln!(s, "violations: {}", c.violations.len());
    for v in &c.violations {
        let _ = writeln!(s, "  {v}");
    }
    if let Some(fatal) = &c.fatal {
        let _ = writeln!(s, "client stopped: {fatal}");
    }
    if let Some(problem) = run.problem {
        let _ = writeln!(s, "run stopped: {problem}");
    }
    s
}

// ----- the test -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_stays_exact_under_kills_stops_cuts_and_restarts() {
    let fault_secs = std::env::var("LATCHKEY_FAULTS_SECS")
        .ok()
        .map(|s| s.parse::<u64>().expect("LATCHKEY_FAULTS_SECS is a number"))
        .unwrap_or(DEFAULT_SECS);
    let seed = std::env::var("LATCHKEY_FAULTS_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("LATCHKEY_FAULTS_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64
        });
    let mut rng = StdRng::seed_from_u64(seed);
    let mut harness = Harness::start(seed).await;
    let token = support::deploy_counter(&harness.admin).await;
    let t0 = harness.t0;

    // The counter answers (the deployment reached the nodes) before the client starts.
    let targets: Vec<Target> = harness
        .nodes
        .iter()
        .map(|n| Target {
            id: n.id,
            client: Client::new(&n.url(), &token),
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for target in &targets {
        loop {
            match call(target, "get").await {
                Ok(Ok(0)) => break,
                Ok(other) => panic!("a fresh counter answered {other:?} through {}", target.id),
                Err(e) if Instant::now() >= deadline => {
                    panic!("the counter did not answer through {}: {e}", target.id)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    let checker = Arc::new(Mutex::new(Checker::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn(client_loop(
        targets,
        Arc::clone(&checker),
        Arc::clone(&stop),
        t0,
        StdRng::seed_from_u64(rng.next_u64()),
    ));

    let mut faults: Vec<Fault> = Vec::new();
    let mut problem: Option<String> = None;
    let phase = Instant::now();
    let acked = || lock(&checker).acked;

    // Warm up: the client makes progress before the first fault.
    if let Err(e) = wait_progress(&checker, acked(), HEALTHY_ACKS).await {
        problem = Some(format!("before the first fault: {e}"));
    }
    let mut i = 0;
    while problem.is_none()
        && (i < KINDS.len() || phase.elapsed() < Duration::from_secs(fault_secs))
    {
        let kind = KINDS[i % KINDS.len()];
        let fault = match harness.inject(kind, i / KINDS.len(), &mut rng).await {
            Ok(fault) => fault,
            Err(e) => {
                problem = Some(format!("injecting {kind:?}: {e}"));
                break;
            }
        };
        let (start, acked_at_end) = (fault.start, acked());
        faults.push(fault);
        let healthy_from = Instant::now();
        if let Err(e) = wait_progress(&checker, acked_at_end, HEALTHY_ACKS).await {
            problem = Some(format!("after {kind:?} at +{}s: {e}", secs(start)));
            break;
        }
        tokio::time::sleep(HEALTHY_MIN.saturating_sub(healthy_from.elapsed())).await;
        i += 1;
    }

    // Stop the client (it finishes its call, and its resync if one is due), then read the
    // value once more.
    stop.store(true, Ordering::Relaxed);
    let client_limit = CLIENT_TIMEOUT + RESYNC_DEADLINE + Duration::from_secs(15);
    match tokio::time::timeout(client_limit, client).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            problem.get_or_insert_with(|| format!("the client task failed: {e}"));
        }
        Err(_) => {
            problem
                .get_or_insert_with(|| format!("the client did not stop within {client_limit:?}"));
        }
    }
    let mut final_value = None;
    let final_client = Client::new(&harness.nodes[0].url(), &token);
    let final_target = Target {
        id: "n1",
        client: final_client,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call(&final_target, "get").await {
            Ok(Ok(v)) => {
                final_value = Some(v);
                let mut checker = lock(&checker);
                if v != checker.last {
                    let last = checker.last;
                    checker.violation(
                        t0.elapsed(),
                        &format!(
                            "the final get answered {v}, but the last committed value is {last}"
                        ),
                    );
                }
                break;
            }
            Ok(Err(body)) => {
                lock(&checker).bad_answer(t0.elapsed(), "n1", "get", &body);
                break;
            }
            Err(e) if Instant::now() >= deadline => {
                problem.get_or_insert_with(|| format!("the final get failed for 30 s: {e}"));
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    let checker = lock(&checker);
    let report = summary(&Run {
        seed,
        started: harness.started,
        fault_secs,
        total: t0.elapsed(),
        faults: &faults,
        checker: &checker,
        final_value,
        problem: problem.as_deref(),
    });
    println!("{report}");
    let _ = std::fs::write(harness.dir.path().join("summary.log"), &report);
    let _ = std::fs::write(
        harness.dir.path().join("client.log"),
        format!(
            "offsets count from {}\n{}\n",
            utc(harness.started),
            checker.journal.join("\n")
        ),
    );

    assert!(checker.violations.is_empty(), "violations\n{report}");
    assert!(checker.fatal.is_none(), "the client got stuck\n{report}");
    assert!(problem.is_none(), "the run did not complete\n{report}");
    assert!(
        checker.acked >= MIN_ACKS,
        "only {} incs acknowledged\n{report}",
        checker.acked
    );
    assert!(
        KINDS.iter().all(|k| faults.iter().any(|f| f.kind == *k)),
        "not every kind of fault ran\n{report}"
    );
    assert!(
        (0..faults.len()).all(|i| progress_after(&faults, i, &checker).1 >= 1),
        "no progress after some fault\n{report}"
    );
    drop(checker);
    harness.finish();
}

/// Waits until `want` more `inc`s than `from` are acknowledged (for up to
/// [`RECOVERY_DEADLINE`]).
async fn wait_progress(checker: &Mutex<Checker>, from: u64, want: u64) -> Result<(), String> {
    let deadline = Instant::now() + RECOVERY_DEADLINE;
    loop {
        {
            let checker = lock(checker);
            if let Some(fatal) = &checker.fatal {
                return Err(fatal.clone());
            }
            if checker.acked >= from + want {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "only {} of {want} incs acknowledged within {RECOVERY_DEADLINE:?}",
                    checker.acked - from
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
