//! Builds the example actors (`examples/*`) as `wasm32-wasip2` components with the
//! `wasm-actors` profile, and copies them into `OUT_DIR` for `src/lib.rs` to include.
//!
//! The nested `cargo` uses its own target directory (`<target>/wasm-actors`): sharing the outer
//! build's would deadlock on its lock. It runs with the outer build's per-target settings
//! (rustflags, target, wrappers, `CARGO_CFG_*`, …) removed, so that host flags do not leak into
//! the wasm build.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The WASM target the actors are built for.
const TARGET: &str = "wasm32-wasip2";
/// The cargo profile (workspace `Cargo.toml`).
const PROFILE: &str = "wasm-actors";
/// `(directory under examples/, package, output name)` of each example.
const EXAMPLES: [(&str, &str, &str); 5] = [
    ("counter", "latchkey-example-counter", "counter"),
    (
        "rate-limiter",
        "latchkey-example-rate-limiter",
        "rate-limiter",
    ),
    ("chat-room", "latchkey-example-chat-room", "chat-room"),
    ("delegator", "latchkey-example-delegator", "delegator"),
    ("hostile", "latchkey-example-hostile", "hostile"),
];
/// `(package, feature, output name)` of each variant: the same example built again with one
/// cargo feature, for tests that deploy versions over one another.
const VARIANTS: [(&str, &str, &str); 3] = [
    ("latchkey-example-counter", "v2", "counter-v2"),
    ("latchkey-example-counter", "v3", "counter-v3"),
    (
        "latchkey-example-counter",
        "failing-upgrade",
        "counter-failing-upgrade",
    ),
];
/// The first 8 bytes of a WASM component (magic, version 0x0d, layer 1).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("examples/artifacts lies two levels below the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    for path in [
        "actor-sdk/src",
        "actor-sdk/wit",
        "actor-sdk/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo::rerun-if-changed={}", workspace.join(path).display());
    }
    for (dir, _, _) in EXAMPLES {
        println!(
            "cargo::rerun-if-changed={}",
            workspace.join("examples").join(dir).join("src").display()
        );
        println!(
            "cargo::rerun-if-changed={}",
            workspace
                .join("examples")
                .join(dir)
                .join("Cargo.toml")
                .display()
        );
    }
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");

    ensure_target_installed();

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
        .join(PROFILE);

    let packages: Vec<&str> = EXAMPLES.iter().map(|(_, package, _)| *package).collect();
    build(&cargo, &workspace, &target_dir, &packages, None);
    for (_, package, name) in EXAMPLES {
        copy_out(&target_dir, package, &out_dir.join(format!("{name}.wasm")));
    }
    // One at a time: each build of a package overwrites its output file.
    for (package, feature, name) in VARIANTS {
        build(&cargo, &workspace, &target_dir, &[package], Some(feature));
        copy_out(&target_dir, package, &out_dir.join(format!("{name}.wasm")));
    }
}

/// Runs the nested `cargo build` of `packages` (with `feature`, if given).
fn build(
    cargo: &OsStr,
    workspace: &Path,
    target_dir: &Path,
    packages: &[&str],
    feature: Option<&str>,
) {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    if let Some(feature) = feature {
        cmd.args(["--features", feature]);
    }
    scrub_env(&mut cmd);
    // Build scripts' stdout carries instructions to cargo: keep the child's output off it.
    cmd.stdout(Stdio::from(std::io::stderr()));
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?} to build the example actors: {e}"));
    assert!(
        status.success(),
        "building the example actors for {TARGET} failed ({status}); run `cargo build --profile \
         {PROFILE} --target {TARGET} -p {}` in {} to see why",
        packages.join(" -p "),
        workspace.display()
    );
}

/// Checks that `package`'s output is a component and copies it to `dest`.
fn copy_out(target_dir: &Path, package: &str, dest: &Path) {
    let built = target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{}.wasm", package.replace('-', "_")));
    let bytes = fs::read(&built).unwrap_or_else(|e| panic!("cannot read {}: {e}", built.display()));
    assert!(
        bytes.starts_with(&COMPONENT_HEADER),
        "{} is not a WASM component (it starts with {:02x?})",
        built.display(),
        &bytes[..bytes.len().min(8)]
    );
    fs::write(dest, &bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

/// Removes what the outer build sets for its own (host) compilation and cargo would honour in
/// the nested one.
fn scrub_env(cmd: &mut Command) {
    const REMOVE: [&str; 17] = [
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        // `cargo clippy` runs rustc through clippy-driver with this.
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
    ];
    const REMOVE_PREFIXES: [&str; 5] = [
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "DEP_",
    ];
    for name in REMOVE {
        cmd.env_remove(name);
    }
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if REMOVE_PREFIXES.iter().any(|p| name.starts_with(p))
            || name == "DEBUG"
            || name == "NUM_JOBS"
            || name == "RUSTC_LINKER"
        {
            cmd.env_remove(OsStr::new(name));
        }
    }
}

/// Makes sure the `wasm32-wasip2` standard library is installed, with rustup if needed.
fn ensure_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let installed = || {
        Command::new(&rustc)
            .args(["--print", "target-libdir", "--target", TARGET])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
            .is_some_and(|dir| dir.is_dir())
    };
    if installed() {
        return;
    }
    println!(
        "cargo::warning=the {TARGET} target is not installed; running `rustup target add {TARGET}`"
    );
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        added && installed(),
        "the {TARGET} Rust target is needed to build the example actors and could not be \
         installed automatically; run `rustup target add {TARGET}` (rust-toolchain.toml pins it)"
    );
}
