//! The edge node's ports: the small traits below which its I/O sits, each with the real
//! implementation here. [`ControlPlane`] is everything an activation asks the control plane
//! (over the wire client and the committer), [`Clock`] is every clock the node reads (the
//! lease's monotonic time, token and certificate expiry, signed-request times, the guest's
//! clock), [`Calls`] is how an actor calls another actor (the router, held weakly, so an
//! activation never owns the node that owns it), [`Peers`] is how the router hands a call to the
//! node that holds its actor, and [`Membership`] is the node's registration and heartbeats. A
//! simulation or a test supplies its own implementations below the same traits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::node::{
    Activation as Placement, CommitRequest, CommitResponse, EnsureActivationRequest, Fence,
    HeartbeatRequest, HeartbeatResponse, ReadStateRequest, ReadStateResponse, RegisterRequest,
    RegisterResponse, SelfToken, UpgradeRequest,
};
use tokio::time::Instant as Deadline;

use crate::committer::Committer;
use crate::error::CallError;
pub use crate::table::Remote;

/// What activations ask the control plane, on behalf of one node. Every request is fenced by
/// the caller (the fence is in the request); the control plane decides.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    /// Finds or places an actor's activation.
    async fn ensure_activation(
        &self,
        request: &EnsureActivationRequest,
    ) -> Result<Placement, ClientError>;

    /// A fenced read of an actor's stored state.
    async fn read_state(
        &self,
        request: &ReadStateRequest,
    ) -> Result<ReadStateResponse, ClientError>;

    /// A fenced, idempotent commit of one call's writes.
    async fn commit(&self, request: &CommitRequest) -> Result<CommitResponse, ClientError>;

    /// Switches an activation to another version, with its upgrade hook's writes.
    async fn upgrade_activation(&self, request: &UpgradeRequest) -> Result<Placement, ClientError>;

    /// A module version's component bytes.
    async fn fetch_module(&self, content_id: &str) -> Result<Bytes, ClientError>;

    /// A capability for the actor an activation holds.
    async fn self_token(&self, fence: &Fence) -> Result<SelfToken, ClientError>;
}

/// [`ControlPlane`] over HTTP: the node's signed wire client, commits batched by the
/// [`Committer`].
pub(crate) struct WireControlPlane {
    client: Client,
    node_id: String,
    committer: Committer,
}

impl WireControlPlane {
    /// Requests as node `node_id` through `client`; commits batched up to `max_commit_batch`.
    pub(crate) fn new(client: Client, node_id: &str, max_commit_batch: usize) -> Self {
        WireControlPlane {
            committer: Committer::new(client.clone(), node_id, max_commit_batch),
            client,
            node_id: node_id.to_owned(),
        }
    }
}

#[async_trait]
impl ControlPlane for WireControlPlane {
    async fn ensure_activation(
        &self,
        request: &EnsureActivationRequest,
    ) -> Result<Placement, ClientError> {
        self.client.ensure_activation(&self.node_id, request).await
    }

    async fn read_state(
        &self,
        request: &ReadStateRequest,
    ) -> Result<ReadStateResponse, ClientError> {
        self.client.read_state(&self.node_id, request).await
    }

    async fn commit(&self, request: &CommitRequest) -> Result<CommitResponse, ClientError> {
        self.committer.commit(request).await
    }

    async fn upgrade_activation(&self, request: &UpgradeRequest) -> Result<Placement, ClientError> {
        self.client.upgrade_activation(&self.node_id, request).await
    }

    async fn fetch_module(&self, content_id: &str) -> Result<Bytes, ClientError> {
        self.client.fetch_module(&self.node_id, content_id).await
    }

    async fn self_token(&self, fence: &Fence) -> Result<SelfToken, ClientError> {
        self.client.self_token(&self.node_id, fence).await
    }
}

/// Every clock the node reads.
pub trait Clock: Send + Sync {
    /// Microseconds on a monotonic clock (it never steps back; its origin is arbitrary).
    fn monotonic_micros(&self) -> u64;

    /// Unix milliseconds. Fails closed: a clock before 1970 reads as the end of time, so every
    /// expiring token and certificate counts as expired and signed requests read as stale.
    fn unix_millis(&self) -> u64;

    /// Unix seconds (fails closed like [`Clock::unix_millis`]).
    fn unix_secs(&self) -> u64 {
        match self.unix_millis() {
            u64::MAX => u64::MAX,
            ms => ms / 1000,
        }
    }
}

/// The operating system's clocks.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// Monotonic time counts from now.
    pub fn new() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic_micros(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn unix_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(u64::MAX, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
            })
    }
}

/// A clock that moves only when told to (both readings together); clones share one time. For
/// tests and simulations.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    monotonic_micros: Arc<AtomicU64>,
    unix_millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// Monotonic time 0, at Unix time `unix_millis`.
    pub fn at(unix_millis: u64) -> Self {
        let clock = ManualClock::default();
        clock.unix_millis.store(unix_millis, Ordering::Release);
        clock
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.monotonic_micros.fetch_add(micros, Ordering::AcqRel);
        self.unix_millis.fetch_add(micros / 1000, Ordering::AcqRel);
    }

    /// Sets the wall clock alone (it may step back, as a real one can; monotonic time does not).
    pub fn set_unix_millis(&self, unix_millis: u64) {
        self.unix_millis.store(unix_millis, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn monotonic_micros(&self) -> u64 {
        self.monotonic_micros.load(Ordering::Acquire)
    }

    fn unix_millis(&self) -> u64 {
        self.unix_millis.load(Ordering::Acquire)
    }
}

/// A call on its way to an actor.
#[derive(Clone, Debug)]
pub struct CallRequest {
    /// Actor type.
    pub actor_type: String,
    /// Actor key.
    pub key: String,
    /// Method.
    pub method: String,
    /// Payload (JSON by convention).
    pub payload: Bytes,
    /// The caller's token, as presented.
    pub token: Bytes,
    /// Who presents it (`actor:{type}/{key}` for actors; `None` for HTTP clients).
    pub presenter: Option<String>,
    /// When the call must have finished.
    pub deadline: Deadline,
    /// Whether another node forwarded it here (it is not forwarded again).
    pub forwarded: bool,
}

/// Calls from one actor to another: checked and routed as any call.
#[async_trait]
pub trait Calls: Send + Sync {
    /// Checks the call's token, then runs it on the actor's single live instance.
    async fn call(&self, request: CallRequest) -> Result<Bytes, CallError>;
}

/// Calls handed to the node that holds their actor.
#[async_trait]
pub trait Peers: Send + Sync {
    /// Sends `call` to the node `to` names, signed as this node. A call that could not be sent
    /// is `Unavailable` (the router asks the control plane again); one whose answer was lost
    /// after it was sent is `OutcomeUnknown` (it may have run: it is never sent again).
    async fn forward(&self, to: &Remote, call: &CallRequest) -> Result<Bytes, CallError>;
}

/// The node's membership of the fleet: registration and heartbeats, which give it its epoch
/// and lease.
#[async_trait]
pub trait Membership: Send + Sync {
    /// Registers this node (a new epoch).
    async fn register(&self) -> Result<RegisterResponse, ClientError>;

    /// Renews the lease, waiting up to `timeout` for the answer.
    async fn heartbeat(
        &self,
        request: &HeartbeatRequest,
        timeout: Duration,
    ) -> Result<HeartbeatResponse, ClientError>;
}

/// [`Membership`] over HTTP, with the node's signed client.
pub(crate) struct WireMembership {
    pub(crate) client: Client,
    pub(crate) node_id: String,
    pub(crate) register: RegisterRequest,
}

#[async_trait]
impl Membership for WireMembership {
    async fn register(&self) -> Result<RegisterResponse, ClientError> {
        self.client.register(&self.node_id, &self.register).await
    }

    async fn heartbeat(
        &self,
        request: &HeartbeatRequest,
        timeout: Duration,
    ) -> Result<HeartbeatResponse, ClientError> {
        self.client.heartbeat(&self.node_id, request, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_share_it() {
        let clock = ManualClock::at(1_700_000_000_000);
        let shared = clock.clone();
        assert_eq!(shared.monotonic_micros(), 0);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(shared.monotonic_micros(), 1_500_000);
        assert_eq!(shared.unix_millis(), 1_700_000_001_500);
        assert_eq!(shared.unix_secs(), 1_700_000_001);
        clock.set_unix_millis(5);
        assert_eq!(shared.monotonic_micros(), 1_500_000, "monotonic time stays");
    }

    #[test]
    fn a_wall_clock_that_fails_reads_as_the_end_of_time() {
        let clock = ManualClock::at(u64::MAX);
        assert_eq!(clock.unix_secs(), u64::MAX);
    }
}
