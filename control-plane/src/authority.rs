//! The control plane's authority: issuer secret keys in files (mode 0600) in the data directory,
//! the fleet's trusted keys and revocations mirrored from the registry, and the token check every
//! API request goes through.
//!
//! The root key is created on first start, together with an unrestricted admin token written to
//! `admin.token` (mode 0600). Rotation creates a new active key; older keys stay trusted until
//! retired.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::num::NonZeroUsize;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use latchkey_caps::node::{
    CONTROL_PLANE_AUDIENCE, NodeAuthError, NodeCertificate, NodeVerifier, Presented, VerifiedNode,
};
use latchkey_caps::{
    AuthError, Capability, IssuerKey, KeyId, PublicKey, Request, RevocationId, Rights, Token,
    TokenCache, TrustedKeys, Verified,
};
use latchkey_wire::admin::KeyInfo;

use crate::error::RegistryError;
use crate::records::KeyState;
use crate::registry::Registry;

/// File holding the admin token created on first start.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Unix seconds now (token times are in seconds). Fails closed: a clock before 1970 reads as the
/// end of time, so every expiring token and certificate counts as expired.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(u64::MAX, |d| d.as_secs())
}

/// Unix milliseconds now (signed node requests are stamped in milliseconds). Fails closed like
/// [`unix_now`]: every signed request then reads as stale.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(u64::MAX, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        })
}

fn key_file(dir: &Path, id: KeyId) -> PathBuf {
    dir.join(format!("issuer-{id}.key"))
}

/// Writes `contents` to a new file readable only by its owner.
fn write_secret(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

fn io_error(path: &Path, e: &std::io::Error) -> RegistryError {
    RegistryError::Unavailable(format!("{}: {e}", path.display()))
}

struct State {
    /// The key that mints, if this instance holds its secret.
    active: Option<Arc<IssuerKey>>,
    trusted: TrustedKeys,
    revoked: HashSet<RevocationId>,
}

/// Issuer keys, trusted keys, revocations, the verified-token cache and the check of nodes'
/// signed requests.
pub struct Authority {
    dir: PathBuf,
    state: RwLock<State>,
    cache: TokenCache,
    nodes: NodeVerifier,
}

/// Node certificates whose signature was checked, kept to skip the check on the next request.
const CACHED_CERTIFICATES: usize = 10_000;
/// Nonces of recent signed requests remembered (each for 2 × `MAX_SKEW_MS`).
const REMEMBERED_NONCES: usize = 1_000_000;

/// What opening the authority found.
pub struct Opened {
    /// The authority.
    pub authority: Authority,
    /// The admin token, if this start created the root key (and wrote `admin.token`).
    pub new_admin_token: Option<String>,
}

impl Authority {
    /// Loads the issuer keys in `dir` (creating the root key and admin token on first start),
    /// records them in the registry, and loads the trusted set and revocations.
    pub fn open(dir: &Path, registry: &Registry) -> Result<Opened, RegistryError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
        let mut local = load_keys(dir)?;
        let recorded = registry.issuer_keys()?;
        let mut new_admin_token = None;
        if local.is_empty() && recorded.is_empty() {
            let root = IssuerKey::generate();
            write_secret(&key_file(dir, root.id()), &root.to_secret_text())
                .map_err(|e| io_error(dir, &e))?;
            let token = Token::mint(&root, &Capability::unrestricted())
                .map_err(|e| RegistryError::Invalid(e.to_string()))?
                .to_text();
            let path = dir.join(ADMIN_TOKEN_FILE);
            write_secret(&path, &token).map_err(|e| io_error(&path, &e))?;
            new_admin_token = Some(token);
            local.push(root);
        }
        // Record local keys the registry does not know yet; the first becomes active if none is.
        let mut has_active = recorded
            .iter()
            .any(|k| k.state == KeyState::Active.as_str());
        for key in &local {
            if !recorded.iter().any(|k| k.key_id == key.id().to_string()) {
                let state = if has_active {
                    KeyState::Trusted
                } else {
                    KeyState::Active
                };
                registry.set_issuer_key(&key.id().to_string(), &key.public().to_string(), state)?;
                has_active = true;
            }
        }
        let authority = Authority {
            dir: dir.to_path_buf(),
            state: RwLock::new(State {
                active: None,
                trusted: TrustedKeys::new(),
                revoked: HashSet::new(),
            }),
            cache: TokenCache::new(NonZeroUsize::new(10_000).expect("nonzero")),
            nodes: NodeVerifier::new(
                CONTROL_PLANE_AUDIENCE,
                NonZeroUsize::new(CACHED_CERTIFICATES).expect("nonzero"),
                REMEMBERED_NONCES,
            )
            .started_at(unix_millis()),
        };
        authority.refresh(registry)?;
        Ok(Opened {
            authority,
            new_admin_token,
        })
    }

    /// Reloads trusted keys, the active key and revocations from the registry (other control
    /// plane instances may have changed them).
    pub fn refresh(&self, registry: &Registry) -> Result<(), RegistryError> {
        let keys = registry.issuer_keys()?;
        let revoked = registry
            .revocations()?
            .into_iter()
            .filter_map(|r| r.token_id.parse::<RevocationId>().ok())
            .collect();
        self.apply_keys(&keys)?;
        self.write().revoked = revoked;
        Ok(())
    }

    /// Reloads only the revocations (after an enrolment used a capability up).
    pub fn refresh_revocations(&self, registry: &Registry) -> Result<(), RegistryError> {
        let revoked = registry
            .revocations()?
            .into_iter()
            .filter_map(|r| r.token_id.parse::<RevocationId>().ok())
            .collect();
        self.write().revoked = revoked;
        Ok(())
    }

    fn apply_keys(&self, keys: &[KeyInfo]) -> Result<(), RegistryError> {
        let mut trusted = TrustedKeys::new();
        let mut active = None;
        for k in keys {
            if k.state == KeyState::Retired.as_str() {
                continue;
            }
            let public: PublicKey = k
                .public_key
                .parse()
                .map_err(|e| RegistryError::Invalid(format!("issuer key {}: {e}", k.key_id)))?;
            trusted
                .insert(&public)
                .map_err(|e| RegistryError::Invalid(e.to_string()))?;
            if k.state == KeyState::Active.as_str() {
                let path = key_file(&self.dir, public.id());
                active = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| IssuerKey::from_secret_text(&text).ok())
                    .filter(|key| key.id() == public.id())
                    .map(Arc::new);
            }
        }
        let mut state = self.write();
        state.trusted = trusted;
        state.active = active;
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Verifies a bearer token (cached) and authorizes `request` with it.
    pub fn check(&self, bearer: &[u8], request: &Request<'_>) -> Result<Arc<Verified>, AuthError> {
        let state = self.read();
        self.cache
            .authorize(bearer, &state.trusted, &state.revoked, request, unix_now())
    }

    /// Verifies an enrolment capability and authorizes `request` with it. Its own revocation
    /// (an enrolment uses it up) is not held against it here: the registry then accepts it only
    /// again for the key that used it (a retry). Any other revoked block still fails it.
    pub fn check_enrolment(
        &self,
        bearer: &[u8],
        request: &Request<'_>,
    ) -> Result<Verified, AuthError> {
        struct Except<'a>(&'a HashSet<RevocationId>, RevocationId);
        impl latchkey_caps::Revocations for Except<'_> {
            fn is_revoked(&self, id: &RevocationId) -> bool {
                *id != self.1 && self.0.contains(id)
            }
        }
        let token = Token::from_presented(bearer).map_err(AuthError::Invalid)?;
        let state = self.read();
        let verified = latchkey_caps::verify(
            &token,
            &state.trusted,
            &Except(&state.revoked, token.token_id()),
            unix_now(),
        )
        .map_err(AuthError::Invalid)?;
        latchkey_caps::authorize(verified.capability(), request, unix_now())
            .map_err(AuthError::Denied)?;
        Ok(verified)
    }

    /// Verifies a bearer token and checks only that it grants `right` (time and audience
    /// included), for routes that check scope themselves.
    pub fn check_right(&self, bearer: &[u8], right: Rights) -> Result<Arc<Verified>, AuthError> {
        let state = self.read();
        self.cache.authorize_right(
            bearer,
            &state.trusted,
            &state.revoked,
            right,
            None,
            unix_now(),
        )
    }

    /// Verifies a request signed by enrolled node `node_id` (see [`authenticate_node`]). The
    /// caller checks the body against the signed digest once it has read it.
    pub fn verify_node(
        &self,
        presented: &Presented<'_>,
        node_id: &str,
    ) -> Result<VerifiedNode, NodeAuthError> {
        let state = self.read();
        authenticate_node(
            &self.nodes,
            &state.trusted,
            &state.revoked,
            presented,
            node_id,
            unix_millis(),
        )
    }

    /// Verifies that a request was signed by `key` (enrolment: possession of the key enrolled).
    pub fn verify_node_key(
        &self,
        key: &PublicKey,
        signature: &str,
        presented: &Presented<'_>,
    ) -> Result<(), NodeAuthError> {
        self.nodes
            .verify_with_key(key, signature, presented, unix_millis())
    }

    /// Certifies that `node_id` holds `key` for `ttl`, with the active issuer key.
    pub fn certify(
        &self,
        node_id: &str,
        key: &PublicKey,
        ttl: std::time::Duration,
    ) -> Result<NodeCertificate, RegistryError> {
        let active = self.active_key()?;
        let now = unix_now();
        NodeCertificate::issue(
            &active,
            node_id,
            key,
            now,
            now.saturating_add(ttl.as_secs()),
        )
        .map_err(|e| RegistryError::BadRequest(e.to_string()))
    }

    fn active_key(&self) -> Result<Arc<IssuerKey>, RegistryError> {
        self.read().active.clone().ok_or_else(|| {
            RegistryError::Unavailable(
                "this control plane instance does not hold the active issuer key's secret".into(),
            )
        })
    }

    /// Mints a token with the active key.
    pub fn mint(&self, capability: &Capability) -> Result<Token, RegistryError> {
        let active = self.active_key()?;
        Token::mint(&active, capability).map_err(|e| RegistryError::BadRequest(e.to_string()))
    }

    /// Records a revocation locally (the registry holds it durably).
    pub fn revoked(&self, id: RevocationId) {
        self.write().revoked.insert(id);
    }

    /// The trusted public keys.
    pub fn trusted_keys(&self) -> TrustedKeys {
        self.read().trusted.clone()
    }

    /// Creates a new active issuer key; the previous one stays trusted.
    pub fn rotate(&self, registry: &Registry) -> Result<Vec<KeyInfo>, RegistryError> {
        let key = IssuerKey::generate();
        let path = key_file(&self.dir, key.id());
        write_secret(&path, &key.to_secret_text()).map_err(|e| io_error(&path, &e))?;
        let keys = registry.set_issuer_key(
            &key.id().to_string(),
            &key.public().to_string(),
            KeyState::Active,
        )?;
        self.apply_keys(&keys)?;
        Ok(keys)
    }

    /// Stops trusting a key (tokens it minted stop verifying, cached or not). The active key
    /// cannot be retired; rotate first.
    pub fn retire(&self, registry: &Registry, key_id: &str) -> Result<Vec<KeyInfo>, RegistryError> {
        let keys = registry.issuer_keys()?;
        let key = keys
            .iter()
            .find(|k| k.key_id == key_id)
            .ok_or_else(|| RegistryError::NotFound(format!("no issuer key {key_id}")))?;
        if key.state == KeyState::Active.as_str() {
            return Err(RegistryError::Conflict(format!(
                "key {key_id} is the active issuer key; rotate to a new key before retiring it"
            )));
        }
        let keys = registry.set_issuer_key(key_id, &key.public_key.clone(), KeyState::Retired)?;
        self.apply_keys(&keys)?;
        Ok(keys)
    }
}

/// The control plane's check of a node request claiming to come from `node_id`, at `now_ms`:
/// the certificate verifies under a trusted issuer key and is not revoked, the signature by the
/// certified key covers this request for audience `control-plane` and is fresh and new, and the
/// certificate names `node_id`. Pure but for the verifier's memory of nonces; the simulation
/// runs it too.
pub fn authenticate_node(
    verifier: &NodeVerifier,
    trusted: &TrustedKeys,
    revoked: &impl latchkey_caps::Revocations,
    presented: &Presented<'_>,
    node_id: &str,
    now_ms: u64,
) -> Result<VerifiedNode, NodeAuthError> {
    let node = verifier.verify(presented, trusted, revoked, now_ms)?;
    if node.node_id != node_id {
        return Err(NodeAuthError::WrongNode {
            certified: node.node_id,
            claimed: node_id.to_owned(),
        });
    }
    Ok(node)
}

/// Every `issuer-*.key` file in `dir`.
fn load_keys(dir: &Path) -> Result<Vec<IssuerKey>, RegistryError> {
    let mut keys = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, &e))?;
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, &e))?.path();
        let is_key = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("issuer-") && n.ends_with(".key"));
        if !is_key {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, &e))?;
        let key = IssuerKey::from_secret_text(&text)
            .map_err(|e| RegistryError::Invalid(format!("{}: {e}", path.display())))?;
        keys.push(key);
    }
    keys.sort_by_key(IssuerKey::id);
    Ok(keys)
}
