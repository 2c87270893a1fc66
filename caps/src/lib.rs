//! Unforgeable, attenuable capability tokens: the only way authority moves in Latchkey.
//!
//! A token is a chain of ed25519-signed blocks, in the manner of Biscuit but with a small fixed
//! vocabulary instead of Datalog. Block 0 is signed by an issuer key the verifier already trusts
//! (named by a [`KeyId`]); every block carries a fresh public key, and the next block is signed by
//! its secret. An open token carries the last secret, so **any holder can narrow it offline**
//! with [`Token::attenuate`]; a [`sealed`](Token::seal) token carries a final signature instead and
//! cannot be extended. Nobody can widen a token: [`verify`] rejects a block that is not within its
//! parent, and the effective [`Capability`] is the intersection of all blocks.
//!
//! This crate is pure: no I/O, no async runtime, no clock. Time (Unix seconds), trusted keys and
//! revocations are arguments, so the same checks run in servers, tests and simulations.
//!
//! ```
//! use latchkey_caps::{
//!     authorize, verify, Capability, IssuerKey, NoRevocations, Request, Rights, Token,
//!     TrustedKeys,
//! };
//!
//! let issuer = IssuerKey::generate();
//! let trusted: TrustedKeys = [issuer.public()].into_iter().collect();
//! let now = 1_700_000_000;
//!
//! // The control plane mints a token for every counter whose key starts with `user/`.
//! let cap = Capability::unrestricted()
//!     .actor_type("counter")
//!     .key_prefix("user/")
//!     .rights(Rights::INVOKE)
//!     .expires_at(now + 3600);
//! let token = Token::mint(&issuer, &cap)?;
//!
//! // Its holder narrows it offline to one key and one method, and hands it on.
//! let narrow = token.attenuate(&Capability::unrestricted().key("user/42").methods(["get"]))?;
//! let wire = narrow.to_text(); // "lk1.…"
//!
//! // A verifier checks signatures and proof, then authorizes each request.
//! let verified = verify(&wire.parse()?, &trusted, &NoRevocations, now)?;
//! assert!(authorize(verified.capability(), &Request::invoke("counter", "user/42", "get"), now).is_ok());
//! assert!(authorize(verified.capability(), &Request::invoke("counter", "user/42", "inc"), now).is_err());
//!
//! // Widening is refused, even offline.
//! assert!(narrow.attenuate(&Capability::unrestricted().key_prefix("user/")).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Hot paths use [`TokenCache`], which answers repeated presentations without signature work
//! while still checking issuer trust, revocation and expiry on every hit.

#![forbid(unsafe_code)]

#[macro_use]
mod id;
mod cache;
mod capability;
mod chain;
mod codec;
mod keys;
pub mod node;
mod token;
mod verify;

pub use cache::{AuthError, CacheStats, TokenCache};
pub use capability::{
    Capability, Denied, Field, KeyScope, Request, Rights, authorize, authorize_right,
};
pub use codec::{DecodeError, FieldError, MAX_KEY_BYTES, MAX_METHODS, MAX_NAME_BYTES};
pub use id::ParseIdError;
pub use keys::{IssuerKey, KeyError, KeyId, PublicKey, TrustedKeys};
pub use token::{MAX_TEXT_BYTES, Token, TokenError};
pub use verify::{
    NoRevocations, RevocationId, Revocations, Verified, VerifyError, verify, verify_presented,
};

/// Most blocks a token may have; longer tokens are rejected before any signature work.
pub const MAX_BLOCKS: usize = 8;
/// Largest binary token, in bytes; larger tokens are rejected before any signature work.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Prefix of the text form; the digit is the format version.
pub const TEXT_PREFIX: &str = "lk1.";

/// The operating system's CSPRNG, for the convenience constructors.
fn os_rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}
