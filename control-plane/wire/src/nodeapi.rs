//! The node API as one table: every route an edge node calls on the control plane, with its
//! method, its path below `/v1/nodes/{node_id}/`, its body limit, its request type and its
//! answer. The client ([`crate::client::Client::node`]) and the control plane's router both derive
//! from it, so neither spells a path of its own.
//!
//! Each request type implements [`NodeRoute`]. Most travel as the postcard body and are answered
//! with a postcard body; the few that do not (query or path parameters, no body, raw bytes)
//! override [`NodeRoute`]'s wire hooks here, next to their line of the table. [`NODE_ROUTES`]
//! lists them all, for the router (which paths are node routes, how large a body may be) and for
//! tests.
//!
//! | route | request | response |
//! |---|---|---|
//! | `POST enrol` | [`EnrolRequest`] (with an enrolment capability) | [`CertificateResponse`] |
//! | `POST certificate` | [`CertificateRequest`] (no body) | [`CertificateResponse`] |
//! | `POST register` | [`RegisterRequest`] | [`RegisterResponse`] |
//! | `POST heartbeat` | [`HeartbeatRequest`] | [`HeartbeatResponse`] |
//! | `POST activations` | [`EnsureActivationRequest`] | [`Activation`] |
//! | `POST activations/upgrade` | [`UpgradeRequest`] | [`Activation`] (new generation) |
//! | `POST state/read` | [`ReadStateRequest`] | [`ReadStateResponse`] |
//! | `POST state/commit` | [`CommitRequest`] | [`CommitResponse`] |
//! | `POST state/commit-batch` | [`CommitBatchRequest`] | [`CommitBatchResponse`] |
//! | `POST self-token` | [`Fence`] | [`SelfToken`] |
//! | `POST outcomes` | [`OutcomeReport`] | [`OutcomeAck`] |
//! | `GET modules/{content_id}` | [`ModuleRequest`] (in the path) | the component bytes |
//! | `GET sync` | [`SyncRequest`] (no body) | [`SyncSnapshot`] |
//! | `GET watch?after={cursor}&wait_ms={ms}` | [`WatchRequest`] (in the query) | [`Changes`] (410 if the cursor is too old) |
//! | `GET tail?after={revision}&wait_ms={ms}` | [`TailInterestRequest`] (in the query) | [`TailInterest`] |
//! | `POST tail` | [`TailBatch`] | `()` (204) |

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::limits::{MAX_COMMIT_BATCH_BYTES, MAX_COMMIT_BYTES};
use crate::node::{
    Activation, CertificateRequest, CertificateResponse, Changes, CommitBatchRequest,
    CommitBatchResponse, CommitRequest, CommitResponse, EnrolRequest, EnsureActivationRequest,
    Fence, HeartbeatRequest, HeartbeatResponse, ModuleRequest, OutcomeAck, OutcomeReport,
    ReadStateRequest, ReadStateResponse, RegisterRequest, RegisterResponse, SelfToken, SyncRequest,
    SyncSnapshot, UpgradeRequest, WatchRequest,
};
use crate::path::{query_value, segment};
use crate::tail::{TailBatch, TailInterest, TailInterestRequest};
use crate::{ApiError, ErrorCode, NODE_CONTENT_TYPE};

/// Where every node route lives: this, the node id (one [`segment`]), `/`, the route's path.
pub const PREFIX: &str = "/v1/nodes/";

/// Largest request body of a node route that sets no limit of its own.
pub const MAX_BODY: usize = 2 << 20;

/// Largest `state/commit-batch` body: a full batch of writes, and room for its framing.
pub const MAX_BATCH_BODY: usize = MAX_COMMIT_BATCH_BYTES + MAX_COMMIT_BYTES + (1 << 20);

/// Largest `enrol` body (a public key and its framing).
pub const MAX_ENROL_BODY: usize = 4096;

/// The HTTP methods the node API uses (this crate's core does not depend on `http`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`: the request, if any, is in the path or the query.
    Get,
    /// `POST`: the request is the body.
    Post,
}

impl Method {
    /// The method's name, as in a request line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the table: what the router needs to know about a route without its types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// The method.
    pub method: Method,
    /// The path below `/v1/nodes/{node_id}/`: segments separated by `/`, a `{name}` segment
    /// standing for any one segment.
    pub path: &'static str,
    /// Largest body accepted.
    pub max_body: usize,
    /// The request type's name (what a malformed body's error names).
    pub request: &'static str,
}

impl RouteInfo {
    /// Whether `segments` (a request's path after `/v1/nodes/{node_id}/`, split and decoded) is
    /// this route's path.
    pub fn matches(&self, segments: &[&str]) -> bool {
        let mut pattern = self.path.split('/');
        let mut given = segments.iter();
        loop {
            match (pattern.next(), given.next()) {
                (None, None) => return true,
                (Some(p), Some(s)) if is_parameter(p) || p == *s => {}
                _ => return false,
            }
        }
    }
}

/// Whether a segment of a route's path stands for any segment (`{name}`).
fn is_parameter(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

impl fmt::Display for RouteInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {PREFIX}{{node_id}}/{}", self.method, self.path)
    }
}

/// Whether `segments` (after `/v1/nodes/{node_id}/`) is the path of some node route, with any
/// method.
pub fn is_node_path(segments: &[&str]) -> bool {
    NODE_ROUTES.iter().any(|r| r.matches(segments))
}

/// The route `method` `segments` asks for, if the table has it.
pub fn lookup(method: &str, segments: &[&str]) -> Option<RouteInfo> {
    NODE_ROUTES
        .iter()
        .find(|r| r.method.as_str() == method && r.matches(segments))
        .copied()
}

/// The path (and query) of `target` (a route's path as a request fills it in, see
/// [`NodeRoute::target`]) for node `node_id`.
pub fn path(node_id: &str, target: &str) -> String {
    format!("{PREFIX}{}/{target}", segment(node_id))
}

/// What arrived at a node route, as the router hands it to [`NodeRoute::from_wire`].
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    /// The path's segments after `/v1/nodes/{node_id}/`, percent-decoded.
    pub segments: &'a [&'a str],
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// A node API request: its route, its answer, and how both travel. The defaults are the common
/// case (the request is the postcard body of a `POST` to [`PATH`](Self::PATH), the answer a
/// postcard body); a route that differs overrides the hooks, in the table below.
pub trait NodeRoute: Serialize + DeserializeOwned {
    /// The method.
    const METHOD: Method;
    /// The path below `/v1/nodes/{node_id}/` (`{name}` segments are filled in by
    /// [`target`](Self::target)).
    const PATH: &'static str;
    /// Largest body the control plane accepts.
    const MAX_BODY: usize = MAX_BODY;
    /// Media type of the answer's body.
    const RESPONSE_TYPE: &'static str = NODE_CONTENT_TYPE;
    /// This route's line of [`NODE_ROUTES`].
    const ROUTE: RouteInfo;
    /// The answer.
    type Response: Serialize + DeserializeOwned;

    /// The path (with its parameters) and query below `/v1/nodes/{node_id}/` this request is
    /// sent to.
    fn target(&self) -> Cow<'static, str> {
        Cow::Borrowed(Self::PATH)
    }

    /// The body this request is sent with.
    fn body(&self) -> Vec<u8> {
        crate::encode(self)
    }

    /// For a long-poll, how long the control plane may hold it before answering (the client
    /// allows that and some more).
    fn long_poll(&self) -> Option<Duration> {
        None
    }

    /// The request from what arrived (checked, naming this type when it is malformed).
    fn from_wire(received: &Received<'_>) -> Result<Self, ApiError> {
        decode_body(received.body)
    }

    /// The answer's body.
    fn encode_response(response: Self::Response) -> Vec<u8> {
        crate::encode(&response)
    }

    /// The answer from its body.
    fn decode_response(body: &[u8]) -> Result<Self::Response, ApiError> {
        crate::decode(body)
    }
}

/// Decodes a request body, refusing bytes after its end (a node sends exactly the encoding).
fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| malformed::<T>(&e))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(malformed::<T>(&format_args!(
            "{} bytes after its end",
            rest.len()
        )))
    }
}

/// For a request carried in its path or query: refuses a body.
fn no_body<T>(received: &Received<'_>) -> Result<(), ApiError> {
    if received.body.is_empty() {
        Ok(())
    } else {
        Err(malformed::<T>(
            &"this request travels in the URL; the body must be empty",
        ))
    }
}

fn malformed<T>(why: &dyn fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::BadRequest,
        format!("malformed {} body: {why}", crate::type_label::<T>()),
    )
}

/// The value of query parameter `name` (as sent: not decoded).
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// `path?name=value&…` for the parameters that are set.
fn with_query(path: &str, parameters: &[(&str, Option<String>)]) -> Cow<'static, str> {
    let mut target = path.to_owned();
    let mut separator = '?';
    for (name, value) in parameters {
        if let Some(value) = value {
            target.push(separator);
            target.push_str(name);
            target.push('=');
            target.push_str(value);
            separator = '&';
        }
    }
    Cow::Owned(target)
}

/// A number in the query, as the control plane has always read it: one that does not parse is
/// absent.
fn query_number(query: Option<&str>, name: &str) -> Option<u64> {
    query_param(query, name).and_then(|v| v.parse().ok())
}

/// Implements [`NodeRoute`] for each line (`METHOD "path" Request => Response`, then the
/// overrides in braces) and lists them in [`NODE_ROUTES`].
macro_rules! node_routes {
    ($($method:ident $path:literal $request:ident => $response:ty { $($custom:tt)* })*) => {
        $(
            impl NodeRoute for $request {
                const METHOD: Method = Method::$method;
                const PATH: &'static str = $path;
                const ROUTE: RouteInfo = RouteInfo {
                    method: Method::$method,
                    path: $path,
                    max_body: <Self as NodeRoute>::MAX_BODY,
                    request: stringify!($request),
                };
                type Response = $response;
                $($custom)*
            }
        )*

        /// Every node API route, in the order of the table.
        pub const NODE_ROUTES: &[RouteInfo] = &[$(<$request as NodeRoute>::ROUTE),*];
    };
}

node_routes! {
    // Special on both sides: presented with an enrolment capability and signed by the key it
    // enrols, not by an enrolled node (see `Client::enrol`).
    Post "enrol" EnrolRequest => CertificateResponse {
        const MAX_BODY: usize = MAX_ENROL_BODY;
    }
    Post "certificate" CertificateRequest => CertificateResponse {}
    Post "register" RegisterRequest => RegisterResponse {}
    Post "heartbeat" HeartbeatRequest => HeartbeatResponse {}
    Post "activations" EnsureActivationRequest => Activation {}
    Post "activations/upgrade" UpgradeRequest => Activation {}
    Post "state/read" ReadStateRequest => ReadStateResponse {}
    Post "state/commit" CommitRequest => CommitResponse {}
    Post "state/commit-batch" CommitBatchRequest => CommitBatchResponse {
        const MAX_BODY: usize = MAX_BATCH_BODY;
    }
    Post "self-token" Fence => SelfToken {}
    Post "outcomes" OutcomeReport => OutcomeAck {}
    Get "modules/{content_id}" ModuleRequest => Vec<u8> {
        const RESPONSE_TYPE: &'static str = "application/wasm";

        fn target(&self) -> Cow<'static, str> {
            Cow::Owned(format!("modules/{}", segment(&self.content_id)))
        }

        fn body(&self) -> Vec<u8> {
            Vec::new()
        }

        fn from_wire(received: &Received<'_>) -> Result<Self, ApiError> {
            no_body::<Self>(received)?;
            let content_id = received.segments.get(1).ok_or_else(|| {
                malformed::<Self>(&"the path names no module")
            })?;
            Ok(ModuleRequest {
                content_id: (*content_id).to_owned(),
            })
        }

        /// The component's bytes as they are.
        fn encode_response(response: Vec<u8>) -> Vec<u8> {
            response
        }

        fn decode_response(body: &[u8]) -> Result<Vec<u8>, ApiError> {
            Ok(body.to_vec())
        }
    }
    Get "sync" SyncRequest => SyncSnapshot {}
    Get "watch" WatchRequest => Changes {
        fn target(&self) -> Cow<'static, str> {
            with_query(
                Self::PATH,
                &[
                    ("after", Some(query_value(&self.after))),
                    ("wait_ms", self.wait_ms.map(|w| w.to_string())),
                ],
            )
        }

        fn body(&self) -> Vec<u8> {
            Vec::new()
        }

        fn long_poll(&self) -> Option<Duration> {
            Some(Duration::from_millis(self.wait_ms.unwrap_or(0)))
        }

        fn from_wire(received: &Received<'_>) -> Result<Self, ApiError> {
            no_body::<Self>(received)?;
            let after = query_param(received.query, "after").unwrap_or_default();
            let after = crate::path::decode(after).ok_or_else(|| {
                malformed::<Self>(&"query parameter `after` is not percent-encoded UTF-8")
            })?;
            Ok(WatchRequest {
                after: after.into_owned(),
                wait_ms: query_number(received.query, "wait_ms"),
            })
        }
    }
    Get "tail" TailInterestRequest => TailInterest {
        fn target(&self) -> Cow<'static, str> {
            with_query(
                Self::PATH,
                &[
                    ("after", self.after.map(|a| a.to_string())),
                    ("wait_ms", self.wait_ms.map(|w| w.to_string())),
                ],
            )
        }

        fn body(&self) -> Vec<u8> {
            Vec::new()
        }

        fn long_poll(&self) -> Option<Duration> {
            Some(Duration::from_millis(self.wait_ms.unwrap_or(0)))
        }

        fn from_wire(received: &Received<'_>) -> Result<Self, ApiError> {
            no_body::<Self>(received)?;
            Ok(TailInterestRequest {
                after: query_number(received.query, "after"),
                wait_ms: query_number(received.query, "wait_ms"),
            })
        }
    }
    // Answered 204: the answer `()` has an empty body.
    Post "tail" TailBatch => () {}
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_route_is_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for route in NODE_ROUTES {
            assert!(
                seen.insert((route.method, route.path)),
                "{route} is in the table twice"
            );
            for segment in route.path.split('/') {
                let literal = |s: &str| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                };
                let parameter = segment
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .is_some_and(|name| {
                        !name.is_empty()
                            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    });
                assert!(
                    literal(segment) || parameter,
                    "{route}: `{segment}` is neither a lowercase name nor a {{parameter}}"
                );
            }
            assert!(route.max_body >= MAX_ENROL_BODY, "{route}");
            assert!(
                !route.request.is_empty()
                    && route.request.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{route}"
            );
        }
        let requests: HashSet<_> = NODE_ROUTES.iter().map(|r| r.request).collect();
        assert_eq!(
            requests.len(),
            NODE_ROUTES.len(),
            "one request type per route"
        );
    }

    #[test]
    fn no_two_routes_of_a_method_match_the_same_path() {
        let overlap = |a: &str, b: &str| {
            let (a, b): (Vec<_>, Vec<_>) = (a.split('/').collect(), b.split('/').collect());
            a.len() == b.len()
                && a.iter()
                    .zip(&b)
                    .all(|(x, y)| x == y || is_parameter(x) || is_parameter(y))
        };
        for (i, a) in NODE_ROUTES.iter().enumerate() {
            for b in &NODE_ROUTES[i + 1..] {
                assert!(
                    a.method != b.method || !overlap(a.path, b.path),
                    "{a} and {b} match the same requests"
                );
            }
        }
    }

    #[test]
    fn routes_match_their_own_paths_only() {
        let module = ModuleRequest::ROUTE;
        assert!(module.matches(&["modules", "abc"]));
        assert!(!module.matches(&["modules"]));
        assert!(!module.matches(&["modules", "abc", "x"]));
        assert!(CommitRequest::ROUTE.matches(&["state", "commit"]));
        assert!(!CommitRequest::ROUTE.matches(&["state"]));
        assert!(is_node_path(&["tail"]));
        assert!(!is_node_path(&["enrolment"]), "an admin route");
        assert_eq!(lookup("POST", &["tail"]), Some(TailBatch::ROUTE));
        assert_eq!(lookup("GET", &["tail"]), Some(TailInterestRequest::ROUTE));
        assert_eq!(lookup("GET", &["register"]), None);
        assert_eq!(CommitBatchRequest::ROUTE.max_body, MAX_BATCH_BODY);
        assert_eq!(HeartbeatRequest::ROUTE.request, "HeartbeatRequest");
    }

    /// What the router would hand the route for a request sent to `target` with `body`.
    fn arrive<R: NodeRoute>(request: &R) -> Result<R, ApiError> {
        let target = request.target();
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (&*target, None),
        };
        let decoded: Vec<_> = path
            .split('/')
            .map(|s| crate::path::decode(s).unwrap())
            .collect();
        let segments: Vec<&str> = decoded.iter().map(AsRef::as_ref).collect();
        assert!(R::ROUTE.matches(&segments), "{target}");
        R::from_wire(&Received {
            segments: &segments,
            query,
            body: &request.body(),
        })
    }

    #[test]
    fn requests_in_the_url_travel_as_they_always_have() {
        let watch = WatchRequest::new("0102", Duration::from_secs(2));
        assert_eq!(watch.target(), "watch?after=0102&wait_ms=2000");
        assert!(watch.body().is_empty());
        assert_eq!(watch.long_poll(), Some(Duration::from_secs(2)));
        assert_eq!(arrive(&watch).unwrap(), watch);
        let tail = TailInterestRequest::new(7, Duration::from_millis(250));
        assert_eq!(tail.target(), "tail?after=7&wait_ms=250");
        assert_eq!(arrive(&tail).unwrap(), tail);
        let module = ModuleRequest {
            content_id: "a/b c".into(),
        };
        assert_eq!(module.target(), "modules/a%2Fb%20c");
        assert_eq!(arrive(&module).unwrap(), module);
        assert_eq!(
            path("n 1", &module.target()),
            "/v1/nodes/n%201/modules/a%2Fb%20c"
        );
        assert_eq!(SyncRequest.target(), "sync");
        assert!(SyncRequest.body().is_empty() && CertificateRequest.body().is_empty());
        assert_eq!(arrive(&SyncRequest).unwrap(), SyncRequest);
    }

    #[test]
    fn bodies_are_decoded_exactly_naming_the_request_type() {
        let request = HeartbeatRequest { active_actors: 3 };
        assert_eq!(arrive(&request).unwrap(), request);
        let mut long = request.body();
        long.push(0);
        let received = Received {
            segments: &["heartbeat"],
            query: None,
            body: &long,
        };
        let e = HeartbeatRequest::from_wire(&received).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(
            e.message.contains("HeartbeatRequest") && e.message.contains("after its end"),
            "{}",
            e.message
        );
        let e = SyncRequest::from_wire(&Received {
            body: &[0xff],
            ..received
        })
        .unwrap_err();
        assert!(e.message.contains("SyncRequest"), "{}", e.message);
        let e = WatchRequest::from_wire(&Received {
            body: &[0xff],
            ..received
        })
        .unwrap_err();
        assert!(e.message.contains("WatchRequest"), "{}", e.message);
    }

    #[test]
    fn module_bytes_and_empty_answers_are_not_framed() {
        assert_eq!(
            ModuleRequest::encode_response(vec![0, 97, 115, 109]),
            [0, 97, 115, 109]
        );
        assert_eq!(ModuleRequest::decode_response(b"\0asm").unwrap(), b"\0asm");
        assert!(TailBatch::encode_response(()).is_empty());
        TailBatch::decode_response(&[]).unwrap();
    }
}
