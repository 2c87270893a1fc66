//! A hostile guest is contained: a trap, an infinite loop, a memory bomb and a stack overflow
//! each fail only the call that caused them, with an error naming what happened; their writes
//! are discarded; the instance is reset; and the node keeps serving other actors meanwhile.

use std::time::Duration;

use latchkey_test_kit::{Cluster, json};
use latchkey_wire::ErrorCode;
use serde_json::json;

async fn hostile_cluster() -> (Cluster, String) {
    let c = Cluster::start(1, |n| {
        n.runtime.cpu_limit = Duration::from_millis(300);
        n.runtime.memory_limit = 16 << 20;
    })
    .await;
    c.deploy("hostile", latchkey_examples::HOSTILE).await;
    let token = c.invoke_token("hostile").await;
    (c, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_names_itself_discards_writes_and_resets_the_instance() {
    let (c, t) = hostile_cluster().await;
    assert_eq!(
        json(c.call(0, &t, "hostile", "h", "count", "").await),
        json!(1)
    );
    let e = c.call(0, &t, "hostile", "h", "trap", "").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Trapped, "{}", e.message);
    assert!(
        e.message.contains("unreachable"),
        "names the trap: {}",
        e.message
    );
    assert!(
        e.message.contains("deliberate trap"),
        "names the panic: {}",
        e.message
    );
    assert!(!e.retryable);

    let e = c
        .call(0, &t, "hostile", "h", "write_then_trap", "")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Trapped, "{}", e.message);
    assert_eq!(
        json(c.call(0, &t, "hostile", "h", "count", "").await),
        json!(2),
        "the trapped call's write (count + 1000) was discarded"
    );
    assert_eq!(
        json(c.call(0, &t, "hostile", "h", "ok", "").await),
        json!("fine")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_hits_the_cpu_limit_while_others_are_served() {
    let (c, t) = hostile_cluster().await;
    let spinner = {
        let (url, t) = (c.node_url(0), t.clone());
        tokio::spawn(async move {
            latchkey_test_kit::call_url(&url, &t, "hostile", "spinner", "spin", Vec::new()).await
        })
    };
    // While one actor spins, others answer: the spinning call yields at every epoch tick.
    for i in 0..5 {
        let key = format!("other-{i}");
        assert_eq!(
            json(c.call(0, &t, "hostile", &key, "ok", "").await),
            json!("fine")
        );
    }
    let e = spinner.await.unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::LimitExceeded, "{}", e.message);
    assert!(e.message.contains("CPU time limit"), "{}", e.message);
    assert_eq!(
        json(c.call(0, &t, "hostile", "spinner", "ok", "").await),
        json!("fine"),
        "the spinner was reset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_hits_the_memory_limit() {
    let (c, t) = hostile_cluster().await;
    let e = c.call(0, &t, "hostile", "h", "bomb", "").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LimitExceeded, "{}", e.message);
    assert!(e.message.contains("memory limit"), "{}", e.message);
    assert_eq!(
        json(c.call(0, &t, "hostile", "h", "ok", "").await),
        json!("fine")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_overflow_traps() {
    let (c, t) = hostile_cluster().await;
    let e = c.call(0, &t, "hostile", "h", "deep", "").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Trapped, "{}", e.message);
    // Rust keeps its stack in linear memory, below the data (`-zstack-size`): overflowing it
    // runs below address 0, which traps as an out-of-bounds access instead of corrupting data.
    assert!(
        e.message.contains("out of bounds memory access"),
        "{}",
        e.message
    );
    assert_eq!(
        json(c.call(0, &t, "hostile", "h", "ok", "").await),
        json!("fine")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_answers_overloaded() {
    let c = Cluster::start(1, |n| {
        n.mailbox_size = 2;
        n.runtime.cpu_limit = Duration::from_secs(3);
    })
    .await;
    c.deploy("hostile", latchkey_examples::HOSTILE).await;
    let t = c.invoke_token("hostile").await;
    // One call occupies the actor for seconds; the mailbox holds two more; the rest overflow.
    let busy = {
        let (url, t) = (c.node_url(0), t.clone());
        tokio::spawn(async move {
            latchkey_test_kit::call_url(&url, &t, "hostile", "h", "spin", Vec::new()).await
        })
    };
    let mut answers = Vec::new();
    for _ in 0..6 {
        let (url, t) = (c.node_url(0), t.clone());
        answers.push(tokio::spawn(async move {
            latchkey_test_kit::call_url(&url, &t, "hostile", "h", "ok", Vec::new()).await
        }));
    }
    let mut overloaded = 0;
    for a in answers {
        if let Err(e) = a.await.unwrap() {
            assert_eq!(e.code, ErrorCode::Overloaded, "{}", e.message);
            assert!(e.retryable);
            overloaded += 1;
        }
    }
    assert!(
        overloaded >= 3,
        "at most the mailbox's two calls wait; {overloaded} of 6 were refused"
    );
    let _ = busy.await;
}
