//! The verified-token cache: hits skip signature work but never skip issuer trust, revocation or
//! expiry; verified prefixes shorten the verification of attenuated copies.

use std::collections::HashSet;
use std::num::NonZeroUsize;

use latchkey_caps::{
    AuthError, CacheStats, Capability, Denied, Field, IssuerKey, NoRevocations, Request,
    RevocationId, Rights, Token, TokenCache, TrustedKeys, VerifyError,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NOW: u64 = 5_000;

struct Fixture {
    issuer: IssuerKey,
    keys: TrustedKeys,
    cache: TokenCache,
    rng: StdRng,
}

fn fixture() -> Fixture {
    let issuer = IssuerKey::from_seed(&[4; 32]);
    let keys = [issuer.public()].into_iter().collect();
    Fixture {
        issuer,
        keys,
        cache: TokenCache::new(NonZeroUsize::new(64).unwrap()),
        rng: StdRng::seed_from_u64(1),
    }
}

fn counter_cap() -> Capability {
    Capability::unrestricted()
        .actor_type("counter")
        .key_prefix("user/")
        .rights(Rights::INVOKE)
        .expires_at(NOW + 100)
}

#[test]
fn a_hit_skips_signatures_but_rechecks_revocation_expiry_and_trust() {
    let mut f = fixture();
    let token = Token::mint_with_rng(&f.issuer, &counter_cap(), &mut f.rng).unwrap();
    let text = token.to_text();
    let first = f
        .cache
        .verify(text.as_bytes(), &f.keys, &NoRevocations, NOW)
        .unwrap();
    let second = f
        .cache
        .verify(text.as_bytes(), &f.keys, &NoRevocations, NOW)
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(
        f.cache.stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            blocks_skipped: 0
        }
    );

    let revoked: HashSet<RevocationId> = [first.token_id()].into();
    assert!(matches!(
        f.cache.verify(text.as_bytes(), &f.keys, &revoked, NOW),
        Err(VerifyError::Revoked { block: 0, .. })
    ));
    assert_eq!(
        f.cache
            .verify(text.as_bytes(), &f.keys, &NoRevocations, NOW + 100),
        Err(VerifyError::Expired {
            expires_at: NOW + 100,
            now: NOW + 100
        })
    );
    let mut rotated = f.keys.clone();
    rotated.remove(&f.issuer.id());
    assert_eq!(
        f.cache
            .verify(text.as_bytes(), &rotated, &NoRevocations, NOW),
        Err(VerifyError::UnknownKey(f.issuer.id()))
    );
    assert_eq!(f.cache.stats().hits, 4);
}

#[test]
fn binary_and_text_forms_are_both_accepted_and_tampering_never_hits() {
    let mut f = fixture();
    let token = Token::mint_with_rng(&f.issuer, &counter_cap(), &mut f.rng).unwrap();
    let via_bytes = f
        .cache
        .verify(token.as_bytes(), &f.keys, &NoRevocations, NOW)
        .unwrap();
    let via_text = f
        .cache
        .verify(token.to_text().as_bytes(), &f.keys, &NoRevocations, NOW)
        .unwrap();
    assert_eq!(via_bytes, via_text);
    let mut tampered = token.as_bytes().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        f.cache.verify(&tampered, &f.keys, &NoRevocations, NOW),
        Err(VerifyError::ProofMismatch)
    );
    let oversized = vec![b'l'; latchkey_caps::MAX_TEXT_BYTES + 1];
    assert!(matches!(
        f.cache.verify(&oversized, &f.keys, &NoRevocations, NOW),
        Err(VerifyError::TooLarge { .. })
    ));
}

#[test]
fn an_attenuated_copy_only_verifies_its_new_blocks() {
    let mut f = fixture();
    let parent = Token::mint_with_rng(&f.issuer, &counter_cap(), &mut f.rng).unwrap();
    f.cache
        .verify(parent.as_bytes(), &f.keys, &NoRevocations, NOW)
        .unwrap();
    let child = parent
        .attenuate_with_rng(
            &Capability::unrestricted().key("user/9").methods(["get"]),
            &mut f.rng,
        )
        .unwrap();
    let verified = f
        .cache
        .verify(child.as_bytes(), &f.keys, &NoRevocations, NOW)
        .unwrap();
    assert_eq!(f.cache.stats().blocks_skipped, 1);
    assert_eq!(
        verified.capability().methods,
        Some(["get".to_owned()].into())
    );

    // The sealed parent reuses the whole verified chain and checks only its seal.
    let sealed = parent.seal().unwrap();
    assert!(
        f.cache
            .verify(sealed.as_bytes(), &f.keys, &NoRevocations, NOW)
            .unwrap()
            .is_sealed()
    );
    assert_eq!(f.cache.stats().blocks_skipped, 2);

    // A cached prefix does not excuse the new blocks.
    let widened = parent
        .append_unchecked(
            &Capability::unrestricted().rights(Rights::all()),
            &mut f.rng,
        )
        .unwrap();
    assert_eq!(
        f.cache
            .verify(widened.as_bytes(), &f.keys, &NoRevocations, NOW),
        Err(VerifyError::Widening {
            block: 1,
            field: Field::Rights
        })
    );
    let mut forged = child.as_bytes().to_vec();
    let inside_block_1 = parent.as_bytes().len() + 40; // block 1 starts 33 bytes before this
    forged[inside_block_1] ^= 0x10;
    assert_eq!(
        f.cache.verify(&forged, &f.keys, &NoRevocations, NOW),
        Err(VerifyError::BadSignature { block: 1 })
    );
}

#[test]
fn authorize_separates_invalid_tokens_from_denied_requests() {
    let mut f = fixture();
    let token = Token::mint_with_rng(&f.issuer, &counter_cap(), &mut f.rng).unwrap();
    let text = token.to_text();
    let ok = Request::invoke("counter", "user/1", "inc");
    assert!(
        f.cache
            .authorize(text.as_bytes(), &f.keys, &NoRevocations, &ok, NOW)
            .is_ok()
    );
    let other = Request::invoke("chat", "user/1", "inc");
    assert!(matches!(
        f.cache
            .authorize(text.as_bytes(), &f.keys, &NoRevocations, &other, NOW),
        Err(AuthError::Denied(Denied::ActorType { .. }))
    ));
    assert!(matches!(
        f.cache
            .authorize(b"lk1.AAAA", &f.keys, &NoRevocations, &ok, NOW),
        Err(AuthError::Invalid(_))
    ));
    assert_eq!(f.cache.len(), 1);
    f.cache.clear();
    assert!(f.cache.is_empty());
}
