//! The provider end to end, with real Terraform: a control plane (embedded store) and an edge
//! node run as child processes of this test binary (`--role control-plane|edge-node`), and
//! `terraform` runs the provider binary through a `dev_overrides` CLI configuration (no registry).
//!
//! It applies a configuration that declares a region, uploads the counter actor, deploys it and
//! mints a token; calls the actor through the node with that token; changes the WASM file and
//! applies the update (the new version goes live); shows drift detection and import; checks that
//! a plan after apply is empty; and destroys, after which the token is refused and the
//! deployment is gone.
//!
//! Terraform must be on `PATH`. Set `LATCHKEY_SKIP_TERRAFORM=1` to skip this test explicitly on a
//! machine without it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::RegionRequest;
use latchkey_wire::client::{Client, ClientError};

/// How long one `terraform` command may take.
const TERRAFORM_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a condition polled over the network may take to hold.
const SETTLE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--role") {
        return child(&args[i + 1..]);
    }
    if args.iter().any(|a| a == "--list") {
        println!("terraform_apply_update_destroy: test");
        return ExitCode::SUCCESS;
    }
    // `cargo test <filter>`: run only if the filter names this test.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| "terraform_apply_update_destroy".contains(f.as_str()))
    {
        return ExitCode::SUCCESS;
    }
    if std::env::var_os("LATCHKEY_SKIP_TERRAFORM").is_some() {
        println!("terraform_apply_update_destroy: skipped (LATCHKEY_SKIP_TERRAFORM is set)");
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(scenario());
    println!("terraform_apply_update_destroy: ok");
    ExitCode::SUCCESS
}

// ----- the child roles -----

/// Runs a control plane or an edge node until its stdin closes (the parent ended).
fn child(args: &[String]) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await;
    };
    let result = runtime.block_on(async {
        match args {
            [role, listen, data] if role == "control-plane" => {
                let serve = latchkey_control_plane::cli::ServeArgs {
                    listen: listen.parse()?,
                    data_dir: PathBuf::from(data),
                    store: None,
                    lease_ttl_ms: 2_000,
                    heartbeat_interval_ms: 100,
                    min_heartbeats: 1,
                };
                latchkey_control_plane::cli::serve(serve, stdin_closed).await
            }
            [role, listen, data, cp, token, region] if role == "edge-node" => {
                let mut config = latchkey_edge_node::NodeConfig::new("tf-node", cp, token);
                config.region.clone_from(region);
                config.listen = listen.parse()?;
                config.runtime.cache_dir = Some(Path::new(data).join("compiled"));
                let node = latchkey_edge_node::EdgeNode::start(config).await?;
                stdin_closed.await;
                node.shutdown().await;
                Ok(())
            }
            other => anyhow::bail!("unknown role arguments {other:?}"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("child failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A child process, killed when dropped (also when the test panics).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_role(args: &[&str], log: &Path) -> Proc {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(std::env::current_exe().expect("own executable"))
        .arg("--role")
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start a child role");
    Proc(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

// ----- helpers -----

/// Polls `check` until it returns `Some`, for at most [`SETTLE`].
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn healthy(url: &str) -> bool {
    Client::new(url, "")
        .with_timeout(Duration::from_secs(2))
        .send(
            Method::GET,
            "/healthz",
            "text/plain",
            Vec::new(),
            Duration::from_secs(2),
        )
        .await
        .is_ok()
}

/// Calls `counter/<key>/<method>` through the edge node with `token`.
async fn call(
    node: &str,
    token: &str,
    key: &str,
    method: &str,
) -> Result<serde_json::Value, ClientError> {
    let key = key.replace('/', "%2F");
    let body = Client::new(node, token)
        .send(
            Method::POST,
            &format!("/v1/actors/counter/{key}/{method}"),
            "application/json",
            Vec::new(),
            Duration::from_secs(10),
        )
        .await?;
    Ok(serde_json::from_slice(&body).expect("JSON answer"))
}

/// A Terraform working directory wired to the provider binary and the control plane.
struct Terraform {
    dir: PathBuf,
    cli_config: PathBuf,
    endpoint: String,
    token: String,
}

/// What a `terraform` command did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Terraform {
    fn run(&self, args: &[&str]) -> Run {
        let mut child = Command::new("terraform")
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("LATCHKEY_CONTROL_PLANE", &self.endpoint)
            .env("LATCHKEY_TOKEN", &self.token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start terraform (is it on PATH? set LATCHKEY_SKIP_TERRAFORM=1 to skip)");
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + TERRAFORM_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for terraform") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("terraform {args:?} took longer than {TERRAFORM_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }

    /// Runs a command that must succeed.
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "terraform {args:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    }

    /// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes.
    fn plan(&self) -> Run {
        let run = self.run(&["plan", "-no-color", "-detailed-exitcode"]);
        assert!(
            run.code == 0 || run.code == 2,
            "terraform plan failed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        run
    }

    fn apply(&self) -> Run {
        self.ok(&["apply", "-no-color", "-auto-approve"])
    }

    fn output(&self, name: &str) -> String {
        let run = self.ok(&["output", "-raw", name]);
        run.stdout.trim().to_owned()
    }
}

const CONFIG: &str = r#"
terraform {
  required_providers {
    latchkey = { source = "latchkey-dev/latchkey" }
  }
}

# endpoint and token come from LATCHKEY_CONTROL_PLANE and LATCHKEY_TOKEN.
provider "latchkey" {}

resource "latchkey_region" "test" {
  name             = "tf-test"
  placement_weight = 100
  jurisdiction     = "eu"
}

resource "latchkey_module" "counter" {
  source = "${path.module}/counter.wasm"
}

resource "latchkey_deployment" "counter" {
  actor_type = "counter"
  version    = latchkey_module.counter.content_id
  rollback_policy = {
    max_error_rate = 0.25
    window_secs    = 30
    min_calls      = 20
  }
}

resource "latchkey_token" "client" {
  actor_type = "counter"
  key_prefix = "tf/"
  methods    = ["get", "inc", "version"]
  rights     = ["invoke"]
  expires_in = 3600
}

data "latchkey_nodes" "test" {
  region = latchkey_region.test.name
}

output "token" {
  value     = latchkey_token.client.token
  sensitive = true
}

output "content_id" {
  value = latchkey_module.counter.content_id
}

data "latchkey_module" "live" {
  actor_type = latchkey_deployment.counter.actor_type
  depends_on = [latchkey_deployment.counter]
}

output "live_version" {
  value = data.latchkey_module.live.content_id
}

output "nodes" {
  value = join(",", [for n in data.latchkey_nodes.test.nodes : n.id])
}
"#;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn scenario() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();

    // A control plane and an edge node, as processes.
    let cp_port = free_port();
    let cp_url = format!("http://127.0.0.1:{cp_port}");
    let cp_data = root.join("cp");
    let _cp = spawn_role(
        &[
            "control-plane",
            &format!("127.0.0.1:{cp_port}"),
            cp_data.to_str().unwrap(),
        ],
        &root.join("cp.log"),
    );
    eventually("the control plane to answer", || async {
        healthy(&cp_url).await.then_some(())
    })
    .await;
    let admin_token = std::fs::read_to_string(cp_data.join("admin.token"))
        .expect("admin.token")
        .trim()
        .to_owned();
    let admin = Client::new(&cp_url, &admin_token);
    let node_token = admin.node_token("tf-node").await.expect("node token").token;
    let node_port = free_port();
    let node_url = format!("http://127.0.0.1:{node_port}");
    let node_data = root.join("node");
    let _node = spawn_role(
        &[
            "edge-node",
            &format!("127.0.0.1:{node_port}"),
            node_data.to_str().unwrap(),
            &cp_url,
            &node_token,
            "tf-test",
        ],
        &root.join("node.log"),
    );
    eventually("the edge node to be healthy", || async {
        healthy(&node_url).await.then_some(())
    })
    .await;

    // Terraform, offline: the provider binary through dev_overrides.
    let work = root.join("tf");
    std::fs::create_dir_all(&work).unwrap();
    let provider_dir = Path::new(env!("CARGO_BIN_EXE_terraform-provider-latchkey"))
        .parent()
        .unwrap()
        .to_owned();
    let cli_config = root.join("terraformrc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/latchkey-dev/latchkey\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            provider_dir.display()
        ),
    )
    .unwrap();
    std::fs::write(work.join("main.tf"), CONFIG).unwrap();
    let wasm = work.join("counter.wasm");
    std::fs::write(&wasm, latchkey_examples::COUNTER).unwrap();
    let tf = Terraform {
        dir: work.clone(),
        cli_config,
        endpoint: cp_url.clone(),
        token: admin_token.clone(),
    };

    // 1. Apply: region declared, module uploaded, deployed, token minted.
    tf.apply();
    let v1 = sha256_hex(latchkey_examples::COUNTER);
    assert_eq!(tf.output("content_id"), v1);
    let region = admin.region("tf-test").await.expect("region declared");
    assert_eq!(
        (region.placement_weight, region.jurisdiction.as_deref()),
        (100, Some("eu"))
    );
    admin.module(&v1).await.expect("module uploaded");
    let deployment = admin
        .deployment("counter")
        .await
        .expect("deployed")
        .deployment;
    assert_eq!(deployment.active.as_deref(), Some(v1.as_str()));
    assert_eq!(deployment.policy.min_calls, 20);
    assert_eq!(tf.output("nodes"), "tf-node", "the nodes data source");
    assert_eq!(tf.output("live_version"), v1, "the module data source");
    let token = tf.output("token");
    assert!(token.starts_with("lk1."), "a minted token: {token}");

    // 2. A call through the edge node with the minted token.
    let n = call(&node_url, &token, "tf/a", "inc")
        .await
        .expect("call with the minted token");
    assert_eq!(n, serde_json::json!(1));
    let (code, _) = api(call(&node_url, &token, "other/a", "inc").await);
    assert_eq!(
        code,
        ErrorCode::Forbidden,
        "the token is scoped to keys tf/…"
    );

    // A control-plane refusal is reported with the API's message, on the attribute it concerns.
    std::fs::write(work.join("bad.wasm"), b"\0asm not really").unwrap();
    std::fs::write(
        work.join("bad.tf"),
        "resource \"latchkey_module\" \"bad\" {\n  source = \"${path.module}/bad.wasm\"\n}\n",
    )
    .unwrap();
    let refused = tf.run(&["apply", "-no-color", "-auto-approve"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    let diagnostic = refused.stderr.replace('\n', " ");
    assert!(
        diagnostic.contains("uploading") && diagnostic.contains("HTTP 422"),
        "the API's answer: {}",
        refused.stderr
    );
    assert!(
        diagnostic.contains("with latchkey_module.bad") && diagnostic.contains("source ="),
        "points at the attribute: {}",
        refused.stderr
    );
    std::fs::remove_file(work.join("bad.tf")).unwrap();

    // 3. Nothing to do after apply.
    assert_eq!(tf.plan().code, 0, "plan after apply is empty");

    // 4. Drift: a change behind Terraform's back plans a fix, and apply makes it.
    admin
        .put_region(
            "tf-test",
            &RegionRequest {
                placement_weight: 5,
                jurisdiction: Some("eu".into()),
            },
        )
        .await
        .unwrap();
    let drift = tf.plan();
    assert_eq!(drift.code, 2, "drift plans a change:\n{}", drift.stdout);
    assert!(
        drift.stdout.contains("placement_weight"),
        "{}",
        drift.stdout
    );
    tf.apply();
    assert_eq!(admin.region("tf-test").await.unwrap().placement_weight, 100);

    // 5. Import: forget the deployment, import it by actor type, nothing to change.
    tf.ok(&["state", "rm", "latchkey_deployment.counter"]);
    tf.ok(&[
        "import",
        "-no-color",
        "latchkey_deployment.counter",
        "counter",
    ]);
    assert_eq!(
        tf.plan().code,
        0,
        "an imported deployment matches its configuration"
    );

    // 6. A changed WASM file plans an update and applies it: the new version goes live.
    std::fs::write(&wasm, latchkey_examples::COUNTER_V2).unwrap();
    let v2 = sha256_hex(latchkey_examples::COUNTER_V2);
    let update = tf.plan();
    assert_eq!(update.code, 2, "a changed file plans an update");
    assert!(
        update
            .stdout
            .contains("latchkey_module.counter will be updated in-place")
            && update
                .stdout
                .contains("latchkey_deployment.counter will be updated in-place"),
        "{}",
        update.stdout
    );
    assert!(
        update
            .stdout
            .contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "the token and the region stay as they are: {}",
        update.stdout
    );
    tf.apply();
    assert_eq!(tf.output("content_id"), v2);
    assert_eq!(
        tf.output("live_version"),
        v2,
        "the module data source follows"
    );
    let live = admin.deployment("counter").await.unwrap().deployment;
    assert_eq!(
        (live.active.as_deref(), live.previous.as_deref()),
        (Some(v2.as_str()), Some(v1.as_str()))
    );
    let version = eventually("the actor to run the new version", || async {
        let v = call(&node_url, &token, "tf/a", "version").await.ok()?;
        (v["code_version"] == serde_json::json!(v2)).then_some(v)
    })
    .await;
    assert_eq!(version["release"], serde_json::json!("v2"));
    let n = call(&node_url, &token, "tf/a", "inc").await.unwrap();
    assert_eq!(n, serde_json::json!(2), "the state survived the upgrade");
    assert_eq!(tf.plan().code, 0, "plan after the update is empty");

    // 7. Destroy: the token is refused, the deployment and the region are gone.
    tf.ok(&["destroy", "-no-color", "-auto-approve"]);
    let (code, message) = eventually("the revoked token to be refused", || async {
        match call(&node_url, &token, "tf/a", "get").await {
            Err(ClientError::Api(e)) if e.code == ErrorCode::Unauthenticated => {
                Some((e.code, e.message))
            }
            _ => None,
        }
    })
    .await;
    assert!(message.contains("revoked"), "{code:?}: {message}");
    let gone = admin.deployment("counter").await.unwrap().deployment;
    assert_eq!(
        (gone.active, gone.canary),
        (None, None),
        "the deployment was removed"
    );
    let (code, _) = api(admin.region("tf-test").await);
    assert_eq!(code, ErrorCode::NotFound, "the region was removed");
    let (code, _) = api(admin.module(&v2).await);
    assert_eq!(code, ErrorCode::NotFound, "the module was deleted");
    // A token that may call anything still reaches no counter: nothing is deployed.
    let (code, message) = api(call(&node_url, &admin_token, "tf/a", "get").await);
    assert_eq!(code, ErrorCode::NotFound, "{message}");
}

/// The API error of a failed call.
fn api<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Api(e)) => (e.code, e.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}
