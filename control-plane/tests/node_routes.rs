//! The node API's table (`latchkey_wire::nodeapi::NODE_ROUTES`) and the control plane's router
//! cannot drift: every route of the table, signed as a node would sign it, reaches its handler
//! (a malformed body is refused with 400 naming the route's request type, never 404, 405 or
//! 500), the other method on its path is 405, and the client's named methods, which go through
//! the table, are answered by the router.

mod common;

use std::sync::Arc;
use std::time::Duration;

use latchkey_caps::node::NodeKey;
use latchkey_test_kit::raw::request;
use latchkey_test_kit::signing::signed_headers;
use latchkey_test_kit::{Launch, ServedControlPlane};
use latchkey_wire::client::Client;
use latchkey_wire::identity::NodeCredentials;
use latchkey_wire::node::{EnrolRequest, HeartbeatRequest, OutcomeReport, RegisterRequest};
use latchkey_wire::nodeapi::{self, Method, NODE_ROUTES, NodeRoute, RouteInfo};
use latchkey_wire::tail::TailBatch;

async fn start() -> ServedControlPlane {
    ServedControlPlane::start(Launch::default(), |config| config.lease = common::SETTINGS).await
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
    let mut headers = signed_headers(credentials, bearer, method.as_str(), path, body);
    headers.push(("content-type", latchkey_wire::NODE_CONTENT_TYPE.to_owned()));
    request(url, method.as_str(), path, &headers, body.to_vec()).await
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
    let node = s.enrolled_credentials("n1").await;
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
    let node = Client::for_node(&s.url, s.enrolled_credentials("n1").await);
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
    let component = latchkey_test_kit::component::actor_component("node-routes");
    let module = s.admin.upload_module(component.clone()).await.unwrap();
    let bytes = node.fetch_module("n1", &module.content_id).await.unwrap();
    assert_eq!(bytes, component, "the component's bytes as they are");
    // The generic call is the same request.
    node.node("n1", &beat).await.unwrap();
}
