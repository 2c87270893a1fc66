//! Tail sessions over real sockets: a session is never wider than its token, nodes learn the
//! sessions' filters by long-poll and are reported as following once they apply them, a session
//! receives only the events its filter matches (whatever a node sends), and a client that leaves
//! ends its session.

mod common;

use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use latchkey_test_kit::{Launch, ServedControlPlane};
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::node::RegisterRequest;
use latchkey_wire::tail::{
    CallKind, KeyFilter, Level, LineKind, TailBatch, TailEvent, TailFilter, TailKind, TailMessage,
};

/// A control plane on an embedded store.
async fn start() -> ServedControlPlane {
    ServedControlPlane::start(Launch::default(), |config| config.lease = common::SETTINGS).await
}

/// The `data:` messages of a server-sent event stream.
struct Messages {
    body: Incoming,
    buffer: String,
}

impl Messages {
    async fn next(&mut self) -> TailMessage {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return serde_json::from_str(data).expect("a tail message");
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("a message within 10 s")
                .expect("the stream goes on")
                .expect("the stream is readable");
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }
}

fn refused(result: Result<Incoming, ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Api(e)) => (e.code, e.message),
        Err(other) => panic!("expected an API error, got {other}"),
        Ok(_) => panic!("expected a refusal, got a stream"),
    }
}

fn log(actor_type: &str, key: &str, text: &str) -> TailEvent {
    TailEvent {
        at_ms: 1,
        actor_type: actor_type.into(),
        key: key.into(),
        call_id: 7,
        call: CallKind::Method("inc".into()),
        kind: TailKind::Log {
            level: Level::Info,
            message: text.into(),
        },
    }
}

async fn mint(admin: &Client, request: MintRequest) -> Client {
    admin.with_token(&admin.mint(&request).await.unwrap().token)
}

#[tokio::test]
async fn a_tail_follows_what_its_token_covers_through_the_nodes_that_follow_it() {
    let cp = start().await;
    let admin = cp.admin.clone();
    let node = cp.enrolled_node("n1").await;
    let registered = RegisterRequest {
        region: "local".into(),
        address: "127.0.0.1:1".into(),
    };
    node.register("n1", &registered).await.unwrap();

    let invoke_only = mint(
        &admin,
        MintRequest {
            rights: Some(vec!["invoke".into()]),
            ..MintRequest::default()
        },
    )
    .await;
    let (code, message) = refused(invoke_only.stream("/v1/tail").await);
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(message.contains("tail"), "{message}");

    let counters = mint(
        &admin,
        MintRequest {
            actor_type: Some("counter".into()),
            key_prefix: Some("user/".into()),
            rights: Some(vec!["tail".into()]),
            ..MintRequest::default()
        },
    )
    .await;
    let (code, message) = refused(counters.stream("/v1/tail?actor_type=chat-room").await);
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(message.contains("actor type"), "{message}");
    let (code, _) = refused(
        counters
            .stream("/v1/tail?key=user%2F1&key_prefix=user%2F")
            .await,
    );
    assert_eq!(code, ErrorCode::BadRequest);

    let mut messages = Messages {
        body: counters.stream("/v1/tail?key=user%2F1").await.unwrap(),
        buffer: String::new(),
    };
    let expected = TailFilter {
        actor_type: Some("counter".into()),
        keys: Some(KeyFilter::Exact("user/1".into())),
        methods: None,
    };
    assert_eq!(
        messages.next().await,
        TailMessage::Started {
            filter: expected.clone(),
            live_nodes: vec!["n1".into()],
        },
        "the request narrowed to the token; a key sent as %2F"
    );

    // The node learns the filter at once, then acknowledges it by asking again.
    let interest = node
        .tail_interest("n1", u64::MAX, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(interest.filters, [expected]);
    let unchanged = node
        .tail_interest("n1", interest.revision, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(
        unchanged, interest,
        "no change: the long-poll ends with its wait"
    );
    assert_eq!(
        messages.next().await,
        TailMessage::Following { node: "n1".into() }
    );

    // Whatever the node sends, the session sees only what its filter matches.
    let batch = TailBatch {
        events: vec![
            log("chat-room", "user/1", "another type"),
            log("counter", "user/2", "another key"),
            log("counter", "user/1", "this one"),
        ],
        dropped: 2,
    };
    node.push_tail("n1", &batch).await.unwrap();
    assert_eq!(
        messages.next().await,
        TailMessage::Dropped {
            at: "n1".into(),
            count: 2
        }
    );
    match messages.next().await {
        TailMessage::Line(line) => {
            assert_eq!((line.node.as_str(), line.key.as_str()), ("n1", "user/1"));
            assert!(
                matches!(line.what, LineKind::Log { ref message, .. } if message == "this one")
            );
        }
        other => panic!("expected the line, got {other:?}"),
    }

    // Another node's token cannot speak for n1.
    let n2 = cp.enrolled_node("n2").await;
    assert!(n2.push_tail("n1", &batch).await.is_err());

    // The client leaves: the session ends and nodes hear that nobody follows.
    drop(messages);
    let after = node
        .tail_interest("n1", interest.revision, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(after.filters.is_empty(), "{after:?}");
    assert!(after.revision > interest.revision);
}
