//! What an activation needs from its node, and nothing more: the control plane port, the clock
//! and the lease, the runtime, the deployments it follows, where its outcomes and log lines go,
//! and a weak handle for calling other actors. Activations hold this, never the node or its
//! table: the node owns its activations without them owning it back, so a dropped node takes
//! its runtime (the wasmtime pool and epoch thread) with it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::deployments::Deployments;
use crate::lease::Lease;
use crate::outcomes::Outcomes;
use crate::ports::{Calls, Clock, ControlPlane};
use crate::protocol::CommitFlaw;
use crate::runtime::Runtime;
use crate::tail::Tail;
use crate::upgrade::Switching;

/// The handles every activation of one node shares.
pub(crate) struct Hosting {
    pub(crate) cp: Arc<dyn ControlPlane>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) lease: Arc<Lease>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) deployments: Arc<Deployments>,
    pub(crate) outcomes: Arc<Outcomes>,
    /// Followers of actors' log lines and call outcomes.
    pub(crate) tail: Arc<Tail>,
    /// Calls from actors to other actors (the router; weak, so activations never keep it).
    pub(crate) calls: Weak<dyn Calls>,
    /// How long a switch to another version (and its hooks) may take.
    pub(crate) call_timeout: Duration,
    /// The output gate's planted mistake, if any (`assembly::Flaws`; none in a real node).
    pub(crate) commit_flaw: CommitFlaw,
    /// What the node's activations count and coordinate together (starts empty).
    pub(crate) shared: Shared,
}

/// What all activations of a node count and coordinate together.
#[derive(Default)]
pub(crate) struct Shared {
    /// Switches in progress, and activations waiting for their turn.
    pub(crate) switching: Switching,
    /// Activations switched to another version so far.
    pub(crate) switches: AtomicU64,
    /// Guest instances alive on this node.
    pub(crate) live_instances: Arc<AtomicUsize>,
    /// The last commit number handed out. Commits are numbered from this one counter, so every
    /// activation object this process creates for a generation numbers its commits above those
    /// of any earlier object of that generation (the control plane acknowledges a commit
    /// numbered at or below the last one applied as a resend, without applying it).
    commit_seq: AtomicU64,
}

impl Shared {
    /// The next commit number (see `commit_seq`).
    pub(crate) fn next_commit_seq(&self) -> u64 {
        self.commit_seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}
