//! Fuzz harness for token decoding and verification, shared by the `cargo fuzz` target and the
//! corpus regression test (`caps/tests/fuzz_corpus.rs`).
//!
//! Beyond "never panics", it checks invariants on whatever decodes: the binary and text forms
//! round-trip, the cache agrees with a cold verification, a verified token's claimed capability
//! is what verification granted, and any attenuation of it verifies to something no wider.

use std::num::NonZeroUsize;
use std::sync::OnceLock;

use latchkey_caps::{
    Capability, IssuerKey, NoRevocations, Rights, Token, TokenCache, TrustedKeys, verify,
    verify_presented,
};

/// Seed of the issuer the fuzzer's trusted set holds; seed tokens are minted with it.
pub(crate) const ISSUER_SEED: [u8; 32] = [0x5a; 32];
/// The verification time used by the harness.
pub(crate) const NOW: u64 = 1_000;

struct Fixture {
    keys: TrustedKeys,
    cache: TokenCache,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        keys: [IssuerKey::from_seed(&ISSUER_SEED).public()]
            .into_iter()
            .collect(),
        cache: TokenCache::new(NonZeroUsize::new(1024).expect("nonzero")),
    })
}

/// Runs every check on one input; panics if an invariant fails.
pub(crate) fn check(data: &[u8]) {
    let f = fixture();
    let cold = verify_presented(data, &f.keys, &NoRevocations, NOW);
    let cached = f.cache.verify(data, &f.keys, &NoRevocations, NOW);
    assert_eq!(
        cold.as_ref().ok(),
        cached.as_deref().ok(),
        "cache disagrees with cold verify"
    );
    assert_eq!(
        cold.as_ref().err(),
        cached.as_ref().err(),
        "cache error differs"
    );

    let Ok(token) = Token::from_presented(data) else {
        assert!(cold.is_err(), "undecodable token verified");
        return;
    };
    assert_eq!(Token::from_bytes(token.as_bytes()).as_ref(), Ok(&token));
    assert_eq!(Token::from_text(&token.to_text()).as_ref(), Ok(&token));

    let Ok(verified) = cold else { return };
    let claimed = token
        .claimed_capability()
        .expect("a verified token's blocks decode");
    assert_eq!(&claimed, verified.capability());
    if token.is_sealed() || token.block_count() >= latchkey_caps::MAX_BLOCKS {
        return;
    }
    let narrower = Capability::unrestricted()
        .rights(claimed.granted_rights() & Rights::INVOKE)
        .methods(["fuzz"]);
    if let Ok(child) = token.attenuate(&narrower)
        && let Ok(v) = verify(&child, &f.keys, &NoRevocations, NOW)
    {
        assert!(v.capability().is_within(verified.capability()));
    }
}

/// Valid tokens of varied shapes, signed by [`ISSUER_SEED`], to start the fuzzer from.
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let issuer = IssuerKey::from_seed(&ISSUER_SEED);
    let full = Capability::unrestricted()
        .actor_type("counter")
        .key_prefix("user/")
        .methods(["get", "inc"])
        .rights(Rights::INVOKE | Rights::READ_STATE)
        .not_before(NOW - 1)
        .expires_at(NOW + 1)
        .audience("node-1");
    let one = Token::mint(&issuer, &full).expect("mint");
    let two = one
        .attenuate(&Capability::unrestricted().key("user/7").methods(["get"]))
        .expect("attenuate");
    let bare = Token::mint(&issuer, &Capability::unrestricted()).expect("mint");
    let mut deep = bare.clone();
    for i in 0..7 {
        deep = deep
            .attenuate(&Capability::unrestricted().expires_at(NOW + 100 - i))
            .expect("attenuate");
    }
    let mut out = Vec::new();
    for token in [one, two.clone(), two.seal().expect("seal"), bare, deep] {
        out.push(token.as_bytes().to_vec());
        out.push(token.to_text().into_bytes());
    }
    out
}
