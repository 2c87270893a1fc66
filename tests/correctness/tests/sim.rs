//! The deterministic simulation in CI: a thousand seeds under faults keep every promise, a seed
//! replays exactly, and the checks do fail when the lease's assumption (bounded clock drift) is
//! broken, or when the node's real router or output gate is made wrong.

use latchkey_correctness::sim::{self, Config, Flaws, Report};
use latchkey_edge_node::protocol::CommitFlaw;
use latchkey_edge_node::route::Flaw;

/// Seeds per CI run (`LATCHKEY_SIM_SEEDS` overrides; `LATCHKEY_SIM_FIRST` moves the window).
/// Every node message is signed and verified by the real code (~40 µs of ed25519 each), which
/// made 2000 seeds take 320 s instead of 71 s on the 2-core CI machine; 1000 keep the run near
/// 160 s.
const DEFAULT_SEEDS: u64 = 1000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `seeds` on every core; returns the failed reports and a total of events.
fn run_all(seeds: std::ops::Range<u64>, config: &Config) -> (Vec<Report>, u64) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let (start, len) = (seeds.start, seeds.end - seeds.start);
    let results: Vec<(Vec<Report>, u64)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut failed = Vec::new();
                    let mut events = 0;
                    let mut seed = start + t;
                    while seed < start + len {
                        let report = sim::run(seed, config);
                        events += report.events;
                        if !report.violations.is_empty() {
                            failed.push(report);
                        }
                        seed += threads;
                    }
                    (failed, events)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a simulation thread panicked"))
            .collect()
    });
    let events = results.iter().map(|(_, e)| e).sum();
    let mut failed: Vec<Report> = results.into_iter().flat_map(|(f, _)| f).collect();
    failed.sort_by_key(|r| r.seed);
    (failed, events)
}

#[test]
fn a_thousand_seeds_under_faults_keep_every_promise() {
    let first = env("LATCHKEY_SIM_FIRST", 0);
    let seeds = env("LATCHKEY_SIM_SEEDS", DEFAULT_SEEDS);
    let started = std::time::Instant::now();
    let (failed, events) = run_all(first..first + seeds, &Config::default());
    println!(
        "{seeds} seeds from {first}: {events} events in {:.1?}, {} failed",
        started.elapsed(),
        failed.len()
    );
    let mut message = String::new();
    for report in failed.iter().take(5) {
        message.push_str(&report.summary());
        message.push_str(&format!("replay: {}\n", report.replay_command()));
    }
    assert!(
        failed.is_empty(),
        "{} of {seeds} seeds broke a promise:\n{message}",
        failed.len()
    );
}

#[test]
fn a_seed_replays_exactly_with_or_without_a_trace() {
    let config = Config::default();
    let a = sim::run(7, &config);
    let b = sim::run(7, &config);
    let traced = sim::run(
        7,
        &Config {
            trace: true,
            ..config.clone()
        },
    );
    assert_eq!((a.digest, a.events, a.calls), (b.digest, b.events, b.calls));
    assert_eq!((a.digest, a.answered), (traced.digest, traced.answered));
    assert!(traced.trace.len() as u64 >= traced.events);
    assert!(a.calls > 100, "the clients were busy: {}", a.summary());
    assert!(
        !a.faults.is_empty(),
        "faults were injected: {}",
        a.summary()
    );
    let other = sim::run(8, &config);
    assert_ne!(a.digest, other.digest, "another seed, another run");
}

#[test]
fn the_checks_catch_clocks_that_drift_past_the_lease_margin() {
    // The lease holds if a node's clock drifts by less than the safety margin (a tenth of the
    // TTL). Let clocks run up to 90% slow: a node's lease then outlives the control plane's, and
    // the simulation must notice two nodes able to serve one actor.
    let config = Config {
        max_drift_ppm: 900_000,
        ..Config::default()
    };
    let (failed, _) = run_all(0..200, &config);
    assert!(
        failed.iter().any(|r| r
            .violations
            .iter()
            .any(|v| v.contains("two nodes can serve"))),
        "no seed of 200 found the double activation that slow clocks allow"
    );
}

/// The first seed of the CI window whose run breaks a promise under `flaws`, searched a batch at
/// a time on every core.
fn first_caught(flaws: Flaws) -> Option<u64> {
    let config = Config {
        flaws,
        ..Config::default()
    };
    let batch = 2 * std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let mut start = 0;
    while start < DEFAULT_SEEDS {
        let (failed, _) = run_all(start..(start + batch).min(DEFAULT_SEEDS), &config);
        if let Some(report) = failed.first() {
            return Some(report.seed);
        }
        start += batch;
    }
    None
}

/// Asserts that a seed of the CI window catches `flaws`, planted in the node's real code.
fn assert_caught(flaws: Flaws, what: &str) {
    let seed = first_caught(flaws);
    println!("{what}: first caught at seed {seed:?}");
    assert!(
        seed.is_some(),
        "no seed of the {DEFAULT_SEEDS} in CI caught {what}"
    );
}

#[test]
fn the_checks_catch_a_router_that_retries_a_forward_which_may_have_run() {
    // The real router (`latchkey_edge_node::route::Route`) retries a forward only when the owner
    // did not run it. Retrying one whose outcome is unknown can apply an `inc` twice.
    let flaws = Flaws {
        route: Flaw::RetryUnknownForwards,
        ..Flaws::default()
    };
    assert_caught(flaws, "a router retrying forwards of unknown outcome");
}

#[test]
fn the_checks_catch_an_output_gate_that_takes_a_lost_answer_for_a_refusal() {
    // The real output gate (`latchkey_edge_node::protocol::Commit`) resends a commit whose
    // answer was lost. Calling it "nothing committed" lets a client retry an applied `inc`.
    let flaws = Flaws {
        commit: CommitFlaw::UnansweredNotApplied,
        ..Flaws::default()
    };
    assert_caught(flaws, "an output gate taking lost answers for refusals");
}
