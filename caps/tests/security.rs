//! Security properties of capability tokens: tampering, reshaping, widening, every denial
//! reason, sealing, foreign issuers, revocation and limits.

use std::collections::HashSet;

use latchkey_caps::{
    Capability, Denied, Field, IssuerKey, NoRevocations, Request, RevocationId, Rights, Token,
    TokenError, TrustedKeys, VerifyError, authorize, verify,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NOW: u64 = 1_000_000;

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn issuer() -> IssuerKey {
    IssuerKey::from_seed(&[1; 32])
}

fn trusted() -> TrustedKeys {
    // A second trusted key, so a flipped key id can land on a key that exists.
    [issuer().public(), IssuerKey::from_seed(&[2; 32]).public()]
        .into_iter()
        .collect()
}

fn full_cap() -> Capability {
    Capability::unrestricted()
        .actor_type("counter")
        .key_prefix("user/")
        .methods(["get", "inc", "reset"])
        .rights(Rights::INVOKE | Rights::READ_STATE)
        .not_before(NOW - 10)
        .expires_at(NOW + 3600)
}

/// Tokens of several shapes: 1 block, 4 blocks, sealed, all fields set.
fn sample_tokens() -> Vec<(&'static str, Token)> {
    let mut rng = rng();
    let one = Token::mint_with_rng(&issuer(), &full_cap(), &mut rng).unwrap();
    let mut four = one.clone();
    for cap in [
        Capability::unrestricted().key_prefix("user/1"),
        Capability::unrestricted().methods(["get", "inc"]),
        Capability::unrestricted().key("user/17").audience("node-a"),
    ] {
        four = four.attenuate_with_rng(&cap, &mut rng).unwrap();
    }
    let sealed = four.seal().unwrap();
    let bare = Token::mint_with_rng(&issuer(), &Capability::unrestricted(), &mut rng).unwrap();
    vec![
        ("one block", one),
        ("four blocks", four),
        ("sealed", sealed),
        ("unrestricted", bare),
    ]
}

fn check(token: &Token) -> Result<latchkey_caps::Verified, VerifyError> {
    verify(token, &trusted(), &NoRevocations, NOW)
}

/// An independent reading of the documented envelope, to reshape tokens the API never would.
struct Parts {
    key_id: [u8; 8],
    blocks: Vec<Vec<u8>>, // each: len:u16 payload sig[64]
    proof: Vec<u8>,       // tag + body
}

fn split(token: &Token) -> Parts {
    let b = token.as_bytes();
    let count = b[9] as usize;
    let mut pos = 10;
    let mut blocks = Vec::new();
    for _ in 0..count {
        let len = u16::from_le_bytes([b[pos], b[pos + 1]]) as usize;
        blocks.push(b[pos..pos + 2 + len + 64].to_vec());
        pos += 2 + len + 64;
    }
    Parts {
        key_id: b[1..9].try_into().unwrap(),
        blocks,
        proof: b[pos..].to_vec(),
    }
}

fn join(parts: &Parts) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&parts.key_id);
    out.push(parts.blocks.len() as u8);
    for block in &parts.blocks {
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&parts.proof);
    out
}

fn verify_bytes(bytes: &[u8]) -> Result<latchkey_caps::Verified, VerifyError> {
    check(&Token::from_bytes(bytes)?)
}

#[test]
fn every_single_bit_flip_of_the_binary_form_is_rejected() {
    for (shape, token) in sample_tokens() {
        assert!(check(&token).is_ok(), "{shape} must verify untouched");
        let bytes = token.as_bytes();
        for i in 0..bytes.len() * 8 {
            let mut flipped = bytes.to_vec();
            flipped[i / 8] ^= 1 << (i % 8);
            assert!(
                verify_bytes(&flipped).is_err(),
                "{shape}: flipping bit {i} (byte {}) was accepted",
                i / 8
            );
        }
    }
}

#[test]
fn every_single_bit_flip_of_the_text_form_is_rejected() {
    for (shape, token) in sample_tokens() {
        let text = token.to_text();
        for i in 0..text.len() * 8 {
            let mut flipped = text.clone().into_bytes();
            flipped[i / 8] ^= 1 << (i % 8);
            let accepted = std::str::from_utf8(&flipped)
                .ok()
                .and_then(|t| Token::from_text(t).ok())
                .is_some_and(|t| check(&t).is_ok());
            assert!(!accepted, "{shape}: flipping text bit {i} was accepted");
        }
    }
}

#[test]
fn dropping_reordering_or_duplicating_blocks_is_rejected() {
    let (_, four) = sample_tokens().swap_remove(1);
    let (_, sealed) = sample_tokens().swap_remove(2);
    for token in [&four, &sealed] {
        let parts = split(token);
        let n = parts.blocks.len();
        let mut variants = Vec::new();
        for i in 0..n {
            let mut dropped = split(token);
            dropped.blocks.remove(i);
            variants.push((format!("drop {i}"), dropped));
            let mut duplicated = split(token);
            duplicated.blocks.insert(i, parts.blocks[i].clone());
            variants.push((format!("duplicate {i}"), duplicated));
            for j in i + 1..n {
                let mut swapped = split(token);
                swapped.blocks.swap(i, j);
                variants.push((format!("swap {i} {j}"), swapped));
            }
        }
        for (what, variant) in variants {
            assert!(
                verify_bytes(&join(&variant)).is_err(),
                "{what} was accepted"
            );
        }
    }
    // Dropping the last block is caught by the proof (open) or the seal (sealed).
    let mut truncated = split(&four);
    truncated.blocks.pop();
    assert_eq!(
        verify_bytes(&join(&truncated)).unwrap_err(),
        VerifyError::ProofMismatch
    );
    let mut truncated = split(&sealed);
    truncated.blocks.pop();
    assert_eq!(
        verify_bytes(&join(&truncated)).unwrap_err(),
        VerifyError::BadSeal
    );
}

#[test]
fn each_denial_names_its_reason() {
    let mut rng = rng();
    let cap = full_cap().audience("node-a");
    let token = Token::mint_with_rng(&issuer(), &cap, &mut rng).unwrap();
    let verified = check(&token).unwrap();
    let ok = Request::invoke("counter", "user/1", "inc").presented_by("node-a");
    assert_eq!(authorize(verified.capability(), &ok, NOW), Ok(()));
    let denied = |req: Request<'_>| authorize(verified.capability(), &req, NOW).unwrap_err();
    assert!(matches!(
        denied(Request {
            presenter: Some("node-b"),
            ..ok
        }),
        Denied::Audience { .. }
    ));
    assert!(matches!(
        denied(Request {
            actor_type: Some("chat"),
            ..ok
        }),
        Denied::ActorType { .. }
    ));
    assert!(matches!(
        denied(Request {
            key: Some("admin/1"),
            ..ok
        }),
        Denied::Key { .. }
    ));
    assert!(matches!(
        denied(Request {
            method: Some("drop"),
            ..ok
        }),
        Denied::Method { .. }
    ));
    assert!(matches!(
        denied(Request {
            right: Rights::DEPLOY,
            ..ok
        }),
        Denied::MissingRight {
            needed: Rights::DEPLOY,
            ..
        }
    ));

    // Time, revocation and issuer are verification errors.
    let keys = trusted();
    assert_eq!(
        verify(&token, &keys, &NoRevocations, NOW + 3600),
        Err(VerifyError::Expired {
            expires_at: NOW + 3600,
            now: NOW + 3600
        })
    );
    assert_eq!(
        verify(&token, &keys, &NoRevocations, NOW - 11),
        Err(VerifyError::NotYetValid {
            not_before: NOW - 10,
            now: NOW - 11
        })
    );
    assert!(
        verify(&token, &keys, &NoRevocations, NOW - 11)
            .unwrap_err()
            .is_retryable()
    );
    let revoked: HashSet<RevocationId> = [verified.token_id()].into();
    assert!(matches!(
        verify(&token, &keys, &revoked, NOW),
        Err(VerifyError::Revoked { block: 0, .. })
    ));
    let stranger = IssuerKey::from_seed(&[3; 32]);
    let foreign = Token::mint_with_rng(&stranger, &cap, &mut rng).unwrap();
    assert_eq!(
        check(&foreign).unwrap_err(),
        VerifyError::UnknownKey(stranger.id())
    );
}

#[test]
fn a_foreign_issuer_cannot_borrow_a_trusted_key_id() {
    let stranger = IssuerKey::from_seed(&[3; 32]);
    let forged = Token::mint_with_rng(&stranger, &Capability::unrestricted(), &mut rng()).unwrap();
    let mut parts = split(&forged);
    parts.key_id = issuer().id().to_bytes();
    assert_eq!(
        verify_bytes(&join(&parts)).unwrap_err(),
        VerifyError::BadSignature { block: 0 }
    );
}

#[test]
fn sealed_tokens_verify_but_cannot_be_extended() {
    let (_, sealed) = sample_tokens().swap_remove(2);
    assert!(check(&sealed).unwrap().is_sealed());
    assert_eq!(
        sealed.attenuate(&Capability::unrestricted().methods(["get"])),
        Err(TokenError::Sealed)
    );
    assert_eq!(sealed.seal(), Err(TokenError::Sealed));
    assert!(matches!(
        sealed.append_unchecked(&Capability::unrestricted(), &mut rng()),
        Err(TokenError::Sealed)
    ));
    // Grafting a block onto a sealed token, keeping the seal, breaks the seal.
    let mut parts = split(&sealed);
    let extra = split(&sample_tokens().swap_remove(1).1).blocks[3].clone();
    parts.blocks.push(extra);
    assert!(verify_bytes(&join(&parts)).is_err());
}

#[test]
fn revoking_a_block_revokes_every_token_built_on_it() {
    let mut rng = rng();
    let parent = Token::mint_with_rng(&issuer(), &full_cap(), &mut rng).unwrap();
    let child = parent
        .attenuate_with_rng(&Capability::unrestricted().key("user/5"), &mut rng)
        .unwrap();
    let sibling = parent
        .attenuate_with_rng(&Capability::unrestricted().key("user/6"), &mut rng)
        .unwrap();
    let p = check(&parent).unwrap();
    let c = check(&child).unwrap();
    let s = check(&sibling).unwrap();
    assert_eq!(c.revocation_ids()[0], p.token_id());
    assert_ne!(c.token_id(), s.token_id());
    assert_eq!(
        child.revocation_ids(),
        c.revocation_ids(),
        "holders compute the same ids"
    );
    assert_eq!(sibling.token_id(), s.token_id());

    let keys = trusted();
    let only_child: HashSet<_> = [c.token_id()].into();
    assert!(verify(&parent, &keys, &only_child, NOW).is_ok());
    assert!(verify(&sibling, &keys, &only_child, NOW).is_ok());
    assert!(verify(&child, &keys, &only_child, NOW).is_err());
    let root: HashSet<_> = [p.token_id()].into();
    for t in [&parent, &child, &sibling] {
        assert!(matches!(
            verify(t, &keys, &root, NOW),
            Err(VerifyError::Revoked { block: 0, .. })
        ));
    }
    // Revocation ids depend on content, not randomness in signatures: a re-mint of the same
    // payload under a fresh block key is a different token with a different id.
    let again = Token::mint_with_rng(&issuer(), &full_cap(), &mut rng).unwrap();
    assert_ne!(check(&again).unwrap().token_id(), p.token_id());
}

#[test]
fn rotation_accepts_both_keys_until_one_is_removed() {
    let old = issuer();
    let new = IssuerKey::from_seed(&[2; 32]);
    let mut keys = trusted();
    let t_old = Token::mint(&old, &Capability::unrestricted()).unwrap();
    let t_new = Token::mint(&new, &Capability::unrestricted()).unwrap();
    assert!(verify(&t_old, &keys, &NoRevocations, NOW).is_ok());
    assert!(verify(&t_new, &keys, &NoRevocations, NOW).is_ok());
    keys.remove(&old.id());
    assert_eq!(
        verify(&t_old, &keys, &NoRevocations, NOW),
        Err(VerifyError::UnknownKey(old.id()))
    );
    assert!(verify(&t_new, &keys, &NoRevocations, NOW).is_ok());
}

#[test]
fn limits_are_enforced_before_any_signature_work() {
    // Nine blocks of garbage: rejected for the count, not for a signature.
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&issuer().id().to_bytes());
    bytes.push(9);
    for _ in 0..9 {
        bytes.extend_from_slice(&32u16.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 32 + 64]);
    }
    bytes.push(0);
    bytes.extend_from_slice(&[0u8; 32]);
    assert_eq!(
        Token::from_bytes(&bytes).unwrap_err(),
        VerifyError::TooManyBlocks { count: 9, max: 8 }
    );
    let huge = vec![1u8; latchkey_caps::MAX_TOKEN_BYTES + 1];
    assert!(matches!(
        Token::from_bytes(&huge),
        Err(VerifyError::TooLarge { .. })
    ));
    let huge_text = format!("lk1.{}", "A".repeat(latchkey_caps::MAX_TEXT_BYTES));
    assert!(matches!(
        Token::from_text(&huge_text),
        Err(VerifyError::TooLarge { .. })
    ));
    assert_eq!(
        Token::from_text("lk2.AAAA").unwrap_err(),
        VerifyError::UnsupportedVersion(2)
    );
    assert!(matches!(
        Token::from_text("Bearer xyz"),
        Err(VerifyError::Encoding(_))
    ));

    // The API itself refuses a ninth block and an oversized token.
    let mut rng = rng();
    let mut t = Token::mint_with_rng(&issuer(), &Capability::unrestricted(), &mut rng).unwrap();
    for _ in 1..8 {
        t = t
            .attenuate_with_rng(&Capability::unrestricted(), &mut rng)
            .unwrap();
    }
    assert!(check(&t).is_ok());
    assert_eq!(
        t.attenuate_with_rng(&Capability::unrestricted(), &mut rng),
        Err(TokenError::TooManyBlocks { max: 8 })
    );
    let many: Vec<String> = (0..64)
        .map(|i| format!("method-{i:03}-{}", "x".repeat(100)))
        .collect();
    assert!(matches!(
        Token::mint_with_rng(
            &issuer(),
            &Capability::unrestricted().methods(many),
            &mut rng
        ),
        Err(TokenError::TooLarge { .. })
    ));
}

#[test]
fn a_hand_forged_widening_block_is_rejected_by_verify() {
    let mut rng = rng();
    let parent = Token::mint_with_rng(&issuer(), &full_cap(), &mut rng).unwrap();
    let wider = [
        (
            Capability::unrestricted().actor_type("chat"),
            Field::ActorType,
        ),
        (Capability::unrestricted().key_prefix("u"), Field::Keys),
        (
            Capability::unrestricted().methods(["get", "drop"]),
            Field::Methods,
        ),
        (
            Capability::unrestricted().rights(Rights::all()),
            Field::Rights,
        ),
        (Capability::unrestricted().not_before(0), Field::NotBefore),
        (
            Capability::unrestricted().expires_at(u64::MAX),
            Field::ExpiresAt,
        ),
    ];
    for (cap, field) in wider {
        assert_eq!(
            parent.attenuate_with_rng(&cap, &mut rng),
            Err(TokenError::Widening(field))
        );
        let forged = parent.append_unchecked(&cap, &mut rng).unwrap();
        assert_eq!(
            check(&forged).unwrap_err(),
            VerifyError::Widening { block: 1, field }
        );
    }
    let with_audience = parent
        .attenuate_with_rng(&Capability::unrestricted().audience("a"), &mut rng)
        .unwrap();
    let forged = with_audience
        .append_unchecked(&Capability::unrestricted().audience("b"), &mut rng)
        .unwrap();
    assert_eq!(
        check(&forged).unwrap_err(),
        VerifyError::Widening {
            block: 2,
            field: Field::Audience
        }
    );
}

mod properties {
    use super::*;
    use latchkey_caps::KeyScope;
    use proptest::prelude::*;
    use proptest::sample::subsequence;

    const METHODS: [&str; 3] = ["get", "inc", "put"];
    const KEYS: [&str; 5] = ["u", "u/1", "u/12", "u/2", "v"];

    fn opt<T: std::fmt::Debug + Clone + 'static>(
        s: impl Strategy<Value = T> + 'static,
    ) -> BoxedStrategy<Option<T>> {
        prop_oneof![1 => Just(None), 2 => s.prop_map(Some)].boxed()
    }

    fn capability() -> impl Strategy<Value = Capability> {
        (
            opt(prop::sample::select(vec!["a", "b"]).prop_map(String::from)),
            opt(
                (any::<bool>(), prop::sample::select(KEYS.to_vec())).prop_map(|(exact, k)| {
                    if exact {
                        KeyScope::Exact(k.into())
                    } else {
                        KeyScope::Prefix(k.into())
                    }
                }),
            ),
            opt(subsequence(METHODS.to_vec(), 0..=3)
                .prop_map(|m| m.into_iter().map(String::from).collect())),
            opt((0u8..64).prop_map(Rights::from_bits_truncate)),
            opt(0u64..20),
            opt(0u64..20),
            opt(prop::sample::select(vec!["x", "y"]).prop_map(String::from)),
        )
            .prop_map(
                |(actor_type, keys, methods, rights, not_before, expires_at, audience)| {
                    Capability {
                        actor_type,
                        keys,
                        methods,
                        rights,
                        not_before,
                        expires_at,
                        audience,
                    }
                },
            )
    }

    fn requests() -> Vec<(Request<'static>, u64)> {
        let mut out = Vec::new();
        for actor_type in [None, Some("a"), Some("b")] {
            for key in [None, Some("u"), Some("u/1"), Some("u/12"), Some("w")] {
                for method in [None, Some("get"), Some("put")] {
                    for (right, presenter) in [
                        (Rights::INVOKE, Some("x")),
                        (Rights::DEPLOY, None),
                        (Rights::INVOKE, Some("y")),
                    ] {
                        for now in [0, 7, 19] {
                            let req = Request {
                                right,
                                actor_type,
                                key,
                                method,
                                presenter,
                            };
                            out.push((req, now));
                        }
                    }
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever an attenuation asks for, the result is never wider than its parent: either
        /// the API refuses it, or every request the child allows, the parent allows too.
        #[test]
        fn attenuation_never_widens(parent_cap in capability(), child_cap in capability(), seed: u64) {
            let mut rng = StdRng::seed_from_u64(seed);
            let keys: TrustedKeys = [issuer().public()].into_iter().collect();
            let parent = Token::mint_with_rng(&issuer(), &parent_cap, &mut rng).unwrap();
            // The claimed capability is what verify grants whenever the window is open.
            let parent_eff = parent.claimed_capability().unwrap();
            prop_assert_eq!(&parent_eff, &parent_cap);
            match parent.attenuate_with_rng(&child_cap, &mut rng) {
                Err(TokenError::Widening(field)) => {
                    // A forged widening block is refused by verify for the same field.
                    let forged = parent.append_unchecked(&child_cap, &mut rng).unwrap();
                    let err = verify(&forged, &keys, &NoRevocations, 7).unwrap_err();
                    let widened = matches!(err, VerifyError::Widening { block: 1, field: f } if f == field);
                    let time = matches!(err, VerifyError::Expired { .. } | VerifyError::NotYetValid { .. });
                    prop_assert!(widened || time, "unexpected error {:?}", err);
                }
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
                Ok(child) => {
                    let child_eff = child.claimed_capability().unwrap();
                    prop_assert!(child_eff.is_within(&parent_eff));
                    for (req, now) in requests() {
                        if authorize(&child_eff, &req, now).is_ok() {
                            prop_assert!(authorize(&parent_eff, &req, now).is_ok(), "{:?} at {}", req, now);
                        }
                        // What verify grants is exactly the claimed capability.
                        if let Ok(v) = verify(&child, &keys, &NoRevocations, now) {
                            prop_assert_eq!(v.capability(), &child_eff);
                        }
                    }
                }
            }
        }

        /// Minting then reading back gives the capability that was minted.
        #[test]
        fn mint_round_trips(cap in capability(), seed: u64) {
            let token = Token::mint_with_rng(&issuer(), &cap, &mut StdRng::seed_from_u64(seed)).unwrap();
            let text = token.to_text();
            let parsed: Token = text.parse().unwrap();
            prop_assert_eq!(parsed.claimed_capability().unwrap(), cap);
            prop_assert_eq!(parsed, token);
        }
    }
}
