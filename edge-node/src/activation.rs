//! One activation: the single live instance of an actor on this node. Calls wait in a bounded
//! mailbox and run one at a time, in arrival order, on one wasmtime instance that keeps its
//! in-memory state between calls.
//!
//! Output gating: a call's storage writes are committed through the control plane's fenced,
//! idempotent commit before its answer is released. A trap, a resource limit, a timeout, a stale
//! fence or a failed commit discards the call's writes, resets the instance, and fails the call.
//! A commit whose answer was lost is resent (same sequence number) until the control plane gives
//! a definite answer, so nothing is acknowledged twice and nothing acknowledged is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use latchkey_wire::ErrorCode;
use latchkey_wire::node::{Activation as Placement, CommitRequest};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wasmtime::Store;

use crate::error::CallError;
use crate::host::{ActorCtx, CallWrites, HostState, ReadCache};
use crate::node::NodeInner;
use crate::runtime::bindings::Actor;
use crate::runtime::bindings::exports::latchkey::actor::handler::Error as GuestError;
use crate::runtime::bindings::latchkey::actor::types::Context;

/// One call waiting in a mailbox.
pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) payload: Bytes,
    /// Token id of the caller's capability.
    pub(crate) caller: Option<String>,
    pub(crate) deadline: Instant,
    pub(crate) reply: oneshot::Sender<Result<Bytes, CallError>>,
}

/// The handle the activation table keeps. Dropping it closes the mailbox: the task finishes
/// the calls already queued, then ends and drops the instance.
pub(crate) struct Activation {
    pub(crate) placement: Placement,
    mailbox: mpsc::Sender<Call>,
    load: Arc<Load>,
}

/// What the task and the table both track (the task must not hold the mailbox's sender).
#[derive(Default)]
struct Load {
    /// Calls enqueued or running.
    pending: AtomicUsize,
    /// Node clock (µs) when the last call finished.
    last_used: AtomicU64,
}

impl Activation {
    /// Starts the activation's task; the instance is created by its first call.
    pub(crate) fn spawn(node: &Arc<NodeInner>, placement: Placement) -> Arc<Self> {
        let (mailbox, calls) = mpsc::channel(node.config.mailbox_size.max(1));
        let load = Arc::new(Load::default());
        load.last_used.store(node.lease.now(), Ordering::Release);
        tokio::spawn(run(
            Arc::clone(node),
            placement.clone(),
            Arc::clone(&load),
            calls,
        ));
        Arc::new(Activation {
            placement,
            mailbox,
            load,
        })
    }

    /// Queues a call, or fails at once if the mailbox is full (overloaded) or closed.
    pub(crate) fn enqueue(&self, call: Call) -> Result<(), CallError> {
        self.load.pending.fetch_add(1, Ordering::AcqRel);
        match self.mailbox.try_send(call) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.load.pending.fetch_sub(1, Ordering::AcqRel);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => CallError::Overloaded(self.name()),
                    mpsc::error::TrySendError::Closed(_) => CallError::Unavailable(format!(
                        "activation of {} was dropped; retry",
                        self.name()
                    )),
                })
            }
        }
    }

    /// No call queued or running.
    pub(crate) fn is_idle(&self) -> bool {
        self.load.pending.load(Ordering::Acquire) == 0
    }

    /// Node clock (µs) of the last finished call.
    pub(crate) fn last_used(&self) -> u64 {
        self.load.last_used.load(Ordering::Acquire)
    }

    fn name(&self) -> String {
        format!("{}/{}", self.placement.actor_type, self.placement.key)
    }
}

/// A live guest instance.
struct Instance {
    store: Store<HostState>,
    actor: Actor,
    _counted: Counted,
}

/// Keeps the node's count of live instances: +1 when made, -1 when dropped.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(count))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the task carries across instances of one activation.
struct Carry {
    cache: ReadCache,
    self_token: Option<(String, u64)>,
    /// Last commit sequence number used (commits are idempotent per generation and number).
    seq: u64,
}

async fn run(
    node: Arc<NodeInner>,
    placement: Placement,
    load: Arc<Load>,
    mut calls: mpsc::Receiver<Call>,
) {
    let mut instance: Option<Instance> = None;
    let mut carry = Carry {
        cache: ReadCache::default(),
        self_token: None,
        seq: 0,
    };
    while let Some(call) = calls.recv().await {
        let reply = call.reply;
        let request = (call.method, call.payload, call.caller, call.deadline);
        let result = execute(&node, &placement, &mut instance, &mut carry, request).await;
        let _ = reply.send(result);
        load.last_used.store(node.lease.now(), Ordering::Release);
        load.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

fn context(placement: &Placement, caller: Option<String>) -> Context {
    Context {
        actor_type: placement.actor_type.clone(),
        key: placement.key.clone(),
        caller,
        code_version: placement.module_version.clone(),
    }
}

async fn execute(
    node: &Arc<NodeInner>,
    placement: &Placement,
    instance: &mut Option<Instance>,
    carry: &mut Carry,
    (method, payload, caller, deadline): (String, Bytes, Option<String>, Instant),
) -> Result<Bytes, CallError> {
    if node.lease.valid_epoch() != Some(placement.node_epoch) {
        *instance = None;
        return Err(CallError::Unavailable(
            "this node's lease lapsed or its epoch changed; the actor will be placed again, retry"
                .into(),
        ));
    }
    if Instant::now() >= deadline {
        return Err(CallError::Timeout(
            "the call's deadline passed before it started".into(),
        ));
    }
    if instance.is_none() {
        *instance = Some(activate(node, placement, carry, deadline).await?);
    }
    let live = instance.as_mut().expect("just activated");
    begin_call(live, placement, caller, deadline);
    node.runtime.arm_cpu_budget(&mut live.store);
    let ctx = live.store.data().actor.context.clone();
    let outcome = tokio::time::timeout_at(
        deadline,
        live.actor
            .latchkey_actor_handler()
            .call_handle(&mut live.store, &ctx, &method, &payload),
    )
    .await;
    let result = match outcome {
        Err(_) => {
            *instance = None;
            return Err(CallError::Timeout(format!(
                "{method} did not finish before its deadline; its writes were discarded"
            )));
        }
        Ok(Err(e)) => {
            let error = classify(&live.store, &e, &method);
            *instance = None;
            return Err(error);
        }
        Ok(Ok(result)) => result,
    };
    finish_call(node, instance, carry).await?;
    match result {
        Ok(bytes) => Ok(Bytes::from(bytes)),
        Err(GuestError::UnknownMethod(m)) => Err(CallError::NotFound(m)),
        Err(GuestError::BadRequest(m)) => Err(CallError::BadRequest(m)),
        Err(GuestError::Failed(m)) => Err(CallError::ActorFailed(m)),
    }
}

/// Creates the instance and runs `on-activate` (committing any writes it makes).
async fn activate(
    node: &Arc<NodeInner>,
    placement: &Placement,
    carry: &mut Carry,
    deadline: Instant,
) -> Result<Instance, CallError> {
    let fetch_node = Arc::clone(node);
    let version = placement.module_version.clone();
    let pre = node
        .runtime
        .prepare(&placement.module_version, || async move {
            fetch_node
                .cp
                .fetch_module(&fetch_node.config.node_id, &version)
                .await
                .map_err(CallError::from_client)
        })
        .await?;
    let actor_ctx = ActorCtx {
        node: Arc::clone(node),
        fence: placement.fence(),
        context: context(placement, None),
        cache: std::mem::take(&mut carry.cache),
        writes: CallWrites::default(),
        poisoned: None,
        self_token: carry.self_token.take(),
        last_error: None,
        deadline,
    };
    let state = HostState::new(actor_ctx, node.runtime.config().memory_limit);
    let mut store = node.runtime.new_store(state);
    node.runtime.arm_cpu_budget(&mut store);
    let actor = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| classify(&store, &e, "instantiation"))?;
    let mut instance = Instance {
        store,
        actor,
        _counted: Counted::new(&node.live_instances),
    };
    let ctx = instance.store.data().actor.context.clone();
    let activated = tokio::time::timeout_at(
        deadline,
        instance
            .actor
            .latchkey_actor_handler()
            .call_on_activate(&mut instance.store, &ctx),
    )
    .await
    .map_err(|_| {
        CallError::Timeout("on-activate did not finish before the call's deadline".into())
    })?
    .map_err(|e| classify(&instance.store, &e, "on-activate"))?;
    let mut slot = Some(instance);
    finish_call(node, &mut slot, carry).await?;
    let instance = slot.expect("finish_call keeps the instance on success");
    activated.map_err(|e| match e {
        GuestError::UnknownMethod(m) | GuestError::BadRequest(m) | GuestError::Failed(m) => {
            CallError::ActorFailed(format!("on-activate failed: {m}"))
        }
    })?;
    Ok(instance)
}

fn begin_call(
    instance: &mut Instance,
    placement: &Placement,
    caller: Option<String>,
    deadline: Instant,
) {
    let actor = &mut instance.store.data_mut().actor;
    actor.context = context(placement, caller);
    actor.writes = CallWrites::default();
    actor.poisoned = None;
    actor.last_error = None;
    actor.deadline = deadline;
}

/// After the guest returned: fails if the call was poisoned; commits its writes (output gating).
/// On failure the instance is reset.
async fn finish_call(
    node: &Arc<NodeInner>,
    instance: &mut Option<Instance>,
    carry: &mut Carry,
) -> Result<(), CallError> {
    let live = instance.as_mut().expect("a call just ran");
    let actor = &mut live.store.data_mut().actor;
    if let Some(reason) = actor.poisoned.take() {
        reset(instance, carry);
        return Err(CallError::Unavailable(format!(
            "{reason}; nothing of the call was committed"
        )));
    }
    if actor.writes.is_empty() {
        return Ok(());
    }
    carry.seq += 1;
    let request = CommitRequest {
        fence: actor.fence.clone(),
        seq: carry.seq,
        writes: actor.writes.to_commit(),
    };
    match commit(node, &request).await {
        Ok(()) => {
            let writes = std::mem::take(&mut actor.writes);
            actor.cache.apply(&writes);
            Ok(())
        }
        Err(e) => {
            reset(instance, carry);
            Err(e)
        }
    }
}

/// Drops the instance, keeping only what stays true (the commit sequence).
fn reset(instance: &mut Option<Instance>, carry: &mut Carry) {
    *instance = None;
    carry.cache = ReadCache::default();
    carry.self_token = None;
}

/// Commits, resending while the outcome is unknown (transport failures, unavailability) and the
/// lease lasts; the commit is idempotent, so a resend never applies twice.
async fn commit(node: &Arc<NodeInner>, request: &CommitRequest) -> Result<(), CallError> {
    let mut backoff = Duration::from_millis(20);
    loop {
        match node.cp.commit_state(&node.config.node_id, request).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some(ErrorCode::Fenced) => {
                return Err(CallError::Unavailable(format!(
                    "the activation was replaced while the call ran ({e}); nothing of the call was committed, retry"
                )));
            }
            Err(e) if e.is_retryable() => {
                if node.lease.valid_epoch() != Some(request.fence.node_epoch) {
                    return Err(CallError::Unavailable(format!(
                        "the commit's outcome is unknown: the control plane did not answer ({e}) before this node's lease lapsed"
                    )));
                }
                tracing::warn!(error = %e, seq = request.seq, "commit outcome unknown; resending");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err(e) => {
                return Err(CallError::Internal(format!("the commit was refused: {e}")));
            }
        }
    }
}

/// Names what stopped a guest call: the CPU limit, the memory limit, or a trap.
fn classify(store: &Store<HostState>, error: &wasmtime::Error, what: &str) -> CallError {
    let data = store.data();
    if data.cpu.exceeded {
        return CallError::LimitExceeded(format!(
            "{what} exceeded the CPU time limit; its writes were discarded and the instance reset"
        ));
    }
    if data.limits.hit {
        return CallError::LimitExceeded(format!(
            "{what} exceeded the memory limit; its writes were discarded and the instance reset"
        ));
    }
    let Some(trap) = error.downcast_ref::<wasmtime::Trap>() else {
        // Not the guest's doing: the host could not run it (e.g. every pooled slot is in use).
        return CallError::Unavailable(format!(
            "{what} could not run on this node: {error:#}; retry"
        ));
    };
    let cause = trap.to_string();
    match &data.actor.last_error {
        Some(logged) => CallError::Trapped(format!("{what}: {cause} (the actor logged: {logged})")),
        None => CallError::Trapped(format!("{what}: {cause}")),
    }
}
