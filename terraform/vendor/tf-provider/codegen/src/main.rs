//! Writes `../src/generated/{plugin,tfplugin6}.rs` from `../proto/*.proto`: what upstream
//! tf-provider 0.2.2's build script generated with `protoc`, compiled here with `protox` (no
//! `protoc` needed) and the same `tonic_build` settings (server only).

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the codegen crate has no parent directory")?;
    let proto = root.join("proto");
    let out = root.join("src").join("generated");
    std::fs::create_dir_all(&out)?;
    let files = [proto.join("plugin.proto"), proto.join("tfplugin6.5.proto")];
    let descriptors = protox::compile(&files, [&proto])?;
    tonic_build::configure()
        .build_client(false)
        .emit_rerun_if_changed(false)
        .out_dir(&out)
        .compile_fds(descriptors)?;
    for name in ["plugin.rs", "tfplugin6.rs"] {
        println!("wrote {}", out.join(name).display());
    }
    Ok(())
}
