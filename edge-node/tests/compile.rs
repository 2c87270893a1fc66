//! Bounded compilation (issue #15, finding 10: compile bombs). Both compilers run actors through
//! the same test; a component that is small but costly to compile is refused at upload by the
//! control plane's compile check, and by a node that compiles it anyway, each naming the limit
//! it broke.

use std::sync::Arc;
use std::time::Duration;

use latchkey_control_plane::compile_check::CompileCheck;
use latchkey_edge_node::compile::{ChildProcess, CompileLimits, Compiler, InProcess};
use latchkey_test_kit::component::{componentize, leb128 as leb, stub_module};
use latchkey_test_kit::{Cluster, json};
use latchkey_wire::ErrorCode;
use latchkey_wire::client::ClientError;
use serde_json::json;

/// This package's binary, which serves `compile-module`.
const EDGE_NODE: &str = env!("CARGO_BIN_EXE_latchkey-edge-node");

// A compile bomb: a valid actor component (it passes upload validation) whose first function is
// small in bytes but costly to compile: `depth` nested loops around uses of `locals` locals, so
// the compiler's SSA construction does `depth × locals` work and holds as many values.

fn read_leb(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut n, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*at];
        *at += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

/// The bomb's function body.
fn bomb_body(depth: u32, locals: u32) -> Vec<u8> {
    let mut body = Vec::new();
    leb(&mut body, 1); // one group of locals
    leb(&mut body, u64::from(locals));
    body.push(0x7f); // i32
    for _ in 0..depth {
        body.extend_from_slice(&[0x03, 0x40]); // loop (empty block type)
    }
    for i in 0..locals {
        body.push(0x20); // local.get i
        leb(&mut body, u64::from(i));
        body.push(0x1a); // drop
    }
    body.extend(std::iter::repeat_n(0x0b, depth as usize)); // end, for each loop
    body.push(0x00); // unreachable: valid whatever the function's results
    body.push(0x0b);
    let mut sized = Vec::new();
    leb(&mut sized, body.len() as u64);
    sized.extend(body);
    sized
}

/// `module` with its first function body replaced by `body` (every other section as it was).
fn replace_first_body(module: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = module[..8].to_vec();
    let mut at = 8;
    let mut replaced = false;
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = read_leb(module, &mut at) as usize;
        let content = &module[at..at + size];
        at += size;
        let content = if id == 10 && !replaced {
            replaced = true;
            let mut c = 0;
            let count = read_leb(content, &mut c);
            let first = read_leb(content, &mut c) as usize;
            let rest = &content[c + first..];
            let mut code = Vec::new();
            leb(&mut code, count);
            code.extend_from_slice(body);
            code.extend_from_slice(rest);
            code
        } else {
            content.to_vec()
        };
        out.push(id);
        leb(&mut out, content.len() as u64);
        out.extend(content);
    }
    assert!(replaced, "the stub module has a code section");
    out
}

/// A valid actor component whose first function is the bomb.
fn compile_bomb(depth: u32, locals: u32) -> Vec<u8> {
    componentize(replace_first_body(
        &stub_module(),
        &bomb_body(depth, locals),
    ))
}

/// The bomb of these tests: about 15 KiB, millions of values to compile.
fn bomb() -> Vec<u8> {
    compile_bomb(3_000, 3_000)
}

fn child(limits: CompileLimits) -> ChildProcess {
    ChildProcess::new(EDGE_NODE, ["compile-module"], limits, None)
}

fn check(limits: CompileLimits) -> CompileCheck {
    CompileCheck {
        command: vec![EDGE_NODE.into(), "compile-module".into(), "--check".into()],
        memory_bytes: limits.memory_bytes,
        timeout: limits.timeout,
    }
}

const QUICK: CompileLimits = CompileLimits {
    memory_bytes: 2 << 30,
    timeout: Duration::from_millis(2_000),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_compilers_run_actors() {
    let compilers: [Arc<dyn Compiler>; 2] = [
        Arc::new(InProcess),
        Arc::new(child(CompileLimits::default())),
    ];
    for compiler in compilers {
        let name = format!("{compiler:?}");
        let c = Cluster::start(1, |n| n.runtime.compiler = Arc::clone(&compiler)).await;
        c.deploy("counter", latchkey_examples::COUNTER).await;
        let t = c.invoke_token("counter").await;
        assert_eq!(
            json(c.call(0, &t, "counter", "k", "inc", "").await),
            json!(1),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_bomb_is_refused_at_upload_naming_the_limit() {
    let c = Cluster::start_with(1, |cp| cp.compile_check = Some(check(QUICK)), |_| {}).await;
    let e = c.cp.admin.upload_module(bomb()).await.unwrap_err();
    let ClientError::Api(e) = e else {
        panic!("expected an API error, got {e}");
    };
    assert_eq!(e.code, ErrorCode::TooLarge, "{}", e.message);
    assert!(
        e.message.contains("compile time limit of 2000 ms"),
        "names the limit: {}",
        e.message
    );
    assert!(
        c.cp.admin.modules().await.unwrap().is_empty(),
        "nothing stored"
    );
    // A real actor passes the same check.
    c.deploy("counter", latchkey_examples::COUNTER).await;

    // The memory limit, with time to spare: the bomb's compilation needs more than 256 MiB.
    let tight = CompileLimits {
        memory_bytes: 256 << 20,
        timeout: Duration::from_secs(120),
    };
    let c = Cluster::start_with(0, |cp| cp.compile_check = Some(check(tight)), |_| {}).await;
    let ClientError::Api(e) = c.cp.admin.upload_module(bomb()).await.unwrap_err() else {
        panic!("expected an API error");
    };
    assert_eq!(e.code, ErrorCode::TooLarge, "{}", e.message);
    assert!(
        e.message
            .contains("compile memory limit of 268435456 bytes"),
        "names the limit: {}",
        e.message
    );
    c.cp.admin
        .upload_module(latchkey_examples::COUNTER.to_vec())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_to_compile_a_bomb_past_its_limit_and_keeps_serving() {
    // No upload check: the bomb is deployed, and the node's own bound is what stops it.
    let c = Cluster::start(1, |n| n.runtime.compiler = Arc::new(child(QUICK))).await;
    c.deploy("bomb", &bomb()).await;
    c.deploy("counter", latchkey_examples::COUNTER).await;
    let t = c.invoke_token("bomb").await;
    for _ in 0..2 {
        let e = c.call(0, &t, "bomb", "k", "go", "").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::LimitExceeded, "{}", e.message);
        assert!(
            e.message.contains("compile time limit of 2000 ms"),
            "names the limit: {}",
            e.message
        );
    }
    let counters = c.invoke_token("counter").await;
    assert_eq!(
        json(c.call(0, &counters, "counter", "k", "inc", "").await),
        json!(1)
    );
}
