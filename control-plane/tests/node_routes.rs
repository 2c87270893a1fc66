//! The node API's table (`latchkey_wire::nodeapi::NODE_ROUTES`) and the control plane's router
//! cannot drift: every route of the table, signed as a node would sign it, reaches its handler
//! (a malformed body is refused with 400 naming the route's request type, never 404, 405 or
//! 500), the other method on its path is 405, and the client's named methods, which go through
//! the table, are answered by the router.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::rt::TokioExecutor;
use latchkey_caps::node::{CONTROL_PLANE_AUDIENCE, NodeCertificate, NodeKey};
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_wire::client::Client;
use latchkey_wire::identity::{self, NodeCredentials, Outgoing};
use latchkey_wire::node::{EnrolRequest, HeartbeatRequest, OutcomeReport, RegisterRequest};
use latchkey_wire::nodeapi::{self, Method, NODE_ROUTES, NodeRoute, RouteInfo};
use latchkey_wire::tail::TailBatch;

struct Server {
    url: String,
    admin: Client,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.lease = common::SETTINGS;
    let opened = ControlPlane::open(config).unwrap();
    let token = opened.new_admin_token.unwrap();
    let (url, stop) = common::serve(opened.control_plane).await;
    Server {
        admin: Client::new(&url, &token),
        url,
        _dir: dir,
        _stop: stop,
    }
}

/// Credentials of node `id` with a fresh key, enrolled through `admin`.
async fn enrolled(admin: &Client, id: &str) -> Arc<NodeCredentials> {
    let token = admin.enrolment_token(id, None).await.unwrap().token;
    let credentials = Arc::new(NodeCredentials::new(id, NodeKey::generate()));
    let answer = admin.enrol(&credentials, &token).await.unwrap();
    credentials.set_certificate(NodeCertificate::from_text(&answer.certificate).unwrap());
    credentials
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// One raw request, signed by `credentials` (binding `bearer` as `Authorization` if given, as
/// `enrol` does): status and body text.
async fn signed_raw(
    url: &str,
    credentials: &NodeCredentials,
    bearer: Option<&str>,
    method: Method,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    let authorization = bearer.map(|t| format!("Bearer {t}"));
    let bound = identity::bound_values(|name| {
        (name == "authorization")
            .then_some(authorization.as_deref())
            .flatten()
            .map(str::as_bytes)
    });
    let outgoing = Outgoing {
        audience: CONTROL_PLANE_AUDIENCE,
        method: method.as_str(),
        path,
        body,
        bound: &bound,
    };
    let mut request = http::Request::builder()
        .method(method.as_str())
        .uri(format!("{url}{path}"))
        .header("content-type", latchkey_wire::NODE_CONTENT_TYPE);
    for (name, value) in credentials.sign(&outgoing, now_ms()) {
        request = request.header(name, value);
    }
    if let Some(authorization) = &authorization {
        request = request.header("authorization", authorization);
    }
    let client: Hyper<_, Full<Bytes>> =
        Hyper::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client
        .request(request.body(Full::new(Bytes::from(body.to_vec()))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `route`'s path for node `node_id`, its parameters filled in.
fn path_of(route: &RouteInfo, node_id: &str) -> String {
    let filled: Vec<&str> = route
        .path
        .split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect();
    nodeapi::path(node_id, &filled.join("/"))
}

#[tokio::test]
async fn every_route_of_the_table_reaches_its_handler() {
    let s = start().await;
    let node = enrolled(&s.admin, "n1").await;
    for route in NODE_ROUTES {
        let (credentials, bearer) = if *route == EnrolRequest::ROUTE {
            // Enrolment is signed by the key it enrols, with a fresh enrolment capability.
            let token = s.admin.enrolment_token("n2", None).await.unwrap().token;
            let fresh = Arc::new(NodeCredentials::new("n2", NodeKey::generate()));
            (fresh, Some(token))
        } else {
            (Arc::clone(&node), None)
        };
        let path = path_of(route, credentials.node_id());
        let (status, message) = signed_raw(
            &s.url,
            &credentials,
            bearer.as_deref(),
            route.method,
            &path,
            &[0xff],
        )
        .await;
        assert_eq!(status, 400, "{route}: {message}");
        assert!(
            message.contains(&format!("malformed {} body", route.request)),
            "{route}: {message}"
        );

        let other = match route.method {
            Method::Get => Method::Post,
            Method::Post => Method::Get,
        };
        let segments: Vec<&str> = path
            .trim_start_matches(nodeapi::PREFIX)
            .split('/')
            .skip(1)
            .collect();
        if nodeapi::lookup(other.as_str(), &segments).is_none() {
            let (status, message) =
                signed_raw(&s.url, &node, None, other, &path_of(route, "n1"), &[]).await;
            assert_eq!(status, 405, "{other} on {route}: {message}");
        }
    }
}

#[tokio::test]
async fn the_clients_named_methods_are_answered_by_the_router() {
    let s = start().await;
    let node = Client::for_node(&s.url, enrolled(&s.admin, "n1").await);
    let register = RegisterRequest {
        region: "eu".into(),
        address: "127.0.0.1:9".into(),
    };
    node.register("n1", &register).await.unwrap();
    let beat = HeartbeatRequest { active_actors: 0 };
    node.heartbeat("n1", &beat, Duration::from_secs(5))
        .await
        .unwrap();
    node.renew_certificate("n1").await.unwrap();
    let snapshot = node.sync("n1").await.unwrap();
    let changes = node
        .watch("n1", &snapshot.cursor, Duration::ZERO)
        .await
        .unwrap();
    assert!(changes.events.is_empty(), "{changes:?}");
    let interest = node.tail_interest("n1", 0, Duration::ZERO).await.unwrap();
    node.tail_interest("n1", interest.revision, Duration::ZERO)
        .await
        .unwrap();
    node.push_tail("n1", &TailBatch::default()).await.unwrap();
    node.report_outcomes("n1", &OutcomeReport::default())
        .await
        .unwrap();
    let component = common::actor_component("node-routes");
    let module = s.admin.upload_module(component.clone()).await.unwrap();
    let bytes = node.fetch_module("n1", &module.content_id).await.unwrap();
    assert_eq!(bytes, component, "the component's bytes as they are");
    // The generic call is the same request.
    node.node("n1", &beat).await.unwrap();
}
