//! Crash-test child for the store conformance suite: `latchkey-store-crash-child SPEC PREFIX_HEX`
//! opens the store, then commits `<prefix>crash/<i>` in a loop, printing each acknowledged `i`,
//! until it is killed.

// A test helper: usage errors go to stderr for the test log.
#![allow(clippy::print_stderr)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, spec, prefix] = args.as_slice() else {
        eprintln!("usage: latchkey-store-crash-child SPEC PREFIX_HEX");
        return ExitCode::from(2);
    };
    let spec: latchkey_store::StoreSpec = match spec.parse() {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(prefix) = (0..prefix.len())
        .step_by(2)
        .map(|i| {
            prefix
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        eprintln!("PREFIX_HEX must be hexadecimal");
        return ExitCode::from(2);
    };
    match latchkey_store::open(&spec) {
        Ok(store) => latchkey_store::conformance::crash_child_loop(&*store, &prefix),
        Err(e) => {
            eprintln!("cannot open {spec}: {e}");
            ExitCode::FAILURE
        }
    }
}
