//! An actor project: a Rust crate with a `latchkey.toml` naming the actor type it builds.
//! Building one runs `cargo build --release --target wasm32-wasip2` in it and takes the component
//! cargo reports for the project's own package.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use serde::Deserialize;

use crate::admin::note;

/// The manifest's file name.
pub(crate) const MANIFEST: &str = "latchkey.toml";

/// The target actors are built for.
const TARGET: &str = "wasm32-wasip2";

/// The first 8 bytes of a WASM component (magic, version 0x0d, layer 1).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    actor: ActorSection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorSection {
    #[serde(rename = "type")]
    actor_type: String,
}

/// An actor project on disk.
#[derive(Clone, Debug)]
pub(crate) struct Project {
    /// Its directory (absolute).
    pub(crate) dir: PathBuf,
    /// The actor type it deploys as.
    pub(crate) actor_type: String,
}

impl Project {
    /// Reads the project in `dir` (absolute).
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Project> {
        let manifest = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest).with_context(|| {
            format!(
                "reading {} (an actor project has one; `latchkey new` makes one)",
                manifest.display()
            )
        })?;
        let parsed: Manifest =
            toml::from_str(&text).with_context(|| format!("reading {}", manifest.display()))?;
        let actor_type = parsed.actor.actor_type;
        anyhow::ensure!(
            !actor_type.is_empty() && !actor_type.chars().any(char::is_control),
            "{}: `actor.type` must be a non-empty name without control characters",
            manifest.display()
        );
        anyhow::ensure!(
            dir.join("Cargo.toml").is_file(),
            "{} has a {MANIFEST} but no Cargo.toml",
            dir.display()
        );
        Ok(Project {
            dir: dir.to_owned(),
            actor_type,
        })
    }

    /// The project in `dir`, if `dir` holds a manifest.
    pub(crate) fn find(dir: &Path) -> anyhow::Result<Option<Project>> {
        if dir.join(MANIFEST).is_file() {
            Project::open(dir).map(Some)
        } else {
            Ok(None)
        }
    }

    /// What to watch for changes: the sources, the manifests and a build script if any (never
    /// `target/`, which the build itself writes).
    pub(crate) fn watched(&self) -> Vec<(PathBuf, bool)> {
        let mut paths = vec![
            (self.dir.join("src"), true),
            (self.dir.join("Cargo.toml"), false),
            (self.dir.join(MANIFEST), false),
        ];
        for optional in ["build.rs", "wit"] {
            let path = self.dir.join(optional);
            if path.exists() {
                paths.push((path, optional == "wit"));
            }
        }
        paths
    }

    /// Builds the component; cargo's progress and diagnostics go to stderr.
    pub(crate) fn build(&self) -> anyhow::Result<Vec<u8>> {
        ensure_target(&self.dir)?;
        let mut child = Command::new(cargo())
            .current_dir(&self.dir)
            .args([
                "build",
                "--release",
                "--target",
                TARGET,
                "--message-format=json-render-diagnostics",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("running cargo (is it on PATH?)")?;
        let stdout = child.stdout.take().expect("piped");
        let manifest = std::fs::canonicalize(self.dir.join("Cargo.toml"))?;
        let component = component_of(std::io::BufReader::new(stdout), &manifest)?;
        let status = child.wait()?;
        anyhow::ensure!(
            status.success(),
            "building {} failed (cargo's errors are above)",
            self.dir.display()
        );
        let path = component.with_context(|| {
            format!(
                "cargo built no `cdylib` for {}: its Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`",
                self.dir.display()
            )
        })?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(
            bytes.starts_with(&COMPONENT_HEADER),
            "{} is not a WASM component",
            path.display()
        );
        Ok(bytes)
    }
}

/// The cargo that runs this command (`cargo run`), else the one on `PATH`.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The `.wasm` file cargo's JSON messages report for the package of `manifest`.
fn component_of(
    messages: impl std::io::BufRead,
    manifest: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    let mut found = None;
    for line in messages.lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let ours = message["manifest_path"]
            .as_str()
            .and_then(|p| std::fs::canonicalize(p).ok())
            .is_some_and(|p| p == manifest);
        let cdylib = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if message["reason"] == "compiler-artifact" && ours && cdylib {
            found = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    Ok(found)
}

/// Installs the `wasm32-wasip2` standard library with rustup if the toolchain `dir` builds with
/// lacks it.
fn ensure_target(dir: &Path) -> anyhow::Result<()> {
    let installed = || {
        Command::new("rustc")
            .current_dir(dir)
            .args(["--print", "target-libdir", "--target", TARGET])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
            .is_some_and(|libdir| libdir.is_dir())
    };
    if installed() {
        return Ok(());
    }
    note(&format!(
        "the {TARGET} target is not installed; running `rustup target add {TARGET}`"
    ));
    let added = Command::new("rustup")
        .current_dir(dir)
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    anyhow::ensure!(
        added && installed(),
        "actors build for {TARGET}, which is not installed; run `rustup target add {TARGET}`"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_is_the_projects_own_cdylib() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(&manifest, "").unwrap();
        let manifest = std::fs::canonicalize(manifest).unwrap();
        let ours = manifest.display();
        let messages = format!(
            r#"{{"reason":"compiler-artifact","manifest_path":"/elsewhere/Cargo.toml","target":{{"kind":["cdylib"]}},"filenames":["/t/dep.wasm"]}}
not json: cargo may print other lines
{{"reason":"compiler-artifact","manifest_path":"{ours}","target":{{"kind":["lib"]}},"filenames":["/t/libx.rlib"]}}
{{"reason":"compiler-artifact","manifest_path":"{ours}","target":{{"kind":["cdylib"]}},"filenames":["/t/x.d","/t/x.wasm"]}}
{{"reason":"build-finished","success":true}}
"#
        );
        assert_eq!(
            component_of(messages.as_bytes(), &manifest).unwrap(),
            Some(PathBuf::from("/t/x.wasm"))
        );
        assert_eq!(component_of(&b""[..], &manifest).unwrap(), None);
    }

    #[test]
    fn a_manifest_names_the_actor_type_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Project::find(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        std::fs::write(dir.path().join(MANIFEST), "[actor]\ntype = \"hello\"\n").unwrap();
        let project = Project::find(dir.path()).unwrap().expect("found");
        assert_eq!(project.actor_type, "hello");
        assert_eq!(project.watched().len(), 3);
        std::fs::write(
            dir.path().join(MANIFEST),
            "[actor]\ntype = \"hello\"\nkind = 1\n",
        )
        .unwrap();
        let err = Project::open(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("kind"), "{err:#}");
        std::fs::write(dir.path().join(MANIFEST), "[actor]\ntype = \"\"\n").unwrap();
        assert!(Project::open(dir.path()).is_err());
    }
}
