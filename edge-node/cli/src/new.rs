//! `latchkey new NAME`: a new actor project — a Rust crate of its own (it builds anywhere, not
//! only inside this repository), its `latchkey.toml` naming the actor type, a first actor with a
//! test, and the settings a small component wants. `latchkey dev` in it runs it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::admin::note;
use crate::output;
use crate::project::MANIFEST;

/// Arguments of `latchkey new`.
#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The project's directory, created; its last component names the crate.
    path: PathBuf,
    /// The actor type it deploys as (default: the crate's name).
    #[arg(long)]
    actor_type: Option<String>,
    /// Where the actor SDK comes from: a path to `actor-sdk` (default: the checkout this command
    /// was built from, if it is still there) or a git URL of the Latchkey repository.
    #[arg(long)]
    sdk: Option<String>,
}

/// The files of a new project: `(path in the project, template)`.
const FILES: [(&str, &str); 5] = [
    (
        "Cargo.toml",
        include_str!("../templates/actor/Cargo.toml.in"),
    ),
    (
        MANIFEST,
        include_str!("../templates/actor/latchkey.toml.in"),
    ),
    ("src/lib.rs", include_str!("../templates/actor/lib.rs.in")),
    (
        ".cargo/config.toml",
        include_str!("../templates/actor/cargo-config.toml.in"),
    ),
    (
        ".gitignore",
        include_str!("../templates/actor/gitignore.in"),
    ),
];

/// The SDK of the checkout this binary was built from.
fn built_from_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../actor-sdk")
}

/// The dependency line for the SDK: a path or a git repository.
fn sdk_dependency(sdk: Option<&str>) -> anyhow::Result<String> {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let path = match sdk {
        Some(s) if s.contains("://") || s.starts_with("git@") => {
            return Ok(format!("{{ git = {} }}", quote(s)));
        }
        Some(s) => PathBuf::from(s),
        None => {
            let built = built_from_sdk();
            if !built.join("Cargo.toml").is_file() {
                let repository = env!("CARGO_PKG_REPOSITORY");
                return Ok(format!("{{ git = {} }}", quote(repository)));
            }
            built
        }
    };
    let path = std::fs::canonicalize(&path)
        .with_context(|| format!("finding the actor SDK at {}", path.display()))?;
    anyhow::ensure!(
        path.join("Cargo.toml").is_file(),
        "{} holds no Cargo.toml: give --sdk the path of the repository's `actor-sdk` directory",
        path.display()
    );
    let text = path
        .to_str()
        .with_context(|| format!("the SDK path {} is not UTF-8", path.display()))?;
    Ok(format!("{{ path = {} }}", quote(text)))
}

/// A crate name or actor type we scaffold: lowercase letters, digits, `-` and `_`, starting with
/// a letter.
fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    anyhow::ensure!(
        ok,
        "{what} `{}` must be 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter",
        output::clean(name)
    );
    Ok(())
}

/// `template` with `{{name}}` placeholders filled in.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (name, value)| {
            text.replace(&format!("{{{{{name}}}}}"), value)
        })
}

/// Runs `latchkey new`.
pub(crate) fn run(args: &NewArgs, json: bool) -> anyhow::Result<()> {
    let dir = crate::absolute(&args.path)?;
    let crate_name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the project path must end in a directory name")?
        .to_owned();
    check_name("the crate name", &crate_name)?;
    let actor_type = args
        .actor_type
        .clone()
        .unwrap_or_else(|| crate_name.clone());
    check_name("the actor type", &actor_type)?;
    if dir.exists() && std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_some()) {
        anyhow::bail!(
            "{} already exists and is not empty; choose another name",
            dir.display()
        );
    }
    let sdk = sdk_dependency(args.sdk.as_deref())?;
    let values = [
        ("crate", crate_name.as_str()),
        ("actor_type", actor_type.as_str()),
        ("sdk", sdk.as_str()),
    ];
    for (path, template) in FILES {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&file, fill(template, &values))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if json {
        return output::json(&serde_json::json!({
            "path": dir,
            "crate": crate_name,
            "actor_type": actor_type,
            "sdk": sdk,
        }));
    }
    println!("{}", dir.display());
    note(&format!(
        "created actor `{actor_type}` in {}; run it with:\n  cd {} && latchkey dev",
        dir.display(),
        args.path.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_and_nothing_is_left_over() {
        let values = [
            ("crate", "hello"),
            ("actor_type", "greeter"),
            ("sdk", "{ path = \"/sdk\" }"),
        ];
        for (path, template) in FILES {
            let text = fill(template, &values);
            assert!(!text.contains("{{"), "{path} keeps a placeholder:\n{text}");
        }
        let manifest = fill(FILES[0].1, &values);
        let parsed: toml::Table = manifest.parse().expect("Cargo.toml parses");
        assert_eq!(parsed["package"]["name"].as_str(), Some("hello"));
        assert_eq!(
            parsed["dependencies"]["latchkey-actor-sdk"]["path"].as_str(),
            Some("/sdk")
        );
        let latchkey: toml::Table = fill(FILES[1].1, &values).parse().expect("parses");
        assert_eq!(latchkey["actor"]["type"].as_str(), Some("greeter"));
    }

    #[test]
    fn names_are_checked_and_sdk_sources_become_dependencies() {
        assert!(check_name("x", "hello-world_2").is_ok());
        for bad in ["", "Hello", "2x", "a/b", "a b", &"a".repeat(65)] {
            assert!(check_name("x", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            sdk_dependency(Some("https://example.com/latchkey.git")).unwrap(),
            "{ git = \"https://example.com/latchkey.git\" }"
        );
        let local = sdk_dependency(None).unwrap();
        assert!(local.starts_with("{ path = \""), "{local}");
        assert!(local.ends_with("actor-sdk\" }"), "{local}");
        assert!(sdk_dependency(Some("/nonexistent/sdk")).is_err());
    }
}
