//! `docs/ARCHITECTURE.md` follows the code: every source file of each crate it maps appears in
//! that crate's "Inside" section, and every source file opens with a `//!` line.

use std::path::{Path, PathBuf};

/// The crates the code map covers: the section's name and the crate's `src/`.
const CRATES: [(&str, &str); 6] = [
    ("caps", "caps/src"),
    ("control-plane", "control-plane/src"),
    ("edge-node", "edge-node/src"),
    ("latchkey-wire", "control-plane/wire/src"),
    ("latchkey", "edge-node/cli/src"),
    ("latchkey-store", "control-plane/store/src"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text of the section headed "### Inside `name`", up to the next heading.
fn section<'a>(doc: &'a str, name: &str) -> &'a str {
    let heading = format!("### Inside `{name}`");
    let start = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no section {heading:?}"));
    let rest = &doc[start + heading.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    &rest[..end]
}

/// Every `.rs` file under `dir`, relative to it.
fn sources(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).expect("under dir");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

/// Whether `section` names `file`: as `path`, or (at the top level) as `name.rs`; a file in a
/// folder by the folder (`dir/`) and its stem or name (`mod.rs` by the folder alone). The crate
/// root (`lib.rs`) is the crate's row in the top table.
fn named(section: &str, file: &str) -> bool {
    let ticked = |s: &str| section.contains(&format!("`{s}`"));
    if file == "lib.rs" || ticked(file) {
        return true;
    }
    match file.rsplit_once('/') {
        None => false,
        Some((dir, name)) => {
            let stem = name.trim_end_matches(".rs");
            ticked(&format!("{dir}/")) && (name == "mod.rs" || ticked(stem) || ticked(name))
        }
    }
}

/// Every source file of the mapped crates: its crate's section name, its `src/`, and its path
/// relative to that.
fn mapped_sources() -> Vec<(&'static str, &'static str, String)> {
    CRATES
        .iter()
        .flat_map(|&(name, src)| {
            sources(&root().join(src))
                .into_iter()
                .map(move |file| (name, src, file))
        })
        .collect()
}

#[test]
fn every_source_file_is_in_the_code_map() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md is readable");
    let missing: Vec<String> = mapped_sources()
        .into_iter()
        .filter(|(name, _, file)| !named(section(&doc, name), file))
        .map(|(name, src, file)| format!("{src}/{file} (section \"Inside `{name}`\")"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md's code map does not name:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    let bare: Vec<String> = mapped_sources()
        .into_iter()
        .filter(|(_, src, file)| {
            let text = std::fs::read_to_string(root().join(src).join(file))
                .expect("a readable source file");
            !text.starts_with("//!")
        })
        .map(|(_, src, file)| format!("{src}/{file}"))
        .collect();
    assert!(
        bare.is_empty(),
        "these files do not open with a `//!` line:\n  {}",
        bare.join("\n  ")
    );
}

#[test]
fn the_check_notices_an_unnamed_file() {
    let section = "| `api/` | `admin.rs` (JSON), `node` |\n| `fencing.rs` | … |";
    assert!(named(section, "fencing.rs"));
    assert!(named(section, "api/admin.rs"));
    assert!(named(section, "api/node.rs"));
    assert!(named(section, "api/mod.rs"));
    assert!(!named(section, "api/tail.rs"));
    assert!(!named(section, "rollout.rs"));
}
