//! One activation's guest instance and everything that happens around a guest call:
//! instantiation, the `on-activate` hook, output gating (committing a call's writes through the
//! control plane's fenced, idempotent commit before its answer is released), and naming what
//! stopped a failed call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use latchkey_wire::client::ClientError;
use latchkey_wire::node::{Activation as Placement, CommitRequest};
use tokio::time::Instant;
use wasmtime::Store;

use crate::error::CallError;
use crate::host::{ActorCtx, CallWrites, HostState, Poison, ReadCache};
use crate::hosting::Hosting;
use crate::protocol::{Commit, CommitError, CommitStep};
use crate::runtime::bindings::Actor;
use crate::runtime::bindings::exports::latchkey::actor::handler::Error as GuestError;
use crate::runtime::bindings::latchkey::actor::types::Context;
use crate::tail::CallTag;

/// A live guest instance.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    pub(crate) actor: Actor,
    /// What the guest is told about the call in progress (kept here, outside the store, so a
    /// call passes it without copying it).
    context: Context,
    _counted: Counted,
}

/// Keeps the node's count of live instances: +1 when made, -1 when dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What stopped a guest call, for the per-version outcome counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Trap,
    Cpu,
    Memory,
    /// Not the guest's doing (the host could not run it).
    Host,
}

/// A guest export that did not return: the error its caller gets, and what stopped it.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub(crate) error: CallError,
    pub(crate) stop: Stop,
}

impl Stopped {
    fn new(error: CallError, stop: Stop) -> Self {
        Stopped { error, stop }
    }

    /// Stopped by the host, not the guest (no slot, no module, a deadline).
    fn by_host(error: CallError) -> Self {
        Stopped::new(error, Stop::Host)
    }
}

/// The call context a guest sees.
fn context(placement: &Placement, caller: Option<String>) -> Context {
    Context {
        actor_type: placement.actor_type.clone(),
        key: placement.key.clone(),
        caller,
        code_version: placement.module_version.clone(),
    }
}

/// Prepares `placement`'s version (fetching and compiling it once per node) and instantiates it,
/// without running any hook. Reads go through `cache` and are fenced with `placement`.
pub(crate) async fn instantiate(
    hosting: &Arc<Hosting>,
    placement: &Placement,
    cache: ReadCache,
    self_token: Option<(String, u64)>,
    deadline: Instant,
) -> Result<Instance, Stopped> {
    let pre = prepare(hosting, &placement.module_version)
        .await
        .map_err(Stopped::by_host)?;
    let actor_ctx = ActorCtx {
        hosting: Arc::clone(hosting),
        fence: placement.fence(),
        cache,
        writes: CallWrites::default(),
        poison: None,
        self_token,
        last_error: None,
        deadline,
        tail: Arc::clone(&hosting.tail),
        call: None,
    };
    let runtime = &hosting.runtime;
    let state = HostState::new(actor_ctx, runtime.config().memory_limit);
    let mut store = runtime.new_store(state);
    runtime.arm_cpu_budget(&mut store);
    let actor = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| classify(&store, &e, "instantiation"))?;
    hosting
        .shared
        .live_instances
        .fetch_add(1, Ordering::Relaxed);
    Ok(Instance {
        store,
        actor,
        context: context(placement, None),
        _counted: Counted(Arc::clone(&hosting.shared.live_instances)),
    })
}

/// Prepares module `version` once per node: fetched from the control plane and compiled on
/// first use.
pub(crate) async fn prepare(
    hosting: &Hosting,
    version: &str,
) -> Result<crate::runtime::ActorPre, CallError> {
    let cp = Arc::clone(&hosting.cp);
    let id = version.to_owned();
    hosting
        .runtime
        .prepare(version, || async move {
            cp.fetch_module(&id).await.map_err(CallError::from_client)
        })
        .await
}

impl Instance {
    /// Starts a call by `caller` (a token id; `None` for hooks), tagged `call` for its tail
    /// events: empty write buffer, deadline, CPU budget.
    pub(crate) fn begin(
        &mut self,
        hosting: &Hosting,
        caller: Option<String>,
        call: Option<CallTag>,
        deadline: Instant,
    ) {
        self.context.caller = caller;
        let actor = &mut self.store.data_mut().actor;
        actor.call = call;
        actor.writes = CallWrites::default();
        actor.poison = None;
        actor.last_error = None;
        actor.deadline = deadline;
        hosting.runtime.arm_cpu_budget(&mut self.store);
    }

    /// Runs `on-activate` (the call's writes are left for [`Instance::commit`]).
    pub(crate) async fn on_activate(
        &mut self,
        deadline: Instant,
    ) -> Result<Result<(), GuestError>, Stopped> {
        let ctx = &self.context;
        let handler = self.actor.latchkey_actor_handler();
        let run = handler.call_on_activate(&mut self.store, ctx);
        let outcome = within(deadline, run).await;
        settle(&self.store, outcome, "on-activate")
    }

    /// Runs `on-upgrade(previous)` (writes are left for the switch to commit).
    pub(crate) async fn on_upgrade(
        &mut self,
        previous: &str,
        deadline: Instant,
    ) -> Result<Result<(), GuestError>, Stopped> {
        let ctx = &self.context;
        let handler = self.actor.latchkey_actor_handler();
        let run = handler.call_on_upgrade(&mut self.store, ctx, previous);
        let outcome = within(deadline, run).await;
        settle(&self.store, outcome, "on-upgrade")
    }

    /// Runs `handle(method, payload)`.
    pub(crate) async fn handle(
        &mut self,
        method: &str,
        payload: &[u8],
        deadline: Instant,
    ) -> Result<Result<Vec<u8>, GuestError>, Stopped> {
        let ctx = &self.context;
        let handler = self.actor.latchkey_actor_handler();
        let run = handler.call_handle(&mut self.store, ctx, method, payload);
        let outcome = within(deadline, run).await;
        settle(&self.store, outcome, method)
    }

    /// The reason the call must fail whatever the guest returned (a storage read was fenced or
    /// the control plane failed), if any.
    pub(crate) fn take_poison(&mut self) -> Option<Poison> {
        self.store.data_mut().actor.poison.take()
    }

    /// Output gating: commits the call's writes before its answer is released, numbered from
    /// the node's commit counter ([`Shared::next_commit_seq`](crate::hosting::Shared::next_commit_seq)).
    pub(crate) async fn commit(&mut self, hosting: &Hosting) -> Result<(), CommitError> {
        let actor = &mut self.store.data_mut().actor;
        if actor.writes.is_empty() {
            return Ok(());
        }
        let request = CommitRequest {
            fence: actor.fence.clone(),
            seq: hosting.shared.next_commit_seq(),
            writes: actor.writes.to_commit(),
            // Guests cannot set alarms yet (issue #17: the control plane keeps them first).
            alarms: Vec::new(),
        };
        commit(hosting, &request, actor.deadline).await?;
        let writes = std::mem::take(&mut actor.writes);
        actor.cache.apply(&writes);
        Ok(())
    }
}

/// Commits, resending while the outcome is unknown, as [`Commit`] decides.
async fn commit(
    hosting: &Hosting,
    request: &CommitRequest,
    deadline: Instant,
) -> Result<(), CommitError> {
    let mut attempts = Commit::with_flaw(hosting.commit_flaw);
    loop {
        // An attempt waits no longer than the call may: then its outcome is unknown.
        let sent = Instant::now();
        let e = match tokio::time::timeout_at(deadline, hosting.cp.commit(request)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => ClientError::Timeout {
                url: "the control plane (commit)".into(),
                timeout: sent.elapsed(),
            },
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        match attempts.failed(e.code(), e.is_retryable(), remaining, &e) {
            CommitStep::Resend(pause) => {
                tracing::warn!(error = %e, seq = request.seq, "commit outcome unknown; resending");
                tokio::time::sleep(pause).await;
            }
            CommitStep::Fail(failure) => return Err(failure),
        }
    }
}

/// Runs `work` until `deadline` (`None`: it did not finish in time). Most guest calls finish in
/// their first poll (no host I/O), and those arm no timer.
async fn within<T>(deadline: Instant, work: impl Future<Output = T>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let first = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(output) => Some(output),
        Poll::Pending => tokio::time::timeout_at(deadline, work).await.ok(),
    }
}

/// The result of a guest export run under a deadline, or what stopped it.
fn settle<T>(
    store: &Store<HostState>,
    outcome: Option<wasmtime::Result<T>>,
    what: &str,
) -> Result<T, Stopped> {
    match outcome {
        None => Err(Stopped::by_host(CallError::Timeout(format!(
            "{what} did not finish before its deadline; its writes were discarded"
        )))),
        Some(Err(e)) => Err(classify(store, &e, what)),
        Some(Ok(result)) => Ok(result),
    }
}

/// Names what stopped a guest call: the CPU limit, the memory limit, a trap, or the host.
pub(crate) fn classify(store: &Store<HostState>, error: &wasmtime::Error, what: &str) -> Stopped {
    let data = store.data();
    if data.cpu.exceeded {
        let message = format!(
            "{what} exceeded the CPU time limit; its writes were discarded and the instance reset"
        );
        return Stopped::new(CallError::LimitExceeded(message), Stop::Cpu);
    }
    if data.limits.hit {
        let message = format!(
            "{what} exceeded the memory limit; its writes were discarded and the instance reset"
        );
        return Stopped::new(CallError::LimitExceeded(message), Stop::Memory);
    }
    let Some(trap) = error.downcast_ref::<wasmtime::Trap>() else {
        // Not the guest's doing: the host could not run it (e.g. every pooled slot is in use).
        let message = format!("{what} could not run on this node: {error:#}; retry");
        return Stopped::by_host(CallError::Unavailable(message));
    };
    let message = match &data.actor.last_error {
        Some(logged) => format!("{what}: {trap} (the actor logged: {logged})"),
        None => format!("{what}: {trap}"),
    };
    Stopped::new(CallError::Trapped(message), Stop::Trap)
}
