//! Revocation ids and the [`Revocations`] a verifier consults: a set of revoked block ids, as the
//! verifier sees it (the crate never stores one; the caller passes it in).

use std::collections::HashSet;
use std::hash::BuildHasher;

hex_id!(
    /// Identifies one block of one chain; revoking it revokes every token built on that block.
    RevocationId,
    16,
    "revocation id"
);

/// A set of revoked ids, as a verifier sees it.
pub trait Revocations {
    /// Whether `id` is revoked.
    fn is_revoked(&self, id: &RevocationId) -> bool;
}

impl<S: BuildHasher> Revocations for HashSet<RevocationId, S> {
    fn is_revoked(&self, id: &RevocationId) -> bool {
        self.contains(id)
    }
}

impl<T: Revocations + ?Sized> Revocations for &T {
    fn is_revoked(&self, id: &RevocationId) -> bool {
        (**self).is_revoked(id)
    }
}

/// No token is revoked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocations;

impl Revocations for NoRevocations {
    fn is_revoked(&self, _: &RevocationId) -> bool {
        false
    }
}
