//! The crate's modules form layers: each module refers only to modules below it in the order
//! `lib.rs` declares (and `node/mod.rs` inside `node`), so there is no cycle between them.
//!
//! The check reads the sources with `std::fs`, strips comments and literals, and resolves every
//! path that starts with `crate::`, `super::` or `self::` (including `use` groups) to the module it
//! names. A file may use its own module, its own inline modules (`mod tests`) and, if it is a
//! module root, its children; anything else must lie strictly below it in the order of the first
//! scope where the two differ. A reference to a root's own items (what `lib.rs` or `node/mod.rs`
//! defines or re-exports) is refused: a root re-exports everything, so it sits above every layer.

use std::collections::BTreeSet;
use std::path::Path;

/// Scopes (module paths) and their child modules in layer order, leaf first.
type Layers = [(&'static [&'static str], &'static [&'static str])];

/// Each scope's modules in layer order, leaf first: the crate root's and `node`'s.
const LAYERS: &Layers = &[
    (
        &[],
        &[
            "id",
            "keys",
            "revocation",
            "capability",
            "authorize",
            "error",
            "codec",
            "chain",
            "token",
            "verify",
            "cache",
            "node",
        ],
    ),
    (&["node"], &["error", "request", "key", "cert", "verifier"]),
];

/// A module path from the crate root (`[]` is the root, `["node", "cert"]` is `node/cert.rs`).
type ModPath = Vec<String>;

/// The layer order of `scope`'s children, if it has any.
fn order_of(layers: &Layers, scope: &[String]) -> Option<&'static [&'static str]> {
    layers
        .iter()
        .find(|(s, _)| s.iter().eq(scope.iter()))
        .map(|(_, order)| *order)
}

// ---------------------------------------------------------------------------------------------
// Lexing: comments and literals out, then identifiers and punctuation.

/// `src` with comments removed and the contents of string and character literals blanked, so
/// that neither a doc link nor a message can count as a reference.
fn strip(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let skipped_to = match (chars[i], chars.get(i + 1).copied()) {
            ('/', Some('/')) => skip_line(&chars, i),
            ('/', Some('*')) => skip_block_comment(&chars, i),
            ('"', _) => skip_string(&chars, i + 1),
            ('r', Some('"' | '#')) if is_raw_string(&chars, i) => skip_raw_string(&chars, i),
            ('\'', _) => skip_char(&chars, i),
            _ => i,
        };
        if skipped_to == i {
            out.push(chars[i]);
            i += 1;
        } else {
            out.push(' ');
            i = skipped_to;
        }
    }
    out
}

fn skip_line(chars: &[char], i: usize) -> usize {
    chars[i..]
        .iter()
        .position(|&c| c == '\n')
        .map_or(chars.len(), |n| i + n)
}

fn skip_block_comment(chars: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1).copied()) {
            ('/', Some('*')) => depth += 1,
            ('*', Some('/')) => depth -= 1,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
        if depth == 0 {
            break;
        }
    }
    i
}

fn skip_string(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i] != '"' {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

fn is_raw_string(chars: &[char], i: usize) -> bool {
    let before_is_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    !before_is_ident && chars.get(i + 1 + hashes) == Some(&'"')
}

fn skip_raw_string(chars: &[char], i: usize) -> usize {
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    let close: String = std::iter::once('"')
        .chain("#".repeat(hashes).chars())
        .collect();
    let body: String = chars[i + 2 + hashes..].iter().collect();
    let start = i + 2 + hashes;
    body.find(&close).map_or(chars.len(), |n| {
        start + body[..n].chars().count() + close.len()
    })
}

/// A character literal (`'x'`, `'\''`, `'\u{..}'`) is skipped; a lifetime (`'a`) is kept (the
/// result is `i` itself).
fn skip_char(chars: &[char], i: usize) -> usize {
    let end = match chars.get(i + 1) {
        Some('\\') => chars
            .get(i + 3..)
            .and_then(|rest| rest.iter().position(|&c| c == '\''))
            .map(|n| i + 3 + n),
        Some(_) if chars.get(i + 2) == Some(&'\'') => Some(i + 2),
        _ => None,
    };
    end.map_or(i, |e| e + 1)
}

/// Identifiers, `::`, and single punctuation characters of stripped source.
fn tokens(stripped: &str) -> Vec<String> {
    let chars: Vec<char> = stripped.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let len = if c.is_alphanumeric() || c == '_' {
            chars[i..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .count()
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            2
        } else {
            1
        };
        if !c.is_whitespace() {
            out.push(chars[i..i + len].iter().collect());
        }
        i += len;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Resolving paths to modules.

/// One path found in a file: the module it lands in, and the text of the path for messages.
#[derive(Debug)]
struct Reference {
    target: ModPath,
    path: String,
}

/// Every module path the file at `file` (a module path) refers to.
fn references(file: &[String], source: &str, layers: &Layers) -> Vec<Reference> {
    let toks = tokens(&strip(source));
    let mut out = Vec::new();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match toks[i].as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if toks.get(i + 2).is_some_and(|t| t == "{") => {
                inline.push((toks[i + 1].clone(), depth));
            }
            "crate" | "super" | "self" if starts_path(&toks, i) => {
                let here: ModPath = file
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(name, _)| name.clone()))
                    .collect();
                i = resolve(&toks, i, &here, layers, &mut out);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Whether `toks[i]` begins a path: followed by `::` and not itself inside one (`a::self`).
fn starts_path(toks: &[String], i: usize) -> bool {
    toks.get(i + 1).is_some_and(|t| t == "::") && (i == 0 || toks[i - 1] != "::")
}

/// Resolves the path starting at `toks[i]` (`crate`, `super` or `self`) from module `here`,
/// pushing what it names; returns the index after it.
fn resolve(
    toks: &[String],
    mut i: usize,
    here: &[String],
    layers: &Layers,
    out: &mut Vec<Reference>,
) -> usize {
    let mut base: ModPath = here.to_vec();
    let mut text = String::new();
    loop {
        match toks[i].as_str() {
            "crate" => base.clear(),
            "super" => {
                base.pop();
            }
            "self" => {}
            _ => break,
        }
        text.push_str(&toks[i]);
        text.push_str("::");
        i += 2;
        if !matches!(toks.get(i).map(String::as_str), Some("super" | "self")) {
            break;
        }
    }
    tree(toks, i, &base, &text, layers, out)
}

/// Resolves a use tree (`a::b`, `{a, b::c}`, `*`, `self`) below module `base`.
fn tree(
    toks: &[String],
    i: usize,
    base: &[String],
    text: &str,
    layers: &Layers,
    out: &mut Vec<Reference>,
) -> usize {
    if toks.get(i).is_some_and(|t| t == "{") {
        return group(toks, i + 1, base, text, layers, out);
    }
    let segment = toks.get(i).cloned().unwrap_or_default();
    let text = format!("{text}{segment}");
    let mut target = base.to_vec();
    if order_of(layers, base).is_some_and(|o| o.contains(&segment.as_str())) {
        target.push(segment);
        if toks.get(i + 1).is_some_and(|t| t == "::") {
            return tree(toks, i + 2, &target, &format!("{text}::"), layers, out);
        }
    }
    out.push(Reference { target, path: text });
    after_alias(toks, i + 1)
}

/// Resolves the trees of a `{…}` group starting at `toks[i]`; returns the index after its `}`.
fn group(
    toks: &[String],
    mut i: usize,
    base: &[String],
    text: &str,
    layers: &Layers,
    out: &mut Vec<Reference>,
) -> usize {
    while toks.get(i).is_some_and(|t| t != "}") {
        i = tree(toks, i, base, text, layers, out);
        if toks.get(i).is_some_and(|t| t == ",") {
            i += 1;
        }
    }
    i + 1
}

/// Skips an `as name` after a use tree's leaf.
fn after_alias(toks: &[String], i: usize) -> usize {
    if toks.get(i).is_some_and(|t| t == "as") {
        i + 2
    } else {
        i
    }
}

// ---------------------------------------------------------------------------------------------
// The rule.

/// Why `file`'s reference to `target` breaks the layers, if it does.
fn violation(file: &[String], target: &[String], layers: &Layers) -> Option<String> {
    if target.starts_with(file) {
        return None; // itself, its inline modules, or (for a root) its children
    }
    let common = file.iter().zip(target).take_while(|(a, b)| a == b).count();
    let scope = &file[..common];
    if common == target.len() {
        return Some(format!(
            "refers to the items of {}, which sits above every layer",
            root_name(scope)
        ));
    }
    let order = order_of(layers, scope)?;
    let position = |name: &str| order.iter().position(|m| *m == name);
    let (from, to) = (&file[common], &target[common]);
    match (position(from), position(to)) {
        (Some(f), Some(t)) if t < f => None,
        _ => Some(format!(
            "uses `{to}`, which is not below `{from}` in the layer order {}",
            order.join(" → ")
        )),
    }
}

fn root_name(scope: &[String]) -> String {
    if scope.is_empty() {
        "the crate root (lib.rs)".to_owned()
    } else {
        format!("`{}` (its mod.rs)", scope.join("::"))
    }
}

/// Every violation in `files` (display name, module path, source), one line each.
fn violations(files: &[(String, ModPath, String)], layers: &Layers) -> Vec<String> {
    let mut out = Vec::new();
    for (name, module, source) in files {
        for r in references(module, source, layers) {
            if let Some(why) = violation(module, &r.target, layers) {
                out.push(format!(
                    "{name} (module `{}`): `{}` {why}",
                    module.join("::"),
                    r.path
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The crate's sources.

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The file of a module: `a/b.rs`, or `a/b/mod.rs` for a module with children.
fn file_of(module: &[String]) -> String {
    if module.is_empty() {
        return "lib.rs".to_owned();
    }
    let path = module.join("/");
    if order_of(LAYERS, module).is_some() {
        format!("{path}/mod.rs")
    } else {
        format!("{path}.rs")
    }
}

/// Every module the layers name, with the crate root: module path and file.
fn modules() -> Vec<(ModPath, String)> {
    let mut out = vec![(Vec::new(), file_of(&[]))];
    for (scope, order) in LAYERS {
        for name in *order {
            let mut module: ModPath = scope.iter().map(|s| (*s).to_owned()).collect();
            module.push((*name).to_owned());
            out.push((module.clone(), file_of(&module)));
        }
    }
    out
}

fn read(file: &str) -> String {
    std::fs::read_to_string(src().join(file)).unwrap_or_else(|e| panic!("src/{file}: {e}"))
}

/// The names of the `mod` items a file declares, in order (`mod x;`, `pub mod x;`).
fn declared_mods(source: &str) -> Vec<String> {
    let toks = tokens(&strip(source));
    toks.windows(3)
        .filter(|w| w[0] == "mod" && w[2] == ";")
        .map(|w| w[1].clone())
        .collect()
}

/// Every `.rs` file under `dir`, relative to `src/`.
fn rust_files(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(src()).expect("under src/");
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn the_layers_are_the_order_the_mod_lines_declare() {
    for (scope, order) in LAYERS {
        let scope: ModPath = scope.iter().map(|s| (*s).to_owned()).collect();
        let file = file_of(&scope);
        assert_eq!(
            declared_mods(&read(&file)),
            *order,
            "src/{file} must declare its modules in the order of tests/layers.rs's LAYERS"
        );
    }
}

#[test]
fn every_source_file_is_a_module_of_the_layers() {
    let mut on_disk = BTreeSet::new();
    rust_files(&src(), &mut on_disk);
    let listed: BTreeSet<String> = modules().into_iter().map(|(_, f)| f).collect();
    assert_eq!(
        on_disk, listed,
        "every file under src/ must be a module that LAYERS orders"
    );
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let files: Vec<(String, ModPath, String)> = modules()
        .into_iter()
        .map(|(module, file)| (format!("src/{file}"), module, read(&file)))
        .collect();
    let found = violations(&files, LAYERS);
    assert!(
        found.is_empty(),
        "modules refer to modules at or above them:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_checker_sees_the_crates_real_references() {
    let targets = |module: &[&str]| -> Vec<String> {
        let module: ModPath = module.iter().map(|s| (*s).to_owned()).collect();
        references(&module, &read(&file_of(&module)), LAYERS)
            .into_iter()
            .map(|r| r.target.join("::"))
            .collect()
    };
    let cache = targets(&["cache"]);
    for below in ["authorize", "chain", "error", "token", "verify"] {
        assert!(
            cache.contains(&below.to_owned()),
            "cache.rs uses {below}: {cache:?}"
        );
    }
    let verifier = targets(&["node", "verifier"]);
    for below in ["node::cert", "node::request", "revocation"] {
        assert!(
            verifier.contains(&below.to_owned()),
            "verifier.rs: {verifier:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The checker, on small in-memory crates.

const TOY: &Layers = &[(&[], &["low", "mid", "top"]), (&["top"], &["a", "b"])];

fn toy(files: &[(&str, &str)]) -> Vec<String> {
    let files: Vec<(String, ModPath, String)> = files
        .iter()
        .map(|(module, source)| {
            let path: ModPath = module
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            ((*module).to_owned(), path, (*source).to_owned())
        })
        .collect();
    violations(&files, TOY)
}

#[test]
fn the_checker_accepts_references_downwards() {
    let found = toy(&[
        ("", "mod low; mod mid; mod top; pub use top::{a::A, b};"),
        (
            "low",
            "pub struct L; #[cfg(test)] mod tests { use super::*; }",
        ),
        (
            "mid",
            "use crate::{low::L as Low, low};\nfn f() -> crate::low::L { crate::low::L }",
        ),
        ("top", "mod a; mod b; pub use self::b::B; use crate::mid;"),
        ("top::a", "use crate::low::L;"),
        (
            "top::b",
            "use super::a::A; use crate::top::a; pub struct B;",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn the_checker_names_the_file_and_module_of_an_upward_reference() {
    let found = toy(&[("low", "use crate::mid::M;")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("low (module `low`): `crate::mid::M`"),
        "{found:?}"
    );
    assert!(
        found[0].contains("`mid`, which is not below `low`"),
        "{found:?}"
    );
}

#[test]
fn the_checker_sees_grouped_inline_and_nested_references() {
    // In a group, in an expression, from a test module, and between siblings inside `top`.
    assert_eq!(toy(&[("mid", "use crate::{low::L, top::a::A};")]).len(), 1);
    assert_eq!(toy(&[("mid", "fn f() { crate::top::go(); }")]).len(), 1);
    assert_eq!(
        toy(&[("low", "mod tests { use super::super::mid::M; }")]).len(),
        1
    );
    assert_eq!(toy(&[("top::a", "use super::b::B;")]).len(), 1);
    assert_eq!(toy(&[("top::a", "use crate::top::b::B;")]).len(), 1);
    // A module below `top` may not use a module above its own scope's place either.
    assert_eq!(toy(&[("mid", "use crate::top::a::A;")]).len(), 1);
}

#[test]
fn the_checker_refuses_the_roots_items() {
    let at_root = toy(&[("mid", "use crate::{LIMIT, low::L};")]);
    assert_eq!(at_root.len(), 1, "{at_root:?}");
    assert!(at_root[0].contains("crate root"), "{at_root:?}");
    let at_top = toy(&[("top::b", "use super::SKEW;")]);
    assert_eq!(at_top.len(), 1, "{at_top:?}");
    assert!(at_top[0].contains("`top` (its mod.rs)"), "{at_top:?}");
}

#[test]
fn the_checker_ignores_comments_and_literals() {
    let source = r##"//! See [`crate::top`].
/* crate::top::x */ /// [`crate::mid`]
const S: &str = "crate::top::x"; const R: &str = r#"crate::mid::y"#;
const C: [char; 3] = ['"', '\'', '\u{22}']; fn f<'a>(x: &'a str) -> &'a str { x }
"##;
    assert_eq!(toy(&[("low", source)]), Vec::<String>::new());
}

#[test]
fn the_checker_reads_mod_declarations_in_order() {
    assert_eq!(
        declared_mods("#[macro_use]\nmod a;\n// mod x;\npub mod b;\nmod t { }\nmod c;"),
        ["a", "b", "c"]
    );
}
