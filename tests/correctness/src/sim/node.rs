//! A simulated edge node: the real node's router, activations and instances — built by
//! [`assembly::router`], running the real counter component in wasmtime — and its real
//! membership loop ([`keep_lease`]), over ports that carry every request through the simulated
//! network ([`super::port`]), on a clock of its own ([`SimClock`]: offset and drift). Nothing here
//! decides anything the node decides: this file only starts, crashes, pauses and resumes nodes,
//! and hands them their messages.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use latchkey_edge_node::assembly::{self, Ports};
use latchkey_edge_node::auth::Auth;
use latchkey_edge_node::membership::keep_lease;
use latchkey_edge_node::ports::{CallRequest, Clock};
use latchkey_edge_node::runtime::{Runtime, RuntimeConfig};
use latchkey_edge_node::{CallError, NodeConfig, Readiness, Router};
use latchkey_wire::identity::NodeCredentials;
use latchkey_wire::{ApiError, ErrorCode};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::key;
use super::identity;
use super::net::{Addr, CpAnswer, Failure, ForwardedCall, Msg, Op, forward_covered};
use super::port::Port;
use super::{ACTOR_TYPE, Event, Micros, World};

/// How long a call may take at the node that took it: the node's `call_timeout`, set below the
/// clients' patience so that a call's failure reaches its client.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// A node's clocks: monotonic time with its own offset and drift, and a wall clock off by its
/// own skew. Both read the simulation's time (tokio's paused clock).
pub(crate) struct SimClock {
    origin: Instant,
    offset: u64,
    drift_ppm: i64,
    wall_skew_ms: i64,
}

impl SimClock {
    /// The node's monotonic clock at simulated time `now`.
    pub(crate) fn local(&self, now: Micros) -> u64 {
        let drift = i128::from(now) * i128::from(self.drift_ppm) / 1_000_000;
        (i128::from(self.offset) + i128::from(now) + drift) as u64
    }

    fn now(&self) -> Micros {
        super::micros(Instant::now().duration_since(self.origin))
    }
}

impl Clock for SimClock {
    fn monotonic_micros(&self) -> u64 {
        self.local(self.now())
    }

    fn unix_millis(&self) -> u64 {
        identity::wall_ms(self.now()).saturating_add_signed(self.wall_skew_ms)
    }
}

/// A running incarnation: the real router, its token and signature checks, and its tasks (the
/// membership loop and the calls it is running).
pub(crate) struct Live {
    pub(crate) router: Arc<Router>,
    pub(crate) auth: Arc<Auth>,
    tasks: JoinSet<()>,
}

/// The id of node `index`.
pub(crate) fn node_id(index: usize) -> String {
    format!("n{index}")
}

/// The index of node `id`.
pub(crate) fn node_index(id: &str) -> Option<usize> {
    id.strip_prefix('n')?.parse().ok()
}

pub(crate) struct Node {
    pub(crate) id: String,
    /// Its key and certificate (kept across crashes, like its key file).
    pub(crate) credentials: Arc<NodeCredentials>,
    pub(crate) clock: Arc<SimClock>,
    pub(crate) up: bool,
    pub(crate) paused: bool,
    pub(crate) incarnation: u32,
    /// Messages that arrived while paused, handled on resume.
    pub(crate) deferred: Vec<Event>,
    /// Messages sent while paused, sent on resume.
    pub(crate) outbox: Vec<(Addr, Msg)>,
    /// `None` while down.
    pub(crate) live: Option<Live>,
    /// Requests to the control plane awaiting their answer.
    pub(crate) waiting: BTreeMap<u64, oneshot::Sender<Result<CpAnswer, ApiError>>>,
    /// Calls forwarded to other nodes awaiting their answer.
    pub(crate) forwards: BTreeMap<u64, oneshot::Sender<Result<Bytes, ApiError>>>,
}

impl Node {
    pub(crate) fn new(
        index: usize,
        credentials: Arc<NodeCredentials>,
        origin: Instant,
        (offset, drift_ppm, wall_skew_ms): (u64, i64, i64),
    ) -> Node {
        Node {
            id: node_id(index),
            credentials,
            clock: Arc::new(SimClock {
                origin,
                offset,
                drift_ppm,
                wall_skew_ms,
            }),
            up: false,
            paused: false,
            incarnation: 0,
            deferred: Vec::new(),
            outbox: Vec::new(),
            live: None,
            waiting: BTreeMap::new(),
            forwards: BTreeMap::new(),
        }
    }

    /// The node's wall clock at simulated time `now`, in Unix milliseconds.
    pub(crate) fn wall_ms(&self, now: Micros) -> u64 {
        identity::wall_ms(now).saturating_add_signed(self.clock.wall_skew_ms)
    }

    /// Whether the node could answer `actor` from an instance's memory right now (the real
    /// router's own view: a valid lease, and a live activation of its epoch).
    pub(crate) fn can_serve(&self, actor: usize) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.router.serving(ACTOR_TYPE, &key(actor)).is_some())
    }

    pub(crate) fn describe(&self, actor: usize, now: Micros) -> String {
        let Some(live) = &self.live else {
            return format!("{} (down)", self.id);
        };
        let lease = live.router.lease();
        format!(
            "{} (lease epoch {} until local {}, local now {}{}; serving in epoch {:?})",
            self.id,
            lease.epoch,
            lease.deadline,
            self.clock.local(now),
            if self.paused { ", paused" } else { "" },
            live.router.serving(ACTOR_TYPE, &key(actor))
        )
    }

    pub(crate) fn me(&self, index: usize) -> Addr {
        Addr::Node(index, self.incarnation)
    }

    /// Whether incarnation `incarnation` of this node is running.
    pub(crate) fn is(&self, incarnation: u32) -> bool {
        self.up && self.incarnation == incarnation
    }
}

/// The wasmtime runtime every simulated node shares, with the counter compiled once per process.
/// Its epoch never ticks during a run (an hour's tick), so a guest call never yields to other
/// tasks part-way: the order of events depends on the seed alone.
fn runtime(content_id: &str) -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        let config = RuntimeConfig {
            max_instances: 512,
            memory_limit: 16 << 20,
            cpu_limit: Duration::from_secs(3600),
            tick: Duration::from_secs(3600),
            ..RuntimeConfig::default()
        };
        Arc::new(Runtime::new(config).expect("the simulation's wasmtime runtime"))
    });
    prepare(runtime, content_id);
    Arc::clone(runtime)
}

/// Compiles the counter into `runtime` (once), on a thread of its own: the simulation's runtime
/// is paused, and compiling must not let its clock run.
fn prepare(runtime: &Arc<Runtime>, content_id: &str) {
    static PREPARED: OnceLock<()> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let (runtime, id) = (Arc::clone(runtime), content_id.to_owned());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime for compiling");
            rt.block_on(runtime.prepare(&id, || async {
                Ok(Bytes::from_static(latchkey_examples::COUNTER))
            }))
            .expect("the counter compiles");
        })
        .join()
        .expect("compiling the counter");
    });
}

/// Starts node `i`'s next incarnation: the real router over the simulation's ports, and the real
/// membership loop.
pub(crate) fn start(w: &mut World, i: usize) {
    let n = &mut w.nodes[i];
    n.up = true;
    let port = Arc::new(Port::new(w.me.clone(), i, n.incarnation));
    let clock: Arc<dyn Clock> = n.clock.clone();
    let auth = w.fleet.node_auth(&n.id, Arc::clone(&clock));
    let mut config = NodeConfig::new(&n.id, "sim", "");
    config.call_timeout = CALL_TIMEOUT;
    let ports = Ports {
        control_plane: port.clone(),
        peers: port.clone(),
        clock,
        auth: Arc::clone(&auth),
        runtime: runtime(&w.content_id),
    };
    let router = assembly::router(&config, ports, w.cfg.flaws);
    let mut tasks = JoinSet::new();
    let member = Arc::clone(&router);
    tasks.spawn(async move {
        let ready = watch::channel(Readiness::default()).0;
        keep_lease(&*port, &member, &ready).await;
    });
    n.live = Some(Live {
        router,
        auth,
        tasks,
    });
}

/// Node `i` crashes: its tasks stop, its memory (activations, nonces seen, requests awaiting
/// answers) is gone, and messages to this incarnation are lost.
pub(crate) fn crash(w: &mut World, i: usize) {
    w.trace(&format!("crash n{i}"));
    let n = &mut w.nodes[i];
    n.live = None;
    n.up = false;
    n.paused = false;
    n.incarnation += 1;
    n.deferred.clear();
    n.outbox.clear();
    n.waiting.clear();
    n.forwards.clear();
}

/// Node `i` (up, not paused) receives `msg` from `from`.
pub(crate) fn on_message(w: &mut World, i: usize, from: Addr, msg: Msg) {
    match msg {
        Msg::CpReply { req, result } => {
            if let Some(waiting) = w.nodes[i].waiting.remove(&req) {
                let _ = waiting.send(result);
            }
        }
        Msg::ForwardReply { fwd, result } => {
            if let Some(waiting) = w.nodes[i].forwards.remove(&fwd) {
                let _ = waiting.send(result);
            }
        }
        Msg::Call { call, actor, op } => take_call(w, i, call, actor, op),
        Msg::Forward { fwd, call, auth } => take_forward(w, i, from, fwd, call, &auth),
        Msg::Cp { .. } | Msg::Reply { .. } => {}
    }
}

/// A client's call: the real router runs it; its answer goes back to the client.
fn take_call(w: &mut World, i: usize, call: u64, actor: usize, op: Op) {
    let request = CallRequest {
        actor_type: ACTOR_TYPE.into(),
        key: key(actor),
        method: op.method().into(),
        payload: Bytes::from_static(b"null"),
        token: w.token.clone(),
        presenter: None,
        deadline: Instant::now() + CALL_TIMEOUT,
        forwarded: false,
    };
    run(w, i, request, move |w, i, incarnation, result| {
        let result = result.map_err(Failure::from).and_then(|answer| {
            std::str::from_utf8(&answer)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .ok_or_else(|| Failure::new(ErrorCode::Internal, "the counter's answer is no u64"))
        });
        let reply = Msg::Reply { call, result };
        w.send_from_node(i, incarnation, Addr::Client(actor), reply);
    });
}

/// A call another node forwarded: its signature checked by the real node code, then run by the
/// real router (it is not forwarded again); its answer goes back to the forwarding node.
fn take_forward(
    w: &mut World,
    i: usize,
    from: Addr,
    fwd: u64,
    call: ForwardedCall,
    auth: &identity::Signed,
) {
    let Addr::Node(sender, _) = from else { return };
    let sender_id = w.nodes[sender].id.clone();
    let live = w.nodes[i].live.as_ref().expect("an up node is live");
    if let Err(e) = auth.check_at_node(&forward_covered(&call), &live.auth, &sender_id) {
        w.trace(&format!(
            "n{i} refused a call forwarded by {sender_id}: {e}"
        ));
        *w.report
            .refusals
            .entry("forwarded call refused by a node")
            .or_default() += 1;
        let incarnation = w.nodes[i].incarnation;
        let result = Err(super::net::auth_refusal(&e));
        w.send_from_node(i, incarnation, from, Msg::ForwardReply { fwd, result });
        return;
    }
    let timeout = CALL_TIMEOUT.min(Duration::from_millis(call.deadline_ms));
    let request = CallRequest {
        actor_type: ACTOR_TYPE.into(),
        key: call.key,
        method: call.method,
        payload: call.payload,
        token: call.token,
        presenter: None,
        deadline: Instant::now() + timeout,
        forwarded: true,
    };
    run(w, i, request, move |w, i, incarnation, result| {
        let result = result.map_err(|e| ApiError::new(e.code(), e.to_string()));
        w.send_from_node(i, incarnation, from, Msg::ForwardReply { fwd, result });
    });
}

/// Runs `request` on node `i`'s real router in a task of the node, then `answer`s with its
/// result (unless the node crashed meanwhile).
fn run(
    w: &mut World,
    i: usize,
    request: CallRequest,
    answer: impl FnOnce(&mut World, usize, u32, Result<Bytes, CallError>) + Send + 'static,
) {
    let n = &mut w.nodes[i];
    let incarnation = n.incarnation;
    let world = w.me.clone();
    let live = n.live.as_mut().expect("an up node is live");
    let router = Arc::clone(&live.router);
    live.tasks.spawn(async move {
        let result = router.call(request).await;
        if let Some(world) = world.upgrade() {
            let mut w = super::lock(&world);
            if w.nodes[i].is(incarnation) {
                answer(&mut w, i, incarnation, result);
            }
        }
    });
}
