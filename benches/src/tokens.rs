//! Group `tokens`: a cold verification (signature chain checked, nothing cached) and a cached
//! authorization (the node's path for a token it has seen) of a 2-block token — a minted token
//! narrowed once, as a client hands it on — per second on one thread, against ed25519's
//! `verify_strict`, measured in the same run.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey};
use latchkey_caps::{
    Capability, IssuerKey, NoRevocations, Request, RevocationId, Rights, Token, TokenCache,
    TrustedKeys, verify,
};

use crate::report::{Row, Table, count};

const MEASURE: Duration = Duration::from_secs(2);

pub(crate) fn checks(table: &mut Table) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let issuer = IssuerKey::generate();
    let keys: TrustedKeys = [issuer.public()].into_iter().collect();
    let minted = Token::mint(
        &issuer,
        &Capability::unrestricted()
            .actor_type("counter")
            .rights(Rights::INVOKE)
            .expires_at(now + 3600),
    )
    .expect("mint");
    let token = minted
        .attenuate(
            &Capability::unrestricted()
                .key_prefix("user/")
                .methods(["get", "inc"]),
        )
        .expect("attenuate");
    let text = token.to_text();

    let signing = SigningKey::from_bytes(&[7; 32]);
    let message = vec![0u8; 200];
    let signature = signing.sign(&message);
    let verifying = signing.verifying_key();
    let floor = rate(|| {
        verifying
            .verify_strict(black_box(&message), &signature)
            .expect("signature");
    });
    let floor_text = format!("{}/s ed25519 verify_strict", count(floor));

    let cold = rate(|| {
        black_box(verify(&token, &keys, &NoRevocations, now).expect("verify"));
    });
    table.push(
        Row::new(
            "token cold verify (2 blocks), 1 thread",
            format!("{}/s", count(cold)),
        )
        .floor(floor_text.clone()),
    );

    let cache = TokenCache::new(NonZeroUsize::new(10_000).expect("non-zero"));
    let revoked: std::collections::HashSet<RevocationId> = (0..1000u32)
        .map(|i| RevocationId::from_bytes([i as u8; 16]))
        .collect();
    let request = Request::invoke("counter", "user/42", "inc");
    let cached = rate(|| {
        black_box(
            cache
                .authorize(black_box(text.as_bytes()), &keys, &revoked, &request, now)
                .expect("authorize"),
        );
    });
    table.push(
        Row::new(
            "token cached authorize (2 blocks, 1,000 revocations), 1 thread",
            format!("{}/s", count(cached)),
        )
        .floor(floor_text),
    );
}

/// Calls of `op` per second, over [`MEASURE`], in batches of 100.
fn rate(mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < MEASURE {
        for _ in 0..100 {
            op();
        }
        n += 100;
    }
    n as f64 / started.elapsed().as_secs_f64()
}
