//! Group `fencing`: what the lease check costs a warm invoke. The same warm-invoke measurement
//! runs in a child process of this build and of a second build of the suite with the check
//! compiled out (feature `ablate-lease-check`, built into `target/ablation`), alternately, three
//! times each; the medians are compared.

use std::path::PathBuf;
use std::process::Command;

use crate::cluster::Cluster;
use crate::invoke::{MEASURE, run};
use crate::report::{Row, Table, count};

/// Rounds of each build.
const ROUNDS: usize = 3;

pub(crate) fn overhead(table: &mut Table) {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("fencing: building the ablation (target/ablation; minutes the first time)");
    let build = Command::new(&cargo)
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", workspace.join("target/ablation"))
        .args([
            "bench",
            "-p",
            "latchkey-bench",
            "--features",
            "ablate-lease-check",
            "--no-run",
            "--message-format=short",
        ])
        .output();
    let ablated = match build {
        Ok(out) if out.status.success() => {
            // cargo names the built executable on stderr: "Executable benches/... (PATH)".
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| l.contains("Executable"))
                .find_map(|l| {
                    let start = l.rfind('(')? + 1;
                    let end = l.rfind(')')?;
                    Some(workspace.join(&l[start..end]))
                })
        }
        _ => None,
    };
    let Some(ablated) = ablated else {
        table.push(Row::new(
            "fencing overhead",
            "the ablation build failed (cargo bench -p latchkey-bench --features ablate-lease-check)",
        ));
        return;
    };
    let this = std::env::current_exe().expect("own executable");
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        with.extend(child_rate(&this));
        without.extend(child_rate(&ablated));
    }
    if with.is_empty() || without.is_empty() {
        table.push(Row::new("fencing overhead", "a child measurement failed"));
        return;
    }
    let (w, wo) = (median(&mut with), median(&mut without));
    let overhead = (wo - w) / wo * 100.0;
    table.push(
        Row::new(
            "fencing overhead: warm `get`, 10 actors, 16 callers, with vs without the lease check",
            format!(
                "{overhead:+.1}% ({}/s vs {}/s, medians of {ROUNDS})",
                count(w),
                count(wo)
            ),
        )
        .target("≤ 5%", overhead <= 5.0),
    );
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs `exe --child warm` and reads its rate.
fn child_rate(exe: &std::path::Path) -> Option<f64> {
    let out = Command::new(exe).args(["--child", "warm"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|r| r.trim().parse().ok())
}

/// The child: one cluster, one warm-invoke measurement; prints `RESULT rate`.
pub(crate) fn child_main() {
    let rate = crate::block_on(async {
        let cluster = Cluster::start(Default::default()).await;
        let r = run(cluster.router(), &cluster.token, 10, 16, MEASURE).await;
        cluster.stop().await;
        r.rate
    });
    println!("RESULT {rate}");
}
