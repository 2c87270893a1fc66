//! Node identity: certificates, signed requests, freshness and replay, each refusal naming why.

use std::collections::HashSet;
use std::num::NonZeroUsize;

use latchkey_caps::node::{
    NodeAuthError, NodeCertificate, NodeKey, NodeVerifier, Presented, ReplayGuard, SignedRequest,
    content_digest, node_audience,
};
use latchkey_caps::{IssuerKey, NoRevocations, RevocationId, TrustedKeys};

const NOW: u64 = 1_800_000_000;
const NOW_MS: u64 = NOW * 1000;

struct Fleet {
    issuer: IssuerKey,
    trusted: TrustedKeys,
    key: NodeKey,
    cert: NodeCertificate,
}

fn fleet() -> Fleet {
    let issuer = IssuerKey::generate();
    let trusted: TrustedKeys = [issuer.public()].into_iter().collect();
    let key = NodeKey::generate();
    let cert = NodeCertificate::issue(&issuer, "node-a", &key.public(), NOW - 10, NOW + 3600)
        .expect("issue");
    Fleet {
        issuer,
        trusted,
        key,
        cert,
    }
}

fn verifier(audience: &str) -> NodeVerifier {
    NodeVerifier::new(audience, NonZeroUsize::new(16).unwrap(), 1000)
}

/// A request from node-a to `audience`, signed at `ts`.
fn sign(f: &Fleet, audience: &str, path: &str, body: &[u8], ts: u64) -> (String, [u8; 32]) {
    let digest = content_digest(body);
    let request = SignedRequest {
        audience,
        method: "POST",
        path,
        timestamp_ms: ts,
        nonce: latchkey_caps::node::fresh_nonce(),
        content_sha256: digest,
        bound: &[("authorization", b"Bearer t")],
    };
    (f.key.sign_header(&request), digest)
}

fn presented<'a>(cert: &'a str, sig: &'a str, path: &'a str, digest: [u8; 32]) -> Presented<'a> {
    Presented {
        certificate: cert,
        signature: sig,
        method: "POST",
        path,
        content_sha256: digest,
        bound: &[("authorization", b"Bearer t")],
    }
}

#[test]
fn a_certificate_round_trips_and_verifies_only_under_its_issuer() {
    let f = fleet();
    let text = f.cert.to_text();
    let back = NodeCertificate::from_text(&text).unwrap();
    assert_eq!(back, f.cert);
    assert_eq!(back.node_id(), "node-a");
    back.verify(&f.trusted, &NoRevocations, NOW).unwrap();
    let other: TrustedKeys = [IssuerKey::generate().public()].into_iter().collect();
    assert!(matches!(
        back.verify(&other, &NoRevocations, NOW),
        Err(NodeAuthError::UntrustedIssuer(_))
    ));
    let err = back
        .verify(&f.trusted, &NoRevocations, NOW + 3600)
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn an_altered_certificate_fails_its_signature() {
    let f = fleet();
    let mut bytes = f.cert.as_bytes().to_vec();
    // Change the last byte of the node id: `node-a` becomes `node-b`.
    let at = bytes.len() - 65;
    bytes[at] = b'b';
    let forged = NodeCertificate::from_bytes(&bytes).unwrap();
    assert_eq!(forged.node_id(), "node-b");
    assert_eq!(
        forged.verify(&f.trusted, &NoRevocations, NOW),
        Err(NodeAuthError::BadCertificateSignature)
    );
}

#[test]
fn revoking_a_node_key_revokes_its_certificates() {
    let f = fleet();
    let revoked: HashSet<RevocationId> =
        [NodeCertificate::key_revocation_id(&f.key.public())].into();
    let err = f.cert.verify(&f.trusted, &revoked, NOW).unwrap_err();
    assert_eq!(
        err,
        NodeAuthError::NodeRevoked {
            node_id: "node-a".into()
        }
    );
    // Also when the certificate was cached by an earlier request.
    let v = verifier("control-plane");
    let cert = f.cert.to_text();
    let (sig, digest) = sign(&f, "control-plane", "/v1/x", b"body", NOW_MS);
    v.verify(
        &presented(&cert, &sig, "/v1/x", digest),
        &f.trusted,
        &NoRevocations,
        NOW_MS,
    )
    .unwrap();
    let (sig, digest) = sign(&f, "control-plane", "/v1/x", b"body", NOW_MS);
    let err = v
        .verify(
            &presented(&cert, &sig, "/v1/x", digest),
            &f.trusted,
            &revoked,
            NOW_MS,
        )
        .unwrap_err();
    assert!(matches!(err, NodeAuthError::NodeRevoked { .. }), "{err}");
}

#[test]
fn a_signed_request_verifies_once_for_its_audience_only() {
    let f = fleet();
    let cert = f.cert.to_text();
    let (sig, digest) = sign(&f, &node_audience("b"), "/v1/actors/c/k/inc", b"{}", NOW_MS);
    let p = presented(&cert, &sig, "/v1/actors/c/k/inc", digest);
    // Captured and replayed to another recipient: the signature names node b only.
    let elsewhere = verifier(&node_audience("c"));
    assert_eq!(
        elsewhere.verify(&p, &f.trusted, &NoRevocations, NOW_MS),
        Err(NodeAuthError::BadSignature)
    );
    let b = verifier(&node_audience("b"));
    let who = b.verify(&p, &f.trusted, &NoRevocations, NOW_MS).unwrap();
    assert_eq!(who.node_id, "node-a");
    // Replayed to the same recipient.
    assert_eq!(
        b.verify(&p, &f.trusted, &NoRevocations, NOW_MS + 5),
        Err(NodeAuthError::Replayed)
    );
}

#[test]
fn any_change_to_a_signed_request_fails_it() {
    let f = fleet();
    let cert = f.cert.to_text();
    let v = verifier("control-plane");
    let (sig, digest) = sign(
        &f,
        "control-plane",
        "/v1/nodes/node-a/heartbeat",
        b"1",
        NOW_MS,
    );
    let base = presented(&cert, &sig, "/v1/nodes/node-a/heartbeat", digest);
    let other_path = Presented {
        path: "/v1/nodes/node-a/register",
        ..base
    };
    let other_body = Presented {
        content_sha256: content_digest(b"2"),
        ..base
    };
    let other_header = Presented {
        bound: &[("authorization", b"Bearer other")],
        ..base
    };
    let other_method = Presented {
        method: "GET",
        ..base
    };
    for changed in [other_path, other_body, other_header, other_method] {
        assert_eq!(
            v.verify(&changed, &f.trusted, &NoRevocations, NOW_MS),
            Err(NodeAuthError::BadSignature)
        );
    }
    v.verify(&base, &f.trusted, &NoRevocations, NOW_MS).unwrap();
}

#[test]
fn a_stale_request_is_refused_naming_the_clock() {
    let f = fleet();
    let cert = f.cert.to_text();
    let (sig, digest) = sign(&f, "control-plane", "/p", b"", NOW_MS - 60_000);
    let err = verifier("control-plane")
        .verify(
            &presented(&cert, &sig, "/p", digest),
            &f.trusted,
            &NoRevocations,
            NOW_MS,
        )
        .unwrap_err();
    assert!(matches!(err, NodeAuthError::Stale { .. }));
    assert!(err.to_string().contains("stale or replayed"), "{err}");
}

#[test]
fn a_request_signed_by_another_key_than_certified_fails() {
    let f = fleet();
    let thief = NodeKey::generate();
    let cert = f.cert.to_text();
    let digest = content_digest(b"");
    let request = SignedRequest {
        audience: "control-plane",
        method: "POST",
        path: "/p",
        timestamp_ms: NOW_MS,
        nonce: [7; 16],
        content_sha256: digest,
        bound: &[("authorization", b"Bearer t")],
    };
    let sig = thief.sign_header(&request);
    assert_eq!(
        verifier("control-plane").verify(
            &presented(&cert, &sig, "/p", digest),
            &f.trusted,
            &NoRevocations,
            NOW_MS
        ),
        Err(NodeAuthError::BadSignature)
    );
    // The same request proves possession of the thief's own key, for enrolment.
    verifier("control-plane")
        .verify_with_key(
            &thief.public(),
            &sig,
            &presented("", &sig, "/p", digest),
            NOW_MS,
        )
        .unwrap();
    let _ = f.issuer;
}

#[test]
fn the_replay_guard_forgets_only_stale_nonces_and_is_bounded() {
    let mut guard = ReplayGuard::new(2);
    guard.admit([1; 16], 0).unwrap();
    guard.admit([2; 16], 1).unwrap();
    assert_eq!(guard.admit([3; 16], 2), Err(NodeAuthError::ReplayCacheFull));
    assert!(NodeAuthError::ReplayCacheFull.is_retryable());
    assert_eq!(guard.admit([1; 16], 2), Err(NodeAuthError::Replayed));
    // Once a request with that nonce would be stale anyway, it is forgotten.
    let later = 2 * latchkey_caps::node::MAX_SKEW_MS;
    guard.admit([3; 16], later).unwrap();
    assert_eq!(guard.len(), 2);
}

#[test]
fn node_keys_round_trip_through_their_secret_text() {
    let key = NodeKey::generate();
    let text = key.to_secret_text();
    assert!(text.starts_with("lk-node-v1:"));
    let back = NodeKey::from_secret_text(&text).unwrap();
    assert_eq!(back.public(), key.public());
    assert!(NodeKey::from_secret_text("lk-issuer-v1:AAAA").is_err());
}

#[test]
fn a_request_signed_before_the_recipient_started_is_refused_retryably() {
    let f = fleet();
    let cert = f.cert.to_text();
    let (sig, digest) = sign(&f, "control-plane", "/p", b"", NOW_MS - 1000);
    let v = verifier("control-plane").started_at(NOW_MS - 500);
    let err = v
        .verify(
            &presented(&cert, &sig, "/p", digest),
            &f.trusted,
            &NoRevocations,
            NOW_MS,
        )
        .unwrap_err();
    assert!(matches!(err, NodeAuthError::BeforeStart { .. }), "{err}");
    assert!(err.is_retryable());
    let (sig, digest) = sign(&f, "control-plane", "/p", b"", NOW_MS);
    v.verify(
        &presented(&cert, &sig, "/p", digest),
        &f.trusted,
        &NoRevocations,
        NOW_MS,
    )
    .unwrap();
}
