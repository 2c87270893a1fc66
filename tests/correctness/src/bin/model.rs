//! `cargo run --release -p latchkey-correctness --bin model -- --help`: checks the activation
//! model at chosen bounds and prints what it found (state counts, counterexamples).

use clap::Parser;
use latchkey_correctness::model::{ActivationModel, Variant};
use stateright::{Checker, Model};

/// Model-check Latchkey's activation protocol.
#[derive(Parser)]
struct Args {
    /// Edge nodes.
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// Actors (one client each).
    #[arg(long, default_value_t = 1)]
    actors: usize,
    /// Seconds the clock may advance.
    #[arg(long, default_value_t = 4)]
    time: u8,
    /// Calls per client.
    #[arg(long, default_value_t = 3)]
    calls: u8,
    /// Node crashes.
    #[arg(long, default_value_t = 1)]
    crashes: u8,
    /// Check the reference design's bug (no epoch bump after a lapse).
    #[arg(long)]
    no_epoch_bump: bool,
    /// Stop after this many states.
    #[arg(long)]
    max_states: Option<usize>,
}

fn main() {
    let args = Args::parse();
    let model = ActivationModel {
        nodes: args.nodes,
        actors: args.actors,
        max_time: args.time,
        max_calls: args.calls,
        max_crashes: args.crashes,
        variant: if args.no_epoch_bump {
            Variant::NoEpochBump
        } else {
            Variant::Fixed
        },
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut builder = model.checker().threads(threads);
    if let Some(max) = args.max_states {
        builder = builder.target_state_count(max);
    }
    let started = std::time::Instant::now();
    let checker = builder.spawn_bfs().join();
    println!(
        "{} states ({} unique), depth {}, {:.1?}, complete: {}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed(),
        checker.is_done()
    );
    for (name, path) in checker.discoveries() {
        println!("discovery `{name}`:\n{path}");
    }
}
