//! A deterministic simulation of the activation protocol over the real code: the control plane's
//! real [`Registry`] (over the memory store with a manual clock), and edge nodes that are the
//! real node's layers — its router, activation table, activations and instances (running the
//! real counter component in wasmtime), output gate and membership loop, built by
//! [`latchkey_edge_node::assembly`] — over ports that carry their requests through a simulated
//! network ([`port`]), on clocks of their own (offset and drift). Every message between nodes
//! and to the control plane is signed and checked by the real code. [`Flaws`] plants a mistake
//! in the node's router or output gate to show the checks catch it.
//!
//! The nodes' code runs on a single-threaded tokio runtime whose clock is paused: time moves
//! only when every task waits, to the next timer or simulated event, so a run depends on its seed
//! alone (the simulation's own events, tokio's timers and the tasks' order are all
//! deterministic). Around the nodes the simulation supplies a network that delays, drops,
//! reorders and partitions messages, node crashes and restarts, pauses (a paused node's
//! messages wait, in and out, until it resumes), and control-plane restarts — every choice
//! drawn from one seeded generator, so a seed replays exactly.
//!
//! Checked after every event: at most one node is able to serve each actor (by the real
//! router's own view: a valid lease and a live activation of its epoch). Checked on every
//! answer: each client's counter is linearizable (see [`client`]). Checked at the end: every
//! client made progress once the faults stopped.

mod client;
mod identity;
mod net;
mod node;
mod port;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use latchkey_control_plane::Registry;
use latchkey_control_plane::registry::Limits;
use latchkey_control_plane::registry::deployments::DeployOp;
use latchkey_store::{ManualClock, MemoryStore};
use latchkey_wire::ApiError;
use latchkey_wire::lease::{LeaseSettings, VERSIONS_PER_SECOND};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

pub use latchkey_edge_node::assembly::Flaws;

use client::Client;
use net::{Addr, CpAnswer, CpRequest, ForwardedCall, Msg, Net};
use node::Node;

/// Microseconds of simulated time.
pub type Micros = u64;

const MS: Micros = 1_000;
const SECOND: Micros = 1_000_000;

/// The store's clock at simulated time 0 (versions are microseconds).
const START_VERSION: u64 = 1_000_000_000_000;

/// The actor type every simulated actor has.
pub const ACTOR_TYPE: &str = "counter";

/// Lease settings: a 2 s lease, a heartbeat every 200 ms, eligible after one heartbeat.
pub const SETTINGS: LeaseSettings = LeaseSettings {
    ttl_versions: 2 * VERSIONS_PER_SECOND,
    heartbeat_interval_ms: 200,
    min_heartbeats: 1,
};

/// What one run simulates.
#[derive(Clone, Debug)]
pub struct Config {
    /// Edge nodes.
    pub nodes: usize,
    /// Actors, each driven by its own client.
    pub actors: usize,
    /// Simulated time of the whole run.
    pub duration: Micros,
    /// Faults are injected until this time; afterwards everything heals and clients must make
    /// progress.
    pub faults_until: Micros,
    /// Inject crashes, pauses, partitions and control-plane restarts.
    pub faults: bool,
    /// Chance (per mille) that the network loses a message (while faults are injected).
    pub drop_permille: u32,
    /// Largest clock drift of a node, in parts per million (either way). The lease's safety
    /// margin (a tenth of the TTL) covers drifts below 10%; beyond that the node's lease outlives
    /// the control plane's.
    pub max_drift_ppm: u64,
    /// Record a line per event (printed with a failure).
    pub trace: bool,
    /// A deliberately wrong router or output gate in every node (planted in the node's real
    /// code), to show the checks catch it.
    pub flaws: Flaws,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes: 3,
            actors: 2,
            duration: 24 * SECOND,
            faults_until: 14 * SECOND,
            faults: true,
            drop_permille: 10,
            max_drift_ppm: 40_000,
            trace: false,
            flaws: Flaws::default(),
        }
    }
}

/// What a run did and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Events handled.
    pub events: u64,
    /// Calls the clients made.
    pub calls: u64,
    /// Calls answered with a value.
    pub answered: u64,
    /// Failed calls whose error says they did not take effect.
    pub definite_failures: u64,
    /// Failed calls whose outcome is unknown (`outcome_unknown`, lost answers, client timeouts).
    pub unknown_outcomes: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Signed node messages refused, by who sent them (an impostor, or a real node whose message
    /// arrived stale or signed before its recipient restarted).
    pub refusals: BTreeMap<&'static str, u64>,
    /// Broken promises; empty when the run passed.
    pub violations: Vec<String>,
    /// One line per event, if [`Config::trace`] was set.
    pub trace: Vec<String>,
    /// A digest of every event handled (equal digests: the same run).
    pub digest: u64,
}

impl Report {
    /// A few lines: the counts, the faults and the violations.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "seed {}: {} events, {} calls ({} answered, {} failed definitely, {} with unknown outcome), digest {:016x}",
            self.seed,
            self.events,
            self.calls,
            self.answered,
            self.definite_failures,
            self.unknown_outcomes,
            self.digest
        );
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        let _ = writeln!(s, "faults: {}", faults.join(", "));
        let refusals: Vec<String> = self
            .refusals
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        let _ = writeln!(s, "signatures refused: {}", refusals.join(", "));
        let _ = writeln!(s, "violations: {}", self.violations.len());
        for v in self.violations.iter().take(20) {
            let _ = writeln!(s, "  {v}");
        }
        s
    }

    /// The command that replays this run with a trace.
    pub fn replay_command(&self) -> String {
        format!(
            "cargo run -p latchkey-correctness --bin sim -- --seed {} --trace",
            self.seed
        )
    }
}

/// Something that happens at a point of simulated time.
#[derive(Debug)]
enum Event {
    /// A message arrives.
    Deliver { from: Addr, to: Addr, msg: Msg },
    /// A client's timer.
    Client { actor: usize, timer: client::Timer },
    /// The fault schedule's next step.
    Fault(Fault),
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Inject the next fault.
    Next,
    /// Start (or restart) a node.
    Restart(usize),
    Resume(usize),
    Heal(Addr, Addr),
    StartControlPlane,
}

/// The control plane: the registry over a store that outlives its restarts, and its check of
/// nodes' signatures (whose memory of nonces does not).
struct ControlPlane {
    store: Arc<MemoryStore>,
    clock: ManualClock,
    /// `None` while it is down.
    registry: Option<Registry>,
    verifier: latchkey_caps::node::NodeVerifier,
}

impl ControlPlane {
    fn start(&mut self, now: Micros) {
        let store: Arc<dyn latchkey_store::Store> = self.store.clone();
        self.registry = Some(Registry::new(store, SETTINGS, Limits::default()));
        self.verifier = identity::Fleet::control_plane_verifier(now);
    }
}

/// Request ids of impostors' messages (far above any node's).
const IMPOSTOR_REQ: u64 = 1 << 62;

/// `d` in microseconds.
pub(crate) fn micros(d: Duration) -> Micros {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The world, from a node's task or the event loop. Each holds it only between awaits, and the
/// runtime has one thread, so it is never contended.
pub(crate) fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The whole simulated system.
pub(crate) struct World {
    cfg: Config,
    /// This world, for the ports of the nodes it starts.
    me: Weak<Mutex<World>>,
    /// Wakes the event loop when a node's task schedules an event.
    wake: Arc<Notify>,
    /// Simulated time 0 on tokio's (paused) clock.
    origin: Instant,
    now: Micros,
    rng: StdRng,
    queue: BinaryHeap<Reverse<(Micros, u64)>>,
    events: BTreeMap<u64, Event>,
    next_event: u64,
    /// Request and forward ids.
    next_request: u64,
    cp: ControlPlane,
    fleet: identity::Fleet,
    /// The counter's version.
    content_id: String,
    /// The clients' token.
    token: Bytes,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    net: Net,
    report: Report,
    hasher: DefaultHasher,
}

/// Runs one seed.
pub fn run(seed: u64, cfg: &Config) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime for the simulation");
    runtime.block_on(async {
        let world = World::new(seed, cfg.clone());
        lock(&world).begin();
        drive(&world).await;
        lock(&world).finish()
    })
}

/// The event loop: handles the simulation's events in time order while the nodes' tasks run
/// between them; tokio's paused clock moves to whichever comes first, the next event or a
/// node's timer.
async fn drive(world: &Mutex<World>) {
    let (wake, origin, duration) = {
        let w = lock(world);
        (Arc::clone(&w.wake), w.origin, w.cfg.duration)
    };
    loop {
        let next = lock(world).queue.peek().map(|Reverse((at, _))| *at);
        let Some(at) = next.filter(|at| *at <= duration) else {
            break;
        };
        let when = origin + Duration::from_micros(at);
        if Instant::now() < when {
            tokio::select! {
                biased;
                () = wake.notified() => continue,
                () = tokio::time::sleep_until(when) => {}
            }
        }
        lock(world).step();
        // Let the tasks the event woke run before the next event of the same instant.
        tokio::task::yield_now().await;
    }
    lock(world).end();
}

impl World {
    fn new(seed: u64, cfg: Config) -> Arc<Mutex<World>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let clock = ManualClock::new(START_VERSION);
        let mut cp = ControlPlane {
            store: Arc::new(MemoryStore::deterministic(clock.clone())),
            clock,
            registry: None,
            verifier: identity::Fleet::control_plane_verifier(0),
        };
        cp.start(0);
        let fleet = identity::Fleet::new(&mut rng);
        let registry = cp.registry.as_ref().expect("just started");
        let module = registry
            .put_module(latchkey_examples::COUNTER)
            .expect("the counter example is a valid actor");
        registry
            .change_deployment(
                ACTOR_TYPE,
                &DeployOp::Deploy(module.content_id.clone()),
                None,
            )
            .expect("deploying the counter");
        let origin = Instant::now();
        let nodes = (0..cfg.nodes)
            .map(|i| {
                let drift =
                    rng.random_range(0..=2 * cfg.max_drift_ppm) as i64 - cfg.max_drift_ppm as i64;
                let offset = rng.random_range(0..1_000 * SECOND);
                let credentials = fleet.enrol(&node::node_id(i), 0, &mut rng);
                // NTP keeps wall clocks within a second or two; the monotonic clocks above
                // drift far more.
                let wall_skew_ms = rng.random_range(-2_000..=2_000);
                Node::new(i, credentials, origin, (offset, drift, wall_skew_ms))
            })
            .collect();
        let clients = (0..cfg.actors).map(Client::new).collect();
        let token = fleet.client_token();
        Arc::new_cyclic(|me| {
            Mutex::new(World {
                report: Report {
                    seed,
                    ..Report::default()
                },
                cfg,
                me: me.clone(),
                wake: Arc::new(Notify::new()),
                origin,
                now: 0,
                rng,
                queue: BinaryHeap::new(),
                events: BTreeMap::new(),
                next_event: 0,
                next_request: 0,
                cp,
                fleet,
                content_id: module.content_id,
                token,
                nodes,
                clients,
                net: Net::default(),
                hasher: DefaultHasher::new(),
            })
        })
    }

    /// Schedules the nodes' starts, the clients' first calls and the faults.
    fn begin(&mut self) {
        for i in 0..self.nodes.len() {
            let at = self.rng.random_range(0..50 * MS);
            self.after(at, Event::Fault(Fault::Restart(i)));
        }
        for actor in 0..self.clients.len() {
            let at = SECOND + self.rng.random_range(0..100 * MS);
            self.after(
                at,
                Event::Client {
                    actor,
                    timer: client::Timer::Next,
                },
            );
        }
        if self.cfg.faults {
            self.after(2 * SECOND, Event::Fault(Fault::Next));
        }
    }

    /// Handles the next event, then checks that no two nodes can serve one actor.
    fn step(&mut self) {
        let Some(Reverse((at, id))) = self.queue.pop() else {
            return;
        };
        let event = self
            .events
            .remove(&id)
            .expect("every queued event is stored");
        self.sync_now();
        self.report.events += 1;
        (at, id).hash(&mut self.hasher);
        if self.cfg.trace {
            self.trace(&format!("{event:?}"));
        }
        self.handle(event);
        self.check_single_activation();
    }

    /// Simulated time is tokio's (paused) clock: a node's task acts, and signs, at the time it
    /// runs, not at the last event's.
    fn sync_now(&mut self) {
        self.now = micros(Instant::now().duration_since(self.origin));
    }

    /// After the run: every client must have made progress once the faults stopped.
    fn end(&mut self) {
        self.now = self.cfg.duration;
        for client in &self.clients {
            if let Some(problem) = client.stalled(self.cfg.faults_until + SECOND) {
                self.report.violations.push(problem);
            }
        }
    }

    fn finish(&mut self) -> Report {
        for n in &mut self.nodes {
            n.live = None;
        }
        let mut report = std::mem::take(&mut self.report);
        report.digest = self.hasher.finish();
        report
    }

    /// Schedules `event` `delay` from now.
    fn after(&mut self, delay: Micros, event: Event) {
        let id = self.next_event;
        self.next_event += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((self.now + delay, id)));
        self.wake.notify_one();
    }

    fn trace(&mut self, line: &str) {
        if self.cfg.trace {
            self.report
                .trace
                .push(format!("{:>10.3} ms  {line}", self.now as f64 / MS as f64));
        }
    }

    fn violation(&mut self, what: &str) {
        let line = format!("at {:.3} ms: {what}", self.now as f64 / MS as f64);
        self.trace(&format!("VIOLATION {line}"));
        if self.report.violations.len() < 100 {
            self.report.violations.push(line);
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, msg } => self.deliver(from, to, msg),
            Event::Client { actor, timer } => client::on_timer(self, actor, timer),
            Event::Fault(fault) => self.fault(fault),
        }
    }

    fn deliver(&mut self, from: Addr, to: Addr, msg: Msg) {
        if self.net.is_cut(from, to) {
            self.trace(&format!("lost on a cut link: {from:?} -> {to:?}"));
            return;
        }
        match to {
            Addr::ControlPlane => self.control_plane(from, msg),
            Addr::Node(i, incarnation) => {
                let n = &mut self.nodes[i];
                if !n.is(incarnation) {
                    return;
                }
                if n.paused {
                    n.deferred.push(Event::Deliver { from, to, msg });
                    return;
                }
                node::on_message(self, i, from, msg);
            }
            Addr::Client(actor) => client::on_message(self, actor, msg),
        }
    }

    /// Sends `msg`; false if it could not even be sent (the link is cut or the receiver is
    /// down: a refused connection). A sent message may still be lost or arrive late.
    fn send(&mut self, from: Addr, to: Addr, msg: Msg) -> bool {
        if self.net.is_cut(from, to) || !self.reachable(to) {
            return false;
        }
        let faulty = self.cfg.faults && self.now < self.cfg.faults_until;
        if faulty && self.rng.random_range(0..1000) < self.cfg.drop_permille {
            self.trace(&format!("dropped: {msg:?}"));
            return true;
        }
        let delay = self.net.delay(faulty, self.now, &mut self.rng);
        self.after(delay, Event::Deliver { from, to, msg });
        true
    }

    /// Sends `msg` from incarnation `incarnation` of node `i`: nothing if that incarnation
    /// crashed; held until it resumes if it is paused.
    fn send_from_node(&mut self, i: usize, incarnation: u32, to: Addr, msg: Msg) -> bool {
        self.sync_now();
        let n = &mut self.nodes[i];
        if !n.is(incarnation) {
            return false;
        }
        if n.paused {
            n.outbox.push((to, msg));
            return true;
        }
        let from = n.me(i);
        self.send(from, to, msg)
    }

    /// Signs `request` as node `i` and sends it to the control plane; the answer's receiver, or
    /// `None` if the connection was refused.
    fn ask_control_plane(
        &mut self,
        i: usize,
        incarnation: u32,
        request: CpRequest,
    ) -> Option<oneshot::Receiver<Result<CpAnswer, ApiError>>> {
        self.sync_now();
        self.next_request += 1;
        let req = self.next_request;
        let n = &self.nodes[i];
        let covered = net::cp_covered(&n.id, &request);
        let auth = identity::sign(
            &n.credentials,
            latchkey_caps::node::CONTROL_PLANE_AUDIENCE,
            &covered,
            n.wall_ms(self.now),
            &mut self.rng,
        );
        let msg = Msg::Cp { req, request, auth };
        if !self.send_from_node(i, incarnation, Addr::ControlPlane, msg) {
            return None;
        }
        let (answer, receiver) = oneshot::channel();
        self.nodes[i].waiting.insert(req, answer);
        Some(receiver)
    }

    /// Signs `call` as node `i` for node `owner` and sends it there; the answer's receiver, or
    /// `None` if the connection was refused.
    fn forward(
        &mut self,
        i: usize,
        incarnation: u32,
        owner: usize,
        call: ForwardedCall,
    ) -> Option<oneshot::Receiver<Result<Bytes, ApiError>>> {
        self.next_request += 1;
        let fwd = self.next_request;
        self.sync_now();
        let auth = identity::sign(
            &self.nodes[i].credentials,
            &latchkey_caps::node::node_audience(&self.nodes[owner].id),
            &net::forward_covered(&call),
            self.nodes[i].wall_ms(self.now),
            &mut self.rng,
        );
        let to = self.nodes[owner].me(owner);
        let msg = Msg::Forward { fwd, call, auth };
        if !self.send_from_node(i, incarnation, to, msg) {
            return None;
        }
        let (answer, receiver) = oneshot::channel();
        self.nodes[i].forwards.insert(fwd, answer);
        Some(receiver)
    }

    fn reachable(&self, to: Addr) -> bool {
        match to {
            Addr::ControlPlane => self.cp.registry.is_some(),
            Addr::Node(i, incarnation) => self.nodes[i].is(incarnation),
            Addr::Client(_) => true,
        }
    }

    /// The control plane answers a node's request with the real registry, its clock set to now.
    fn control_plane(&mut self, from: Addr, msg: Msg) {
        let Addr::Node(i, _) = from else { return };
        let Msg::Cp { req, request, auth } = msg else {
            return;
        };
        if self.cp.registry.is_none() {
            return;
        }
        self.cp.clock.set(START_VERSION + self.now);
        let node_id = self.nodes[i].id.clone();
        // Who sent it is what its signature proves, never what the address says.
        let covered = net::cp_covered(&node_id, &request);
        let checked = auth.check_at_control_plane(
            &covered,
            &self.cp.verifier,
            &self.fleet,
            &node_id,
            self.now,
        );
        let result = match (checked, req >= IMPOSTOR_REQ) {
            (Ok(()), true) => {
                self.violation(&format!("an impostor's request as {node_id} was accepted"));
                return;
            }
            (Ok(()), false) => {
                let registry = self.cp.registry.as_ref().expect("checked above");
                net::serve(registry, &node_id, request)
            }
            (Err(e), impostor) => {
                self.trace(&format!(
                    "control plane refused a request as {node_id}: {e}"
                ));
                let kind = if impostor {
                    "impostor refused by the control plane"
                } else {
                    "node request refused by the control plane"
                };
                *self.report.refusals.entry(kind).or_default() += 1;
                if impostor {
                    return;
                }
                Err(net::auth_refusal(&e))
            }
        };
        self.send(Addr::ControlPlane, from, Msg::CpReply { req, result });
    }

    /// After every event: no actor may be servable from memory on two nodes at once.
    fn check_single_activation(&mut self) {
        let now = self.now;
        for actor in 0..self.clients.len() {
            let serving: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| n.up && n.can_serve(actor))
                .map(|n| n.describe(actor, now))
                .collect();
            if serving.len() > 1 {
                self.violation(&format!(
                    "two nodes can serve actor {} at once: {}",
                    client::key(actor),
                    serving.join("; ")
                ));
            }
        }
    }

    fn fault(&mut self, fault: Fault) {
        match fault {
            Fault::Next => {
                self.inject();
                let gap = self.rng.random_range(300 * MS..2_000 * MS);
                if self.now + gap < self.cfg.faults_until {
                    self.after(gap, Event::Fault(Fault::Next));
                }
            }
            Fault::Restart(i) => {
                self.trace(&format!("start n{i}"));
                node::start(self, i);
            }
            Fault::Resume(i) => {
                self.trace(&format!("resume n{i}"));
                let n = &mut self.nodes[i];
                n.paused = false;
                let deferred = std::mem::take(&mut n.deferred);
                let outbox = std::mem::take(&mut n.outbox);
                let from = n.me(i);
                for event in deferred {
                    self.after(0, event);
                }
                for (to, msg) in outbox {
                    self.send(from, to, msg);
                }
            }
            Fault::Heal(a, b) => {
                self.trace(&format!("heal {a:?} <-> {b:?}"));
                self.net.heal(a, b);
            }
            Fault::StartControlPlane => {
                self.trace("control plane starts");
                self.cp.start(self.now);
            }
        }
    }

    /// Injects one fault, ending (healing, resuming, restarting) before the faults stop.
    fn inject(&mut self) {
        let room = self.cfg.faults_until.saturating_sub(self.now).max(MS);
        let lasting = |rng: &mut StdRng, lo: Micros, hi: Micros| {
            rng.random_range(lo.min(room - 1)..hi.min(room))
        };
        let i = self.rng.random_range(0..self.nodes.len());
        let kind = self.rng.random_range(0..7);
        let n = &self.nodes[i];
        let name = match kind {
            0 if n.up && !n.paused => {
                let down = lasting(&mut self.rng, 200 * MS, 4 * SECOND);
                node::crash(self, i);
                self.after(down, Event::Fault(Fault::Restart(i)));
                "crash a node"
            }
            1 if n.up && !n.paused => {
                let pause = lasting(&mut self.rng, 500 * MS, 5 * SECOND);
                self.nodes[i].paused = true;
                self.after(pause, Event::Fault(Fault::Resume(i)));
                "pause a node"
            }
            2 | 3 => {
                let cut = lasting(&mut self.rng, 300 * MS, 5 * SECOND);
                let other = if kind == 2 {
                    Addr::ControlPlane
                } else {
                    let j =
                        (i + 1 + self.rng.random_range(0..self.nodes.len() - 1)) % self.nodes.len();
                    Addr::Node(j, 0)
                };
                let a = Addr::Node(i, 0);
                self.net.cut(a, other);
                self.after(cut, Event::Fault(Fault::Heal(a, other)));
                if kind == 2 {
                    "cut a node's link to the control plane"
                } else {
                    "cut a link between two nodes"
                }
            }
            4 if self.cp.registry.is_some() => {
                let down = lasting(&mut self.rng, MS, 1_500 * MS);
                self.cp.registry = None;
                self.after(down, Event::Fault(Fault::StartControlPlane));
                "restart the control plane"
            }
            5 => {
                let slow = lasting(&mut self.rng, 500 * MS, 4 * SECOND);
                self.net.slow_until = self.now + slow;
                "slow network (long delays, reordering)"
            }
            6 => {
                // A process that is not node i (its certificate is self-made) registers as i,
                // which would start a new epoch and fence i's activations off.
                let impostor = identity::impostor(&self.nodes[i].id, self.now, &mut self.rng);
                let request = CpRequest::Register;
                let covered = net::cp_covered(&self.nodes[i].id, &request);
                let auth = identity::sign(
                    &impostor,
                    latchkey_caps::node::CONTROL_PLANE_AUDIENCE,
                    &covered,
                    identity::wall_ms(self.now),
                    &mut self.rng,
                );
                let req = IMPOSTOR_REQ + self.report.events;
                let from = Addr::Node(i, self.nodes[i].incarnation);
                self.send(from, Addr::ControlPlane, Msg::Cp { req, request, auth });
                "an impostor registers as a node"
            }
            _ => return,
        };
        self.trace(&format!("FAULT {name} (n{i})"));
        *self.report.faults.entry(name).or_default() += 1;
    }
}
