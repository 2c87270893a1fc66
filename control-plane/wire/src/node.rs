//! The node API's messages: what edge nodes send the control plane and get back. Bodies are
//! postcard ([`crate::NODE_CONTENT_TYPE`]); errors are JSON [`crate::ApiError`]s. Every route is
//! under `/v1/nodes/{node_id}/`; which request goes to which route, with which answer, is the
//! table in [`crate::nodeapi`]. A node proves who it is by signing each request with its own key
//! (see [`crate::identity`]); `enrol` alone takes an enrolment capability instead.

use serde::{Deserialize, Serialize};

use crate::Generation;
use crate::admin::{DeploymentInfo, OutcomeCounts, RevocationInfo};
use crate::alarm::AlarmWrite;
use crate::lease::LeaseSettings;

pub use latchkey_caps::node::node_audience;

/// `POST /v1/nodes/{id}/enrol`, with `Authorization: Bearer <enrolment token>` and signed by the
/// key being enrolled: the control plane records the key as the node's and certifies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// The node's public key (`lk-pub-v1:…`).
    pub public_key: String,
}

/// `POST /v1/nodes/{id}/certificate`: renews the node's certificate. The request is signed with
/// the current one; it has no body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRequest;

/// The answer to `enrol` and to `POST /v1/nodes/{id}/certificate` (renewal, signed with the
/// current certificate): a fresh certificate for the node's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateResponse {
    /// The certificate (`lkc1.…`).
    pub certificate: String,
    /// Unix seconds at which it expires.
    pub expires_at: u64,
}

/// `POST /v1/nodes/{id}/register`: (re)join the fleet. Always starts a new epoch, so anything an
/// earlier process with this id activated is fenced off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Region the node runs in.
    pub region: String,
    /// Address other nodes forward calls to (`host:port`).
    pub address: String,
}

/// The node's new epoch and lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The node's epoch from now on.
    pub epoch: u64,
    /// Version at which the registration committed (starts the lease).
    pub lease_version: u64,
    /// Lease settings to follow.
    pub settings: LeaseSettings,
}

/// `POST /v1/nodes/{id}/heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// Activations the node currently holds (for operators; not used for fencing).
    pub active_actors: u64,
}

/// A renewed lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// The node's epoch. If it differs from the one the node holds, the lease had expired: every
    /// activation of the old epoch is gone and must be dropped.
    pub epoch: u64,
    /// Version at which this heartbeat committed; the lease lasts until it plus the TTL.
    pub lease_version: u64,
    /// Whether the node now receives placements (enough successive heartbeats).
    pub eligible: bool,
    /// Lease settings to follow.
    pub settings: LeaseSettings,
}

/// `POST /v1/nodes/{id}/activations`: where does actor `(actor_type, key)` live? Places it (on the
/// requesting node by default) if it has no live activation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsureActivationRequest {
    /// Actor type.
    pub actor_type: String,
    /// Actor key.
    pub key: String,
    /// Place it in this region, if it must be placed.
    pub region_hint: Option<String>,
    /// The token id of the call that needs the actor: placing a new actor counts against that
    /// token's rate of new actors (`None`: not limited).
    #[serde(default)]
    pub token_id: Option<String>,
}

impl EnsureActivationRequest {
    /// Where `(actor_type, key)` lives, placed anywhere and counted against no token.
    pub fn any_region(actor_type: &str, key: &str) -> Self {
        EnsureActivationRequest {
            actor_type: actor_type.into(),
            key: key.into(),
            region_hint: None,
            token_id: None,
        }
    }
}

/// The single live activation of an actor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// Actor type.
    pub actor_type: String,
    /// Actor key.
    pub key: String,
    /// Node holding it.
    pub node_id: String,
    /// Address of that node.
    pub node_address: String,
    /// The node's epoch when it was placed.
    pub node_epoch: u64,
    /// Versionstamp of the placement.
    pub generation: Generation,
    /// Content id of the module version it runs.
    pub module_version: String,
    /// Set on a new placement of an actor that had no stored state: the activation's first
    /// instance knows every read misses without asking (only this generation can write).
    #[serde(default)]
    pub no_state: bool,
    /// Revision of the actor type's deployment the control plane decided this placement under.
    /// A node whose view of the deployment is older must not act on that view for this
    /// activation (retire it, or switch it back) until its view catches up.
    #[serde(default)]
    pub deployment_revision: u64,
}

impl Activation {
    /// The fence an instance of this activation presents when it reads or commits.
    pub fn fence(&self) -> Fence {
        Fence {
            actor_type: self.actor_type.clone(),
            key: self.key.clone(),
            node_epoch: self.node_epoch,
            generation: self.generation,
        }
    }
}

/// Proof that a read or commit comes from the current activation: the control plane accepts it
/// only if the activation record still names this node, epoch and generation and the node's lease
/// is valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fence {
    /// Actor type.
    pub actor_type: String,
    /// Actor key.
    pub key: String,
    /// Node epoch of the activation.
    pub node_epoch: u64,
    /// Generation of the activation.
    pub generation: Generation,
}

/// `POST /v1/nodes/{id}/self-token`: a capability for the actor an activation holds (rights
/// `invoke`, every method, exactly its key), minted by the control plane for the activation's
/// node only while the fence holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfToken {
    /// The token (`lk1.…`).
    pub token: String,
    /// Unix seconds at which it expires.
    pub expires_at: u64,
}

/// `POST /v1/nodes/{id}/activations/upgrade`: switch a live activation to `version`, the
/// deployment's version for its key. In one transaction the control plane checks the old fence,
/// writes a new activation record (a new generation, so nothing running the old code can commit
/// again) and applies `writes` (those of the new version's upgrade hook).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRequest {
    /// The activation as it runs now.
    pub fence: Fence,
    /// The version to switch to.
    pub version: String,
    /// Writes of the upgrade hook, applied atomically with the switch.
    pub writes: Vec<StateWrite>,
}

/// Outcomes of one version of one actor type since the last report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionOutcomes {
    /// Actor type.
    pub actor_type: String,
    /// Module version (content id).
    pub version: String,
    /// Counts.
    pub counts: OutcomeCounts,
}

/// `POST /v1/nodes/{id}/outcomes`: what calls did, per version, since the last report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeReport {
    /// One entry per (actor type, version) with calls.
    pub outcomes: Vec<VersionOutcomes>,
}

/// The control plane's answer to a report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeAck {
    /// Actor types this report made the control plane roll back.
    pub rolled_back: Vec<String>,
}

/// Which of an actor's stored entries to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOp {
    /// These keys, answered in order.
    Get(Vec<Vec<u8>>),
    /// A range of keys in order (or reverse).
    List(ListOptions),
}

/// A range of an actor's keys: those with `prefix`, at or after `start`, before `end`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: Option<Vec<u8>>,
    /// First key included.
    pub start: Option<Vec<u8>>,
    /// First key excluded.
    pub end: Option<Vec<u8>>,
    /// Most entries returned.
    pub limit: Option<u32>,
    /// Whether to return the last entries first.
    pub reverse: bool,
}

/// `POST /v1/nodes/{id}/state/read`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadStateRequest {
    /// The reading activation.
    pub fence: Fence,
    /// What to read.
    pub op: ReadOp,
}

/// The values read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadStateResponse {
    /// One entry per key asked for.
    Values(Vec<Option<Vec<u8>>>),
    /// Entries in the range.
    Entries(Vec<(Vec<u8>, Vec<u8>)>),
}

/// One durable write of an actor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateWrite {
    /// Set a key.
    Put(Vec<u8>, Vec<u8>),
    /// Remove a key.
    Delete(Vec<u8>),
    /// Remove every key of the actor.
    DeleteAll,
}

/// `POST /v1/nodes/{id}/state/commit`: one call's writes, applied atomically in order, only if
/// the fence holds. Idempotent per `(generation, seq)`: a commit resent after a lost answer is
/// acknowledged without being applied twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRequest {
    /// The committing activation.
    pub fence: Fence,
    /// Numbers this activation's commits from 1, in order.
    pub seq: u64,
    /// The writes, in order.
    pub writes: Vec<StateWrite>,
    /// The call's alarm changes, in order, applied with its writes or not at all.
    pub alarms: Vec<AlarmWrite>,
}

/// A successful commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResponse {
    /// Version at which the writes committed.
    pub version: u64,
}

impl CommitRequest {
    /// Bytes of keys, values and alarms the commit writes (what batches are sized by).
    pub fn write_bytes(&self) -> usize {
        let state: usize = self
            .writes
            .iter()
            .map(|w| match w {
                StateWrite::Put(k, v) => k.len() + v.len(),
                StateWrite::Delete(k) => k.len(),
                StateWrite::DeleteAll => 0,
            })
            .sum();
        let alarms: usize = self
            .alarms
            .iter()
            .map(|a| match a {
                AlarmWrite::Set { name, payload, .. } => name.len() + payload.len() + 8,
                AlarmWrite::Cancel(name) => name.len(),
            })
            .sum();
        state + alarms
    }
}

/// `POST /v1/nodes/{id}/state/commit-batch`: the commits of several activations, gathered by a
/// node from the calls waiting at one moment. Each is checked as if sent alone (its own fence,
/// its own idempotency); all that pass commit in one transaction. At most
/// [`MAX_COMMIT_BATCH`](crate::limits::MAX_COMMIT_BATCH) commits and
/// [`MAX_COMMIT_BATCH_BYTES`](crate::limits::MAX_COMMIT_BATCH_BYTES) of writes (beyond the
/// first commit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitBatchRequest {
    /// The commits, in the order they were gathered.
    pub commits: Vec<CommitRequest>,
}

/// One result per commit of a [`CommitBatchRequest`], in its order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitBatchResponse {
    /// What became of each commit: what `state/commit` would have answered for it alone.
    pub results: Vec<Result<CommitResponse, crate::ApiError>>,
}

/// Position in the control plane's change feed (a versionstamp, hex).
pub type Cursor = String;

/// `GET /v1/nodes/{id}/modules/{content_id}`: a module's bytes. The content id travels in the
/// path and the answer is the component itself (`application/wasm`), not postcard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRequest {
    /// Content id of the module.
    pub content_id: String,
}

/// `GET /v1/nodes/{id}/sync`: everything a node follows. No body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest;

/// `GET /v1/nodes/{id}/sync`: everything a node follows, as of `cursor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncSnapshot {
    /// Every actor type's deployment.
    pub deployments: Vec<DeploymentInfo>,
    /// Every revoked token id.
    pub revocations: Vec<RevocationInfo>,
    /// Issuer public keys to trust (`lk-pub-v1:…`).
    pub trusted_keys: Vec<String>,
    /// Follow changes after this.
    pub cursor: Cursor,
}

/// A change nodes follow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// An actor type's deployment changed.
    Deployment(DeploymentInfo),
    /// A token id was revoked.
    Revocation(RevocationInfo),
    /// The set of trusted issuer keys changed.
    TrustedKeys(Vec<String>),
}

/// `GET /v1/nodes/{id}/watch?after={cursor}&wait_ms={ms}`: a long-poll for the changes after
/// `after`. The request travels in the query (no body); answered [`Changes`], 410 if the cursor
/// is too old.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRequest {
    /// Changes after this.
    pub after: Cursor,
    /// Longest the control plane waits for some (`None`: its own longest wait).
    pub wait_ms: Option<u64>,
}

impl WatchRequest {
    /// The changes after `after`, waiting up to `wait` for some.
    pub fn new(after: &str, wait: std::time::Duration) -> Self {
        WatchRequest {
            after: after.to_owned(),
            wait_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// The answer to `watch`: changes after a cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Events in commit order.
    pub events: Vec<Event>,
    /// Continue after this.
    pub cursor: Cursor,
}
