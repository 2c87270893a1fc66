//! `cargo run -p latchkey-correctness --bin sim -- --help`: runs the deterministic simulation
//! over many seeds (or replays one with a trace) and prints what it found.

use std::process::ExitCode;

use clap::Parser;
use latchkey_correctness::sim::{self, Config, Flaws};
use latchkey_edge_node::protocol::CommitFlaw;
use latchkey_edge_node::route::Flaw;

/// Simulate Latchkey's activation protocol under faults, deterministically from seeds.
#[derive(Parser)]
struct Args {
    /// Replay this one seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Seeds to run (from --first).
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Edge nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Actors (one client each).
    #[arg(long, default_value_t = 2)]
    actors: usize,
    /// Simulated seconds per run (faults stop 10 s before the end).
    #[arg(long, default_value_t = 24)]
    secs: u64,
    /// Largest clock drift of a node, in parts per million.
    #[arg(long, default_value_t = 40_000)]
    drift_ppm: u64,
    /// Chance (per mille) that a message is lost.
    #[arg(long, default_value_t = 10)]
    drop_permille: u32,
    /// No faults.
    #[arg(long)]
    no_faults: bool,
    /// Print every event of the replayed seed.
    #[arg(long)]
    trace: bool,
    /// Plant a mistake in the node's real code: `retry-unknown-forwards` (router) or
    /// `unanswered-not-applied` (output gate).
    #[arg(long, value_parser = FLAWS)]
    flaw: Option<String>,
}

/// The names `--flaw` takes.
const FLAWS: [&str; 2] = ["retry-unknown-forwards", "unanswered-not-applied"];

/// The flaws `--flaw` names (clap checked the name).
fn flaws(name: Option<&str>) -> Flaws {
    let mut flaws = Flaws::default();
    match name {
        Some("retry-unknown-forwards") => flaws.route = Flaw::RetryUnknownForwards,
        Some("unanswered-not-applied") => flaws.commit = CommitFlaw::UnansweredNotApplied,
        _ => {}
    }
    flaws
}

fn main() -> ExitCode {
    let args = Args::parse();
    let secs = args.secs.max(12);
    let flaws = flaws(args.flaw.as_deref());
    let config = Config {
        nodes: args.nodes.max(1),
        actors: args.actors.max(1),
        duration: secs * 1_000_000,
        faults_until: (secs - 10) * 1_000_000,
        faults: !args.no_faults,
        drop_permille: args.drop_permille,
        max_drift_ppm: args.drift_ppm,
        trace: args.trace,
        flaws,
    };
    let seeds = match args.seed {
        Some(seed) => seed..seed + 1,
        None => args.first..args.first + args.seeds,
    };
    let started = std::time::Instant::now();
    let (mut runs, mut events, mut calls, mut failed) = (0u64, 0u64, 0u64, Vec::new());
    for seed in seeds {
        let report = sim::run(seed, &config);
        runs += 1;
        events += report.events;
        calls += report.calls;
        if args.seed.is_some() {
            for line in &report.trace {
                println!("{line}");
            }
            print!("{}", report.summary());
        }
        if !report.violations.is_empty() {
            if args.seed.is_none() {
                print!("{}", report.summary());
                println!("replay: {}", report.replay_command());
            }
            failed.push(seed);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{runs} seeds, {events} events, {calls} calls in {elapsed:.1?} ({:.1} ms per seed); {} failed{}",
        elapsed.as_secs_f64() * 1000.0 / runs.max(1) as f64,
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {failed:?}")
        }
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
