//! Latchkey's benchmark suite: `cargo bench -p latchkey-bench` measures every figure issue #7
//! asks for — warm invokes, cold activations, HTTP, durable writes, fencing overhead, token
//! checks, memory — each next to its floor (the bare primitive, measured in the same run) and its
//! target, and prints one table. `cargo bench -p latchkey-bench -- warm http` runs some groups;
//! the groups are listed by `-- --list`.

// Progress and usage go to stderr so that stdout is the table (and the children's reports).
#![allow(clippy::print_stderr)]

mod cluster;
mod cold;
mod durable;
mod fencing;
mod http;
mod invoke;
mod memory;
mod report;
mod tokens;

use std::future::Future;

use report::Table;

/// The groups, in the order they run and print.
const GROUPS: [(&str, &str); 7] = [
    ("warm", "warm invoke in process: 1, 10 and 10,000 actors"),
    (
        "cold",
        "create-then-invoke on the memory and the embedded store",
    ),
    ("http", "HTTP end to end under wrk: counter get and inc"),
    (
        "durable",
        "durable increments across 1,000 keys, group commit vs per-call commits",
    ),
    (
        "fencing",
        "warm invoke with and without the lease check (a second build)",
    ),
    ("tokens", "cold token verification and cached authorization"),
    (
        "memory",
        "resident memory per idle activation; live activations per node",
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        // A measurement that needs a process of its own (memory, the ablation build).
        match args.get(i + 1).map(String::as_str) {
            Some("warm") => fencing::child_main(),
            Some("hyper") => http::serve_floor(),
            _ => memory::child_main(&args[i + 1..]),
        }
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: do nothing then.
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench -p latchkey-bench` for figures");
        return;
    }
    if args.iter().any(|a| a == "--list") {
        for (name, what) in GROUPS {
            println!("{name:>8}  {what}");
        }
        return;
    }
    let wanted: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    if let Some(bad) = wanted.iter().find(|w| !GROUPS.iter().any(|(g, _)| g == *w)) {
        eprintln!("unknown group `{bad}`; the groups are:");
        for (name, what) in GROUPS {
            eprintln!("{name:>8}  {what}");
        }
        std::process::exit(2);
    }
    let run = |g: &str| wanted.is_empty() || wanted.contains(&g);
    let mut table = Table::default();
    if run("warm") {
        block_on(invoke::warm(&mut table));
    }
    if run("cold") {
        block_on(cold::create_then_invoke(&mut table));
    }
    if run("http") {
        block_on(http::end_to_end(&mut table));
    }
    if run("durable") {
        block_on(durable::increments(&mut table));
    }
    if run("fencing") {
        fencing::overhead(&mut table);
    }
    if run("tokens") {
        tokens::checks(&mut table);
    }
    if run("memory") {
        memory::activations(&mut table);
    }
    println!();
    table.print();
}

/// Runs `f` on a fresh 2-worker runtime (the node's production shape on this 2-core machine).
pub(crate) fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}
