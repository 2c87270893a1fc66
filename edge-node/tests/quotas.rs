//! Quotas over real HTTP (issue #15, finding 8): an actor's stored bytes are capped, and a
//! refused commit writes nothing, reaches the caller as `quota_exceeded` naming the limit and the
//! actor's usage, and leaves the actor serving; deleting frees the quota.

use latchkey_test_kit::{Cluster, json};
use latchkey_wire::ErrorCode;
use serde_json::json;

/// The quota of these tests: room for a few 4 KiB chat messages.
const QUOTA: u64 = 20_000;

fn post(text_len: usize) -> String {
    json!({"author": "mallory", "text": "x".repeat(text_len)}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_cannot_store_past_its_quota_and_deleting_frees_it() {
    let c = Cluster::start_with(1, |cp| cp.limits.max_actor_storage_bytes = QUOTA, |_| {}).await;
    c.deploy("chat", latchkey_examples::CHAT_ROOM).await;
    let t = c.invoke_token("chat").await;

    // The attack: post 4 KiB messages until the room would hold more than the quota. Each stored
    // message is a little over 4 KiB, so the fifth cannot fit.
    let mut accepted = 0;
    let refusal = loop {
        assert!(accepted < 10, "the quota never refused a write");
        match c.call(0, &t, "chat", "flood", "post", &post(4000)).await {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(accepted, 4, "{}", refusal.message);
    assert_eq!(
        refusal.code,
        ErrorCode::QuotaExceeded,
        "{}",
        refusal.message
    );
    assert!(!refusal.retryable);
    let m = &refusal.message;
    assert!(
        m.contains(&format!("the limit is {QUOTA} bytes per actor")),
        "names the limit: {m}"
    );
    assert!(
        m.contains("actor chat/flood stores") && m.contains("would make it"),
        "names the usage: {m}"
    );

    // Nothing of the refused call was written, and the actor still serves.
    let history = json(c.call(0, &t, "chat", "flood", "history", "").await);
    assert_eq!(history.as_array().unwrap().len(), 4);
    // Another actor has its own quota.
    c.call(0, &t, "chat", "other", "post", &post(4000))
        .await
        .unwrap();

    // Deleting frees the quota: after `clear`, the same post fits again.
    c.call(0, &t, "chat", "flood", "clear", "").await.unwrap();
    assert_eq!(
        json(c.call(0, &t, "chat", "flood", "post", &post(4000)).await),
        json!({"seq": 1})
    );
}

/// Finding 8b: a token creating new actors as fast as it can is refused past its rate, with an
/// error naming the token id and the limit; actors that exist are reached as before, and other
/// tokens have their own budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_actors_per_token_are_rate_limited_but_existing_ones_are_not() {
    let c = Cluster::start_with(
        1,
        |cp| {
            cp.limits.new_actors_per_second = 1;
            cp.limits.new_actor_burst = 3;
        },
        |_| {},
    )
    .await;
    c.deploy("counter", latchkey_examples::COUNTER).await;
    let request = latchkey_wire::admin::MintRequest {
        actor_type: Some("counter".into()),
        rights: Some(vec!["invoke".into()]),
        ..Default::default()
    };
    let minted = c.cp.admin.mint(&request).await.unwrap();
    let t = minted.token;
    // Compile the module first (through another token), so the calls below are quick.
    let other = c.invoke_token("counter").await;
    c.call(0, &other, "counter", "warm", "inc", "")
        .await
        .unwrap();
    // The attack: one new key after another. The burst of 3 passes; the bucket gains one token
    // a second, far slower than new actors are asked for, so a refusal comes within a few more.
    let mut created = 0;
    let e = loop {
        assert!(created < 20, "20 new actors and no refusal");
        match c
            .call(0, &t, "counter", &format!("k{created}"), "inc", "")
            .await
        {
            Ok(_) => created += 1,
            Err(e) => break e,
        }
    };
    assert!(created >= 3, "the burst passes: {created}");
    assert_eq!(e.code, ErrorCode::RateLimited, "{}", e.message);
    assert!(e.retryable);
    assert!(
        e.message.contains(&format!("token {}", minted.token_id)),
        "names the token id: {}",
        e.message
    );
    assert!(
        e.message.contains("1 per second (burst 3)"),
        "names the limit: {}",
        e.message
    );
    // The refused actor was not created: an unlimited token finds it new (its count starts at 1).
    // Existing actors are not limited, however often they are called.
    for _ in 0..5 {
        c.call(0, &t, "counter", "k0", "get", "").await.unwrap();
    }
    let refused_key = format!("k{created}");
    assert_eq!(
        json(c.call(0, &other, "counter", &refused_key, "inc", "").await),
        json!(1)
    );
}
