//! The inner loop as a new actor author lives it, every step a real process with default
//! arguments: `latchkey new` → its first test passes (`cargo test`) → edit → `latchkey dev` in
//! the project → a call → edit the source → the next call runs the new code on the old state →
//! `latchkey tail`, started from the project too, showed the call's log line and outcome.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use http::Method;
use latchkey_wire::client::Client;
use support::Proc;
use support::lines::Lines;

/// A first build compiles the SDK and its dependencies for wasm32-wasip2.
const FIRST_BUILD: Duration = Duration::from_secs(600);

fn latchkey(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// Replaces `from` by `to` in the project's `src/lib.rs` (exactly once).
fn edit(project: &Path, from: &str, to: &str) {
    let path = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&path).unwrap();
    assert_eq!(source.matches(from).count(), 1, "`{from}` in {source}");
    std::fs::write(&path, source.replace(from, to)).unwrap();
}

async fn greet(node: &str, token: &str, name: &str) -> String {
    let body = Client::new(node, token)
        .send(
            Method::POST,
            "/v1/actors/hello/my-first/greet",
            "application/json",
            serde_json::to_vec(name).unwrap(),
            Duration::from_secs(30),
        )
        .await
        .expect("greet answers");
    serde_json::from_slice(&body).expect("a JSON string")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_then_dev_then_edits_go_live_keeping_state_and_tail_sees_the_logs() {
    let work = tempfile::tempdir().unwrap();
    let created = latchkey(work.path())
        .args(["new", "hello"])
        .output()
        .expect("run latchkey new");
    assert!(
        created.status.success(),
        "latchkey new: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let project = work.path().join("hello");
    assert_eq!(
        String::from_utf8_lossy(&created.stdout).trim(),
        project.display().to_string(),
        "it prints the project's path"
    );

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tested = Command::new(&cargo)
        .arg("test")
        .current_dir(&project)
        .output()
        .expect("run cargo test in the new project");
    assert!(
        tested.status.success(),
        "the new project's own test: {}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );

    edit(&project, "Hello, {name}!", "Hi, {name}!");
    let mut dev = Proc::spawn(
        latchkey(&project)
            .arg("dev")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut out = Lines::new("latchkey dev", dev.take_stdout().unwrap());
    let _cargo_output = Lines::new("latchkey dev (stderr)", dev.take_stderr().unwrap());
    out.wait_for("the first deploy", FIRST_BUILD, |l| {
        l.starts_with("deployed `hello`")
    });
    out.wait_for("the banner", Duration::from_secs(60), |l| {
        l.contains("Ctrl-C stops it")
    });
    let token = out
        .seen()
        .iter()
        .find_map(|l| l.trim().strip_prefix("export TOKEN="))
        .expect("the banner prints a token")
        .to_owned();
    let node = "http://127.0.0.1:8080";

    let mut tail = Proc::spawn(
        latchkey(&project)
            .args(["tail", "--actor-type", "hello"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut tailed = Lines::new("latchkey tail", tail.take_stdout().unwrap());
    let mut notes = Lines::new("latchkey tail (stderr)", tail.take_stderr().unwrap());
    notes.wait_for("the node follows the tail", Duration::from_secs(30), |l| {
        l == "following dev-node"
    });

    assert_eq!(greet(node, &token, "Ada").await, "Hi, Ada! (greeting #1)");

    edit(&project, "Hi, {name}!", "Hey, {name}!");
    out.wait_for("the redeploy", FIRST_BUILD, |l| {
        l.starts_with("deployed `hello`") && l.contains("(revision 2)")
    });
    assert_eq!(
        greet(node, &token, "Ada").await,
        "Hey, Ada! (greeting #2)",
        "the new code, on the state the old code left"
    );

    let logged = tailed.wait_for("the call's log line", Duration::from_secs(30), |l| {
        l.contains(" dev-node hello/my-first greet#")
            && l.ends_with("info  greeting Ada as my-first")
    });
    let call = logged
        .split_whitespace()
        .nth(3)
        .expect("the call column")
        .to_owned();
    tailed.wait_for("that call's outcome", Duration::from_secs(30), |l| {
        l.contains(&format!(" {call} => ok in "))
    });
    tailed.wait_for("the upgrade's outcome", Duration::from_secs(30), |l| {
        l.contains("hello/my-first (upgrade)#") && l.contains("=> ok")
    });
    out.wait_for("dev shows the log line too", Duration::from_secs(30), |l| {
        l.ends_with("info  greeting Ada as my-first")
    });
    assert!(dev.interrupt(Duration::from_secs(30)), "Ctrl-C stops dev");
    tail.kill();
}
