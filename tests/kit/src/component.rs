//! Valid actor components with stub code, built in-process from the SDK's WIT world (no WASM
//! toolchain): for tests of uploads, validation and compilation that need many distinct modules
//! or hand-shaped code, where the example actors would not do.

use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve, WorldId};

const ACTOR_WIT: &str = include_str!("../../../actor-sdk/wit/actor.wit");

/// A valid actor component (stub code) whose bytes, and so content id, depend on `tag`.
pub fn actor_component(tag: &str) -> Vec<u8> {
    let mut module = stub_module();
    // A custom section makes each tag a distinct module.
    let name = b"latchkey-test-tag";
    let mut payload = vec![u8::try_from(name.len()).expect("a short name")];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    module.push(0);
    leb128(&mut module, payload.len() as u64);
    module.extend_from_slice(&payload);
    componentize(module)
}

/// A core module exporting the actor world with stub bodies (each `unreachable`).
pub fn stub_module() -> Vec<u8> {
    let (resolve, world) = actor_world();
    dummy_module(&resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync))
}

/// The actor component of a core module made from [`stub_module`] (validated).
pub fn componentize(mut module: Vec<u8>) -> Vec<u8> {
    let (resolve, world) = actor_world();
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .expect("the actor world embeds");
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .expect("a valid core module")
        .encode()
        .expect("the component encodes")
}

/// Appends `n` in unsigned LEB128 (WebAssembly's integer encoding).
pub fn leb128(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn actor_world() -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let pkg = resolve
        .push_str("actor.wit", ACTOR_WIT)
        .expect("the SDK's WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("actor"))
        .expect("the actor world");
    (resolve, world)
}
