//! Token benchmark: `cargo bench -p latchkey-caps` prints mint/s, attenuate/s, cold verify/s for
//! 1, 2 and 4 blocks, and cached authorize/s, next to the raw primitives they are built from
//! (ed25519 verify_strict, key derivation, hashes) measured in the same run.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use latchkey_caps::node::{
    NodeCertificate, NodeKey, NodeVerifier, Presented, SignedRequest, content_digest,
};
use latchkey_caps::{
    Capability, IssuerKey, NoRevocations, Request, RevocationId, Rights, Token, TokenCache,
    TrustedKeys, verify,
};
use sha2::Digest;

const NOW: u64 = 1_000_000;

/// Per-operation latencies of a slow operation (≥ 1 µs), timed one by one.
fn sample(name: &str, floor: Option<&str>, mut op: impl FnMut()) {
    for _ in 0..200 {
        op();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        op();
        times.push(t.elapsed());
    }
    times.sort();
    let total: Duration = times.iter().sum();
    let mean = total / times.len() as u32;
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    row(
        name,
        1e9 / mean.as_nanos() as f64,
        mean,
        Some((pct(0.5), pct(0.99))),
        floor,
    );
}

/// Throughput of a fast operation, timed in batches.
fn batch(name: &str, floor: Option<&str>, mut op: impl FnMut()) {
    for _ in 0..100_000 {
        op();
    }
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..10_000 {
            op();
        }
        n += 10_000;
    }
    let mean = start.elapsed() / n as u32;
    row(
        name,
        n as f64 / start.elapsed().as_secs_f64(),
        mean,
        None,
        floor,
    );
}

fn row(
    name: &str,
    per_sec: f64,
    mean: Duration,
    pcts: Option<(Duration, Duration)>,
    floor: Option<&str>,
) {
    let (p50, p99) = match pcts {
        Some((a, b)) => (format!("{a:.1?}"), format!("{b:.1?}")),
        None => ("-".into(), "-".into()),
    };
    println!(
        "| {name:<44} | {per_sec:>12.0} | {mean:>9.2?} | {p50:>9} | {p99:>9} | {} |",
        floor.unwrap_or("")
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run quickly then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench -p latchkey-caps` for figures");
        return;
    }
    let issuer = IssuerKey::generate();
    let keys: TrustedKeys = [issuer.public()].into_iter().collect();
    let cap = Capability::unrestricted()
        .actor_type("counter")
        .key_prefix("user/")
        .rights(Rights::INVOKE)
        .expires_at(NOW + 3600);
    let narrow = Capability::unrestricted()
        .key("user/42")
        .methods(["get", "inc"]);

    let one = Token::mint(&issuer, &cap).unwrap();
    let two = one.attenuate(&narrow).unwrap();
    let four = two
        .attenuate(&Capability::unrestricted().methods(["inc"]))
        .unwrap()
        .attenuate(&Capability::unrestricted().expires_at(NOW + 60))
        .unwrap();
    let sealed = one.seal().unwrap();
    let text = two.to_text();

    println!(
        "token sizes: 1 block {} B, 2 blocks {} B ({} chars as text), 4 blocks {} B",
        one.as_bytes().len(),
        two.as_bytes().len(),
        text.len(),
        four.as_bytes().len()
    );
    println!();
    println!("| operation | ops/s | mean | p50 | p99 | floor |");
    println!("|---|---:|---:|---:|---:|---|");

    sample("mint (1 block)", None, || {
        black_box(Token::mint(&issuer, &cap).unwrap());
    });
    sample("attenuate (1 -> 2 blocks)", None, || {
        black_box(one.attenuate(&narrow).unwrap());
    });
    sample("seal", None, || {
        black_box(one.seal().unwrap());
    });
    for (name, token) in [
        ("cold verify, 1 block (open)", &one),
        ("cold verify, 1 block (sealed)", &sealed),
        ("cold verify, 2 blocks", &two),
        ("cold verify, 4 blocks", &four),
    ] {
        sample(name, Some("n x verify_strict + 1 key derivation"), || {
            black_box(verify(token, &keys, &NoRevocations, NOW).unwrap());
        });
    }

    let cache = TokenCache::new(NonZeroUsize::new(10_000).unwrap());
    let revoked: std::collections::HashSet<RevocationId> = (0..1000u32)
        .map(|i| RevocationId::from_bytes([i as u8; 16]))
        .collect();
    let req = Request::invoke("counter", "user/42", "inc");
    cache
        .authorize(text.as_bytes(), &keys, &revoked, &req, NOW)
        .unwrap();
    batch(
        "cached authorize (2-block token, 1 thread)",
        Some("target >= 2,000,000/s"),
        || {
            black_box(
                cache
                    .authorize(black_box(text.as_bytes()), &keys, &revoked, &req, NOW)
                    .unwrap(),
            );
        },
    );
    let threads = 2;
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while start.elapsed() < Duration::from_secs(2) {
                        for _ in 0..10_000 {
                            black_box(
                                cache
                                    .authorize(text.as_bytes(), &keys, &revoked, &req, NOW)
                                    .unwrap(),
                            );
                        }
                        n += 10_000;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let rate = total as f64 / start.elapsed().as_secs_f64();
    row(
        "cached authorize (2-block token, 2 threads)",
        rate,
        Duration::from_secs_f64(threads as f64 / rate),
        None,
        Some("one shared cache"),
    );

    // Node authentication: what a forwarded call costs the forwarding node (sign) and the owner
    // (verify, the certificate's signature cached after the first call), for a 1 KiB payload.
    let node = NodeKey::generate();
    let cert = NodeCertificate::issue(&issuer, "node-a", &node.public(), NOW - 10, NOW + 3600)
        .unwrap()
        .to_text();
    let payload = vec![7u8; 1024];
    let authorization = format!("Bearer {text}");
    let bound = [
        ("authorization", authorization.as_bytes()),
        ("x-latchkey-presenter", b"".as_slice()),
        ("x-latchkey-deadline-ms", b"30000".as_slice()),
    ];
    let mut nonce = 0u128;
    let signed = |nonce: u128| {
        let request = SignedRequest {
            audience: "node:node-b",
            method: "POST",
            path: "/v1/actors/counter/user%2F42/inc",
            timestamp_ms: NOW * 1000,
            nonce: nonce.to_be_bytes(),
            content_sha256: content_digest(&payload),
            bound: &bound,
        };
        (node.sign_header(&request), request.content_sha256)
    };
    sample(
        "node request: sign (1 KiB body)",
        Some("forwarding node"),
        || {
            nonce += 1;
            black_box(signed(nonce));
        },
    );
    // Requests signed beforehand, each with its own nonce (a verifier accepts each once).
    let requests: Vec<(String, [u8; 32])> = (0..200_000u128).map(|i| signed(1 << 64 | i)).collect();
    let mut next = requests.iter();
    let verifier = NodeVerifier::new("node:node-b", NonZeroUsize::new(16).unwrap(), 10_000_000);
    sample(
        "node request: verify (certificate cached)",
        Some("owner: 1 verify_strict + SHA-256 of the body"),
        || {
            let (signature, digest) = next.next().expect("enough signed requests");
            let presented = Presented {
                certificate: &cert,
                signature,
                method: "POST",
                path: "/v1/actors/counter/user%2F42/inc",
                content_sha256: *digest,
                bound: &bound,
            };
            black_box(
                verifier
                    .verify(&presented, &keys, &NoRevocations, NOW * 1000)
                    .unwrap(),
            );
        },
    );

    // Floors: the primitives, in the same run.
    let sk = SigningKey::from_bytes(&[7; 32]);
    let msg = vec![0u8; 200];
    let sig = sk.sign(&msg);
    let vk = sk.verifying_key();
    sample("floor: ed25519 verify_strict (200 B)", None, || {
        vk.verify_strict(black_box(&msg), &sig).unwrap();
    });
    sample("floor: ed25519 key derivation from seed", None, || {
        black_box(SigningKey::from_bytes(black_box(&[9; 32])).verifying_key());
    });
    let hasher = foldhash::fast::RandomState::default();
    batch("floor: foldhash of the token text", None, || {
        black_box(std::hash::BuildHasher::hash_one(
            &hasher,
            black_box(text.as_bytes()),
        ));
    });
    batch("floor: SHA-256 of the token text", None, || {
        black_box(sha2::Sha256::digest(black_box(text.as_bytes())));
    });
}
