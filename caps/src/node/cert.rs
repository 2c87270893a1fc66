//! [`NodeCertificate`]: the control plane's signed statement that a node id holds a key, for a
//! while. It is not a bearer credential: it authorizes nothing without a signature by that key.
//!
//! Binary layout (all integers big-endian): version `1` (1 byte), issuer key id (8), node public
//! key (32), issued-at and expires-at in Unix seconds (8 + 8), node id length (1) and the node id
//! (UTF-8), then the issuer's ed25519 signature (64) over a domain tag and everything before it.
//! Text form: `lkc1.` and the bytes in unpadded base64url.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer as _};
use sha2::{Digest, Sha256};

use super::error::NodeAuthError;
use crate::keys::{IssuerKey, KeyId, PublicKey, TrustedKeys};
use crate::revocation::{RevocationId, Revocations};

/// Prefix of a certificate's text form.
pub const CERT_TEXT_PREFIX: &str = "lkc1.";
const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"latchkey.node-certificate.v1\0";
const KEY_REVOCATION_DOMAIN: &[u8] = b"latchkey.node-key-revocation.v1\0";
/// Longest node id a certificate can name, in bytes.
const MAX_NODE_ID: usize = 128;
const FIXED: usize = 1 + 8 + 32 + 8 + 8 + 1;
const SIGNATURE: usize = 64;

/// A certificate, decoded (its signature is checked by [`NodeCertificate::verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCertificate {
    bytes: Vec<u8>,
    issuer: KeyId,
    node_key: PublicKey,
    issued_at: u64,
    expires_at: u64,
    node_id: String,
}

impl NodeCertificate {
    /// Certifies that `node_id` holds `node_key` from `issued_at` until `expires_at`.
    pub fn issue(
        issuer: &IssuerKey,
        node_id: &str,
        node_key: &PublicKey,
        issued_at: u64,
        expires_at: u64,
    ) -> Result<Self, NodeAuthError> {
        if node_id.is_empty() || node_id.len() > MAX_NODE_ID {
            return Err(NodeAuthError::Malformed(format!(
                "a node id is 1 to {MAX_NODE_ID} bytes"
            )));
        }
        if expires_at <= issued_at {
            return Err(NodeAuthError::Malformed(
                "a certificate must expire after it is issued".into(),
            ));
        }
        let mut bytes = Vec::with_capacity(FIXED + node_id.len() + SIGNATURE);
        bytes.push(VERSION);
        bytes.extend_from_slice(&issuer.id().to_bytes());
        bytes.extend_from_slice(&node_key.to_bytes());
        bytes.extend_from_slice(&issued_at.to_be_bytes());
        bytes.extend_from_slice(&expires_at.to_be_bytes());
        bytes.push(u8::try_from(node_id.len()).expect("checked above"));
        bytes.extend_from_slice(node_id.as_bytes());
        let signature = issuer.signing_key().sign(&signed_message(&bytes));
        bytes.extend_from_slice(&signature.to_bytes());
        Self::from_bytes(&bytes)
    }

    /// Decodes the binary form (strictly: no trailing bytes, a valid key, a UTF-8 id).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, NodeAuthError> {
        let bad = |what: &str| NodeAuthError::Malformed(format!("node certificate: {what}"));
        if bytes.len() < FIXED + 1 + SIGNATURE || bytes.len() > FIXED + MAX_NODE_ID + SIGNATURE {
            return Err(bad("wrong length"));
        }
        if bytes[0] != VERSION {
            return Err(bad("unknown version"));
        }
        let array =
            |at: usize| -> [u8; 8] { bytes[at..at + 8].try_into().expect("length checked") };
        let issuer = KeyId::from_bytes(array(1));
        let key: [u8; 32] = bytes[9..41].try_into().expect("length checked");
        let node_key = PublicKey::from_bytes(&key).map_err(|e| bad(&e.to_string()))?;
        let issued_at = u64::from_be_bytes(array(41));
        let expires_at = u64::from_be_bytes(array(49));
        let id_len = usize::from(bytes[57]);
        if id_len == 0 || bytes.len() != FIXED + id_len + SIGNATURE {
            return Err(bad("node id length does not match"));
        }
        let node_id = std::str::from_utf8(&bytes[FIXED..FIXED + id_len])
            .map_err(|_| bad("node id is not UTF-8"))?
            .to_owned();
        Ok(NodeCertificate {
            bytes: bytes.to_vec(),
            issuer,
            node_key,
            issued_at,
            expires_at,
            node_id,
        })
    }

    /// Decodes the text form (`lkc1.…`).
    pub fn from_text(text: &str) -> Result<Self, NodeAuthError> {
        let body = text.trim().strip_prefix(CERT_TEXT_PREFIX).ok_or_else(|| {
            NodeAuthError::Malformed(format!(
                "a node certificate starts with `{CERT_TEXT_PREFIX}`"
            ))
        })?;
        if body.len() > 4 * (FIXED + MAX_NODE_ID + SIGNATURE) / 3 + 4 {
            return Err(NodeAuthError::Malformed(
                "node certificate: too long".into(),
            ));
        }
        let bytes = B64
            .decode(body)
            .map_err(|_| NodeAuthError::Malformed("node certificate: not base64url".into()))?;
        Self::from_bytes(&bytes)
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        format!("{CERT_TEXT_PREFIX}{}", B64.encode(&self.bytes))
    }

    /// Checks the issuer's signature and trust, the validity window at `now` (Unix seconds), and
    /// that the certified key is not revoked.
    pub fn verify(
        &self,
        trusted: &TrustedKeys,
        revoked: &impl Revocations,
        now: u64,
    ) -> Result<(), NodeAuthError> {
        let key = trusted
            .get(&self.issuer)
            .ok_or(NodeAuthError::UntrustedIssuer(self.issuer))?;
        let (body, signature) = self.bytes.split_at(self.bytes.len() - SIGNATURE);
        let signature = Signature::from_bytes(signature.try_into().expect("64 bytes"));
        key.verify_strict(&signed_message(body), &signature)
            .map_err(|_| NodeAuthError::BadCertificateSignature)?;
        self.check_window(now)?;
        if revoked.is_revoked(&Self::key_revocation_id(&self.node_key)) {
            return Err(NodeAuthError::NodeRevoked {
                node_id: self.node_id.clone(),
            });
        }
        Ok(())
    }

    /// Whether `now` (Unix seconds) is within the validity window.
    pub fn check_window(&self, now: u64) -> Result<(), NodeAuthError> {
        if now < self.issued_at {
            return Err(NodeAuthError::CertificateNotYetValid {
                issued_at: self.issued_at,
                now,
            });
        }
        if now >= self.expires_at {
            return Err(NodeAuthError::CertificateExpired {
                node_id: self.node_id.clone(),
                expires_at: self.expires_at,
                now,
            });
        }
        Ok(())
    }

    /// The revocation id that revokes every certificate of `node_key` (how a node is removed).
    pub fn key_revocation_id(node_key: &PublicKey) -> RevocationId {
        let digest = Sha256::new()
            .chain_update(KEY_REVOCATION_DOMAIN)
            .chain_update(node_key.to_bytes())
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        RevocationId::from_bytes(id)
    }

    /// The certified node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The certified key.
    pub fn node_key(&self) -> &PublicKey {
        &self.node_key
    }

    /// The issuer key that signed it.
    pub fn issuer(&self) -> KeyId {
        self.issuer
    }

    /// Valid from (Unix seconds).
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// Valid until, exclusive (Unix seconds).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The binary form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    [DOMAIN, body].concat()
}
