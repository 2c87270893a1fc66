//! The CLI's output, both forms, command by command, against a real `latchkey dev` process:
//! text for people (tables, dates, content ids that feed the next command) and `--json` for
//! scripts (the admin API's answers as they are).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::lines::Lines;
use support::{Proc, free_port, healthy};

/// A dev deployment for the test, and how to point the CLI at it.
struct Dev {
    _proc: Proc,
    dir: tempfile::TempDir,
    cp: String,
    node: String,
    token_file: PathBuf,
}

impl Dev {
    fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let (cp_port, node_port) = (free_port(), free_port());
        let mut proc = Proc::spawn(
            Command::new(env!("CARGO_BIN_EXE_latchkey"))
                .args(["--json", "dev", "--data-dir"])
                .arg(dir.path().join("data"))
                .args(["--control-plane", &format!("127.0.0.1:{cp_port}")])
                .args(["--node", &format!("127.0.0.1:{node_port}")])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let mut out = Lines::new("latchkey dev --json", proc.take_stdout().unwrap());
        let ready = out.wait_for("the ready event", Duration::from_secs(120), |l| {
            l.contains(r#""event":"ready""#)
        });
        let ready: Value = serde_json::from_str(&ready).expect("the ready event is JSON");
        Dev {
            _proc: proc,
            cp: ready["control_plane"].as_str().unwrap().to_owned(),
            node: ready["node"].as_str().unwrap().to_owned(),
            token_file: PathBuf::from(ready["admin_token_file"].as_str().unwrap()),
            dir,
        }
    }

    /// Runs `latchkey <args> --control-plane … --token-file …`: (stdout, stderr); fails the test
    /// if the command fails.
    fn run(&self, args: &[&str]) -> (String, String) {
        let out = self.command(args).output().expect("run latchkey");
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        assert!(
            out.status.success(),
            "latchkey {args:?} failed: {stderr}{stdout}"
        );
        (stdout, stderr)
    }

    /// The command for `args`, pointed at this deployment (unless it works offline).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command.args(args).current_dir(self.dir.path());
        let offline = args.iter().any(|a| ["attenuate", "new"].contains(a));
        if !offline {
            command
                .args(["--control-plane", &self.cp])
                .arg("--token-file")
                .arg(&self.token_file);
        }
        command
    }

    /// `latchkey --json <args>`, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (stdout, _) = self.run(&all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    }

    /// `latchkey <args>`, its stdout.
    fn text(&self, args: &[&str]) -> String {
        self.run(args).0
    }
}

/// The header and rows of a table, as words.
fn table(text: &str) -> (String, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().expect("a header").to_owned();
    let rows = lines
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn write_component(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_text_for_people_and_json_for_scripts() {
    let dev = Dev::start();
    let counter = write_component(dev.dir.path(), "counter.wasm", latchkey_examples::COUNTER);
    let v2 = write_component(dev.dir.path(), "v2.wasm", latchkey_examples::COUNTER_V2);

    // upload: the content id alone on stdout, so that it feeds `deploy`.
    let (id, note) = dev.run(&["upload", &counter]);
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 64, "a bare content id: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(note.contains("uploaded"), "{note}");
    let module = dev.json(&["upload", &v2]);
    let v2_id = module["content_id"].as_str().unwrap().to_owned();
    assert_eq!(module["size"], latchkey_examples::COUNTER_V2.len());

    // deploy, by a prefix as tables show it.
    let deployed = dev.text(&["deploy", "tally", &id[..12]]);
    assert!(
        deployed.contains(&format!("active      {}", &id[..12])),
        "{deployed}"
    );
    let canary = dev.json(&["deploy", "tally", &v2_id, "--canary", "10"]);
    assert_eq!(canary["canary"]["basis_points"], 1000);
    assert_eq!(canary["active"], id.as_str());
    let promoted = dev.text(&["rollout", "promote", "tally"]);
    assert!(
        promoted.contains(&format!("active      {}", &v2_id[..12])),
        "{promoted}"
    );
    let ambiguous = dev.command(&["deploy", "tally", ""]).output().unwrap();
    assert!(!ambiguous.status.success(), "an empty version is refused");
    let too_short = dev
        .command(&["deploy", "tally", &id[..3]])
        .output()
        .unwrap();
    assert!(
        !too_short.status.success(),
        "a 3-character prefix is not resolved (it could match by accident)"
    );

    // policy: the fraction in words.
    let policy_args = [
        "policy",
        "tally",
        "--max-error-rate",
        "0.07",
        "--window",
        "30",
        "--min-calls",
        "10",
    ];
    let policy = dev.text(&policy_args);
    assert!(
        policy.contains("when more than 7% of at least 10 calls within 30 s fail"),
        "{policy}"
    );
    assert_eq!(dev.json(&policy_args)["policy"]["max_error_rate"], 0.07);

    // modules and deployment: short ids and dates, not store versions.
    let (header, rows) = table(&dev.text(&["modules"]));
    assert!(header.starts_with("CONTENT ID"), "{header}");
    let row = rows
        .iter()
        .find(|r| r[0] == id[..12])
        .expect("the upload is listed");
    assert!(
        row[3].ends_with('Z') && row[3].starts_with("20"),
        "a date: {row:?}"
    );
    let modules = dev.json(&["modules"]);
    assert!(
        modules
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["content_id"] == id.as_str())
    );
    let detail = dev.text(&["deployment", "tally"]);
    assert!(
        detail.contains("WHEN") && detail.contains("promote"),
        "{detail}"
    );
    assert_eq!(
        dev.json(&["deployment", "tally"])["history"][0]["action"],
        "policy"
    );

    // call, then activations.
    let token = dev.text(&["mint", "--actor-type", "tally", "--rights", "invoke"]);
    let token = token.trim();
    assert!(
        token.starts_with("lk1.") && !token.contains('\n'),
        "{token}"
    );
    let answer = dev.text(&[
        "call", "tally", "a/b", "inc", "5", "--node", &dev.node, "--token", token,
    ]);
    assert_eq!(answer.trim(), "5");
    let (header, rows) = table(&dev.text(&["activations", "--actor-type", "tally"]));
    assert!(header.starts_with("TYPE"), "{header}");
    assert_eq!(rows[0][..3], ["tally", "a/b", "dev-node"]);
    assert_eq!(dev.json(&["activations"]).as_array().unwrap().len(), 1);

    // nodes: the heartbeat's age, not its version.
    let (header, rows) = table(&dev.text(&["nodes"]));
    assert!(header.contains("LAST HEARTBEAT"), "{header}");
    assert_eq!(rows[0][0], "dev-node");
    assert!(rows[0].iter().any(|w| w == "ago"), "{rows:?}");
    let nodes = dev.json(&["nodes"]);
    assert!(nodes[0]["last_heartbeat"].is_u64());

    // mint --json, attenuate, revoke.
    let minted = dev.json(&["mint", "--actor-type", "tally", "--expires-in", "60"]);
    let minted_token = minted["token"].as_str().unwrap();
    assert!(minted["expires_at"].is_u64());
    let (narrowed, _) = dev.run(&["attenuate", minted_token, "--methods", "get"]);
    assert!(narrowed.trim().starts_with("lk1.") && narrowed.trim() != minted_token);
    let narrowed_json = dev.json(&["attenuate", minted_token, "--methods", "get"]);
    assert!(narrowed_json["token"].as_str().unwrap().starts_with("lk1."));
    let revoked = dev.text(&["revoke", minted_token]);
    assert_eq!(
        revoked.trim(),
        format!("revoked token {}", minted["token_id"].as_str().unwrap())
    );
    let again = dev.json(&["mint", "--actor-type", "tally"]);
    let revoked = dev.json(&[
        "revoke",
        again["token"].as_str().unwrap(),
        "--reason",
        "test",
    ]);
    assert_eq!(revoked["token_id"], again["token_id"]);

    // regions.
    let put = dev.text(&[
        "region",
        "eu-west-1",
        "--weight",
        "50",
        "--jurisdiction",
        "eu",
    ]);
    assert_eq!(
        put.trim(),
        "region eu-west-1: placement weight 50, jurisdiction eu"
    );
    let (header, rows) = table(&dev.text(&["region"]));
    assert!(header.starts_with("NAME"), "{header}");
    assert_eq!(rows[0][..3], ["eu-west-1", "50", "eu"]);
    assert_eq!(dev.json(&["region"])[0]["placement_weight"], 50);
    assert_eq!(
        dev.text(&["region", "eu-west-1", "--delete"]).trim(),
        "region eu-west-1 removed"
    );
    assert_eq!(dev.json(&["region"]), serde_json::json!([]));

    // undeploy.
    let gone = dev.text(&["undeploy", "tally"]);
    assert!(gone.contains("- (not deployed)"), "{gone}");
    dev.text(&["deploy", "tally", &id]);
    assert_eq!(dev.json(&["undeploy", "tally"])["active"], Value::Null);

    // node-enrolment: the bare capability, which `edge-node --enrolment-token-file` takes as it is.
    let (node_token, note) = dev.run(&["node-enrolment", "n2"]);
    assert!(note.contains("--enrolment-token-file"), "{note}");
    let token_file = dev.dir.path().join("n2.token");
    std::fs::write(&token_file, &node_token).unwrap();
    let port = free_port();
    let _n2 = Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args([
                "edge-node",
                "--node-id",
                "n2",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--control-plane", &dev.cp, "--enrolment-token-file"])
            .arg(&token_file)
            .arg("--data-dir")
            .arg(dev.dir.path().join("n2"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    healthy(&format!("http://127.0.0.1:{port}")).await;
    assert!(
        dev.json(&["nodes"])
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == "n2"),
        "the node registered with the token as printed"
    );
    assert!(
        dev.json(&["node-enrolment", "n3"])["token"]
            .as_str()
            .unwrap()
            .starts_with("lk1.")
    );

    // new, both forms.
    let made = dev.json(&["new", "made-here", "--actor-type", "made"]);
    assert_eq!(made["actor_type"], "made");
    assert!(
        Path::new(made["path"].as_str().unwrap())
            .join("latchkey.toml")
            .is_file()
    );
}

#[test]
fn errors_name_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["modules"])
        .current_dir(dir.path())
        .env_remove("LATCHKEY_TOKEN")
        .env_remove("LATCHKEY_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no token given")
            && stderr.contains("latchkey-dev/control-plane/admin.token"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["new", "Bad Name"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lowercase letters"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Finding 10 of issue #15: what `latchkey dev` keeps on disk is its owner's alone: every data
/// directory 0700 (its own, the control plane's, the node's and its compiled cache), the store
/// file 0600, as the key files and the admin token already were.
#[test]
fn dev_keeps_its_files_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dev = Dev::start();
    let data = dev.dir.path().join("data");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for dir in [
        data.clone(),
        data.join("control-plane"),
        data.join("node"),
        data.join("node").join("compiled"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{} is {:o}", dir.display(), mode(&dir));
    }
    for file in [
        data.join("control-plane").join("store.redb"),
        dev.token_file.clone(),
    ] {
        assert_eq!(
            mode(&file),
            0o600,
            "{} is {:o}",
            file.display(),
            mode(&file)
        );
    }
}
