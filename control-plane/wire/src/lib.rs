//! The wire contract between Latchkey's edge nodes, control plane and CLI: request and response
//! types of the node API (binary, postcard; its routes are one table, [`nodeapi`]) and the admin
//! API (JSON), error bodies, and the few pure protocol rules both sides must compute identically
//! (lease deadlines, canary buckets).
//!
//! This is the only crate the `edge-node` and `control-plane` libraries share besides `caps`;
//! it has no I/O and no async runtime.

pub mod admin;
pub mod alarm;
#[cfg(feature = "bounded")]
pub mod bounded;
pub mod canary;
#[cfg(feature = "client")]
pub mod client;
mod error;
pub mod identity;
pub mod lease;
pub mod limits;
pub mod node;
pub mod nodeapi;
pub mod path;
#[cfg(feature = "server")]
pub mod server;
pub mod tail;
#[cfg(feature = "client")]
pub mod tls;

pub use error::{ApiError, ErrorCode};

use std::fmt;

use serde::{Deserialize, Serialize};

/// Media type of node API bodies (postcard encoding of the types in [`node`]).
pub const NODE_CONTENT_TYPE: &str = "application/x-latchkey-postcard";

/// Encodes a node API body.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("node API types always serialise")
}

/// Decodes a node API body, naming what was expected on failure.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    postcard::from_bytes(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("malformed {} body: {e}", type_label::<T>()),
        )
    })
}

/// The last part of a type's name (what body errors name).
fn type_label<T>() -> &'static str {
    std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("request")
}

/// An activation generation: the 10-byte versionstamp of the control-plane transaction that
/// placed (or switched) the activation. Ordered like the commits that created them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Generation(#[serde(with = "hex_10")] pub [u8; 10]);

impl Generation {
    /// The commit version part.
    pub fn version(&self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Generation({self})")
    }
}

impl std::str::FromStr for Generation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut b = [0u8; 10];
        hex::decode_to_slice(s, &mut b)
            .map_err(|_| format!("a generation is 20 hexadecimal digits, got `{s}`"))?;
        Ok(Generation(b))
    }
}

/// Serde for `[u8; 10]`: a hex string in human-readable formats, raw bytes otherwise.
mod hex_10 {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(b: &[u8; 10], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(b))
        } else {
            s.serialize_bytes(b)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 10], D::Error> {
        let mut out = [0u8; 10];
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            hex::decode_to_slice(&s, &mut out).map_err(D::Error::custom)?;
        } else {
            let bytes: &[u8] = <&[u8]>::deserialize(d)?;
            out = bytes
                .try_into()
                .map_err(|_| D::Error::custom("a generation is 10 bytes"))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_round_trips_in_both_encodings() {
        let g = Generation([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(decode::<Generation>(&encode(&g)).unwrap(), g);
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(json, "\"0102030405060708090a\"");
        assert_eq!(serde_json::from_str::<Generation>(&json).unwrap(), g);
        assert_eq!(g.to_string().parse::<Generation>(), Ok(g));
    }

    #[test]
    fn decode_errors_name_the_expected_type() {
        let e = decode::<node::HeartbeatResponse>(&[0xff]).unwrap_err();
        assert!(e.message.contains("HeartbeatResponse"), "{}", e.message);
    }
}
