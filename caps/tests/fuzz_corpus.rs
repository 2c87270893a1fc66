//! Replays the fuzz corpus (`fuzz/corpus/decode_verify`) and the generated seed tokens through
//! the fuzz harness, so every input the fuzzer ever kept stays a regression test on stable Rust.
//!
//! `LATCHKEY_WRITE_FUZZ_SEEDS=1 cargo test -p latchkey-caps --test fuzz_corpus` (re)writes the
//! seed tokens into the corpus directory.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode_verify")
}

#[test]
fn seeds_verify_and_pass_the_harness() {
    let seeds = harness::seeds();
    for seed in &seeds {
        harness::check(seed);
    }
    if std::env::var_os("LATCHKEY_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(corpus_dir().join(format!("seed-{i:02}")), seed).unwrap();
        }
    }
}

#[test]
fn every_corpus_input_passes_the_harness() {
    let entries = std::fs::read_dir(corpus_dir()).expect("fuzz corpus directory is committed");
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        harness::check(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(
        count >= 10,
        "the corpus holds the seed tokens at least ({count} inputs)"
    );
}
