//! The control plane's HTTP APIs over real sockets: the admin flow, every class of bad input
//! with its status and message, node authentication, long-poll following, minting, revocation
//! and key rotation.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::Method;
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_store::{EmbeddedStore, Store, StoreError, Transaction};
use latchkey_test_kit::component::actor_component;
use latchkey_test_kit::{Launch, ServedControlPlane, StoreChoice};
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{MintRequest, RegionRequest, RevokeRequest};
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::node::{
    CommitRequest, EnsureActivationRequest, Event, HeartbeatRequest, ReadOp, ReadStateRequest,
    ReadStateResponse, RegisterRequest, StateWrite,
};

/// Commit sequence numbers, increasing across the whole test process (so per activation too).
fn next_seq() -> u64 {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A real store that can be switched to fail every transaction, to show how the API reports an
/// unavailable store.
struct Flaky {
    inner: Arc<dyn Store>,
    down: AtomicBool,
}

impl Store for Flaky {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected: the disk is gone".into()));
        }
        self.inner.begin()
    }

    fn describe(&self) -> String {
        format!("flaky({})", self.inner.describe())
    }
}

struct Server {
    cp: ServedControlPlane,
    store: Arc<Flaky>,
    _store_dir: tempfile::TempDir,
}

async fn start(tune: impl FnOnce(&mut Config)) -> Server {
    let store_dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(store_dir.path().join("store.redb")).unwrap());
    let store = Arc::new(Flaky {
        inner,
        down: AtomicBool::new(false),
    });
    let launch = Launch {
        store: StoreChoice::Given(Arc::clone(&store) as Arc<dyn Store>),
        ..Launch::default()
    };
    let cp = ServedControlPlane::start(launch, |config| {
        config.lease = common::SETTINGS;
        tune(config);
    })
    .await;
    Server {
        cp,
        store,
        _store_dir: store_dir,
    }
}

fn code(e: ClientError) -> (ErrorCode, String) {
    match e {
        ClientError::Api(api) => (api.code, api.message),
        other => panic!("expected an API error, got {other}"),
    }
}

async fn mint(admin: &Client, request: MintRequest) -> Client {
    let minted = admin.mint(&request).await.unwrap();
    admin.with_token(&minted.token)
}

#[tokio::test]
async fn first_start_creates_a_root_key_and_an_owner_only_admin_token() {
    let s = start(|_| {}).await;
    for entry in std::fs::read_dir(s.cp.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "admin.token" || name.starts_with("issuer-") {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} must be readable by its owner only");
        }
    }
    let keys = s.cp.admin.keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].state, "active");
}

#[tokio::test]
async fn modules_and_deployments_through_the_admin_api() {
    let s = start(|_| {}).await;
    let v1 =
        s.cp.admin
            .upload_module(actor_component("v1"))
            .await
            .unwrap();
    let again =
        s.cp.admin
            .upload_module(actor_component("v1"))
            .await
            .unwrap();
    assert_eq!(again, v1, "uploads are idempotent");
    assert_eq!(v1.exports, ["latchkey:actor/handler@0.1.0"]);
    let v2 =
        s.cp.admin
            .upload_module(actor_component("v2"))
            .await
            .unwrap();
    assert_eq!(s.cp.admin.modules().await.unwrap().len(), 2);

    let d =
        s.cp.admin
            .deploy("counter", &v1.content_id, Some("first"))
            .await
            .unwrap();
    assert_eq!(d.active.as_deref(), Some(v1.content_id.as_str()));
    let d =
        s.cp.admin
            .canary("counter", &v2.content_id, 10.0)
            .await
            .unwrap();
    assert_eq!(d.canary.as_ref().unwrap().basis_points, 1000);
    let (c, m) = code(
        s.cp.admin
            .deploy("counter", &v2.content_id, None)
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Conflict);
    assert!(m.contains("canary"), "{m}");
    s.cp.admin
        .deployment_action("counter", "promote", None)
        .await
        .unwrap();
    let d =
        s.cp.admin
            .deployment_action("counter", "rollback", Some("bad build"))
            .await
            .unwrap();
    assert_eq!(d.active.as_deref(), Some(v1.content_id.as_str()));
    let detail = s.cp.admin.deployment("counter").await.unwrap();
    let actions: Vec<&str> = detail.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        ["rollback", "promote", "canary", "deploy"],
        "newest first"
    );
    assert_eq!(detail.history[0].reason.as_deref(), Some("bad build"));
    let (c, m) = code(
        s.cp.admin
            .deployment_action("counter", "rollback", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (c, m.as_str()),
        (ErrorCode::Conflict, "no previous version to roll back to")
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let s = start(|c| c.limits.max_module_bytes = 200_000).await;
    let v1 =
        s.cp.admin
            .upload_module(actor_component("v1"))
            .await
            .unwrap();

    // 400: malformed JSON.
    let body = b"{\"version\": ".to_vec();
    let e =
        s.cp.admin
            .send(
                Method::POST,
                "/v1/deployments/counter",
                "application/json",
                body,
                Duration::from_secs(5),
            )
            .await;
    let (c, m) = code(e.unwrap_err());
    assert_eq!(c, ErrorCode::BadRequest);
    assert!(m.starts_with("malformed JSON body"), "{m}");

    // 401: no token, a garbage token, an expired token.
    let anonymous = Client::new(&s.cp.url, "");
    let (c, m) = code(anonymous.modules().await.unwrap_err());
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.contains("Bearer"), "{m}");
    let (c, m) = code(
        s.cp.admin
            .with_token("lk1.garbage")
            .modules()
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.starts_with("invalid token"), "{m}");
    let expired =
        s.cp.admin
            .mint(&MintRequest {
                expires_in_secs: Some(0),
                ..Default::default()
            })
            .await
            .unwrap();
    let (c, m) = code(
        s.cp.admin
            .with_token(&expired.token)
            .modules()
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.contains("expired"), "{m}");

    // 403: a valid token without the right, naming it.
    let invoker = mint(
        &s.cp.admin,
        MintRequest {
            rights: Some(vec!["invoke".into()]),
            ..Default::default()
        },
    )
    .await;
    let (c, m) = code(
        invoker
            .deploy("counter", &v1.content_id, None)
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("does not grant the `deploy` right"), "{m}");
    let chat_deployer = mint(
        &s.cp.admin,
        MintRequest {
            actor_type: Some("chat".into()),
            rights: Some(vec!["deploy".into()]),
            ..Default::default()
        },
    )
    .await;
    let (c, m) = code(
        chat_deployer
            .deploy("counter", &v1.content_id, None)
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("actor type `chat`"), "{m}");

    // 404: unknown module, unknown deployment, unknown route.
    let (c, m) = code(
        s.cp.admin
            .deploy("counter", &"0".repeat(64), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::NotFound);
    assert!(m.contains("upload it first"), "{m}");
    assert_eq!(
        code(s.cp.admin.deployment("counter").await.unwrap_err()).0,
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.cp.admin.module("abc").await.unwrap_err()).0,
        ErrorCode::NotFound
    );

    // 413: an oversized upload.
    let (c, m) = code(
        s.cp.admin
            .upload_module(vec![0u8; 300_000])
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::TooLarge);
    assert!(m.contains("200000"), "{m}");

    // 422: not an actor component, with the reason.
    let (c, m) = code(
        s.cp.admin
            .upload_module(b"\0asm\x01\0\0\0".to_vec())
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Invalid);
    assert!(m.contains("core module"), "{m}");
    assert_eq!(
        s.cp.admin.modules().await.unwrap().len(),
        1,
        "nothing invalid was stored"
    );

    // 503, retryable: the store is unavailable.
    s.store.down.store(true, Ordering::SeqCst);
    let e =
        s.cp.admin
            .deploy("counter", &v1.content_id, None)
            .await
            .unwrap_err();
    assert!(e.is_retryable());
    let (c, m) = code(e);
    assert_eq!(c, ErrorCode::Unavailable);
    assert!(m.contains("the disk is gone"), "{m}");
    s.store.down.store(false, Ordering::SeqCst);
    assert_eq!(
        code(s.cp.admin.deployment("counter").await.unwrap_err()).0,
        ErrorCode::NotFound,
        "the failed deploy wrote nothing"
    );
}

#[tokio::test]
async fn a_node_places_commits_reads_and_follows_changes() {
    let s = start(|_| {}).await;
    let v1 =
        s.cp.admin
            .upload_module(actor_component("v1"))
            .await
            .unwrap();
    s.cp.admin
        .deploy("counter", &v1.content_id, None)
        .await
        .unwrap();
    let node = s.cp.enrolled_node("n1").await;
    node.register(
        "n1",
        &RegisterRequest {
            region: "eu".into(),
            address: "127.0.0.1:9".into(),
        },
    )
    .await
    .unwrap();
    for _ in 0..2 {
        node.heartbeat(
            "n1",
            &HeartbeatRequest { active_actors: 0 },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    let act = node
        .ensure_activation(
            "n1",
            &EnsureActivationRequest {
                actor_type: "counter".into(),
                key: "k".into(),
                region_hint: None,
                token_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (act.node_id.as_str(), act.module_version.as_str()),
        ("n1", v1.content_id.as_str())
    );
    node.commit_state(
        "n1",
        &CommitRequest {
            seq: next_seq(),
            fence: act.fence(),
            writes: vec![StateWrite::Put(b"n".to_vec(), b"5".to_vec())],
            alarms: Vec::new(),
        },
    )
    .await
    .unwrap();
    let read = node
        .read_state(
            "n1",
            &ReadStateRequest {
                fence: act.fence(),
                op: ReadOp::Get(vec![b"n".to_vec()]),
            },
        )
        .await
        .unwrap();
    assert_eq!(read, ReadStateResponse::Values(vec![Some(b"5".to_vec())]));
    let module = node.fetch_module("n1", &v1.content_id).await.unwrap();
    assert_eq!(module.as_ref(), actor_component("v1").as_slice());
    let mut stale = act.fence();
    stale.generation.0[0] ^= 0xff;
    let (c, m) = code(
        node.commit_state(
            "n1",
            &CommitRequest {
                seq: next_seq(),
                fence: stale,
                writes: vec![],
                alarms: Vec::new(),
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Fenced);
    assert!(m.starts_with("fenced:"), "{m}");

    let sync = node.sync("n1").await.unwrap();
    assert_eq!(sync.deployments.len(), 1);
    assert_eq!(sync.trusted_keys.len(), 1);
    // A long-poll that starts before a change returns with it.
    let watcher = {
        let (node, cursor) = (node.clone(), sync.cursor.clone());
        tokio::spawn(async move { node.watch("n1", &cursor, Duration::from_secs(20)).await })
    };
    let v2 =
        s.cp.admin
            .upload_module(actor_component("v2"))
            .await
            .unwrap();
    s.cp.admin
        .deploy("counter", &v2.content_id, None)
        .await
        .unwrap();
    let changes = tokio::time::timeout(Duration::from_secs(20), watcher)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match changes.events.as_slice() {
        [Event::Deployment(d)] => assert_eq!(d.active.as_deref(), Some(v2.content_id.as_str())),
        other => panic!("expected the deployment change, got {other:?}"),
    }
    let quiet = node
        .watch("n1", &changes.cursor, Duration::from_millis(50))
        .await
        .unwrap();
    assert!(quiet.events.is_empty());
    assert_eq!(quiet.cursor, changes.cursor);
}

#[tokio::test]
async fn minted_tokens_are_never_wider_and_revocation_takes_effect() {
    let s = start(|_| {}).await;
    let minter = mint(
        &s.cp.admin,
        MintRequest {
            actor_type: Some("counter".into()),
            rights: Some(vec!["mint".into(), "invoke".into(), "revoke".into()]),
            ..Default::default()
        },
    )
    .await;
    let (c, m) = code(
        minter
            .mint(&MintRequest {
                actor_type: Some("chat".into()),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("actor type"), "{m}");
    let (c, _) = code(
        minter
            .mint(&MintRequest {
                rights: Some(vec!["deploy".into()]),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Forbidden);
    let narrow = minter
        .mint(&MintRequest {
            key_prefix: Some("user/".into()),
            rights: Some(vec!["invoke".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(narrow.expires_at, None);

    // The scoped minter may revoke the token it made (within its scope), not by bare id.
    let (c, _) = code(
        minter
            .revoke(&RevokeRequest {
                token_id: Some(narrow.token_id.clone()),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Forbidden);
    let revoked = minter
        .revoke(&RevokeRequest {
            token: Some(narrow.token.clone()),
            reason: Some("leaked".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(revoked.token_id, narrow.token_id);
    let one = s.cp.admin.revocation(&narrow.token_id).await.unwrap();
    assert_eq!(one.reason.as_deref(), Some("leaked"));
    let (c, m) = code(
        s.cp.admin
            .revocation(&revoked.token_id.replace(|_: char| true, "0"))
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::NotFound, "{m}");
    assert!(m.contains("not revoked"), "{m}");
    let listed = s.cp.admin.revocations().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reason.as_deref(), Some("leaked"));
    // The revoked token is refused from now on (a revoked "mint" token cannot mint).
    let revoked_minter = minter
        .mint(&MintRequest {
            rights: Some(vec!["mint".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    minter
        .revoke(&RevokeRequest {
            token: Some(revoked_minter.token.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (c, m) = code(
        s.cp.admin
            .with_token(&revoked_minter.token)
            .mint(&MintRequest::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Unauthenticated);
    assert!(m.contains("revoked"), "{m}");
}

#[tokio::test]
async fn rotated_keys_keep_old_tokens_until_retired() {
    let s = start(|_| {}).await;
    let old_key = s.cp.admin.keys().await.unwrap().remove(0);
    let rotated = s.cp.admin.rotate_key().await.unwrap();
    let keys = rotated.keys;
    assert_eq!(keys.iter().filter(|k| k.state == "active").count(), 1);
    assert_eq!(
        keys.iter()
            .find(|k| k.key_id == old_key.key_id)
            .unwrap()
            .state,
        "trusted"
    );
    // Tokens of the old key still work, and tokens minted from them extend their chain (so
    // they keep its key); the rotation re-issued the caller's capability under the new key.
    let minted_after = mint(&s.cp.admin, MintRequest::default()).await;
    let new_admin = s.cp.admin.with_token(&rotated.token);
    let (c, m) = code(
        s.cp.admin
            .retire_key(&keys.iter().find(|k| k.state == "active").unwrap().key_id)
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Conflict);
    assert!(m.contains("rotate"), "{m}");
    new_admin.retire_key(&old_key.key_id).await.unwrap();
    let (c, m) = code(s.cp.admin.modules().await.unwrap_err());
    assert_eq!(
        c,
        ErrorCode::Unauthenticated,
        "the old admin token died with its key"
    );
    assert!(m.contains("not trusted"), "{m}");
    assert_eq!(
        code(minted_after.modules().await.unwrap_err()).0,
        ErrorCode::Unauthenticated,
        "a token minted from the old admin token died with it"
    );
    assert!(new_admin.modules().await.is_ok());
    assert!(
        mint(&new_admin, MintRequest::default())
            .await
            .modules()
            .await
            .is_ok()
    );
}

/// A node token for `id`, registered in `region` and heartbeating until eligible.
async fn eligible_node(s: &Server, id: &str, region: &str) -> Client {
    let node = s.cp.enrolled_node(id).await;
    node.register(
        id,
        &RegisterRequest {
            region: region.into(),
            address: "127.0.0.1:9".into(),
        },
    )
    .await
    .unwrap();
    for _ in 0..2 {
        node.heartbeat(
            id,
            &HeartbeatRequest { active_actors: 0 },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    node
}

fn ensure(actor_type: &str, key: &str) -> EnsureActivationRequest {
    EnsureActivationRequest {
        actor_type: actor_type.into(),
        key: key.into(),
        region_hint: None,
        token_id: None,
    }
}

#[tokio::test]
async fn regions_are_declared_changed_removed_and_weigh_on_placement() {
    let s = start(|_| {}).await;
    let eu = RegionRequest {
        placement_weight: 100,
        jurisdiction: Some("eu".into()),
    };
    let declared = s.cp.admin.put_region("eu-west", &eu).await.unwrap();
    assert_eq!(
        (declared.placement_weight, declared.jurisdiction.as_deref()),
        (100, Some("eu"))
    );
    let same = s.cp.admin.put_region("eu-west", &eu).await.unwrap();
    assert_eq!(
        same, declared,
        "declaring the same settings changes nothing"
    );
    let (c, m) = code(
        s.cp.admin
            .put_region(
                "eu-west",
                &RegionRequest {
                    placement_weight: 10_001,
                    jurisdiction: None,
                },
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::BadRequest);
    assert!(m.contains("placement_weight"), "{m}");
    assert_eq!(
        s.cp.admin.regions().await.unwrap(),
        std::slice::from_ref(&declared)
    );

    // A region of weight 0 takes no new placements, not even on its own nodes.
    let v1 =
        s.cp.admin
            .upload_module(actor_component("v1"))
            .await
            .unwrap();
    s.cp.admin
        .deploy("counter", &v1.content_id, None)
        .await
        .unwrap();
    let node = eligible_node(&s, "n1", "eu-west").await;
    let drained = RegionRequest {
        placement_weight: 0,
        ..eu
    };
    s.cp.admin.put_region("eu-west", &drained).await.unwrap();
    let (c, m) = code(
        node.ensure_activation("n1", &ensure("counter", "a"))
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::Unavailable);
    assert!(m.contains("placement weight"), "{m}");
    // Removing the declaration: the node's region counts with the default weight again.
    s.cp.admin.delete_region("eu-west").await.unwrap();
    let (c, _) = code(s.cp.admin.region("eu-west").await.unwrap_err());
    assert_eq!(c, ErrorCode::NotFound);
    let (c, _) = code(s.cp.admin.delete_region("eu-west").await.unwrap_err());
    assert_eq!(c, ErrorCode::NotFound);
    let placed = node
        .ensure_activation("n1", &ensure("counter", "a"))
        .await
        .unwrap();
    assert_eq!(placed.node_id, "n1");
}

#[tokio::test]
async fn a_removed_deployment_places_nothing_and_frees_its_modules() {
    let s = start(|_| {}).await;
    let v1 =
        s.cp.admin
            .upload_module(actor_component("v1"))
            .await
            .unwrap();
    s.cp.admin
        .deploy("counter", &v1.content_id, None)
        .await
        .unwrap();
    let node = eligible_node(&s, "n1", "eu").await;
    let first = node
        .ensure_activation("n1", &ensure("counter", "a"))
        .await
        .unwrap();

    let (c, m) = code(s.cp.admin.delete_module(&v1.content_id).await.unwrap_err());
    assert_eq!(c, ErrorCode::Conflict);
    assert!(
        m.contains("`counter`"),
        "names the deployment using it: {m}"
    );

    let removed =
        s.cp.admin
            .remove_deployment("counter", Some("retired"))
            .await
            .unwrap();
    assert_eq!((removed.active, removed.canary), (None, None));
    let detail = s.cp.admin.deployment("counter").await.unwrap();
    assert_eq!(detail.history[0].action, "remove");
    assert_eq!(
        detail.history[0].from.as_deref(),
        Some(v1.content_id.as_str())
    );
    // Even the actor whose activation is live is not handed out any more.
    let (c, m) = code(
        node.ensure_activation("n1", &ensure("counter", "a"))
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::NotFound);
    assert!(m.contains("no deployed version"), "{m}");
    let (c, _) = code(
        s.cp.admin
            .remove_deployment("counter", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::NotFound);

    s.cp.admin.delete_module(&v1.content_id).await.unwrap();
    let (c, _) = code(s.cp.admin.module(&v1.content_id).await.unwrap_err());
    assert_eq!(c, ErrorCode::NotFound);
    let (c, _) = code(s.cp.admin.delete_module(&v1.content_id).await.unwrap_err());
    assert_eq!(c, ErrorCode::NotFound);

    // Deployed again (new code): the actor whose last version is gone starts on the new one.
    let v2 =
        s.cp.admin
            .upload_module(actor_component("v2"))
            .await
            .unwrap();
    s.cp.admin
        .deploy("counter", &v2.content_id, None)
        .await
        .unwrap();
    let placed = node
        .ensure_activation("n1", &ensure("counter", "a"))
        .await
        .unwrap();
    assert_eq!(placed.module_version, v2.content_id);
    // Its node still lives, and may still hold an instance of the old generation: the new one
    // goes to that same node (which fences the old), never to another.
    assert_eq!(placed.node_id, "n1");
    assert_ne!(placed.generation, first.generation, "a new generation");
}

/// Finding 9 of issue #15: a deploy token scoped to one actor type reaches only that type's
/// modules. Each step is the attack a `chat` token could make on another type's modules, and its
/// refusal, which names why.
#[tokio::test]
async fn a_type_scoped_deploy_token_reaches_only_its_type_s_modules() {
    let s = start(|_| {}).await;
    let scoped = |t: &str| MintRequest {
        actor_type: Some(t.into()),
        rights: Some(vec!["deploy".into()]),
        ..Default::default()
    };
    let chat = mint(&s.cp.admin, scoped("chat")).await;
    let billing = mint(&s.cp.admin, scoped("billing")).await;
    let of_billing = billing
        .upload_module(actor_component("billing"))
        .await
        .unwrap();
    assert_eq!(of_billing.actor_types, ["billing"]);
    let of_chat = chat.upload_module(actor_component("chat")).await.unwrap();
    let typeless =
        s.cp.admin
            .upload_module(actor_component("admin"))
            .await
            .unwrap();
    assert!(typeless.actor_types.is_empty());

    // Listing shows the scoped token its type's modules only; the unscoped one sees every module.
    let listed: Vec<String> = chat
        .modules()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content_id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&of_chat.content_id));
    assert_eq!(s.cp.admin.modules().await.unwrap().len(), 3);

    // Reading, deleting and deploying another type's module, or a typeless one: refused, and
    // the module is untouched.
    for other in [&of_billing.content_id, &typeless.content_id] {
        let (c, m) = code(chat.module(other).await.unwrap_err());
        assert_eq!(c, ErrorCode::NotFound);
        assert!(m.contains("among the modules of actor type `chat`"), "{m}");
        let (c, m) = code(chat.delete_module(other).await.unwrap_err());
        assert_eq!(c, ErrorCode::NotFound);
        assert!(m.contains("your token is scoped to `chat`"), "{m}");
        let (c, m) = code(chat.deploy("chat", other, None).await.unwrap_err());
        assert_eq!(c, ErrorCode::NotFound);
        assert!(m.contains("among the modules of actor type `chat`"), "{m}");
        let (c, m) = code(chat.canary("chat", other, 10.0).await.unwrap_err());
        assert_eq!(c, ErrorCode::NotFound, "{m}");
        assert!(s.cp.admin.module(other).await.is_ok());
    }
    assert!(
        s.cp.admin.deployment("chat").await.is_err(),
        "nothing was deployed"
    );
    chat.deploy("chat", &of_chat.content_id, None)
        .await
        .unwrap();
    // An unscoped token deploys any module, typeless or not.
    s.cp.admin
        .deploy("billing", &typeless.content_id, None)
        .await
        .unwrap();

    // The same bytes uploaded for `chat` add `chat` to the one module, which `chat` then sees (as
    // its type only); deleting it needs a token covering both types.
    let shared = chat
        .upload_module(actor_component("billing"))
        .await
        .unwrap();
    assert_eq!(shared.content_id, of_billing.content_id);
    assert_eq!(shared.actor_types, ["chat"]);
    let full = s.cp.admin.module(&of_billing.content_id).await.unwrap();
    assert_eq!(full.actor_types, ["billing", "chat"]);
    for (token, name) in [(&chat, "chat"), (&billing, "billing")] {
        let (c, m) = code(
            token
                .delete_module(&of_billing.content_id)
                .await
                .unwrap_err(),
        );
        assert_eq!(c, ErrorCode::Forbidden);
        assert!(
            m.contains(&format!("other than `{name}`"))
                && m.contains("needs a token covering every type"),
            "{m}"
        );
    }
    s.cp.admin
        .delete_module(&of_billing.content_id)
        .await
        .unwrap();
    // A module of the scoped token's type alone is its to delete (once no deployment uses it).
    let spare = chat.upload_module(actor_component("spare")).await.unwrap();
    chat.delete_module(&spare.content_id).await.unwrap();
    assert_eq!(
        code(s.cp.admin.module(&spare.content_id).await.unwrap_err()).0,
        ErrorCode::NotFound
    );
}

/// Finding 10 of issue #15: the control plane's data directory (keys, admin token, store) is
/// created owner-only (0700, with any parents it creates), and the store file 0600.
#[test]
fn the_data_directory_is_created_owner_only_and_the_store_file_too() {
    let root = tempfile::tempdir().unwrap();
    let parent = root.path().join("srv");
    let data = parent.join("latchkey-data");
    let opened = ControlPlane::open(Config::new(&data)).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for dir in [&parent, &data] {
        assert_eq!(mode(dir), 0o700, "{} is {:o}", dir.display(), mode(dir));
    }
    let store = data.join("store.redb");
    assert_eq!(mode(&store), 0o600, "the store file is {:o}", mode(&store));
    drop(opened);
}

#[tokio::test]
async fn names_with_slashes_spaces_and_escapes_reach_their_own_routes() {
    let s = start(|_| {}).await;
    let v1 =
        s.cp.admin
            .upload_module(actor_component("v1"))
            .await
            .unwrap();
    let v2 =
        s.cp.admin
            .upload_module(actor_component("v2"))
            .await
            .unwrap();
    let odd = "team/a counter?x=1&y=%41";
    s.cp.admin.deploy(odd, &v1.content_id, None).await.unwrap();
    s.cp.admin
        .deploy("team", &v2.content_id, None)
        .await
        .unwrap();
    let d = s.cp.admin.canary(odd, &v2.content_id, 5.0).await.unwrap();
    assert_eq!(
        d.actor_type, odd,
        "the canary reached the odd name's deployment"
    );
    let detail = s.cp.admin.deployment(odd).await.unwrap();
    assert_eq!(
        detail.deployment.active.as_deref(),
        Some(v1.content_id.as_str())
    );
    assert_eq!(
        s.cp.admin
            .deployment("team")
            .await
            .unwrap()
            .deployment
            .active
            .as_deref(),
        Some(v2.content_id.as_str()),
        "a name's prefix is another deployment"
    );
    assert!(s.cp.admin.activations(Some(odd)).await.unwrap().is_empty());
    let region = "eu west/1";
    let request = RegionRequest {
        placement_weight: 3,
        jurisdiction: None,
    };
    s.cp.admin.put_region(region, &request).await.unwrap();
    assert_eq!(s.cp.admin.region(region).await.unwrap().name, region);
    s.cp.admin.delete_region(region).await.unwrap();

    let (c, m) = code(
        s.cp.admin
            .send(
                Method::GET,
                "/v1/deployments/%FF%FE",
                "application/json",
                Vec::new(),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(c, ErrorCode::BadRequest);
    assert!(m.contains("%FF%FE"), "the error names the segment: {m}");
}
