//! Requests to the control plane signed as a node signs them, below the typed client: for tests
//! of what the node API does with a signature that is right, replayed, altered or misplaced.

use latchkey_caps::node::CONTROL_PLANE_AUDIENCE;
use latchkey_wire::identity::{self, NodeCredentials, Outgoing};

/// The headers `credentials` sign `method path` with `body` with for the control plane, now;
/// with `bearer`, its `Authorization` header is bound by the signature and included (what
/// enrolment sends).
pub fn signed_headers(
    credentials: &NodeCredentials,
    bearer: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let authorization = bearer.map(|t| format!("Bearer {t}"));
    let bound = identity::bound_values(|name| {
        (name == "authorization")
            .then_some(authorization.as_deref())
            .flatten()
            .map(str::as_bytes)
    });
    let outgoing = Outgoing {
        audience: CONTROL_PLANE_AUDIENCE,
        method,
        path,
        body,
        bound: &bound,
    };
    let mut headers = credentials.sign(&outgoing, now_ms());
    headers.extend(authorization.map(|a| ("authorization", a)));
    headers
}

/// Milliseconds since the Unix epoch, by this machine's clock (what a node signs with).
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds fit in 64 bits")
}
