//! Validation of uploaded actor code: checks that a WASM component targets the `latchkey:actor`
//! world (exports a matching `handler`, imports only what edge nodes provide) before it is stored.
//!
//! Pure: no I/O. Size limits are enforced by the caller. Every failure is an [`InvalidModule`]
//! whose message is meant for the operator (it is returned in an HTTP 422 body).

use std::sync::LazyLock;

use wasmparser::{Parser, Validator, WasmFeatures};
use wit_component::DecodedWasm;
use wit_parser::{
    Function, FunctionKind, Handle, Interface, InterfaceId, PackageId, PackageName, Resolve, Type,
    TypeDefKind, World, WorldId, WorldItem, WorldKey,
};

/// The actor contract, as the actor SDK publishes it.
const ACTOR_WIT: &str = include_str!("../../actor-sdk/wit/actor.wit");

/// The interface every actor component must export.
pub const HANDLER_EXPORT: &str = "latchkey:actor/handler@0.1.0";

/// Interfaces of `latchkey:actor@0.1.0` a component may import (`types` holds the handler's types).
const ACTOR_IMPORTS: [&str; 5] = ["types", "storage", "actors", "log", "clock"];

/// The `wasi:*@0.2.x` interfaces edge nodes link (those `wasmtime_wasi::p2::add_to_linker_*` adds).
const WASI_IMPORTS: &str = "io/error io/poll io/streams clocks/monotonic-clock clocks/wall-clock \
    random/random random/insecure random/insecure-seed filesystem/types filesystem/preopens \
    sockets/network sockets/instance-network sockets/ip-name-lookup sockets/tcp \
    sockets/tcp-create-socket sockets/udp sockets/udp-create-socket cli/environment cli/exit \
    cli/stdin cli/stdout cli/stderr cli/terminal-input cli/terminal-output cli/terminal-stdin \
    cli/terminal-stdout cli/terminal-stderr";

const PROVIDED: &str = "edge nodes provide only `latchkey:actor/{types,storage,actors,log,clock}@0.1.0` \
     and WASI 0.2 (`wasi:{io,clocks,random,filesystem,sockets,cli}`)";

/// The reference WIT, parsed once, and its package.
static REFERENCE: LazyLock<(Resolve, PackageId)> = LazyLock::new(|| {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("actor.wit", ACTOR_WIT);
    (resolve, pkg.expect("the embedded actor.wit parses"))
});

/// What a valid actor component imports and exports (interface names with versions, e.g.
/// `latchkey:actor/handler@0.1.0`), in the component's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSummary {
    /// Everything the component exports; includes [`HANDLER_EXPORT`].
    pub exports: Vec<String>,
    /// Everything the component imports.
    pub imports: Vec<String>,
}

/// Why uploaded bytes are not a usable actor component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidModule {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly binary: {reason}")]
    NotWasm {
        /// What the parser said.
        reason: String,
    },
    /// The bytes are a component that fails validation.
    #[error("invalid WebAssembly component: {reason}")]
    Invalid {
        /// What the validator said.
        reason: String,
    },
    /// The bytes are a core module, not a component.
    #[error(
        "this is a core module; build for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    /// The bytes are a WIT package encoded as WebAssembly, not an implementation.
    #[error("this is a WIT package encoded as WebAssembly, not a component")]
    WitPackage,
    /// The component's interfaces could not be recovered.
    #[error("cannot read the component's interfaces: {reason}")]
    Undecodable {
        /// What the decoder said.
        reason: String,
    },
    /// The component does not export the handler interface.
    #[error("the component does not export `{HANDLER_EXPORT}` (it exports: {exports})")]
    MissingHandler {
        /// What it exports instead, comma-separated, or `nothing`.
        exports: String,
    },
    /// The exported `handler` lacks a function of the WIT.
    #[error("the exported `{interface}` lacks function `{function}`")]
    MissingFunction {
        /// The interface, e.g. `latchkey:actor/handler@0.1.0`.
        interface: String,
        /// The missing function.
        function: String,
    },
    /// An interface of the component has a function the WIT does not declare.
    #[error("function `{function}` of `{interface}` is not in the WIT")]
    UnknownFunction {
        /// The interface, with version.
        interface: String,
        /// The function.
        function: String,
    },
    /// A function's signature differs from the WIT.
    #[error("function `{function}` of `{interface}` does not match the WIT: {detail}")]
    FunctionMismatch {
        /// The interface, with version.
        interface: String,
        /// The function.
        function: String,
        /// The first difference found.
        detail: String,
    },
    /// A type of an actor interface differs from the WIT, or is not in it.
    #[error("type `{name}` of `{interface}` does not match the WIT: {detail}")]
    TypeMismatch {
        /// The interface, with version.
        interface: String,
        /// The type.
        name: String,
        /// The first difference found.
        detail: String,
    },
    /// The component imports something edge nodes do not provide.
    #[error("unsupported import `{import}`: {reason}")]
    UnsupportedImport {
        /// The import's name, e.g. `wasi:http/outgoing-handler@0.2.0`.
        import: String,
        /// Why it is not supported.
        reason: String,
    },
}

/// Checks that `bytes` are a WASM component edge nodes can run as an actor, and summarises it.
pub fn validate_component(bytes: &[u8]) -> Result<ComponentSummary, InvalidModule> {
    check_wasm(bytes)?;
    let (resolve, world) = decode(bytes)?;
    let world = &resolve.worlds[world];
    let key_name = |key: &WorldKey| match key {
        WorldKey::Name(name) => name.clone(),
        WorldKey::Interface(id) => interface_name(&resolve, *id),
    };
    let exports: Vec<String> = world.exports.keys().map(key_name).collect();
    let imports: Vec<String> = world.imports.keys().map(key_name).collect();
    check_handler(&resolve, world, &exports)?;
    check_imports(&resolve, world, &imports)?;
    Ok(ComponentSummary { exports, imports })
}

/// Valid WebAssembly, as a component, with the features wasmtime enables.
fn check_wasm(bytes: &[u8]) -> Result<(), InvalidModule> {
    // What wasmtime 48 enables by default (with the `gc`, `threads`, `component-model` and
    // `component-model-async` crate features).
    let features = WasmFeatures::WASM3 | WasmFeatures::COMPONENT_MODEL | WasmFeatures::CM_ASYNC;
    if Parser::is_core_wasm(bytes) {
        return Err(InvalidModule::CoreModule);
    }
    let Err(e) = Validator::new_with_features(features).validate_all(bytes) else {
        return Ok(());
    };
    if Parser::is_component(bytes) {
        return Err(InvalidModule::Invalid {
            reason: e.to_string(),
        });
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Err(InvalidModule::NotWasm {
        reason: format!(
            "it does not start with the WebAssembly header `00 61 73 6d` (it starts with `{}`)",
            head.join(" ")
        ),
    })
}

/// The component's world, decoded from validated bytes.
fn decode(bytes: &[u8]) -> Result<(Resolve, WorldId), InvalidModule> {
    // The decoder runs only on validated input, but it is third-party code on untrusted bytes:
    // a panic in it must reject the upload, not take the control plane down.
    let decoded = std::panic::catch_unwind(|| wit_component::decode(bytes)).map_err(|_| {
        InvalidModule::Undecodable {
            reason: "the decoder failed unexpectedly".into(),
        }
    })?;
    match decoded {
        Ok(DecodedWasm::Component(resolve, world)) => Ok((resolve, world)),
        Ok(DecodedWasm::WitPackage(..)) => Err(InvalidModule::WitPackage),
        Err(e) => Err(InvalidModule::Undecodable {
            reason: format!("{e:#}"),
        }),
    }
}

/// The actor interface `name` of the reference `actor.wit`.
fn reference_interface(name: &str) -> &'static Interface {
    let (reference, actor_pkg) = &*REFERENCE;
    &reference.interfaces[reference.packages[*actor_pkg].interfaces[name]]
}

/// The world exports the handler interface (named `exports` lists), with every function of
/// the reference one, of the same types.
fn check_handler(
    resolve: &Resolve,
    world: &World,
    exports: &[String],
) -> Result<(), InvalidModule> {
    let handler = world
        .exports
        .keys()
        .zip(exports)
        .find_map(|(key, name)| match key {
            WorldKey::Interface(id) if name == HANDLER_EXPORT => Some(*id),
            _ => None,
        });
    let Some(handler) = handler else {
        let exports = if exports.is_empty() {
            "nothing".into()
        } else {
            exports.join(", ")
        };
        return Err(InvalidModule::MissingHandler { exports });
    };
    let want = reference_interface("handler");
    let got = &resolve.interfaces[handler];
    if let Some(function) = want
        .functions
        .keys()
        .find(|f| !got.functions.contains_key(*f))
    {
        return Err(InvalidModule::MissingFunction {
            interface: HANDLER_EXPORT.into(),
            function: function.clone(),
        });
    }
    check_interface(&REFERENCE.0, want, resolve, got, HANDLER_EXPORT)
}

/// Every import (named `imports`) is an actor interface of the reference, with its types, or a
/// WASI 0.2 interface edge nodes link.
fn check_imports(
    resolve: &Resolve,
    world: &World,
    imports: &[String],
) -> Result<(), InvalidModule> {
    let (reference, actor_pkg) = &*REFERENCE;
    let actor_pkg = &reference.packages[*actor_pkg].name;
    for ((key, item), name) in world.imports.iter().zip(imports) {
        let reason = match (key, item) {
            (_, WorldItem::Function(_)) => {
                "component-level function imports are not supported; import an interface"
            }
            (_, WorldItem::Type { .. }) => "component-level type imports are not supported",
            (WorldKey::Name(_), _) => "unnamed instance imports are not supported",
            (WorldKey::Interface(id), _) => {
                let iface = &resolve.interfaces[*id];
                let pkg = iface.package.map(|p| &resolve.packages[p].name);
                let iface_name = iface.name.as_deref().unwrap_or_default();
                if pkg == Some(actor_pkg) && ACTOR_IMPORTS.contains(&iface_name) {
                    let want = reference_interface(iface_name);
                    check_interface(reference, want, resolve, iface, name)?;
                    continue;
                }
                if pkg.is_some_and(|pkg| is_provided_wasi(pkg, iface_name)) {
                    continue;
                }
                PROVIDED
            }
        };
        return Err(InvalidModule::UnsupportedImport {
            import: name.clone(),
            reason: reason.into(),
        });
    }
    Ok(())
}

/// `namespace:package/interface@version`, tolerating the parts a decoded resolve might lack.
fn interface_name(resolve: &Resolve, id: InterfaceId) -> String {
    let iface = &resolve.interfaces[id];
    let name = iface.name.as_deref().unwrap_or("<unnamed>");
    match iface.package.map(|p| &resolve.packages[p].name) {
        Some(pkg) => match &pkg.version {
            Some(v) => format!("{}:{}/{name}@{v}", pkg.namespace, pkg.name),
            None => format!("{}:{}/{name}", pkg.namespace, pkg.name),
        },
        None => name.to_string(),
    }
}

/// Whether `pkg`/`iface` is a WASI 0.2 interface edge nodes link.
fn is_provided_wasi(pkg: &PackageName, iface: &str) -> bool {
    pkg.namespace == "wasi"
        && pkg
            .version
            .as_ref()
            .is_some_and(|v| v.major == 0 && v.minor == 2 && v.pre.is_empty())
        && WASI_IMPORTS
            .split_whitespace()
            .any(|i| i.split_once('/') == Some((&pkg.name, iface)))
}

/// Checks every function and type of `got` (named `name`) against the reference `want`.
fn check_interface(
    reference: &Resolve,
    want: &Interface,
    resolve: &Resolve,
    got: &Interface,
    name: &str,
) -> Result<(), InvalidModule> {
    let cmp = Compare {
        want: reference,
        got: resolve,
    };
    for (ty_name, &id) in &got.types {
        let mismatch = |detail: String| InvalidModule::TypeMismatch {
            interface: name.into(),
            name: ty_name.clone(),
            detail,
        };
        if matches!(resolve.types[id].kind, TypeDefKind::Resource) {
            return Err(mismatch("resources are not supported by actors".into()));
        }
        let Some(&want_id) = want.types.get(ty_name) else {
            return Err(mismatch("the WIT declares no such type".into()));
        };
        cmp.named(Type::Id(want_id), Type::Id(id))
            .map_err(mismatch)?;
    }
    for (function, got_fn) in &got.functions {
        let Some(want_fn) = want.functions.get(function) else {
            return Err(InvalidModule::UnknownFunction {
                interface: name.into(),
                function: function.clone(),
            });
        };
        cmp.func(want_fn, got_fn)
            .map_err(|detail| InvalidModule::FunctionMismatch {
                interface: name.into(),
                function: function.clone(),
                detail,
            })?;
    }
    Ok(())
}

/// Structural comparison of reference (`want`) types against a component's (`got`).
///
/// Recursion follows the reference's types, which are shallow, so it is bounded whatever the
/// component contains. Errors describe the first difference.
struct Compare<'a> {
    want: &'a Resolve,
    got: &'a Resolve,
}

impl Compare<'_> {
    fn func(&self, want: &Function, got: &Function) -> Result<(), String> {
        if got.kind != FunctionKind::Freestanding {
            return Err("expected a plain synchronous function".into());
        }
        let (w, g) = (&want.params, &got.params);
        if w.len() != g.len() {
            return Err(format!(
                "expected {} parameters, found {}",
                w.len(),
                g.len()
            ));
        }
        for (w, g) in w.iter().zip(g) {
            if w.name != g.name {
                return Err(format!(
                    "expected parameter `{}`, found `{}`",
                    w.name, g.name
                ));
            }
            let context = |e| format!("parameter `{}`: {e}", w.name);
            self.ty(w.ty, g.ty).map_err(context)?;
        }
        let context = |e| format!("result: {e}");
        self.opt(want.result, got.result).map_err(context)
    }

    /// Compares two types; a top-level difference inside a named type is not prefixed by it.
    fn named(&self, want: Type, got: Type) -> Result<(), String> {
        self.same(want, got)
            .map_err(|(w, g, detail)| detail.unwrap_or_else(|| self.mismatch(w, g)))
    }

    fn ty(&self, want: Type, got: Type) -> Result<(), String> {
        self.same(want, got).map_err(|(w, g, detail)| match detail {
            Some(detail) => format!("in `{}`: {detail}", show(self.want, w, 0)),
            None => self.mismatch(w, g),
        })
    }

    /// On a difference: the two types compared (aliases resolved) and, if they are of the same
    /// kind, what differs inside.
    fn same(&self, want: Type, got: Type) -> Result<(), (Type, Type, Option<String>)> {
        let (w, g) = (dealias(self.want, want), dealias(self.got, got));
        match (w, g) {
            (Type::Id(wi), Type::Id(gi)) => {
                let kinds = (&self.want.types[wi].kind, &self.got.types[gi].kind);
                self.kind(kinds.0, kinds.1).map_err(|d| (w, g, d))
            }
            _ if w == g && !matches!(w, Type::Id(_)) => Ok(()),
            _ => Err((w, g, None)),
        }
    }

    fn mismatch(&self, w: Type, g: Type) -> String {
        let (ws, gs) = (show(self.want, w, 0), show(self.got, g, 0));
        if ws != gs {
            return format!("expected `{ws}`, found `{gs}`");
        }
        let (wk, gk) = (kind_word(self.want, w), kind_word(self.got, g));
        format!("expected {wk} `{ws}`, found {gk} `{gs}`")
    }

    /// `Err(None)`: different kinds of type; `Err(Some(_))`: a difference inside.
    fn kind(&self, want: &TypeDefKind, got: &TypeDefKind) -> Result<(), Option<String>> {
        use TypeDefKind as K;
        if let (Some((what, w)), Some((_, g))) = (members(want), members(got))
            && w != g
            && std::mem::discriminant(want) == std::mem::discriminant(got)
        {
            return Err(Some(format!("expected {what} {w:?}, found {g:?}")));
        }
        let at = |what: String| move |e: String| Some(format!("{what}: {e}"));
        match (want, got) {
            (K::List(w), K::List(g)) | (K::Option(w), K::Option(g)) => {
                self.ty(*w, *g).map_err(Some)
            }
            (K::Result(w), K::Result(g)) => {
                self.opt(w.ok, g.ok).map_err(at("ok".into()))?;
                self.opt(w.err, g.err).map_err(at("error".into()))
            }
            (K::Tuple(w), K::Tuple(g)) if w.types.len() == g.types.len() => {
                let mut pairs = w.types.iter().zip(&g.types).enumerate();
                pairs
                    .try_for_each(|(i, (w, g))| self.ty(*w, *g).map_err(at(format!("element {i}"))))
            }
            (K::Record(w), K::Record(g)) => {
                w.fields.iter().zip(&g.fields).try_for_each(|(w, g)| {
                    self.ty(w.ty, g.ty)
                        .map_err(at(format!("field `{}`", w.name)))
                })
            }
            (K::Variant(w), K::Variant(g)) => {
                w.cases.iter().zip(&g.cases).try_for_each(|(w, g)| {
                    self.opt(w.ty, g.ty)
                        .map_err(at(format!("case `{}`", w.name)))
                })
            }
            (K::Enum(_), K::Enum(_)) | (K::Flags(_), K::Flags(_)) => Ok(()),
            _ => Err(None),
        }
    }

    fn opt(&self, want: Option<Type>, got: Option<Type>) -> Result<(), String> {
        match (want, got) {
            (None, None) => Ok(()),
            (Some(w), Some(g)) => self.ty(w, g),
            (Some(w), None) => Err(format!("expected `{}`, found none", show(self.want, w, 0))),
            (None, Some(g)) => Err(format!("expected none, found `{}`", show(self.got, g, 0))),
        }
    }
}

/// What a record, variant, enum or flags type calls its members, and their names.
fn members(kind: &TypeDefKind) -> Option<(&'static str, Vec<&str>)> {
    Some(match kind {
        TypeDefKind::Record(r) => ("fields", r.fields.iter().map(|f| f.name.as_str()).collect()),
        TypeDefKind::Variant(v) => ("cases", v.cases.iter().map(|c| c.name.as_str()).collect()),
        TypeDefKind::Enum(e) => ("cases", e.cases.iter().map(|c| c.name.as_str()).collect()),
        TypeDefKind::Flags(f) => ("flags", f.flags.iter().map(|f| f.name.as_str()).collect()),
        _ => return None,
    })
}

/// Follows `type a = b` aliases (acyclic, so the walk ends; bounded anyway).
fn dealias(resolve: &Resolve, mut ty: Type) -> Type {
    for _ in 0..=resolve.types.len() {
        match ty {
            Type::Id(id) => match resolve.types[id].kind {
                TypeDefKind::Type(next) => ty = next,
                _ => break,
            },
            _ => break,
        }
    }
    ty
}

/// The WIT keyword for the kind of `ty`.
fn kind_word(resolve: &Resolve, ty: Type) -> &'static str {
    let Type::Id(id) = ty else { return "type" };
    match resolve.types[id].kind {
        TypeDefKind::Record(_) => "record",
        TypeDefKind::Variant(_) => "variant",
        TypeDefKind::Enum(_) => "enum",
        TypeDefKind::Flags(_) => "flags",
        TypeDefKind::Resource => "resource",
        _ => "type",
    }
}

/// A type in WIT syntax: named types by name, anonymous ones spelled out (to a limited depth).
fn show(resolve: &Resolve, ty: Type, depth: usize) -> String {
    let primitive = match ty {
        Type::Bool => "bool",
        Type::U8 => "u8",
        Type::U16 => "u16",
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::S8 => "s8",
        Type::S16 => "s16",
        Type::S32 => "s32",
        Type::S64 => "s64",
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::ErrorContext => "error-context",
        Type::Id(_) => "",
    };
    let Type::Id(id) = ty else {
        return primitive.into();
    };
    let def = &resolve.types[id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    if depth > 6 {
        return "…".into();
    }
    let s = |ty: Type| show(resolve, ty, depth + 1);
    let opt = |ty: Option<Type>| ty.map_or("_".into(), s);
    match &def.kind {
        TypeDefKind::Type(ty) => s(*ty),
        TypeDefKind::List(ty) => format!("list<{}>", s(*ty)),
        TypeDefKind::FixedLengthList(ty, n) => format!("list<{}, {n}>", s(*ty)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", s(*k), s(*v)),
        TypeDefKind::Option(ty) => format!("option<{}>", s(*ty)),
        TypeDefKind::Result(r) if r.ok.is_none() && r.err.is_none() => "result".into(),
        TypeDefKind::Result(r) => format!("result<{}, {}>", opt(r.ok), opt(r.err)),
        TypeDefKind::Tuple(t) => {
            let parts: Vec<String> = t.types.iter().map(|ty| s(*ty)).collect();
            format!("tuple<{}>", parts.join(", "))
        }
        TypeDefKind::Handle(Handle::Own(r)) => format!("own<{}>", s(Type::Id(*r))),
        TypeDefKind::Handle(Handle::Borrow(r)) => format!("borrow<{}>", s(Type::Id(*r))),
        TypeDefKind::Future(ty) => format!("future<{}>", opt(*ty)),
        TypeDefKind::Stream(ty) => format!("stream<{}>", opt(*ty)),
        _ => kind_word(resolve, ty).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
    use wit_parser::{LiftLowerAbi, ManglingAndAbi};

    /// A component with stub code implementing world `world` of the WIT `wit`.
    fn component(wit: &str, world: &str) -> Vec<u8> {
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("test.wit", wit).unwrap();
        let world = resolve.select_world(&[pkg], Some(world)).unwrap();
        let abi = ManglingAndAbi::Legacy(LiftLowerAbi::Sync);
        let mut module = dummy_module(&resolve, world, abi);
        embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).unwrap();
        let encoder = ComponentEncoder::default().validate(true).module(&module);
        encoder.unwrap().encode().unwrap()
    }

    /// The actor WIT with the first `from` replaced by `to`.
    fn edit(from: &str, to: &str) -> String {
        assert!(ACTOR_WIT.contains(from), "not in actor.wit: {from}");
        ACTOR_WIT.replacen(from, to, 1)
    }

    #[test]
    fn accepts_the_actor_world() {
        let summary = validate_component(&component(ACTOR_WIT, "actor")).unwrap();
        assert_eq!(summary.exports, [HANDLER_EXPORT]);
        let mut imports = summary.imports;
        imports.sort();
        let expected = ["actors", "clock", "log", "storage", "types"];
        assert_eq!(
            imports,
            expected.map(|i| format!("latchkey:actor/{i}@0.1.0"))
        );
    }

    #[test]
    fn accepts_wasi_and_part_of_an_actor_interface() {
        let wit = edit(
            "world actor {",
            "package wasi:clocks@0.2.6 { interface monotonic-clock { now: func() -> u64; } }
            world test { import wasi:clocks/monotonic-clock@0.2.6; import log; export handler; }
            world actor {",
        );
        let summary = validate_component(&component(&wit, "test")).unwrap();
        let expected = [
            "wasi:clocks/monotonic-clock@0.2.6",
            "latchkey:actor/log@0.1.0",
        ];
        assert_eq!(summary.imports[..2], expected);
        // A guest that uses only some functions of an interface imports only those.
        let wit = edit("    self-token: func() -> string;", "");
        validate_component(&component(&wit, "actor")).unwrap();
    }

    #[test]
    fn rejects_mismatches_naming_the_item() {
        let handle = "handle: func(ctx: context, method: string";
        let get = "get: func(key: list<u8>) -> result<option<list<u8>>, storage-error>;";
        let world = "world actor {";
        let http = "package wasi:http@0.2.0 { interface outgoing-handler { f: func() -> u32; } }
            world actor { import wasi:http/outgoing-handler@0.2.0;";
        let acme =
            "package acme:foo { interface bar { f: func(); } } world actor { import acme:foo/bar;";
        let handler = "`latchkey:actor/handler@0.1.0`";
        #[rustfmt::skip]
        let cases = [
            ("    export handler;", "", format!("the component does not export {handler} (it exports: nothing)")),
            ("    export handler;", "export clock;", "(it exports: latchkey:actor/clock@0.1.0)".into()),
            ("    on-upgrade: func(", "x: func(", format!("the exported {handler} lacks function `on-upgrade`")),
            (handle, "handle: func(ctx: context, method: u32", format!("function `handle` of {handler} \
                does not match the WIT: parameter `method`: expected `string`, found `u32`")),
            (handle, "handle: func(ctx: context, meth: string", "expected parameter `method`, found `meth`".into()),
            (handle, "handle: async func(ctx: context, method: string", "a plain synchronous function".into()),
            ("-> result<list<u8>, error>;\n\n", "-> result<string, error>;", "function `handle` of \
                `latchkey:actor/handler@0.1.0` does not match the WIT: result: in `result<list<u8>, \
                error>`: ok: expected `list<u8>`, found `string`".into()),
            ("        failed(string),\n    }\n}", "failed(u8), } }", format!("type `error` of {handler} \
                does not match the WIT: case `failed`: expected `string`, found `u8`")),
            (world, http, "unsupported import `wasi:http/outgoing-handler@0.2.0`: edge nodes provide only".into()),
            (world, acme, "unsupported import `acme:foo/bar`: edge nodes provide only".into()),
            (world, "world actor { import frob: func();", "unsupported import `frob`: component-level function".into()),
            (world, "world actor { import handler;", format!("unsupported import {handler}: edge nodes")),
            (get, "get: func(key: string) -> result<option<list<u8>>, storage-error>;", "function `get` of \
                `latchkey:actor/storage@0.1.0` does not match the WIT: parameter `key`: expected `list<u8>`, \
                found `string`".into()),
            ("self-token: func() -> string;", "self-token: func() -> string; x: func();",
                "function `x` of `latchkey:actor/actors@0.1.0` is not in the WIT".into()),
            ("reverse: bool,", "reversed: bool,", "type `list-options` of `latchkey:actor/storage@0.1.0` \
                does not match the WIT: expected fields".into()),
            ("enum level", "flags level", "type `level` of `latchkey:actor/log@0.1.0` does not match the WIT: \
                expected enum `level`, found flags `level`".into()),
            ("interface clock {", "interface clock { resource r;", "type `r` of `latchkey:actor/clock@0.1.0` \
                does not match the WIT: resources are not supported".into()),
        ];
        for (from, to, expected) in cases {
            let err = validate_component(&component(&edit(from, to), "actor")).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(&expected),
                "{message}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_component() {
        let core = validate_component(b"\0asm\x01\0\0\0");
        assert_eq!(core, Err(InvalidModule::CoreModule));
        let err = validate_component(b"hello, world").unwrap_err();
        assert!(matches!(err, InvalidModule::NotWasm { .. }), "{err}");
        assert!(
            err.to_string().contains("starts with `68 65 6c 6c"),
            "{err}"
        );
        let mut truncated = component(ACTOR_WIT, "actor");
        truncated.truncate(truncated.len() / 2);
        let err = validate_component(&truncated).unwrap_err();
        assert!(matches!(err, InvalidModule::Invalid { .. }), "{err}");
        let (resolve, pkg) = &*REFERENCE;
        let wit_package = wit_component::encode(resolve, *pkg).unwrap();
        let err = validate_component(&wit_package);
        assert_eq!(err, Err(InvalidModule::WitPackage));
        for bytes in [
            &b""[..],
            b"\0asm",
            b"\0asm\x0d\0\x01\0",
            b"\0asm\x0d\0\x01\0\x07\x05",
        ] {
            assert!(validate_component(bytes).is_err());
        }
        // Every prefix of a valid component is rejected without panicking.
        let bytes = component(ACTOR_WIT, "actor");
        for len in (0..bytes.len()).step_by(97) {
            assert!(validate_component(&bytes[..len]).is_err());
        }
    }
}
