//! The admin API's JSON bodies (see `docs/admin-api.md`), shared by the control plane, the CLI
//! and the Terraform provider.

use serde::{Deserialize, Serialize};

/// A stored module version (a WASM component), addressed by the SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// Hex SHA-256 of the component bytes: the version name used everywhere.
    pub content_id: String,
    /// Size in bytes.
    pub size: u64,
    /// Store version at upload.
    pub uploaded_at: u64,
    /// The actor-world interfaces the component exports.
    pub exports: Vec<String>,
    /// The interfaces it imports.
    pub imports: Vec<String>,
    /// The actor types it was uploaded for, as far as the asking token may see (a token scoped
    /// to one type sees only that type); empty if only unscoped tokens uploaded it, so only they
    /// see it.
    #[serde(default)]
    pub actor_types: Vec<String>,
}

/// When the control plane rolls a version back by itself.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackPolicy {
    /// Roll back when more than this fraction of calls fail (0–1).
    pub max_error_rate: f64,
    /// Over the calls of this many most recent seconds.
    pub window_secs: u64,
    /// But only once the window holds at least this many calls.
    pub min_calls: u64,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        RollbackPolicy {
            max_error_rate: 0.05,
            window_secs: 60,
            min_calls: 100,
        }
    }
}

/// A canary: a version running on a stable share of keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryInfo {
    /// The canary version (content id).
    pub version: String,
    /// Share of keys, in basis points (100 = 1%).
    pub basis_points: u32,
}

/// One entry of a deployment's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Store version of the change.
    pub at: u64,
    /// `deploy`, `canary`, `promote`, `abort`, `rollback` or `auto-rollback`.
    pub action: String,
    /// Version active (or canaried) after the change.
    pub version: Option<String>,
    /// Version active before.
    pub from: Option<String>,
    /// Why (given by the operator, or the evidence of an automatic rollback).
    pub reason: Option<String>,
}

/// An actor type's deployment: which code its actors run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentInfo {
    /// The actor type.
    pub actor_type: String,
    /// Version every key runs (outside the canary).
    pub active: Option<String>,
    /// Version active before the last change of `active` (the rollback target).
    pub previous: Option<String>,
    /// A canary in progress.
    pub canary: Option<CanaryInfo>,
    /// Automatic rollback policy.
    pub policy: RollbackPolicy,
    /// Counts every change; nodes use it to order updates.
    pub revision: u64,
}

impl DeploymentInfo {
    /// The version actor `key` runs: the canary's if the key is in the canary's buckets, else
    /// the active one. Nodes and the control plane both decide with this.
    pub fn version_for(&self, key: &str) -> Option<&str> {
        match &self.canary {
            Some(c) if crate::canary::in_canary(&self.actor_type, key, c.basis_points) => {
                Some(&c.version)
            }
            _ => self.active.as_deref(),
        }
    }
}

/// Outcomes of calls to one version of an actor type, as nodes count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Calls answered normally (including client errors such as a bad payload).
    pub ok: u64,
    /// Calls whose handler returned `failed`.
    pub guest_errors: u64,
    /// Calls that trapped.
    pub traps: u64,
    /// Calls stopped by the CPU time limit.
    pub cpu_limits: u64,
    /// Calls stopped by the memory limit.
    pub memory_limits: u64,
    /// Upgrades to this version whose hook failed (the actor stayed on its old version).
    pub upgrade_failures: u64,
}

impl OutcomeCounts {
    /// Every outcome counted.
    pub fn total(&self) -> u64 {
        self.ok + self.errors()
    }

    /// Everything but `ok`.
    pub fn errors(&self) -> u64 {
        self.guest_errors
            + self.traps
            + self.cpu_limits
            + self.memory_limits
            + self.upgrade_failures
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &OutcomeCounts) {
        self.ok += other.ok;
        self.guest_errors += other.guest_errors;
        self.traps += other.traps;
        self.cpu_limits += other.cpu_limits;
        self.memory_limits += other.memory_limits;
        self.upgrade_failures += other.upgrade_failures;
    }
}

impl std::fmt::Display for OutcomeCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} calls: {} ok, {} guest errors, {} traps, {} over the CPU limit, {} over the memory limit, {} failed upgrades",
            self.total(),
            self.ok,
            self.guest_errors,
            self.traps,
            self.cpu_limits,
            self.memory_limits,
            self.upgrade_failures
        )
    }
}

/// `GET /v1/deployments/{type}`: the deployment and its history, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentDetail {
    /// Current state.
    pub deployment: DeploymentInfo,
    /// Past changes, newest first.
    pub history: Vec<HistoryEntry>,
}

/// `POST /v1/deployments/{type}`: make `version` active for every key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// Content id of an uploaded module.
    pub version: String,
    /// Why, for the history.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/deployments/{type}/canary`: run `version` on `percent`% of keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryRequest {
    /// Content id of an uploaded module.
    pub version: String,
    /// Share of keys, 0–100 (two decimals kept).
    pub percent: f64,
    /// Why, for the history.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/deployments/{type}/{promote|abort|rollback}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonRequest {
    /// Why, for the history.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `PUT /v1/deployments/{type}/policy`.
pub type PolicyRequest = RollbackPolicy;

/// A node as operators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: String,
    /// Region.
    pub region: String,
    /// Forwarding address.
    pub address: String,
    /// Current epoch.
    pub epoch: u64,
    /// Version of the last heartbeat.
    pub last_heartbeat: u64,
    /// Successive heartbeats without a lapse.
    pub streak: u32,
    /// Whether the lease is valid now.
    pub live: bool,
    /// Whether it receives placements.
    pub eligible: bool,
}

/// An activation as operators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationInfo {
    /// Actor type.
    pub actor_type: String,
    /// Actor key.
    pub key: String,
    /// Node holding it.
    pub node_id: String,
    /// The node's epoch at placement.
    pub node_epoch: u64,
    /// Placement versionstamp (hex).
    pub generation: String,
    /// Module version it runs.
    pub module_version: String,
    /// Whether its node still holds it (lease valid and epoch unchanged).
    pub live: bool,
}

/// `POST /v1/tokens`: mint a token no wider than the caller's own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintRequest {
    /// Only this actor type.
    #[serde(default)]
    pub actor_type: Option<String>,
    /// Only this key.
    #[serde(default)]
    pub key: Option<String>,
    /// Only keys with this prefix.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// Only these methods.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Rights, e.g. `["invoke"]`; omitted: the caller's rights.
    #[serde(default)]
    pub rights: Option<Vec<String>>,
    /// Seconds from now until expiry; omitted: no expiry beyond the caller's.
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// Only this principal may present it.
    #[serde(default)]
    pub audience: Option<String>,
}

/// A minted token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintResponse {
    /// The token (`lk1.…`): a bearer secret.
    pub token: String,
    /// Its revocation id (hex): revoke it with this.
    pub token_id: String,
    /// Unix seconds at which it expires, if it does.
    pub expires_at: Option<u64>,
}

/// `POST /v1/revocations`: revoke by id (needs an unrestricted `revoke` right) or by presenting
/// the token (needs `revoke` covering what the token grants).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequest {
    /// A revocation id (hex).
    #[serde(default)]
    pub token_id: Option<String>,
    /// The token itself; its last block is revoked.
    #[serde(default)]
    pub token: Option<String>,
    /// Why, kept with the revocation.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A revoked token id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationInfo {
    /// The revocation id (hex).
    pub token_id: String,
    /// Store version of the revocation.
    pub revoked_at: u64,
    /// Why.
    pub reason: Option<String>,
}

/// An issuer key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Key id (hex).
    pub key_id: String,
    /// Public key (`lk-pub-v1:…`).
    pub public_key: String,
    /// `active` (mints), `trusted` (verifies only) or `retired` (no longer trusted).
    pub state: String,
    /// Store version at creation.
    pub created_at: u64,
}

/// `POST /v1/keys/rotate` (unrestricted admin): the issuer keys after the rotation, and the
/// caller's own capability re-issued under the new active key. Minted tokens extend their
/// minter's chain, so they keep the key of their root; the re-issued token is the root to mint
/// from once the old key is to be retired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateResponse {
    /// Every issuer key.
    pub keys: Vec<KeyInfo>,
    /// The caller's capability, re-issued under the new key.
    pub token: String,
}

/// `POST /v1/nodes/{id}/enrolment` (admin): a single-use enrolment capability for one node
/// (right `node`, audience `enrol:{id}`, expiring). Answered with a [`MintResponse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentRequest {
    /// Lifetime in seconds (default 1 hour, at most 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
}

/// Placement weight of a region nobody declared (and the default of a declared one).
pub const DEFAULT_REGION_WEIGHT: u32 = 100;
/// Largest placement weight.
pub const MAX_REGION_WEIGHT: u32 = 10_000;

/// `PUT /v1/regions/{name}`: declare a region, or change one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRequest {
    /// Relative share of new placements that fall outside the requesting node's region (0 to
    /// [`MAX_REGION_WEIGHT`]); 0 places nothing new in the region.
    #[serde(default = "default_region_weight")]
    pub placement_weight: u32,
    /// A jurisdiction tag (e.g. `eu`), for operators and placement policy.
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

fn default_region_weight() -> u32 {
    DEFAULT_REGION_WEIGHT
}

/// A declared region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionInfo {
    /// The region's name: what edge nodes pass as `--region`.
    pub name: String,
    /// Relative share of placements (0: none).
    pub placement_weight: u32,
    /// Jurisdiction tag.
    pub jurisdiction: Option<String>,
    /// Store version of the last change.
    pub updated_at: u64,
}

/// `GET /v1/clock`: the store's current version and the control plane's wall clock, read
/// together. Times in other answers are store versions (about 1,000,000 per second); this turns
/// them into ages and dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockInfo {
    /// The store's current read version.
    pub version: u64,
    /// The control plane's wall clock, Unix microseconds.
    pub unix_micros: u64,
}

impl ClockInfo {
    /// How long ago version `v` was, in microseconds (a version after this clock's is 0 ago).
    pub fn age_micros(&self, v: u64) -> u64 {
        self.version.saturating_sub(v).saturating_mul(1_000_000) / crate::lease::VERSIONS_PER_SECOND
    }

    /// Version `v` as Unix microseconds of the control plane's clock.
    pub fn unix_micros_at(&self, v: u64) -> u64 {
        self.unix_micros.saturating_sub(self.age_micros(v))
    }
}

#[cfg(test)]
mod clock_tests {
    use super::ClockInfo;

    #[test]
    fn versions_become_ages_and_dates() {
        let clock = ClockInfo {
            version: 5_000_000,
            unix_micros: 1_700_000_000_000_000,
        };
        assert_eq!(clock.age_micros(4_000_000), 1_000_000);
        assert_eq!(clock.age_micros(6_000_000), 0, "a later version is now");
        assert_eq!(clock.unix_micros_at(4_000_000), 1_699_999_999_000_000);
    }
}
