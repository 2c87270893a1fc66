//! Node authentication at the control plane: every node route but `enrol` needs a request
//! signed by an enrolled node's key for audience `control-plane`, carrying a certificate for the
//! node id in the path; `enrol` needs a single-purpose enrolment capability and a signature by
//! the key it enrols. Certificates are short-lived; `certificate` renews them.

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use latchkey_caps::node::{NodeAuthError, NodeCertificate, Presented, VerifiedNode};
use latchkey_caps::{PublicKey, Request as Access, Rights};
use latchkey_wire::identity::{self, CERTIFICATE, CONTENT_SHA256, SIGNATURE};
use latchkey_wire::node::{CertificateResponse, EnrolRequest};
use latchkey_wire::nodeapi::{NodeRoute, Received};
use latchkey_wire::{ApiError, ErrorCode};

use super::{Reply, bearer, blocking, read_body};
use crate::ControlPlane;

/// The audience an enrolment capability for `node_id` names.
pub(crate) fn enrolment_audience(node_id: &str) -> String {
    format!("enrol:{node_id}")
}

/// A node-authentication failure as an API error: 401 naming the reason (503 when retrying a
/// freshly signed request can help), 403 for a node acting for another.
pub(super) fn node_auth_error(e: &NodeAuthError) -> ApiError {
    ApiError::from(e)
}

/// A request whose headers verified: who signed it, and the body digest it signed.
pub(super) struct Signed {
    /// The certified node.
    pub(super) node: VerifiedNode,
    digest: [u8; 32],
}

impl Signed {
    /// Checks the body read afterwards against the signed digest.
    pub(super) fn check_body(&self, body: &[u8]) -> Result<(), ApiError> {
        identity::check_body(body, &self.digest).map_err(|e| node_auth_error(&e))
    }
}

fn header<'a, B>(req: &'a Request<B>, name: &'static str) -> Result<&'a str, NodeAuthError> {
    req.headers()
        .get(name)
        .ok_or(NodeAuthError::Missing(name))?
        .to_str()
        .map_err(|_| NodeAuthError::Malformed(format!("`{name}` is not ASCII")))
}

/// The parts of `req` a node signature covers, with `certificate` and `signature`.
fn presented<'a, B>(
    req: &'a Request<B>,
    certificate: &'a str,
    signature: &'a str,
    digest: [u8; 32],
    bound: &'a [(&'a str, &'a [u8])],
) -> Presented<'a> {
    Presented {
        certificate,
        signature,
        method: req.method().as_str(),
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        content_sha256: digest,
        bound,
    }
}

/// Verifies that `req` was signed by node `node_id` (from the headers alone).
pub(super) fn authenticate<B>(
    cp: &ControlPlane,
    req: &Request<B>,
    node_id: &str,
) -> Result<Signed, ApiError> {
    let check = || -> Result<Signed, NodeAuthError> {
        identity::check_single(|name| req.headers().get_all(name).iter().count())?;
        let certificate = header(req, CERTIFICATE)?;
        let signature = header(req, SIGNATURE)?;
        let digest = identity::parse_content_digest(header(req, CONTENT_SHA256)?)?;
        let bound = identity::bound_values(|n| req.headers().get(n).map(|v| v.as_bytes()));
        let node = cp.authority.verify_node(
            &presented(req, certificate, signature, digest, &bound),
            node_id,
        )?;
        Ok(Signed { node, digest })
    };
    check().map_err(|e| node_auth_error(&e))
}

/// `POST /v1/nodes/{id}/enrol`: checks the enrolment capability (right `node` only, audience
/// `enrol:{id}`, expiring, fleet-wide), reads the key, checks the request's signature by that
/// key, records the key as the node's (using the capability up) and answers a certificate.
pub(super) async fn enrol(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    node_id: &str,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    let audience = enrolment_audience(node_id);
    identity::check_single(|name| req.headers().get_all(name).iter().count())
        .map_err(|e| node_auth_error(&e))?;
    let token = bearer(&req)?;
    let access = Access::new(Rights::NODE).presented_by(&audience);
    let verified = cp
        .authority
        .check_enrolment(&token, &access)
        .map_err(ApiError::from)?;
    let cap = verified.capability();
    if cap.rights != Some(Rights::NODE)
        || cap.audience.as_deref() != Some(audience.as_str())
        || cap.expires_at.is_none()
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "forbidden: not an enrolment capability for node `{node_id}` (one grants only the `node` right, names audience `{audience}` and expires); make one with `latchkey node-enrolment {node_id}`"
            ),
        ));
    }
    let signature = header(&req, SIGNATURE)
        .map_err(|e| node_auth_error(&e))?
        .to_owned();
    let digest = header(&req, CONTENT_SHA256)
        .and_then(identity::parse_content_digest)
        .map_err(|e| node_auth_error(&e))?;
    let (parts, body) = req.into_parts();
    let body = read_body(body, EnrolRequest::MAX_BODY).await?;
    identity::check_body(&body, &digest).map_err(|e| node_auth_error(&e))?;
    let request = EnrolRequest::from_wire(&Received {
        segments: rest,
        query: parts.uri.query(),
        body: &body,
    })?;
    let key: PublicKey = request
        .public_key
        .parse()
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("the key to enrol: {e}")))?;
    let req = Request::from_parts(parts, ());
    let bound = identity::bound_values(|n| req.headers().get(n).map(|v| v.as_bytes()));
    cp.authority
        .verify_node_key(
            &key,
            &signature,
            &presented(&req, "", &signature, digest, &bound),
        )
        .map_err(|e| node_auth_error(&e))?;
    let (registry, node, token_id, key_text) = (
        Arc::clone(&cp.registry),
        node_id.to_owned(),
        verified.token_id().to_string(),
        key.to_string(),
    );
    blocking(move || registry.enrol_node(&node, &key_text, &token_id)).await?;
    // The capability is used up, and a key this node had before is revoked: both take effect
    // here now and on every node at its next feed event.
    cp.authority
        .refresh_revocations(&cp.registry)
        .map_err(|e| e.to_api())?;
    cp.feed_changed();
    let certificate = cp
        .authority
        .certify(node_id, &key, cp.config().node_certificate_ttl)
        .map_err(|e| e.to_api())?;
    tracing::info!(node = node_id, key = %key.id(), "node enrolled");
    Ok(super::node::reply::<EnrolRequest>(CertificateResponse {
        expires_at: certificate.expires_at(),
        certificate: certificate.to_text(),
    }))
}

/// `POST /v1/nodes/{id}/certificate`: a fresh certificate, if the key that signed the request is
/// still the one the node is enrolled with.
pub(super) async fn renew(
    cp: &Arc<ControlPlane>,
    node_id: &str,
    verified: &VerifiedNode,
) -> Result<NodeCertificate, ApiError> {
    let (registry, node) = (Arc::clone(&cp.registry), node_id.to_owned());
    let identity = blocking(move || registry.node_identity(&node)).await?;
    let enrolled = identity.is_some_and(|i| i.public_key == verified.node_key.to_string());
    if !enrolled {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "forbidden: node `{node_id}` is no longer enrolled with this key; enrol it again"
            ),
        ));
    }
    cp.authority
        .certify(
            node_id,
            &verified.node_key,
            cp.config().node_certificate_ttl,
        )
        .map_err(|e| e.to_api())
}
