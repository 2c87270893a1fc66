//! Node identity in the simulation: the fleet's issuer key, each node's own key and certificate,
//! every node message signed the way the real node signs it (`NodeCredentials::sign`), and
//! checked the way the real control plane (`authority::authenticate_node`) and the real node
//! (`Auth::authenticate_node`, on the node's own clock) check it — with the simulation's clocks,
//! and nonces from its seeded generator so a seed still replays exactly; and the clients' tokens,
//! which the real router checks.
//!
//! What a signature covers here: the recipient, the request's kind (as its path) and its content
//! (its `Debug` text as the body). Enrolment is not simulated: certificates are issued at the
//! start, for the whole run.

use std::sync::Arc;

use bytes::Bytes;
use latchkey_caps::node::{
    CONTROL_PLANE_AUDIENCE, NodeAuthError, NodeCertificate, NodeKey, NodeVerifier, Presented,
};
use latchkey_caps::{Capability, IssuerKey, NoRevocations, Rights, Token, TrustedKeys};
use latchkey_edge_node::auth::Auth;
use latchkey_edge_node::ports::Clock;
use latchkey_wire::identity::{self, NodeCredentials, Outgoing};
use rand::RngExt as _;
use rand::rngs::StdRng;

use super::{Micros, START_VERSION};

/// Wall-clock milliseconds at simulated time `now` (the store's versions are wall-clock
/// microseconds).
pub(crate) fn wall_ms(now: Micros) -> u64 {
    (START_VERSION + now) / 1000
}

/// The fleet's issuer key and the set of keys every verifier trusts.
pub(crate) struct Fleet {
    issuer: IssuerKey,
    pub(crate) trusted: TrustedKeys,
}

impl Fleet {
    pub(crate) fn new(rng: &mut StdRng) -> Fleet {
        let issuer = IssuerKey::from_seed(&rng.random());
        let trusted = [issuer.public()].into_iter().collect();
        Fleet { issuer, trusted }
    }

    /// Node `id`'s key, certified from `now` for a day (longer than any run).
    pub(crate) fn enrol(&self, id: &str, now: Micros, rng: &mut StdRng) -> Arc<NodeCredentials> {
        let key = NodeKey::from_seed(&rng.random());
        let from = wall_ms(now) / 1000;
        let cert = NodeCertificate::issue(&self.issuer, id, &key.public(), from, from + 86_400)
            .expect("a certificate for a simulated node");
        let credentials = Arc::new(NodeCredentials::new(id, key));
        credentials.set_certificate(cert);
        credentials
    }

    /// The control plane's verifier after a (re)start at `now`.
    pub(crate) fn control_plane_verifier(now: Micros) -> NodeVerifier {
        NodeVerifier::new(
            CONTROL_PLANE_AUDIENCE,
            std::num::NonZeroUsize::new(64).expect("nonzero"),
            100_000,
        )
        .started_at(wall_ms(now))
    }

    /// A node's token and signature checks after a (re)start, on its clock, trusting the
    /// fleet's key.
    pub(crate) fn node_auth(&self, id: &str, clock: Arc<dyn Clock>) -> Arc<Auth> {
        let auth = Auth::new(id, std::num::NonZeroUsize::new(64).expect("nonzero"), clock);
        let rejected = auth.set_trusted_keys(&[self.issuer.public().to_string()]);
        assert!(rejected.is_empty(), "the fleet key parses");
        Arc::new(auth)
    }

    /// A client's token: it may call any counter. (Its random block key plays no part in
    /// what the run does, so it need not come from the seed.)
    pub(crate) fn client_token(&self) -> Bytes {
        let capability = Capability::unrestricted()
            .actor_type(super::ACTOR_TYPE)
            .rights(Rights::INVOKE);
        let token =
            Token::mint(&self.issuer, &capability).expect("a client token for the simulation");
        Bytes::copy_from_slice(token.to_text().as_bytes())
    }
}

/// The headers a node's signature adds to a message.
#[derive(Clone)]
pub(crate) struct Signed(Vec<(&'static str, String)>);

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("signed")
    }
}

/// What a message's signature covers besides the recipient: a path and a body.
pub(crate) fn covered(path: String, content: &impl std::fmt::Debug) -> (String, Vec<u8>) {
    (path, format!("{content:?}").into_bytes())
}

/// Signs (`path`, `body`) for `audience` at the node's wall clock `wall_ms`.
pub(crate) fn sign(
    credentials: &NodeCredentials,
    audience: &str,
    (path, body): &(String, Vec<u8>),
    wall_ms: u64,
    rng: &mut StdRng,
) -> Signed {
    let bound = identity::bound_values(|_| None);
    Signed(credentials.sign_with_nonce(
        &Outgoing {
            audience,
            method: "POST",
            path,
            body,
            bound: &bound,
        },
        wall_ms,
        rng.random(),
    ))
}

impl Signed {
    fn header(&self, name: &'static str) -> Result<&str, NodeAuthError> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .ok_or(NodeAuthError::Missing(name))
    }

    /// Checks the message as the real recipient does: `verify` (the control plane's or a
    /// node's check) on the headers, then the body against the signed digest.
    fn check(
        &self,
        (path, body): &(String, Vec<u8>),
        verify: impl FnOnce(&Presented<'_>) -> Result<(), NodeAuthError>,
    ) -> Result<(), NodeAuthError> {
        let digest = identity::parse_content_digest(self.header(identity::CONTENT_SHA256)?)?;
        let bound = identity::bound_values(|_| None);
        verify(&Presented {
            certificate: self.header(identity::CERTIFICATE)?,
            signature: self.header(identity::SIGNATURE)?,
            method: "POST",
            path,
            content_sha256: digest,
            bound: &bound,
        })?;
        identity::check_body(body, &digest)
    }

    /// The control plane's check of a request claiming to come from `node_id`.
    pub(crate) fn check_at_control_plane(
        &self,
        covered: &(String, Vec<u8>),
        verifier: &NodeVerifier,
        fleet: &Fleet,
        node_id: &str,
        now: Micros,
    ) -> Result<(), NodeAuthError> {
        self.check(covered, |p| {
            latchkey_control_plane::authority::authenticate_node(
                verifier,
                &fleet.trusted,
                &NoRevocations,
                p,
                node_id,
                wall_ms(now),
            )
            .map(drop)
        })
    }

    /// A node's check (the real one, on the node's clock) of a call forwarded by `from`.
    pub(crate) fn check_at_node(
        &self,
        covered: &(String, Vec<u8>),
        auth: &Auth,
        from: &str,
    ) -> Result<(), NodeAuthError> {
        self.check(covered, |p| auth.authenticate_node(p, Some(from)).map(drop))
    }
}

/// A certificate for node `id` that the node made itself, with its own issuer key: what an
/// impostor can present.
pub(crate) fn impostor(id: &str, now: Micros, rng: &mut StdRng) -> Arc<NodeCredentials> {
    Fleet::new(rng).enrol(id, now, rng)
}
