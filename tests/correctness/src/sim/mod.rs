//! A deterministic simulation of the activation protocol over the real code: the control plane's
//! real [`Registry`] (over the memory store with a manual clock), and edge nodes whose every
//! decision is the node's: [`renew`](latchkey_edge_node::lease::renew) and
//! [`valid_epoch`](latchkey_edge_node::lease::LeaseState::valid_epoch) for the lease,
//! the router's state machine [`Route`](latchkey_edge_node::route::Route) (attempts, forwards,
//! placements, and the errors a call ends with), the output gate's
//! [`Commit`](latchkey_edge_node::protocol::Commit) (resends, back-off, fences), and the nodes'
//! signature checks. [`Flaws`] plants a mistake in that code to show the checks catch it. Around them
//! the simulation supplies what the real node does with tokio and hyper: a clock per node (offset
//! and drift), a network that delays, drops, reorders and partitions messages, node crashes and
//! restarts, pauses (SIGSTOP), and control-plane restarts — every choice drawn from one seeded
//! generator, so a seed replays exactly.
//!
//! Checked after every event: at most one node is able to serve each actor (holds an activation
//! in the epoch its lease is valid for, by its own clock). Checked on every answer: each client's
//! counter is linearizable (see [`client`]). Checked at the end: every client made progress once
//! the faults stopped.

mod activation;
mod client;
mod identity;
mod net;
mod node;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use latchkey_control_plane::Registry;
use latchkey_control_plane::registry::Limits;
use latchkey_control_plane::registry::deployments::DeployOp;
use latchkey_store::{ManualClock, MemoryStore};
use latchkey_wire::lease::{LeaseSettings, VERSIONS_PER_SECOND};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

use client::Client;
use net::{Addr, Msg, Net};
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
    /// A deliberately wrong router or output gate in every node, to show the checks catch it.
    pub flaws: Flaws,
}

/// Deliberate mistakes in the node's real decision code ([`Route`](latchkey_edge_node::route)
/// and [`Commit`](latchkey_edge_node::protocol::Commit)), off by default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flaws {
    /// The router's.
    pub route: latchkey_edge_node::route::Flaw,
    /// The output gate's.
    pub commit: latchkey_edge_node::protocol::CommitFlaw,
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
    /// A node's own timer (ignored if the node restarted since it was set).
    Node {
        node: usize,
        incarnation: u32,
        timer: node::Timer,
    },
    /// A client's timer.
    Client { actor: usize, timer: client::Timer },
    /// The fault schedule's next step.
    Fault(Fault),
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Inject the next fault.
    Next,
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

/// The whole simulated system.
pub(crate) struct World {
    cfg: Config,
    now: Micros,
    rng: StdRng,
    queue: BinaryHeap<Reverse<(Micros, u64)>>,
    events: BTreeMap<u64, Event>,
    next_event: u64,
    cp: ControlPlane,
    fleet: identity::Fleet,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    net: Net,
    report: Report,
    hasher: DefaultHasher,
}

/// Runs one seed.
pub fn run(seed: u64, cfg: &Config) -> Report {
    let mut world = World::new(seed, cfg.clone());
    world.run();
    world.finish()
}

impl World {
    fn new(seed: u64, cfg: Config) -> World {
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
            .change_deployment(ACTOR_TYPE, &DeployOp::Deploy(module.content_id), None)
            .expect("deploying the counter");
        let nodes = (0..cfg.nodes)
            .map(|i| {
                let drift =
                    rng.random_range(0..=2 * cfg.max_drift_ppm) as i64 - cfg.max_drift_ppm as i64;
                let offset = rng.random_range(0..1_000 * SECOND);
                let id = node::node_id(i);
                let identity = node::Identity {
                    credentials: fleet.enrol(&id, 0, &mut rng),
                    auth: Arc::new(fleet.node_auth(&id, 0)),
                    // NTP keeps wall clocks within a second or two; the monotonic clocks above
                    // drift far more.
                    wall_skew_ms: rng.random_range(-2_000..=2_000),
                };
                Node::new(i, offset, drift, identity)
            })
            .collect();
        let clients = (0..cfg.actors).map(Client::new).collect();
        World {
            report: Report {
                seed,
                ..Report::default()
            },
            cfg,
            now: 0,
            rng,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            next_event: 0,
            cp,
            fleet,
            nodes,
            clients,
            net: Net::default(),
            hasher: DefaultHasher::new(),
        }
    }

    fn run(&mut self) {
        for i in 0..self.nodes.len() {
            let at = self.rng.random_range(0..50 * MS);
            self.after(
                at,
                Event::Node {
                    node: i,
                    incarnation: 0,
                    timer: node::Timer::Heartbeat,
                },
            );
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
        while let Some(Reverse((at, id))) = self.queue.pop() {
            if at > self.cfg.duration {
                break;
            }
            let event = self
                .events
                .remove(&id)
                .expect("every queued event is stored");
            self.now = at;
            self.report.events += 1;
            (at, id).hash(&mut self.hasher);
            if self.cfg.trace {
                self.trace(&format!("{event:?}"));
            }
            self.handle(event);
            self.check_single_activation();
        }
        self.now = self.cfg.duration;
        for client in &self.clients {
            if let Some(problem) = client.stalled(self.cfg.faults_until + SECOND) {
                self.report.violations.push(problem);
            }
        }
    }

    fn finish(mut self) -> Report {
        self.report.digest = self.hasher.finish();
        self.report
    }

    /// Schedules `event` `delay` from now.
    fn after(&mut self, delay: Micros, event: Event) {
        let id = self.next_event;
        self.next_event += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((self.now + delay, id)));
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
            Event::Node {
                node,
                incarnation,
                timer,
            } => {
                let n = &mut self.nodes[node];
                if !n.up || n.incarnation != incarnation {
                    return;
                }
                if n.paused {
                    n.deferred.push(Event::Node {
                        node,
                        incarnation,
                        timer,
                    });
                    return;
                }
                node::on_timer(self, node, timer);
            }
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
                if !n.up || n.incarnation != incarnation {
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

    fn reachable(&self, to: Addr) -> bool {
        match to {
            Addr::ControlPlane => self.cp.registry.is_some(),
            Addr::Node(i, incarnation) => {
                let n = &self.nodes[i];
                n.up && n.incarnation == incarnation
            }
            Addr::Client(_) => true,
        }
    }

    /// The control plane answers a node's request with the real registry, its clock set to now.
    fn control_plane(&mut self, from: Addr, msg: Msg) {
        let Addr::Node(i, _) = from else { return };
        if self.cp.registry.is_none() {
            return;
        }
        self.cp.clock.set(START_VERSION + self.now);
        let node_id = self.nodes[i].id.clone();
        // Who sent it is what its signature proves, never what the address says.
        if let Msg::Cp { req, request, auth } = &msg {
            let covered = net::cp_covered(&node_id, request);
            let checked = auth.check_at_control_plane(
                &covered,
                &self.cp.verifier,
                &self.fleet,
                &node_id,
                self.now,
            );
            match (checked, *req >= IMPOSTOR_REQ) {
                (Ok(()), true) => {
                    self.violation(&format!("an impostor's request as {node_id} was accepted"));
                    return;
                }
                (Ok(()), false) => {}
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
                    if !impostor {
                        let reply = Msg::CpReply {
                            req: *req,
                            result: Err(net::auth_refusal(&e)),
                        };
                        self.send(Addr::ControlPlane, from, reply);
                    }
                    return;
                }
            }
        }
        let registry = self.cp.registry.as_ref().expect("checked above");
        if let Some(reply) = net::serve(registry, &node_id, msg) {
            self.send(Addr::ControlPlane, from, reply);
        }
    }

    /// After every event: no actor may be servable from memory on two nodes at once.
    fn check_single_activation(&mut self) {
        let now = self.now;
        for actor in 0..self.clients.len() {
            let serving: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| n.can_serve(actor, now))
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
                self.trace(&format!("restart n{i}"));
                node::restart(self, i);
            }
            Fault::Resume(i) => {
                self.trace(&format!("resume n{i}"));
                let n = &mut self.nodes[i];
                n.paused = false;
                let deferred = std::mem::take(&mut n.deferred);
                for event in deferred {
                    self.after(0, event);
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
                let request = net::CpRequest::Register;
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
