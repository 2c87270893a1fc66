//! The example actors end to end: upload, deploy and call over real HTTP through real edge nodes
//! and a real control plane; durable state across eviction; one instance per actor across nodes;
//! and every kind of token that must be refused.

use latchkey_test_kit::{Cluster, call_url, eventually, json};
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{MintRequest, RevokeRequest};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_counts_and_keeps_its_value() {
    let (c, token) = Cluster::with_counter(1).await;
    for expected in 1..=3 {
        assert_eq!(
            json(c.call(0, &token, "counter", "k", "inc", "").await),
            json!(expected)
        );
    }
    assert_eq!(
        json(c.call(0, &token, "counter", "k", "inc", "5").await),
        json!(8)
    );
    assert_eq!(
        json(c.call(0, &token, "counter", "k", "get", "").await),
        json!(8)
    );
    assert_eq!(
        json(c.call(0, &token, "counter", "other", "get", "").await),
        json!(0),
        "keys are separate actors"
    );

    // Bad input is the guest's to judge, and answered as such.
    let e = c
        .call(0, &token, "counter", "k", "inc", "\"five\"")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
    let e = c
        .call(0, &token, "counter", "k", "fly", "")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    assert!(e.message.contains("fly"), "{}", e.message);
    assert_eq!(
        json(c.call(0, &token, "counter", "k", "get", "").await),
        json!(8),
        "failed calls changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_eviction() {
    // One activation at a time: activating a second actor evicts the first (it is idle).
    let c = Cluster::start(1, |n| n.max_activations = 1).await;
    c.deploy("counter", latchkey_examples::COUNTER).await;
    let token = c.invoke_token("counter").await;
    for _ in 0..3 {
        c.call(0, &token, "counter", "a", "inc", "").await.unwrap();
    }
    c.call(0, &token, "counter", "b", "inc", "").await.unwrap();
    assert_eq!(c.nodes[0].local_activations(), 1, "a was evicted for b");
    let one_instance = || async { (c.nodes[0].live_instances() == 1).then_some(()) };
    eventually("a's instance to be dropped", one_instance).await;
    assert_eq!(
        json(c.call(0, &token, "counter", "a", "get", "").await),
        json!(3),
        "a's new instance read its state"
    );
    eventually("b's instance to be dropped", one_instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_per_actor_through_any_node() {
    let (c, token) = Cluster::with_counter(2).await;
    // Alternate nodes: each call reaches the single instance, wherever it lives.
    c.count_alternating(&token, "shared", 10).await;
    let held: usize = c.nodes.iter().map(|n| n.local_activations()).sum();
    assert_eq!(held, 1, "exactly one node holds the actor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_for_another_key_method_or_actor_are_denied() {
    let c = Cluster::start(1, |_| {}).await;
    c.deploy("counter", latchkey_examples::COUNTER).await;
    c.deploy("chat-room", latchkey_examples::CHAT_ROOM).await;
    let only_k1 = c
        .token(MintRequest {
            actor_type: Some("counter".into()),
            key: Some("k1".into()),
            rights: Some(vec!["invoke".into()]),
            ..MintRequest::default()
        })
        .await;
    let only_get = c
        .token(MintRequest {
            actor_type: Some("counter".into()),
            methods: Some(vec!["get".into()]),
            rights: Some(vec!["invoke".into()]),
            ..MintRequest::default()
        })
        .await;
    let chat = c.invoke_token("chat-room").await;
    let deployer = c
        .token(MintRequest {
            rights: Some(vec!["deploy".into()]),
            ..MintRequest::default()
        })
        .await;
    assert!(
        c.call(0, &only_k1, "counter", "k1", "inc", "")
            .await
            .is_ok()
    );
    let denied = |e: latchkey_wire::ApiError, needle: &str| {
        assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
        assert!(
            e.message.contains(needle),
            "{} should name {needle}",
            e.message
        );
    };
    denied(
        c.call(0, &only_k1, "counter", "k2", "inc", "")
            .await
            .unwrap_err(),
        "key `k1`",
    );
    denied(
        c.call(0, &only_get, "counter", "k1", "inc", "")
            .await
            .unwrap_err(),
        "method `inc`",
    );
    denied(
        c.call(0, &chat, "counter", "k1", "get", "")
            .await
            .unwrap_err(),
        "actor type `chat-room`",
    );
    denied(
        c.call(0, &deployer, "counter", "k1", "get", "")
            .await
            .unwrap_err(),
        "`invoke` right",
    );
    assert_eq!(
        json(c.call(0, &only_get, "counter", "k1", "get", "").await),
        json!(1),
        "denied calls ran nothing"
    );

    let e = c
        .call(0, "lk1.AAAA", "counter", "k1", "get", "")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthenticated, "{}", e.message);
    let e = call_url(&c.node_url(0), "", "counter", "k1", "get", Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthenticated, "{}", e.message);

    // A revocation reaches the node through the change feed.
    c.cp.admin
        .revoke(&RevokeRequest {
            token: Some(only_k1.clone()),
            ..RevokeRequest::default()
        })
        .await
        .unwrap();
    let e = eventually("the revocation reaching the node", || async {
        c.call(0, &only_k1, "counter", "k1", "get", "").await.err()
    })
    .await;
    assert_eq!(e.code, ErrorCode::Unauthenticated);
    assert!(e.message.contains("revoked"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_payloads_are_refused() {
    let c = Cluster::start(1, |n| n.max_payload = 1000).await;
    c.deploy("counter", latchkey_examples::COUNTER).await;
    let token = c.invoke_token("counter").await;
    let e = call_url(
        &c.node_url(0),
        &token,
        "counter",
        "k",
        "inc",
        vec![b'1'; 2000],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::TooLarge, "{}", e.message);
    assert!(e.message.contains("1000"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_room_keeps_a_bounded_history_newest_first() {
    let c = Cluster::start(1, |_| {}).await;
    c.deploy("chat-room", latchkey_examples::CHAT_ROOM).await;
    let token = c.invoke_token("chat-room").await;
    for i in 1..=105 {
        let posted = json(
            c.call(
                0,
                &token,
                "chat-room",
                "lobby",
                "post",
                &json!({"author": "ann", "text": format!("hi {i}")}).to_string(),
            )
            .await,
        );
        assert_eq!(posted["seq"], json!(i));
    }
    let history = json(c.call(0, &token, "chat-room", "lobby", "history", "").await);
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 100, "bounded to 100");
    assert_eq!(texts[0], "hi 105", "newest first");
    assert_eq!(texts[99], "hi 6", "the oldest were deleted");
    let three = json(
        c.call(0, &token, "chat-room", "lobby", "history", "3")
            .await,
    );
    assert_eq!(three.as_array().unwrap().len(), 3);
    c.call(0, &token, "chat-room", "lobby", "clear", "")
        .await
        .unwrap();
    assert_eq!(
        json(c.call(0, &token, "chat-room", "lobby", "history", "").await),
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limiter_refills_over_time() {
    let c = Cluster::start(1, |_| {}).await;
    c.deploy("rate-limiter", latchkey_examples::RATE_LIMITER)
        .await;
    let token = c.invoke_token("rate-limiter").await;
    c.call(
        0,
        &token,
        "rate-limiter",
        "client-1",
        "configure",
        &json!({"capacity": 3.0, "refill_per_sec": 0.001}).to_string(),
    )
    .await
    .unwrap();
    let allowed: Vec<bool> = acquire_in_turn(&c, &token, 4).await;
    assert_eq!(
        allowed,
        [true, true, true, false],
        "three tokens, then empty"
    );
    // Another key has its own bucket.
    let other = json(
        c.call(0, &token, "rate-limiter", "client-2", "try_acquire", "")
            .await,
    );
    assert_eq!(other["allowed"], json!(true));
}

async fn acquire_in_turn(c: &Cluster, token: &str, n: usize) -> Vec<bool> {
    let mut out = Vec::new();
    for _ in 0..n {
        let answer = json(
            c.call(0, token, "rate-limiter", "client-1", "try_acquire", "")
                .await,
        );
        out.push(answer["allowed"].as_bool().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegator_passes_on_an_attenuated_token_and_cannot_widen_it() {
    let c = Cluster::start(2, |_| {}).await;
    c.deploy("counter", latchkey_examples::COUNTER).await;
    c.deploy("delegator", latchkey_examples::DELEGATOR).await;
    let delegator = c.invoke_token("delegator").await;
    let counters = c.invoke_token("counter").await;
    // The delegator narrows the counter token to `inc` on one key and calls with it.
    let answer = json(
        c.call(
            0,
            &delegator,
            "delegator",
            "d",
            "increment",
            &json!({"token": counters, "key": "c1", "by": 2}).to_string(),
        )
        .await,
    );
    assert_eq!(answer, json!(2));
    assert_eq!(
        json(c.call(1, &counters, "counter", "c1", "get", "").await),
        json!(2)
    );

    // Handed a token that only reads, the delegator cannot increment: the denial surfaces.
    let read_only = c
        .token(MintRequest {
            actor_type: Some("counter".into()),
            methods: Some(vec!["get".into()]),
            rights: Some(vec!["invoke".into()]),
            ..MintRequest::default()
        })
        .await;
    let e = c
        .call(
            0,
            &delegator,
            "delegator",
            "d",
            "increment",
            &json!({"token": read_only, "key": "c1"}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ActorFailed, "{}", e.message);
    assert!(
        e.message.contains("method"),
        "the reason reaches the caller: {}",
        e.message
    );
    let e = c
        .call(
            0,
            &delegator,
            "delegator",
            "d",
            "call",
            &json!({"token": read_only, "actor_type": "counter", "key": "c1", "method": "inc"})
                .to_string(),
        )
        .await
        .unwrap_err();
    assert!(
        e.message.contains("does not allow method `inc`"),
        "{}",
        e.message
    );
    assert_eq!(
        json(c.call(1, &counters, "counter", "c1", "get", "").await),
        json!(2),
        "nothing was incremented"
    );

    // The delegator's own capability is never handed out as it is: asking without methods (the
    // attack: take its whole day-long self-token) is refused, naming what is missing.
    for unnarrowed in [
        "",
        "null",
        r#"{"methods": []}"#,
        r#"{"expires_in_secs": 60}"#,
    ] {
        let e = c
            .call(0, &delegator, "delegator", "d", "self_token", unnarrowed)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "{unnarrowed}: {}", e.message);
        assert!(e.message.contains("methods"), "{unnarrowed}: {}", e.message);
    }
    // Narrowed by itself, and short-lived (a longer lifetime is capped at 300 s), it lets a
    // caller reach it and no further.
    let own = json(
        c.call(
            0,
            &delegator,
            "delegator",
            "d",
            "self_token",
            &json!({"methods": ["self_token"], "expires_in_secs": 86_400}).to_string(),
        )
        .await,
    );
    let own = own.as_str().unwrap().to_owned();
    let claimed = latchkey_caps::Token::from_text(&own)
        .unwrap()
        .claimed_capability()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = claimed.expires_at.expect("the token expires");
    assert!(
        expires_at <= now + 300,
        "capped at 300 s: expires {} s from now",
        expires_at.saturating_sub(now)
    );
    assert_eq!(
        claimed.methods,
        Some(["self_token".to_owned()].into_iter().collect())
    );
    let again = json!({"methods": ["self_token"]}).to_string();
    assert!(
        c.call(1, &own, "delegator", "d", "self_token", &again)
            .await
            .is_ok()
    );
    let e = c
        .call(1, &own, "delegator", "other", "self_token", &again)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden);
    let e = c
        .call(1, &own, "delegator", "d", "increment", "{}")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_heartbeat_stops_serving() {
    let (mut c, token) = Cluster::with_counter(1).await;
    assert_eq!(
        json(c.call(0, &token, "counter", "k", "inc", "").await),
        json!(1)
    );
    // The control plane goes away: no heartbeat succeeds, and the lease runs out on the node's
    // own clock; from then on it refuses to serve, even the activation it holds in memory.
    c.cp.stop();
    let e = eventually("the node to stop serving", || async {
        c.call(0, &token, "counter", "k", "get", "").await.err()
    })
    .await;
    assert_eq!(e.code, ErrorCode::Unavailable, "{}", e.message);
    assert!(e.retryable);
    // The refusal is checked on every call; the heartbeat loop drops the activations on its
    // next pass.
    eventually("the activations to be dropped", || async {
        (c.nodes[0].local_activations() == 0).then_some(())
    })
    .await;
    let health = call_url(&c.node_url(0), &token, "counter", "k", "get", Vec::new())
        .await
        .unwrap_err();
    assert_eq!(health.code, ErrorCode::Unavailable);
}
