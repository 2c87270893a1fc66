//! The provider end to end, with real Terraform: control planes (embedded store) and edge nodes
//! run as child processes of this test binary (`--role control-plane|edge-node`), and
//! `terraform` runs the provider binary through a `dev_overrides` CLI configuration (no registry).
//! Each test has its own control plane, edge node and temporary directory.
//!
//! - `terraform_apply_update_destroy` applies a configuration that declares a region, uploads
//!   the counter actor, deploys it and mints a token; calls the actor through the node with that
//!   token; changes the WASM file and applies the update (the new version goes live); shows drift
//!   detection and import; checks that a plan after apply is empty; and destroys, after which the
//!   token is refused and the deployment and the module are gone.
//! - `readme_example_verbatim` applies the ```hcl block of `terraform/README.md` ("Managing
//!   actors with the provider") as it is written (`max_error_rate = 0.05` included), calls the
//!   actor with `terraform output -raw app_token`, then deploys the same module bytes to another
//!   actor type with the admin API and destroys: the shared module is released, not deleted, and
//!   the other deployment keeps working.
//! - `latchkey_actors_module_defaults` applies `terraform/modules/latchkey-actors` (the Latchkey
//!   part of the multi-region environment) called as the environment calls it, with its
//!   defaults (`max_error_rate = 0.05` included), then destroys it.
//!
//! Terraform (>= 1.5) must be on `PATH`. Without it the tests print
//! `skipped: terraform not on PATH` and pass, unless `LATCHKEY_REQUIRE_TERRAFORM=1` (CI sets it),
//! which makes that a failure. `LATCHKEY_SKIP_TERRAFORM=1` skips them explicitly (refused too
//! when `LATCHKEY_REQUIRE_TERRAFORM=1`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use latchkey_test_kit::cluster::{call_client, healthz};
use latchkey_test_kit::eventually_within;
use latchkey_test_kit::process::{Proc, free_port};
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{RegionRequest, RollbackPolicy};
use latchkey_wire::client::{Client, ClientError};

/// How long one `terraform` command may take.
const TERRAFORM_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a condition polled over the network may take to hold.
const SETTLE: Duration = Duration::from_secs(30);

/// Set to 1: a skip is a failure (CI).
const REQUIRE_ENV: &str = "LATCHKEY_REQUIRE_TERRAFORM";
/// Set to 1: skip these tests.
const SKIP_ENV: &str = "LATCHKEY_SKIP_TERRAFORM";

/// The tests, by name.
const TESTS: [&str; 3] = [
    "terraform_apply_update_destroy",
    "readme_example_verbatim",
    "latchkey_actors_module_defaults",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--role") {
        return child(&args[i + 1..]);
    }
    if args.iter().any(|a| a == "--list") {
        for name in TESTS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // `cargo test <filter>`: run the tests whose name contains a filter.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&str> = TESTS
        .into_iter()
        .filter(|name| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        return ExitCode::SUCCESS;
    }
    if let Err(skip) = terraform_ready() {
        return skip.report(&selected);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    for name in selected {
        let started = Instant::now();
        runtime.block_on(async {
            match name {
                "terraform_apply_update_destroy" => apply_update_destroy().await,
                "readme_example_verbatim" => readme_example_verbatim().await,
                "latchkey_actors_module_defaults" => latchkey_actors_module_defaults().await,
                other => unreachable!("no test {other}"),
            }
        });
        println!("{name}: ok ({:.1} s)", started.elapsed().as_secs_f64());
    }
    ExitCode::SUCCESS
}

// ----- whether Terraform can run -----

/// Whether an environment variable is set to something other than empty or `0`.
fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Why the tests do not run here.
enum NotRun {
    /// A skip (the line to print, how to run them instead, the error when skips are refused):
    /// passes, loudly, unless [`REQUIRE_ENV`] is set.
    Skip(&'static str, &'static str, String),
    /// Terraform is there but unusable: always a failure.
    Broken(String),
}

impl NotRun {
    #[allow(
        clippy::print_stderr,
        reason = "a skip must be seen in CI logs and terminals alike: stdout and stderr"
    )]
    fn report(self, tests: &[&str]) -> ExitCode {
        let tests = tests.join(", ");
        match self {
            NotRun::Skip(reason, hint, _) if !flag(REQUIRE_ENV) => {
                let line = format!(
                    "skipped: {reason}\n  (did not run: {tests}; {hint} to run them, or set {REQUIRE_ENV}=1 to make this a failure, as CI does)"
                );
                println!("{line}");
                eprintln!("{line}");
                ExitCode::SUCCESS
            }
            NotRun::Skip(_, _, refusal) => {
                eprintln!("error: {refusal}; {REQUIRE_ENV}=1 requires {tests} to run");
                ExitCode::FAILURE
            }
            NotRun::Broken(why) => {
                eprintln!("error: {why} (needed by {tests})");
                ExitCode::FAILURE
            }
        }
    }
}

/// Checks that `terraform` (>= 1.5) runs, or says why the tests do not.
fn terraform_ready() -> Result<(), NotRun> {
    if flag(SKIP_ENV) {
        return Err(NotRun::Skip(
            "LATCHKEY_SKIP_TERRAFORM is set",
            "unset it",
            format!("{SKIP_ENV} is set"),
        ));
    }
    let output = match Command::new("terraform")
        .args(["version", "-json"])
        .env("CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NotRun::Skip(
                "terraform not on PATH",
                "install Terraform >= 1.5",
                "terraform is not on PATH (install Terraform >= 1.5: https://developer.hashicorp.com/terraform/install)".into(),
            ));
        }
        Err(e) => return Err(NotRun::Broken(format!("cannot run `terraform`: {e}"))),
    };
    let version = serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .and_then(|v| v["terraform_version"].as_str().map(str::to_owned));
    let Some(version) = version.filter(|_| output.status.success()) else {
        return Err(NotRun::Broken(format!(
            "`terraform version -json` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (1, 5) {
        return Err(NotRun::Broken(format!(
            "terraform on PATH is {version}; these tests need >= 1.5"
        )));
    }
    Ok(())
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
                    node_certificate_ttl_secs: 3600,
                    listener: Default::default(),
                    quotas: Default::default(),
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

fn spawn_role(args: &[&str], log: &Path) -> Proc {
    let log = std::fs::File::create(log).expect("log file");
    Proc::spawn(
        Command::new(std::env::current_exe().expect("own executable"))
            .arg("--role")
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log),
    )
}

// ----- helpers -----

/// Polls `check` until it returns `Some`, for at most [`SETTLE`].
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, check: impl FnMut() -> F) -> T {
    eventually_within(what, SETTLE.as_secs(), check).await
}

async fn healthy(url: &str) -> bool {
    healthz(&Client::new(url, ""), Duration::from_secs(2))
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
    call_actor(node, token, "counter", key, method).await
}

/// Calls `<actor_type>/<key>/<method>` through the edge node with `token`.
async fn call_actor(
    node: &str,
    token: &str,
    actor_type: &str,
    key: &str,
    method: &str,
) -> Result<serde_json::Value, ClientError> {
    let client = Client::new(node, token).with_timeout(Duration::from_secs(10));
    let body = call_client(&client, actor_type, key, method, Vec::new()).await?;
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
            // tf-provider appends a backtrace to every diagnostic when RUST_BACKTRACE is set:
            // let diagnostics read as users see them.
            .env_remove("RUST_BACKTRACE")
            .env("LATCHKEY_CONTROL_PLANE", &self.endpoint)
            .env("LATCHKEY_TOKEN", &self.token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start terraform");
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

/// Every numeric setting out of range (added to [`CONFIG`] for one plan).
const BAD_NUMBERS: &str = r#"
resource "latchkey_deployment" "bad" {
  actor_type      = "counter-bad"
  version         = latchkey_module.counter.content_id
  canary_version  = "0000000000000000000000000000000000000000000000000000000000000000"
  canary_percent  = 0.001
  rollback_policy = { max_error_rate = 1.05, window_secs = 1e20, min_calls = -1 }
}

resource "latchkey_region" "bad" {
  name             = "tf-bad"
  placement_weight = 20000
}

resource "latchkey_token" "bad" {
  expires_in = 1.5
}
"#;

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

# Without rollback_policy: the control plane's default policy (max_error_rate 0.05, which
# comes back from the provider and Terraform stores).
resource "latchkey_deployment" "defaults" {
  actor_type = "counter-defaults"
  version    = latchkey_module.counter.content_id
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

/// A control plane and an edge node (region `tf-test`), as processes, in a temporary directory.
struct Cluster {
    root: tempfile::TempDir,
    cp_url: String,
    node_url: String,
    admin_token: String,
    admin: Client,
    _cp: Proc,
    _node: Proc,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let cp_port = free_port();
        let cp_url = format!("http://127.0.0.1:{cp_port}");
        let cp_data = root.join("cp");
        let cp = spawn_role(
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
        let node_token = admin
            .enrolment_token("tf-node", None)
            .await
            .expect("enrolment capability")
            .token;
        let node_port = free_port();
        let node_url = format!("http://127.0.0.1:{node_port}");
        let node_data = root.join("node");
        let node = spawn_role(
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
        Cluster {
            root: dir,
            cp_url,
            node_url,
            admin_token,
            admin,
            _cp: cp,
            _node: node,
        }
    }

    /// A fresh Terraform working directory `name` for this cluster, offline: the provider
    /// binary through dev_overrides.
    fn terraform(&self, name: &str) -> Terraform {
        let root = self.root.path();
        let work = root.join(name);
        std::fs::create_dir_all(&work).unwrap();
        let provider_dir = Path::new(env!("CARGO_BIN_EXE_terraform-provider-latchkey"))
            .parent()
            .unwrap()
            .to_owned();
        let cli_config = root.join(format!("{name}.terraformrc"));
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/latchkey-dev/latchkey\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir.display()
            ),
        )
        .unwrap();
        Terraform {
            dir: work,
            cli_config,
            endpoint: self.cp_url.clone(),
            token: self.admin_token.clone(),
        }
    }
}

async fn apply_update_destroy() {
    let cluster = Cluster::start().await;
    let (admin, admin_token, node_url) = (&cluster.admin, &cluster.admin_token, &cluster.node_url);
    let node_url = node_url.as_str();
    let tf = cluster.terraform("tf");
    let work = tf.dir.clone();
    std::fs::write(work.join("main.tf"), CONFIG).unwrap();
    let wasm = work.join("counter.wasm");
    std::fs::write(&wasm, latchkey_examples::COUNTER).unwrap();

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
    let defaults = admin.deployment("counter-defaults").await.unwrap();
    assert_eq!(defaults.deployment.policy, RollbackPolicy::default());
    assert_eq!(tf.output("nodes"), "tf-node", "the nodes data source");
    assert_eq!(tf.output("live_version"), v1, "the module data source");
    let token = tf.output("token");
    assert!(token.starts_with("lk1."), "a minted token: {token}");

    // 2. A call through the edge node with the minted token.
    let n = call(node_url, &token, "tf/a", "inc")
        .await
        .expect("call with the minted token");
    assert_eq!(n, serde_json::json!(1));
    let (code, _) = api(call(node_url, &token, "other/a", "inc").await);
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

    // Numbers out of range are errors naming their attribute (found before anything is done).
    std::fs::write(work.join("bad.tf"), BAD_NUMBERS).unwrap();
    let refused = tf.run(&["plan", "-no-color"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    let said = refused.stderr.replace('\n', " ");
    for error in [
        "rollback_policy.window_secs must be a whole number of at least 1, got 100000000000000000000",
        "rollback_policy.min_calls must be a whole number of at least 1, got -1",
        "rollback_policy.max_error_rate must be a number from 0 to 1, got 1.05",
        "canary_percent must be 0 to 100 with at most two decimals, got 0.001",
        "placement_weight must be a whole number from 0 to 10000, got 20000",
        "expires_in must be a whole number of at least 1, got 1.5",
    ] {
        assert!(said.contains(error), "{error}:\n{}", refused.stderr);
    }
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
            .contains("Plan: 0 to add, 3 to change, 0 to destroy."),
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
        let v = call(node_url, &token, "tf/a", "version").await.ok()?;
        (v["code_version"] == serde_json::json!(v2)).then_some(v)
    })
    .await;
    assert_eq!(version["release"], serde_json::json!("v2"));
    let n = call(node_url, &token, "tf/a", "inc").await.unwrap();
    assert_eq!(n, serde_json::json!(2), "the state survived the upgrade");
    assert_eq!(tf.plan().code, 0, "plan after the update is empty");

    // 7. Destroy: the token is refused, the deployment and the region are gone.
    tf.ok(&["destroy", "-no-color", "-auto-approve"]);
    let (code, message) = eventually("the revoked token to be refused", || async {
        match call(node_url, &token, "tf/a", "get").await {
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
    admin
        .module(&v1)
        .await
        .expect("the version before the update stays: destroy deletes the one it manages");
    // A token that may call anything still reaches no counter: nothing is deployed.
    let (code, message) = api(call(node_url, admin_token, "tf/a", "get").await);
    assert_eq!(code, ErrorCode::NotFound, "{message}");
}

/// The ```hcl block of `terraform/README.md`'s "Managing actors with the provider", as written.
fn readme_example() -> &'static str {
    const README: &str = include_str!("../../README.md");
    let section = README
        .split_once("## Managing actors with the provider")
        .expect("terraform/README.md has the section \"Managing actors with the provider\"")
        .1;
    let block = section
        .split_once("```hcl\n")
        .expect("the section has a ```hcl block")
        .1;
    block.split_once("\n```").expect("the ```hcl block ends").0
}

async fn readme_example_verbatim() {
    let cluster = Cluster::start().await;
    let (admin, node_url) = (&cluster.admin, cluster.node_url.as_str());
    let tf = cluster.terraform("readme");
    let hcl = readme_example();
    assert!(
        hcl.contains("max_error_rate = 0.05"),
        "the README's example sets max_error_rate = 0.05 (a number Terraform sends as text):\n{hcl}"
    );
    std::fs::write(tf.dir.join("main.tf"), hcl).unwrap();
    // Its `source` is relative to the directory Terraform runs in.
    let source = "target/wasm32-wasip2/wasm-actors/latchkey_example_counter.wasm";
    assert!(hcl.contains(&format!("source = \"{source}\"")), "{hcl}");
    let wasm = tf.dir.join(source);
    std::fs::create_dir_all(wasm.parent().unwrap()).unwrap();
    std::fs::write(&wasm, latchkey_examples::COUNTER).unwrap();
    let v1 = sha256_hex(latchkey_examples::COUNTER);

    tf.apply();
    let deployment = admin.deployment("counter").await.unwrap().deployment;
    assert_eq!(deployment.active.as_deref(), Some(v1.as_str()));
    assert_eq!(
        (
            deployment.policy.max_error_rate,
            deployment.policy.window_secs,
            deployment.policy.min_calls
        ),
        (0.05, 60, 100),
        "the README's rollback_policy"
    );
    let region = admin.region("eu-west-1").await.expect("region declared");
    assert_eq!(
        (region.placement_weight, region.jurisdiction.as_deref()),
        (100, Some("eu"))
    );
    let plan = tf.plan();
    assert_eq!(plan.code, 0, "plan after apply is empty:\n{}", plan.stdout);

    // The README's call, with `terraform output -raw app_token`.
    let app_token = tf.output("app_token");
    let n = call(node_url, &app_token, "user/1", "inc")
        .await
        .expect("call with app_token");
    assert_eq!(n, serde_json::json!(1));

    // Another deployment, outside the configuration, runs the same bytes: the same module.
    admin
        .deploy("counter-shared", &v1, Some("outside terraform"))
        .await
        .expect("deploy the same module to another actor type");
    let shared = |method| {
        call_actor(
            node_url,
            &cluster.admin_token,
            "counter-shared",
            "k",
            method,
        )
    };
    assert_eq!(shared("inc").await.unwrap(), serde_json::json!(1));

    // Destroy succeeds and releases the module: the other deployment keeps it.
    let destroyed = tf.ok(&["destroy", "-no-color", "-auto-approve"]);
    let said = format!("{}{}", destroyed.stdout, destroyed.stderr).replace('\n', " ");
    assert!(
        said.contains(&format!("module {v1} released, not deleted"))
            && said.contains("`counter-shared` (active version)"),
        "a warning names the deployment still using the module:\n{}\n{}",
        destroyed.stdout,
        destroyed.stderr
    );
    admin
        .module(&v1)
        .await
        .expect("the module stays in the control plane");
    assert_eq!(
        shared("inc")
            .await
            .expect("the other deployment still works"),
        serde_json::json!(2)
    );
    let gone = admin.deployment("counter").await.unwrap().deployment;
    assert_eq!(
        (gone.active, gone.canary),
        (None, None),
        "counter was removed"
    );
    let (code, _) = api(admin.region("eu-west-1").await);
    assert_eq!(code, ErrorCode::NotFound, "the region was removed");
    eventually("the app token to be refused", || async {
        match call(node_url, &app_token, "user/1", "get").await {
            Err(ClientError::Api(e)) if e.code == ErrorCode::Unauthenticated => Some(()),
            _ => None,
        }
    })
    .await;
    let plan = tf.plan();
    assert_eq!(
        plan.code, 2,
        "after destroy, a plan creates everything again"
    );
}

/// The `latchkey-actors` module's files.
fn actors_module_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules/latchkey-actors");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "tf"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// How `environments/multi-region/actors.tf` calls the module with its variables at their
/// defaults (null: the module's default), the AWS modules' region names replaced by local ones.
const ACTORS_CALL: &str = r#"
terraform {
  required_providers {
    latchkey = { source = "latchkey-dev/latchkey" }
  }
}

provider "latchkey" {}

module "latchkey_actors" {
  source = "./latchkey-actors"

  regions = {
    primary   = "tf-primary"
    secondary = "tf-secondary"
    tertiary  = "tf-tertiary"
  }

  actors_dir              = "actors"
  placement_weights       = null
  jurisdictions           = null
  rollback_policy         = null
  client_token_key_prefix = null
  client_token_expires_in = null
}

output "client_token" {
  value     = module.latchkey_actors.client_token
  sensitive = true
}

output "actor_versions" {
  value = module.latchkey_actors.actor_versions
}

output "nodes" {
  value = module.latchkey_actors.nodes
}
"#;

async fn latchkey_actors_module_defaults() {
    let cluster = Cluster::start().await;
    let (admin, node_url) = (&cluster.admin, cluster.node_url.as_str());
    let tf = cluster.terraform("actors");
    // The module's files as they are, called the way the environment calls it.
    let module_dir = tf.dir.join("latchkey-actors");
    std::fs::create_dir_all(&module_dir).unwrap();
    for (name, text) in actors_module_files() {
        std::fs::write(module_dir.join(name), text).unwrap();
    }
    std::fs::write(tf.dir.join("main.tf"), ACTORS_CALL).unwrap();
    let actors = [
        (
            "counter",
            "latchkey_example_counter.wasm",
            latchkey_examples::COUNTER,
        ),
        (
            "rate-limiter",
            "latchkey_example_rate_limiter.wasm",
            latchkey_examples::RATE_LIMITER,
        ),
        (
            "chat-room",
            "latchkey_example_chat_room.wasm",
            latchkey_examples::CHAT_ROOM,
        ),
        (
            "delegator",
            "latchkey_example_delegator.wasm",
            latchkey_examples::DELEGATOR,
        ),
    ];
    std::fs::create_dir_all(tf.dir.join("actors")).unwrap();
    for (_, file, bytes) in actors {
        std::fs::write(tf.dir.join("actors").join(file), bytes).unwrap();
    }

    // Installs the module (`init` would look the provider up in the registry).
    tf.ok(&["get", "-no-color"]);
    tf.apply();
    let versions: serde_json::Value =
        serde_json::from_str(&tf.ok(&["output", "-json", "actor_versions"]).stdout).unwrap();
    for (actor_type, _, bytes) in actors {
        let d = admin.deployment(actor_type).await.unwrap().deployment;
        let id = sha256_hex(bytes);
        assert_eq!(
            d.active.as_deref(),
            Some(id.as_str()),
            "{actor_type} deployed"
        );
        assert_eq!(
            versions[actor_type],
            serde_json::json!(id),
            "actor_versions"
        );
        assert_eq!(
            (
                d.policy.max_error_rate,
                d.policy.window_secs,
                d.policy.min_calls
            ),
            (0.05, 60, 100),
            "{actor_type}: the default rollback_policy"
        );
    }
    for name in ["tf-primary", "tf-secondary", "tf-tertiary"] {
        let region = admin.region(name).await.expect("region declared");
        assert_eq!((region.placement_weight, region.jurisdiction), (100, None));
    }
    let nodes: serde_json::Value =
        serde_json::from_str(&tf.ok(&["output", "-json", "nodes"]).stdout).unwrap();
    assert_eq!(nodes[0]["id"], serde_json::json!("tf-node"), "{nodes}");
    let plan = tf.plan();
    assert_eq!(plan.code, 0, "plan after apply is empty:\n{}", plan.stdout);

    // The client token: get and inc on counters under user/, nothing else.
    let token = tf.output("client_token");
    assert_eq!(
        call(node_url, &token, "user/42", "inc").await.unwrap(),
        serde_json::json!(1)
    );
    let (code, _) = api(call(node_url, &token, "other/42", "inc").await);
    assert_eq!(code, ErrorCode::Forbidden, "limited to keys under user/");

    tf.ok(&["destroy", "-no-color", "-auto-approve"]);
    for (actor_type, _, bytes) in actors {
        let d = admin.deployment(actor_type).await.unwrap().deployment;
        assert_eq!(d.active, None, "{actor_type} removed");
        let (code, _) = api(admin.module(&sha256_hex(bytes)).await);
        assert_eq!(code, ErrorCode::NotFound, "{actor_type}'s module deleted");
    }
    for name in ["tf-primary", "tf-secondary", "tf-tertiary"] {
        let (code, _) = api(admin.region(name).await);
        assert_eq!(code, ErrorCode::NotFound, "region {name} removed");
    }
}

/// The API error of a failed call.
fn api<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Api(e)) => (e.code, e.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}
