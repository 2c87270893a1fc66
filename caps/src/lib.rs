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
//!
//! # Layers
//!
//! The modules form layers, leaf first; each one uses only modules before it in this list (the
//! `mod` lines below follow it, and `tests/layers.rs` checks both):
//!
//! `id` → `keys` → `revocation` → `capability` → `authorize` → `error` → `codec` → `chain` →
//! `token` → `verify` → `cache` → `node`
//!
//! Inside `node`: `error` → `request` → `key` → `cert` → `verifier`. This root only declares the
//! modules and re-exports their public items; no module uses it.

#![forbid(unsafe_code)]

// In layer order, leaf first (see "Layers" above). The `//` line over each `mod` keeps rustfmt
// from sorting them.
// Hex ids; first also because its `hex_id!` macro is only in scope after it.
#[macro_use]
mod id;
// Issuer keys, key ids, trusted keys; the operating system's RNG.
mod keys;
// Revocation ids and the `Revocations` a verifier consults.
mod revocation;
// `Capability`, `Rights`, `Field`, `KeyScope`: what a token allows, and narrowing.
mod capability;
// `authorize`: one request against a capability; `Denied`.
mod authorize;
// `DecodeError`, `VerifyError`, `AuthError`.
mod error;
// The binary layout of tokens and block payloads; the size limits.
mod codec;
// What each signature covers, revocation-id derivation, the block-by-block verification fold.
mod chain;
// `Token`: mint, attenuate, seal, binary and text forms.
mod token;
// `verify`: a token's signatures, proof, revocations and window; `Verified`.
mod verify;
// `TokenCache`: verified tokens and verified chain prefixes.
mod cache;
// Node identity by proof of possession.
pub mod node;

pub use authorize::{Denied, Request, authorize, authorize_right};
pub use cache::{CacheStats, TokenCache};
pub use capability::{Capability, Field, KeyScope, Rights};
pub use codec::{
    FieldError, MAX_BLOCKS, MAX_KEY_BYTES, MAX_METHODS, MAX_NAME_BYTES, MAX_TOKEN_BYTES,
};
pub use error::{AuthError, DecodeError, VerifyError};
pub use id::ParseIdError;
pub use keys::{IssuerKey, KeyError, KeyId, PublicKey, TrustedKeys};
pub use revocation::{NoRevocations, RevocationId, Revocations};
pub use token::{MAX_TEXT_BYTES, TEXT_PREFIX, Token, TokenError};
pub use verify::{Verified, verify, verify_presented};
