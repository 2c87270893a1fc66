//! The README followed as a new user follows it: its run command exactly as written — default
//! arguments, default ports, from a fresh working directory — then the curl commands its banner
//! prints, run as printed by `sh`, with their answers checked. Then the same for `latchkey dev
//! --tls`, whose banner's curl commands use https and `--cacert`.
//!
//! The command reads `cargo run --release -p latchkey -- <args>`; cargo's part (building the
//! binary) is this test's own build, so the test runs that binary with `<args>` verbatim.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::Proc;
use support::lines::Lines;

/// The README's run command (the `cargo run …` line of its "Set up" section), as words.
fn run_command() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let setup = readme
        .split("\n## ")
        .find(|section| section.starts_with("Set up"))
        .expect("README.md has a `## Set up` section");
    let line = setup
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo run"))
        .expect("the Set up section has a `cargo run` command");
    let command = line.split('#').next().unwrap_or(line);
    command.split_whitespace().map(str::to_owned).collect()
}

/// Runs `script` with `sh -c`, returning its stdout; fails the test if it fails.
fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("run sh (and curl: the README's commands use it)");
    assert!(
        out.status.success(),
        "`{script}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn the_readmes_run_command_works_as_written_and_its_banner_commands_answer() {
    let words = run_command();
    let prefix = ["cargo", "run", "--release", "-p", "latchkey", "--"];
    assert!(
        words.starts_with(&prefix.map(String::from)),
        "the README's run command changed shape ({words:?}); update this test with it"
    );
    let args = &words[prefix.len()..];
    assert!(
        which_curl(),
        "curl is not on PATH: the README's commands use it (.ci/run installs it)"
    );

    let fresh = tempfile::tempdir().expect("a fresh working directory");
    let mut dev = Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .current_dir(fresh.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut out = Lines::new("latchkey dev (stdout)", dev.take_stdout().unwrap());
    let _err = Lines::new("latchkey dev (stderr)", dev.take_stderr().unwrap());
    out.wait_for("the banner's last line", Duration::from_secs(120), |l| {
        l.contains("Ctrl-C stops it")
    });

    let export = out
        .seen()
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("export TOKEN="))
        .expect("the banner prints `export TOKEN=…`")
        .to_owned();
    let curls: Vec<String> = out
        .seen()
        .iter()
        .map(|l| l.trim().to_owned())
        .filter(|l| l.starts_with("curl "))
        .collect();
    assert_eq!(curls.len(), 3, "the banner's curl commands: {curls:?}");
    let answers: Vec<String> = curls
        .iter()
        .map(|curl| sh(&format!("{export}\n{curl}")))
        .collect();
    assert_eq!(
        answers,
        ["1", "6", "6"],
        "inc, inc by 5, get (commands: {curls:?})"
    );
    assert!(
        fresh
            .path()
            .join("latchkey-dev/control-plane/admin.token")
            .is_file(),
        "the default data directory is in the working directory"
    );
    assert!(
        dev.interrupt(Duration::from_secs(30)),
        "Ctrl-C (SIGINT) stops it cleanly"
    );
}

#[test]
fn latchkey_dev_tls_serves_https_and_its_banner_commands_answer() {
    assert!(which_curl(), "curl is not on PATH (.ci/run installs it)");
    let fresh = tempfile::tempdir().expect("a fresh working directory");
    let mut dev = Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args([
                "dev",
                "--tls",
                "--control-plane",
                "127.0.0.1:0",
                "--node",
                "127.0.0.1:0",
            ])
            .current_dir(fresh.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut out = Lines::new("latchkey dev --tls (stdout)", dev.take_stdout().unwrap());
    let _err = Lines::new("latchkey dev --tls (stderr)", dev.take_stderr().unwrap());
    out.wait_for("the banner's last line", Duration::from_secs(120), |l| {
        l.contains("Ctrl-C stops it")
    });
    let seen: Vec<String> = out.seen().iter().map(|l| l.trim().to_owned()).collect();
    let export = seen
        .iter()
        .find(|l| l.starts_with("export TOKEN="))
        .expect("the banner prints `export TOKEN=…`")
        .clone();
    let curls: Vec<&String> = seen.iter().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(curls.len(), 3, "the banner's curl commands: {curls:?}");
    let tls = fresh.path().join("latchkey-dev/tls");
    for curl in &curls {
        assert!(curl.starts_with("curl --cacert "), "{curl}");
        assert!(curl.contains(" https://127.0.0.1:"), "{curl}");
        assert!(
            curl.contains(tls.join("ca.pem").to_str().unwrap()),
            "{curl}"
        );
    }
    let answers: Vec<String> = curls
        .iter()
        .map(|curl| sh(&format!("{export}\n{curl}")))
        .collect();
    assert_eq!(answers, ["1", "6", "6"], "inc, inc by 5, get ({curls:?})");

    // Without the CA, curl refuses the certificate; plain HTTP to the TLS port fails too.
    let node = curls[0]
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap()
        .split("/v1/")
        .next()
        .unwrap()
        .to_owned();
    let untrusted = Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("{node}/healthz")])
        .output()
        .unwrap();
    assert!(
        !untrusted.status.success(),
        "curl trusted the dev CA unasked"
    );
    let plain = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("{}/healthz", node.replace("https://", "http://")),
        ])
        .output()
        .unwrap();
    assert!(
        !plain.status.success(),
        "plain HTTP answered on the TLS port"
    );
    assert_ne!(
        plain.status.code(),
        Some(28),
        "plain HTTP hung until curl's timeout"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tls.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
    }
    assert!(
        dev.interrupt(Duration::from_secs(30)),
        "Ctrl-C (SIGINT) stops it cleanly"
    );
}

fn which_curl() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
