//! The node's identity: its own ed25519 key (made on first start, kept in `node.key`, mode 0600,
//! in a directory of mode 0700), the certificate the control plane issues for it (enrolment with
//! a single-use capability, renewal at half-life, kept in `node.cert`), and the check of the
//! signed calls other nodes forward here. No bearer credential names this node; its key never
//! leaves it.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use latchkey_caps::node::{NodeCertificate, NodeKey};
use latchkey_wire::identity::NodeCredentials;

use crate::node::Node;

/// The node's key file in its identity directory.
pub const KEY_FILE: &str = "node.key";
/// The node's current certificate in its identity directory.
pub const CERT_FILE: &str = "node.cert";

/// Where a node keeps its identity and how it enrols.
#[derive(Clone, Debug, Default)]
pub struct IdentityConfig {
    /// Directory of `node.key` and `node.cert` (`None`: a fresh key in memory at every start,
    /// which then needs an enrolment capability every time; for tests and `latchkey dev`).
    pub dir: Option<PathBuf>,
    /// A single-use enrolment capability (from `latchkey node-enrolment <id>`), needed when the
    /// node holds no valid certificate for its key.
    pub enrolment_token: Option<String>,
}

/// Creates `dir` (and parents) if needed and makes it private (0700).
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private (0700)", dir.display()))
}

/// Loads the node's key from `dir`, or makes one there on first start.
pub fn load_or_create_key(dir: Option<&Path>) -> anyhow::Result<NodeKey> {
    let Some(dir) = dir else {
        return Ok(NodeKey::generate());
    };
    private_dir(dir)?;
    let path = dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            // Whoever made the file, it stays readable by its owner only.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private (0600)", path.display()))?;
            NodeKey::from_secret_text(&text).with_context(|| format!("reading {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = NodeKey::generate();
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(key.to_secret_text().as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), key = %key.public().id(), "made this node's key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The stored certificate, if it is for this node and key and has not expired.
fn stored_certificate(
    dir: &Path,
    credentials: &NodeCredentials,
    now: u64,
) -> Option<NodeCertificate> {
    let text = fs::read_to_string(dir.join(CERT_FILE)).ok()?;
    let cert = NodeCertificate::from_text(&text).ok()?;
    let ours = cert.node_id() == credentials.node_id()
        && *cert.node_key() == credentials.public_key()
        && cert.check_window(now).is_ok();
    ours.then_some(cert)
}

fn save_certificate(dir: &Path, cert: &NodeCertificate) -> anyhow::Result<()> {
    let path = dir.join(CERT_FILE);
    let tmp = dir.join(format!("{CERT_FILE}.tmp"));
    fs::write(&tmp, cert.to_text()).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// Installs `text` as the node's certificate (checking it names this node and key).
fn install(node: &Node, text: &str) -> anyhow::Result<NodeCertificate> {
    let cert = NodeCertificate::from_text(text).context("the control plane's certificate")?;
    anyhow::ensure!(
        cert.node_id() == node.identity.node_id() && *cert.node_key() == node.identity.public_key(),
        "the control plane certified node `{}` with key {}, not this node's key",
        cert.node_id(),
        cert.node_key().id()
    );
    node.identity.set_certificate(cert.clone());
    if let Some(dir) = &node.config.identity.dir {
        save_certificate(dir, &cert)?;
    }
    Ok(cert)
}

/// Makes sure the node holds a valid certificate: a stored one, else enrolment with the
/// configured capability. Retries while the control plane cannot be reached; returns an error
/// only for what retrying cannot fix (no capability, a refused one).
pub(crate) async fn ensure_certificate(node: &Node) -> anyhow::Result<()> {
    if let Some(dir) = &node.config.identity.dir
        && let Some(cert) = stored_certificate(dir, &node.identity, node.clock.unix_secs())
    {
        node.identity.set_certificate(cert);
        return Ok(());
    }
    let token = node.config.identity.enrolment_token.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "node `{}` holds no valid certificate and was given no enrolment capability: make one with `latchkey node-enrolment {}` and pass it with --enrolment-token-file",
            node.config.node_id,
            node.config.node_id
        )
    })?;
    let mut backoff = Duration::from_millis(100);
    loop {
        match node.cp.enrol(&node.identity, token).await {
            Ok(answer) => {
                let cert = install(node, &answer.certificate)?;
                tracing::info!(
                    expires_at = cert.expires_at(),
                    "enrolled with the control plane"
                );
                return Ok(());
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "enrolment failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).context("the control plane refused to enrol this node"),
        }
    }
}

/// When to renew a certificate: at half its lifetime.
pub(crate) fn renew_at(cert: &NodeCertificate) -> u64 {
    cert.issued_at() + (cert.expires_at() - cert.issued_at()) / 2
}

/// Renews the certificate at half-life, for as long as the node runs; retries failures every
/// few seconds until it expires.
pub(crate) async fn renew(node: Arc<Node>) {
    loop {
        let Some(cert) = node.identity.certificate() else {
            node.wait_enrolled().await;
            continue;
        };
        let wait = renew_at(&cert).saturating_sub(node.clock.unix_secs());
        tokio::time::sleep(Duration::from_secs(wait)).await;
        match node.cp.renew_certificate(&node.config.node_id).await {
            Ok(answer) => match install(&node, &answer.certificate) {
                Ok(cert) => tracing::info!(expires_at = cert.expires_at(), "certificate renewed"),
                Err(e) => tracing::error!(error = %e, "cannot install the renewed certificate"),
            },
            Err(e) => {
                tracing::warn!(error = %e, expires_at = cert.expires_at(), "certificate renewal failed; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}
