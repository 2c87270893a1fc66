//! Fleet security at the control plane, over real HTTP: each test reproduces an attack from
//! issue #15 and shows the refusal, with a reason that names it.
//!
//! Nodes prove who they are by signing every request with their own key (see
//! `latchkey_caps::node`); bearer tokens open no node route, and the mint API cannot make
//! anything that looks like a node, an actor or an enrolment.

mod common;

use std::sync::Arc;
use std::time::Duration;

use latchkey_caps::node::{CONTROL_PLANE_AUDIENCE, NodeCertificate, NodeKey};
use latchkey_caps::{IssuerKey, PublicKey};
use latchkey_test_kit::raw::request as raw;
use latchkey_test_kit::signing::signed_headers;
use latchkey_test_kit::{Launch, ServedControlPlane};
use latchkey_wire::admin::{MintRequest, RevokeRequest};
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::identity::{self, NodeCredentials, Outgoing};
use latchkey_wire::node::{EnsureActivationRequest, Fence, HeartbeatRequest, RegisterRequest};
use latchkey_wire::{ErrorCode, Generation, encode};

async fn start() -> ServedControlPlane {
    ServedControlPlane::start(Launch::default(), |config| {
        config.lease = common::SETTINGS;
        config.node_certificate_ttl = Duration::from_secs(600);
    })
    .await
}

fn code(e: ClientError) -> (ErrorCode, String) {
    match e {
        ClientError::Api(api) => (api.code, api.message),
        other => panic!("expected an API error, got {other}"),
    }
}

fn register() -> RegisterRequest {
    RegisterRequest {
        region: "eu".into(),
        address: "127.0.0.1:9".into(),
    }
}

async fn mint(admin: &Client, request: MintRequest) -> Client {
    admin.with_token(&admin.mint(&request).await.unwrap().token)
}

/// The headers of `credentials` signing `method path` with `body` for the control plane.
fn signed(
    credentials: &NodeCredentials,
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    signed_headers(credentials, None, method, path, body)
}

/// Finding 1: a token without an audience (here `invoke,read-state`, no type, key or audience)
/// was a node credential. Now no bearer token opens a node route: not that one, not the admin
/// token. A rogue cannot register, take a placement, commit, mint a self-token or sync.
#[tokio::test]
async fn no_bearer_token_is_a_node_credential() {
    let s = start().await;
    let user = mint(
        &s.admin,
        MintRequest {
            rights: Some(vec!["invoke".into(), "read-state".into()]),
            ..Default::default()
        },
    )
    .await;
    for rogue in [&user, &s.admin] {
        let (c, m) = code(rogue.register("rogue", &register()).await.unwrap_err());
        assert_eq!(c, ErrorCode::Unauthenticated);
        assert!(
            m.contains("x-latchkey-node-certificate") && m.contains("only an enrolled node"),
            "{m}"
        );
        let ensure = EnsureActivationRequest {
            actor_type: "counter".into(),
            key: "victim".into(),
            region_hint: None,
            token_id: None,
        };
        let (c, _) = code(rogue.ensure_activation("rogue", &ensure).await.unwrap_err());
        assert_eq!(c, ErrorCode::Unauthenticated, "no placement");
        let fence = Fence {
            actor_type: "counter".into(),
            key: "victim".into(),
            node_epoch: 1,
            generation: Generation([0; 10]),
        };
        let (c, _) = code(rogue.self_token("rogue", &fence).await.unwrap_err());
        assert_eq!(c, ErrorCode::Unauthenticated, "no self-token");
        let (c, _) = code(rogue.sync("rogue").await.unwrap_err());
        assert_eq!(c, ErrorCode::Unauthenticated, "no sync");
    }
}

/// A node can only act as itself: its certificate names it.
#[tokio::test]
async fn a_node_cannot_act_for_another_node() {
    let s = start().await;
    let node_a = Client::for_node(&s.url, s.enrolled_credentials("node-a").await);
    assert_eq!(
        node_a.register("node-a", &register()).await.unwrap().epoch,
        1
    );
    let (c, m) = code(node_a.register("node-b", &register()).await.unwrap_err());
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(
        m.contains("certificate is for `node-a`") && m.contains("`node-b`"),
        "{m}"
    );
    // Nor is a node an operator.
    assert_eq!(
        code(node_a.with_token("").nodes().await.unwrap_err()).0,
        ErrorCode::Unauthenticated
    );
}

/// A certificate the node made itself (its own issuer key) is worth nothing.
#[tokio::test]
async fn a_self_made_certificate_is_refused() {
    let s = start().await;
    let rogue_issuer = IssuerKey::generate();
    let key = NodeKey::generate();
    let now = latchkey_control_plane::authority::unix_now();
    let cert =
        NodeCertificate::issue(&rogue_issuer, "rogue", &key.public(), now, now + 600).unwrap();
    let credentials = Arc::new(NodeCredentials::new("rogue", key));
    credentials.set_certificate(cert);
    let rogue = Client::for_node(&s.url, credentials);
    let (c, m) = code(rogue.register("rogue", &register()).await.unwrap_err());
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.contains("not trusted"), "{m}");
}

/// Enrolment needs a single-purpose capability (right `node` only, audience `enrol:{id}`,
/// expiring) that only the enrolment route makes, and it works once.
#[tokio::test]
async fn enrolment_capabilities_are_single_purpose_and_single_use() {
    let s = start().await;
    let key = Arc::new(NodeCredentials::new("n1", NodeKey::generate()));
    // The admin token is not an enrolment capability.
    let (c, m) = code(s.admin.enrol(&key, &read_admin(&s)).await.unwrap_err());
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("enrol:n1"), "{m}");
    // One for another node does not fit.
    let for_n2 = s.admin.enrolment_token("n2", None).await.unwrap().token;
    let (c, m) = code(s.admin.enrol(&key, &for_n2).await.unwrap_err());
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("enrol:n2"), "{m}");
    // The right one works, and again for the same key (a retry)...
    let for_n1 = s.admin.enrolment_token("n1", None).await.unwrap().token;
    s.admin.enrol(&key, &for_n1).await.unwrap();
    s.admin.enrol(&key, &for_n1).await.unwrap();
    // ...but never for another key.
    let thief = NodeCredentials::new("n1", NodeKey::generate());
    let (c, m) = code(s.admin.enrol(&thief, &for_n1).await.unwrap_err());
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("already used"), "{m}");
    // The mint API cannot make one: no `node` right, no reserved audience.
    let (c, m) = code(
        s.admin
            .mint(&MintRequest {
                rights: Some(vec!["node".into()]),
                audience: Some("enrol:n3".into()),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("enrol:"), "{m}");
    let (c, m) = code(
        s.admin
            .mint(&MintRequest {
                rights: Some(vec!["node".into()]),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("never grants"), "{m}");
    for audience in ["node:n1", "actor:counter/k"] {
        let (c, m) = code(
            s.admin
                .mint(&MintRequest {
                    audience: Some(audience.into()),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        );
        assert_eq!(c, ErrorCode::Forbidden, "{audience}");
        assert!(m.contains("cannot be minted"), "{m}");
    }
}

fn read_admin(s: &ServedControlPlane) -> String {
    std::fs::read_to_string(s.data_dir().join("admin.token")).unwrap()
}

/// A captured node request is good once, for its recipient, as sent: a replay, a change of
/// path or body, or an old request is refused, each naming why.
#[tokio::test]
async fn a_captured_node_request_cannot_be_replayed_or_altered() {
    let s = start().await;
    let n1 = s.enrolled_credentials("n1").await;
    let body = encode(&register());
    let path = "/v1/nodes/n1/register";
    let headers = signed(&n1, "POST", path, &body);
    let (status, _) = raw(&s.url, "POST", path, &headers, body.clone()).await;
    assert_eq!(status, 200);
    let (status, m) = raw(&s.url, "POST", path, &headers, body.clone()).await;
    assert_eq!(status, 401);
    assert!(m.contains("replay refused"), "{m}");

    let headers = signed(&n1, "POST", path, &body);
    let (status, m) = raw(
        &s.url,
        "POST",
        "/v1/nodes/n1/heartbeat",
        &headers,
        encode(&HeartbeatRequest { active_actors: 0 }),
    )
    .await;
    assert_eq!(status, 401);
    assert!(m.contains("does not verify"), "{m}");

    let mut altered = body.clone();
    altered.push(0);
    let (status, m) = raw(&s.url, "POST", path, &headers, altered).await;
    assert_eq!(status, 401);
    assert!(m.contains("does not match the digest"), "{m}");

    // Signed a minute ago.
    let bound = identity::bound_values(|_| None);
    let old = n1.sign(
        &Outgoing {
            audience: CONTROL_PLANE_AUDIENCE,
            method: "POST",
            path,
            body: &body,
            bound: &bound,
        },
        (latchkey_control_plane::authority::unix_now() - 60) * 1000,
    );
    let (status, m) = raw(&s.url, "POST", path, &old, body.clone()).await;
    assert_eq!(status, 401);
    assert!(m.contains("stale"), "{m}");

    // Signed for another recipient (a node), then sent to the control plane.
    let elsewhere = n1.sign(
        &Outgoing {
            audience: "node:n2",
            method: "POST",
            path,
            body: &body,
            bound: &bound,
        },
        latchkey_control_plane::authority::unix_millis(),
    );
    let (status, m) = raw(&s.url, "POST", path, &elsewhere, body).await;
    assert_eq!(status, 401);
    assert!(m.contains("another recipient"), "{m}");
}

/// Finding 3: node credentials never expired and old ones were never revoked. Now a node
/// enrolled again (a new key, as `latchkey dev` does at every start) or removed loses its old
/// key everywhere, and certificates expire and renew.
#[tokio::test]
async fn re_enrolment_and_removal_revoke_the_old_key_and_certificates_expire() {
    let s = start().await;
    let first = s.enrolled_credentials("n1").await;
    let old = Client::for_node(&s.url, Arc::clone(&first));
    old.register("n1", &register()).await.unwrap();
    let cert = first.certificate().unwrap();
    let now = latchkey_control_plane::authority::unix_now();
    assert!((now + 590..=now + 600).contains(&cert.expires_at()), "ttl");

    let renewed = old.renew_certificate("n1").await.unwrap();
    let renewed = NodeCertificate::from_text(&renewed.certificate).unwrap();
    assert_eq!(renewed.node_key(), cert.node_key());
    assert!(renewed.expires_at() >= cert.expires_at());

    let second = Client::for_node(&s.url, s.enrolled_credentials("n1").await);
    second.sync("n1").await.unwrap();
    let (c, m) = code(
        old.heartbeat(
            "n1",
            &HeartbeatRequest { active_actors: 0 },
            Duration::from_secs(5),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.contains("revoked"), "{m}");
    let (c, _) = code(old.renew_certificate("n1").await.unwrap_err());
    assert_eq!(
        c,
        ErrorCode::Unauthenticated,
        "no renewal for a revoked key"
    );

    s.admin.remove_node("n1").await.unwrap();
    let (c, m) = code(second.sync("n1").await.unwrap_err());
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.contains("revoked"), "{m}");

    // An expired certificate, even one the control plane's own key signed, is refused.
    let issuer = std::fs::read_dir(s.data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("issuer-")
        })
        .map(|p| IssuerKey::from_secret_text(&std::fs::read_to_string(p).unwrap()).unwrap())
        .unwrap();
    let third = s.enrolled_credentials("n3").await;
    let key: PublicKey = third.public_key();
    third
        .set_certificate(NodeCertificate::issue(&issuer, "n3", &key, now - 100, now - 10).unwrap());
    let (c, m) = code(
        Client::for_node(&s.url, third)
            .register("n3", &register())
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.contains("expired"), "{m}");
}

/// Finding 4: revoking a minter did not revoke what it minted. A minted token now extends its
/// minter's chain.
#[tokio::test]
async fn a_minted_token_dies_with_its_minter() {
    let s = start().await;
    let minted = s
        .admin
        .mint(&MintRequest {
            rights: Some(vec!["mint".into(), "deploy".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    let minter = s.admin.with_token(&minted.token);
    let child = mint(
        &minter,
        MintRequest {
            rights: Some(vec!["deploy".into()]),
            ..Default::default()
        },
    )
    .await;
    child.deployments().await.unwrap();
    s.admin
        .revoke(&RevokeRequest {
            token_id: Some(minted.token_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (c, m) = code(child.deployments().await.unwrap_err());
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.contains("revoked") && m.contains(&minted.token_id), "{m}");
}

/// Finding 5: a revoker scoped to one actor type could revoke an unscoped token (an unset field
/// was read as "inside"). Whole capabilities are compared now.
#[tokio::test]
async fn a_scoped_revoker_cannot_revoke_an_unscoped_token() {
    let s = start().await;
    let revoker = mint(
        &s.admin,
        MintRequest {
            actor_type: Some("chat".into()),
            rights: Some(vec!["revoke".into()]),
            ..Default::default()
        },
    )
    .await;
    let unscoped = s.admin.mint(&MintRequest::default()).await.unwrap();
    let (c, m) = code(
        revoker
            .revoke(&RevokeRequest {
                token: Some(unscoped.token),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("actor type is wider"), "{m}");
    let chat = s
        .admin
        .mint(&MintRequest {
            actor_type: Some("chat".into()),
            key: Some("room".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    revoker
        .revoke(&RevokeRequest {
            token: Some(chat.token),
            ..Default::default()
        })
        .await
        .unwrap();
}
