//! The token's binary layout: a strict reader/writer for the envelope and for block payloads.
//!
//! ```text
//! token   = version:u8(=1) key_id:[8] count:u8(1..=8) block{count} proof      (no trailing bytes)
//! block   = len:u16le payload[len] signature:[64]
//! proof   = 0x00 secret:[32]            open: the secret of the last block's key
//!         | 0x01 seal:[64]              sealed: a signature by that key; cannot be extended
//! payload = next_key:[32] field*        fields in strictly increasing tag order, each at most once
//! field   = 0x01 len:u8 actor_type | 0x02 len:u16le exact_key | 0x03 len:u16le key_prefix
//!         | 0x04 count:u8 (len:u8 method){count}   methods strictly ascending (a set)
//!         | 0x05 rights:u8 | 0x06 not_before:u64le | 0x07 expires_at:u64le | 0x08 len:u8 audience
//! ```
//!
//! The encoding is canonical (one byte string per value), unknown tags and bits are rejected, and
//! decoding borrows the exact received bytes so signatures are checked over what arrived.

use std::collections::BTreeSet;
use std::fmt;

use crate::capability::{Capability, Field, KeyScope, Rights};
use crate::error::{DecodeError, VerifyError};
use crate::keys::KeyId;

/// Format version written in the first byte.
pub(crate) const VERSION: u8 = 1;
/// Most blocks a token may have; longer tokens are rejected before any signature work.
pub const MAX_BLOCKS: usize = 8;
/// Largest binary token, in bytes; larger tokens are rejected before any signature work.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Longest actor type, method name or audience, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest actor key or key prefix, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Most method names one block may list.
pub const MAX_METHODS: usize = 64;

const TAG_ACTOR_TYPE: u8 = 0x01;
const TAG_KEY_EXACT: u8 = 0x02;
const TAG_KEY_PREFIX: u8 = 0x03;
const TAG_METHODS: u8 = 0x04;
const TAG_RIGHTS: u8 = 0x05;
const TAG_NOT_BEFORE: u8 = 0x06;
const TAG_EXPIRES_AT: u8 = 0x07;
const TAG_AUDIENCE: u8 = 0x08;

const PROOF_SECRET: u8 = 0x00;
const PROOF_SEAL: u8 = 0x01;

fn err(offset: usize, problem: impl fmt::Display) -> DecodeError {
    DecodeError {
        offset,
        problem: problem.to_string(),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(err(
                self.pos,
                format_args!("truncated {what} (needs {n} bytes, {} left)", rest.len()),
            ));
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<&'a [u8; N], DecodeError> {
        Ok(self
            .take(N, what)?
            .try_into()
            .expect("take returned N bytes"))
    }

    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(*self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(*self.array(what)?))
    }

    /// A UTF-8 string of `len` bytes, `1..=max` long.
    fn string(&mut self, len: usize, max: usize, what: &str) -> Result<String, DecodeError> {
        let at = self.pos;
        if len == 0 || len > max {
            return Err(err(
                at,
                format_args!("{what} must be 1 to {max} bytes, not {len}"),
            ));
        }
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| err(at, format_args!("{what} is not UTF-8")))
    }

    fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// One block as received: borrowed slices of the token bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawBlock<'a> {
    /// The whole block (length, payload, signature): what prefix hashes cover.
    pub(crate) encoded: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) signature: &'a [u8; 64],
}

/// The token's final proof of possession.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawProof<'a> {
    Secret(&'a [u8; 32]),
    Seal(&'a [u8; 64]),
}

/// A structurally valid token, borrowed.
#[derive(Clone, Debug)]
pub(crate) struct Layout<'a> {
    pub(crate) key_id: KeyId,
    pub(crate) blocks: Vec<RawBlock<'a>>,
    pub(crate) proof: RawProof<'a>,
}

/// Decodes the envelope. Cheap and signature-free: size and block-count limits are enforced here,
/// before any cryptography.
pub(crate) fn decode_token(bytes: &[u8]) -> Result<Layout<'_>, VerifyError> {
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::TooLarge {
            size: bytes.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let mut r = Reader::new(bytes);
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(VerifyError::UnsupportedVersion(version));
    }
    let key_id = KeyId::from_bytes(*r.array("key id")?);
    let count = r.u8("block count")? as usize;
    if count == 0 {
        return Err(err(r.pos - 1, "a token has at least one block").into());
    }
    if count > MAX_BLOCKS {
        return Err(VerifyError::TooManyBlocks {
            count,
            max: MAX_BLOCKS,
        });
    }
    let mut blocks = Vec::with_capacity(count);
    for _ in 0..count {
        let start = r.pos;
        let len = r.u16("block length")? as usize;
        let payload = r.take(len, "block payload")?;
        let signature = r.array("block signature")?;
        blocks.push(RawBlock {
            encoded: &bytes[start..r.pos],
            payload,
            signature,
        });
    }
    let proof = match r.u8("proof tag")? {
        PROOF_SECRET => RawProof::Secret(r.array("proof secret")?),
        PROOF_SEAL => RawProof::Seal(r.array("seal signature")?),
        tag => return Err(err(r.pos - 1, format_args!("unknown proof tag {tag:#04x}")).into()),
    };
    if !r.done() {
        return Err(err(r.pos, "trailing bytes after the proof").into());
    }
    Ok(Layout {
        key_id,
        blocks,
        proof,
    })
}

/// Writes a token envelope from already-signed blocks `(payload, signature)`.
pub(crate) fn encode_token<'a>(
    key_id: KeyId,
    blocks: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8; 64])>,
    proof: RawProof<'_>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(VERSION);
    out.extend_from_slice(&key_id.to_bytes());
    out.push(u8::try_from(blocks.len()).expect("block count checked by caller"));
    for (payload, signature) in blocks {
        let len = u16::try_from(payload.len()).expect("payload size checked by caller");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(signature);
    }
    match proof {
        RawProof::Secret(secret) => {
            out.push(PROOF_SECRET);
            out.extend_from_slice(secret);
        }
        RawProof::Seal(seal) => {
            out.push(PROOF_SEAL);
            out.extend_from_slice(seal);
        }
    }
    out
}

/// A decoded block payload.
#[derive(Clone, Debug)]
pub(crate) struct Payload {
    pub(crate) next_key: [u8; 32],
    pub(crate) caveats: Capability,
}

pub(crate) fn decode_payload(bytes: &[u8]) -> Result<Payload, DecodeError> {
    let mut r = Reader::new(bytes);
    let next_key = *r.array("next public key")?;
    let mut caveats = Capability::default();
    let mut last_tag = 0u8;
    while !r.done() {
        let at = r.pos;
        let tag = r.u8("field tag")?;
        if tag <= last_tag {
            return Err(err(
                at,
                format_args!("field tag {tag:#04x} out of order or repeated"),
            ));
        }
        last_tag = tag;
        match tag {
            TAG_ACTOR_TYPE => {
                let len = r.u8("actor type length")? as usize;
                caveats.actor_type = Some(r.string(len, MAX_NAME_BYTES, "actor type")?);
            }
            TAG_KEY_EXACT | TAG_KEY_PREFIX => {
                if caveats.keys.is_some() {
                    return Err(err(at, "a block sets both an exact key and a key prefix"));
                }
                let len = r.u16("key length")? as usize;
                let key = r.string(len, MAX_KEY_BYTES, "key")?;
                caveats.keys = Some(if tag == TAG_KEY_EXACT {
                    KeyScope::Exact(key)
                } else {
                    KeyScope::Prefix(key)
                });
            }
            TAG_METHODS => {
                let count = r.u8("method count")? as usize;
                if count > MAX_METHODS {
                    return Err(err(
                        at,
                        format_args!("{count} methods; at most {MAX_METHODS}"),
                    ));
                }
                let mut methods = BTreeSet::new();
                let mut previous: Option<String> = None;
                for _ in 0..count {
                    let m_at = r.pos;
                    let len = r.u8("method length")? as usize;
                    let method = r.string(len, MAX_NAME_BYTES, "method name")?;
                    if previous.as_ref().is_some_and(|p| *p >= method) {
                        return Err(err(m_at, "method names must be sorted and unique"));
                    }
                    previous = Some(method.clone());
                    methods.insert(method);
                }
                caveats.methods = Some(methods);
            }
            TAG_RIGHTS => {
                let bits = r.u8("rights")?;
                caveats.rights =
                    Some(Rights::from_bits(bits).ok_or_else(|| {
                        err(at + 1, format_args!("unknown rights bits {bits:#04x}"))
                    })?);
            }
            TAG_NOT_BEFORE => caveats.not_before = Some(r.u64("not-before")?),
            TAG_EXPIRES_AT => caveats.expires_at = Some(r.u64("expiry")?),
            TAG_AUDIENCE => {
                let len = r.u8("audience length")? as usize;
                caveats.audience = Some(r.string(len, MAX_NAME_BYTES, "audience")?);
            }
            _ => return Err(err(at, format_args!("unknown field tag {tag:#04x}"))),
        }
    }
    Ok(Payload { next_key, caveats })
}

/// Why a capability cannot be written into a block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} is invalid: {problem}")]
pub struct FieldError {
    /// The offending field.
    pub field: Field,
    /// What is wrong with it.
    pub problem: String,
}

fn check_len(field: Field, value: &str, max: usize) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > max {
        return Err(FieldError {
            field,
            problem: format!("must be 1 to {max} bytes, not {}", value.len()),
        });
    }
    Ok(())
}

/// Encodes a block payload. The inverse of [`decode_payload`].
pub(crate) fn encode_payload(
    next_key: &[u8; 32],
    caveats: &Capability,
) -> Result<Vec<u8>, FieldError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(next_key);
    if let Some(t) = &caveats.actor_type {
        check_len(Field::ActorType, t, MAX_NAME_BYTES)?;
        out.push(TAG_ACTOR_TYPE);
        out.push(t.len() as u8);
        out.extend_from_slice(t.as_bytes());
    }
    if let Some(scope) = &caveats.keys {
        let (tag, key) = match scope {
            KeyScope::Exact(k) => (TAG_KEY_EXACT, k),
            KeyScope::Prefix(p) => (TAG_KEY_PREFIX, p),
        };
        check_len(Field::Keys, key, MAX_KEY_BYTES)?;
        out.push(tag);
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
    }
    if let Some(methods) = &caveats.methods {
        if methods.len() > MAX_METHODS {
            return Err(FieldError {
                field: Field::Methods,
                problem: format!("{} methods; at most {MAX_METHODS}", methods.len()),
            });
        }
        out.push(TAG_METHODS);
        out.push(methods.len() as u8);
        for m in methods {
            check_len(Field::Methods, m, MAX_NAME_BYTES)?;
            out.push(m.len() as u8);
            out.extend_from_slice(m.as_bytes());
        }
    }
    if let Some(rights) = caveats.rights {
        out.extend_from_slice(&[TAG_RIGHTS, rights.bits()]);
    }
    if let Some(t) = caveats.not_before {
        out.push(TAG_NOT_BEFORE);
        out.extend_from_slice(&t.to_le_bytes());
    }
    if let Some(t) = caveats.expires_at {
        out.push(TAG_EXPIRES_AT);
        out.extend_from_slice(&t.to_le_bytes());
    }
    if let Some(a) = &caveats.audience {
        check_len(Field::Audience, a, MAX_NAME_BYTES)?;
        out.push(TAG_AUDIENCE);
        out.push(a.len() as u8);
        out.extend_from_slice(a.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Capability {
        Capability::unrestricted()
            .actor_type("counter")
            .key_prefix("user/")
            .methods(["get", "inc"])
            .rights(Rights::INVOKE | Rights::READ_STATE)
            .not_before(5)
            .expires_at(99)
            .audience("node-1")
    }

    #[test]
    fn payload_round_trips_canonically() {
        let bytes = encode_payload(&[3; 32], &full()).unwrap();
        let decoded = decode_payload(&bytes).unwrap();
        assert_eq!(decoded.next_key, [3; 32]);
        assert_eq!(decoded.caveats, full());
        assert_eq!(encode_payload(&[3; 32], &decoded.caveats).unwrap(), bytes);
        let empty = encode_payload(&[0; 32], &Capability::unrestricted()).unwrap();
        assert_eq!(empty.len(), 32);
    }

    #[test]
    fn payload_rejects_non_canonical_forms() {
        let mut key = vec![0u8; 32];
        // Repeated tag.
        let mut twice = key.clone();
        twice.extend_from_slice(&[TAG_RIGHTS, 1, TAG_RIGHTS, 1]);
        assert!(
            decode_payload(&twice)
                .unwrap_err()
                .problem
                .contains("out of order")
        );
        // Both key forms.
        let mut both = key.clone();
        both.extend_from_slice(&[TAG_KEY_EXACT, 1, 0, b'a', TAG_KEY_PREFIX, 1, 0, b'a']);
        assert!(decode_payload(&both).unwrap_err().problem.contains("both"));
        // Unsorted methods.
        let mut unsorted = key.clone();
        unsorted.extend_from_slice(&[TAG_METHODS, 2, 1, b'b', 1, b'a']);
        assert!(
            decode_payload(&unsorted)
                .unwrap_err()
                .problem
                .contains("sorted")
        );
        // Unknown tag, empty string, truncated key.
        key.extend_from_slice(&[0x09]);
        assert!(
            decode_payload(&key)
                .unwrap_err()
                .problem
                .contains("unknown field")
        );
        let mut empty = vec![0u8; 32];
        empty.extend_from_slice(&[TAG_ACTOR_TYPE, 0]);
        assert!(
            decode_payload(&empty)
                .unwrap_err()
                .problem
                .contains("1 to 128")
        );
        assert!(
            decode_payload(&[0u8; 31])
                .unwrap_err()
                .problem
                .contains("truncated")
        );
    }

    #[test]
    fn encode_rejects_oversized_fields() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let e = encode_payload(&[0; 32], &Capability::unrestricted().actor_type(long)).unwrap_err();
        assert_eq!(e.field, Field::ActorType);
        let e = encode_payload(&[0; 32], &Capability::unrestricted().methods([""])).unwrap_err();
        assert_eq!(e.field, Field::Methods);
    }
}
