//! What a guest instance's store holds, and the host side of the actor world: one module per
//! host capability (`storage`, `actors`, `log`, `clock`), WASI through `wasmtime-wasi`, a memory
//! limiter and a CPU budget.

mod actors;
mod clock;
mod log;
mod storage;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use latchkey_wire::node::{Fence, StateWrite};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::hosting::Hosting;
use crate::tail::{CallTag, Tail};

/// The CPU budget of the call in progress, in epoch ticks.
#[derive(Debug, Default)]
pub(crate) struct CpuBudget {
    pub(crate) ticks_left: u64,
    pub(crate) exceeded: bool,
}

/// Caps linear memory; remembers that the cap was hit, to report it as such.
#[derive(Debug)]
pub(crate) struct MemoryLimits {
    limit: usize,
    pub(crate) hit: bool,
}

impl ResourceLimiter for MemoryLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Storage writes of the call in progress, buffered until the call returns.
#[derive(Debug, Default)]
pub(crate) struct CallWrites {
    /// Whether `delete-all` ran (earlier writes and stored keys are gone).
    pub(crate) cleared: bool,
    /// Keys written since: `Some` put, `None` deleted.
    pub(crate) keys: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Bytes buffered (keys and values), for the commit size limit.
    pub(crate) bytes: usize,
}

impl CallWrites {
    pub(crate) fn is_empty(&self) -> bool {
        !self.cleared && self.keys.is_empty()
    }

    /// What the buffer alone knows about `key`.
    pub(crate) fn lookup(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        match self.keys.get(key) {
            Some(v) => Some(v.clone()),
            None if self.cleared => Some(None),
            None => None,
        }
    }

    /// The writes as one ordered commit.
    pub(crate) fn to_commit(&self) -> Vec<StateWrite> {
        let mut out = Vec::with_capacity(self.keys.len() + 1);
        if self.cleared {
            out.push(StateWrite::DeleteAll);
        }
        for (k, v) in &self.keys {
            out.push(match v {
                Some(v) => StateWrite::Put(k.clone(), v.clone()),
                None => StateWrite::Delete(k.clone()),
            });
        }
        out
    }
}

/// Values the activation knows to be committed (`None`: known absent). Cleared when it grows
/// past its bound; the control plane stays the source of truth. A *complete* cache holds every
/// stored key of the actor, so a miss is known absent without asking.
#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    entries: HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    complete: bool,
}

const READ_CACHE_BYTES: usize = 1 << 20;

impl ReadCache {
    /// The cache of an actor the control plane placed with no stored state (a new key): complete
    /// and empty, so its first calls read nothing remotely. Only this activation can write, so
    /// it stays complete as the calls' committed writes are applied.
    pub(crate) fn of_empty_actor() -> Self {
        ReadCache {
            complete: true,
            ..ReadCache::default()
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        match self.entries.get(key) {
            Some(value) => Some(value.clone()),
            None => self.complete.then_some(None),
        }
    }

    pub(crate) fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let size = key.len() + value.as_ref().map_or(0, Vec::len);
        if self.bytes + size > READ_CACHE_BYTES {
            self.entries.clear();
            self.bytes = 0;
            self.complete = false;
        }
        self.bytes += size;
        self.entries.insert(key, value);
    }

    /// Applies a committed call's writes.
    pub(crate) fn apply(&mut self, writes: &CallWrites) {
        if writes.cleared {
            // Everything was deleted: what is stored now is exactly what follows.
            self.entries.clear();
            self.bytes = 0;
            self.complete = true;
        }
        for (k, v) in &writes.keys {
            self.insert(k.clone(), v.clone());
        }
    }
}

/// Why the call in progress must fail whatever the guest returns.
#[derive(Debug)]
pub(crate) struct Poison {
    /// What went wrong, for the caller.
    pub(crate) reason: String,
    /// The activation was replaced (a stale fence): it must leave the node's table.
    pub(crate) fenced: bool,
}

/// The activation an instance belongs to, and the state of the call in progress.
pub(crate) struct ActorCtx {
    /// What the activation needs from its node (not the node itself).
    pub(crate) hosting: Arc<Hosting>,
    pub(crate) fence: Fence,
    pub(crate) cache: ReadCache,
    pub(crate) writes: CallWrites,
    /// Set when the activation turned out stale or the control plane failed mid-call: the call
    /// fails and the instance is reset, whatever the guest returned.
    pub(crate) poison: Option<Poison>,
    pub(crate) self_token: Option<(String, u64)>,
    /// The last error-level line the guest logged during the call (a panic, for SDK actors).
    pub(crate) last_error: Option<String>,
    /// When the call in progress must end (nested calls get what is left).
    pub(crate) deadline: tokio::time::Instant,
    /// Where the call's log lines go while someone follows this actor.
    pub(crate) tail: Arc<Tail>,
    /// The call in progress, while someone follows this actor (`latchkey tail`).
    pub(crate) call: Option<CallTag>,
}

impl ActorCtx {
    /// `actor:{type}/{key}`: who this actor is when it presents a token.
    pub(crate) fn principal(&self) -> String {
        format!("actor:{}/{}", self.fence.actor_type, self.fence.key)
    }
}

/// A guest instance's store data.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: MemoryLimits,
    pub(crate) cpu: CpuBudget,
    pub(crate) actor: ActorCtx,
}

impl HostState {
    pub(crate) fn new(actor: ActorCtx, memory_limit: usize) -> Self {
        // No preopened directories, no environment, no sockets: WASI is linked because std
        // guests import it, not to grant anything.
        HostState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limits: MemoryLimits {
                limit: memory_limit,
                hit: false,
            },
            cpu: CpuBudget::default(),
            actor,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl crate::runtime::bindings::latchkey::actor::types::Host for HostState {}
