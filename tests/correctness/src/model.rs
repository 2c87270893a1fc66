//! A Stateright model of the activation protocol: the registry (node leases, epochs, activation
//! records, durable counters), edge nodes (leases, local activations, routing), heartbeats that
//! can be delayed or lost, placements, invocations, fenced commits, and node crashes.
//!
//! Every decision is the real code's: the registry's [`fencing`] functions, the node's
//! [`renew`] and [`LeaseState::valid_epoch`], and the router's [`placed`]. The model adds only
//! what the real code does through I/O: messages in flight (any order, heartbeats may be lost),
//! a global clock in whole seconds, and one sequential client per actor.
//!
//! Properties:
//! - `one serving node per actor`: never two live nodes hold an activation of the same actor that
//!   their lease lets them serve (from memory, without asking anyone) at the same time;
//! - `linearizable counters`: every value a client observes is consistent with one sequential
//!   counter (an `inc` answers the previous value plus one; a `get` the previous value), allowing
//!   for increments whose answer was lost with a crashed node (they may or may not have applied).
//!
//! [`Variant::NoEpochBump`] removes the epoch check the reference design lacked (a heartbeat
//! after a lapse keeps the node's epoch), and the checker finds the reference bug.

use latchkey_control_plane::fencing::{self, Candidate, NodeLease, Placement};
use latchkey_edge_node::lease::{LeaseState, renew};
use latchkey_edge_node::protocol::{Placed, placed};
use latchkey_wire::lease::{LeaseSettings, VERSIONS_PER_SECOND};
use stateright::{Model, Property};

/// Node ids, by index.
const NODE_IDS: [&str; 4] = ["n0", "n1", "n2", "n3"];
/// Actor keys, by index (actor type `counter`).
const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];

/// Lease settings: a 2 s lease; one heartbeat makes a node eligible.
pub const SETTINGS: LeaseSettings = LeaseSettings {
    ttl_versions: 2 * VERSIONS_PER_SECOND,
    heartbeat_interval_ms: 1_000,
    min_heartbeats: 1,
};

/// Which protocol to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Latchkey's protocol.
    Fixed,
    /// The reference design before its fix: a heartbeat arriving after the lease expired keeps
    /// the node's epoch.
    NoEpochBump,
}

/// The model's bounds.
#[derive(Clone, Debug)]
pub struct ActivationModel {
    /// Edge nodes (≤ 4).
    pub nodes: usize,
    /// Actors, each driven by its own client (≤ 4).
    pub actors: usize,
    /// Seconds the clock may advance.
    pub max_time: u8,
    /// Calls each client makes.
    pub max_calls: u8,
    /// Node crashes (each followed, at any later point, by a restart that registers anew).
    pub max_crashes: u8,
    /// The protocol.
    pub variant: Variant,
}

/// One whole state of the system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Seconds since the start.
    pub time: u8,
    /// The control plane's store.
    pub registry: Registry,
    /// The edge nodes.
    pub nodes: Vec<Node>,
    /// Messages in flight, sorted (a multiset: delivery order is free).
    pub net: Vec<Msg>,
    /// One client per actor.
    pub clients: Vec<Client>,
    /// Crashes so far.
    pub crashes: u8,
}

/// What the registry stores.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Registry {
    /// Lease record of each node (`None`: never registered).
    pub leases: Vec<Option<NodeLease>>,
    /// Activation record of each actor.
    pub records: Vec<Option<Record>>,
    /// Each actor's durable counter.
    pub values: Vec<u8>,
    /// The next generation (stands for the placement's versionstamp).
    pub next_generation: u8,
}

/// An activation record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    /// Node index.
    pub node: u8,
    /// The node's epoch at placement.
    pub epoch: u64,
    /// Generation.
    pub generation: u8,
}

/// An edge node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// Running (not crashed).
    pub up: bool,
    /// Its lease, as the node sees it.
    pub lease: LeaseState,
    /// Its local activations, per actor.
    pub activations: Vec<Option<Local>>,
}

/// A local activation: the placement it was made for and the in-memory counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Local {
    /// Epoch it was placed in.
    pub epoch: u64,
    /// Generation.
    pub generation: u8,
    /// The in-memory value.
    pub value: u8,
    /// A commit is in flight (the mailbox holds further calls back).
    pub busy: bool,
}

/// A client call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Add one; answers the new value.
    Inc,
    /// Answers the value.
    Get,
}

/// A message in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    /// Node → control plane, sent at second `sent`.
    Heartbeat {
        /// Node.
        node: u8,
        /// When it was sent.
        sent: u8,
    },
    /// Control plane → node.
    HeartbeatAnswer {
        /// Node.
        node: u8,
        /// When the heartbeat was sent.
        sent: u8,
        /// The epoch granted.
        epoch: u64,
    },
    /// Client (or a forwarding node) → node.
    Call {
        /// Node.
        node: u8,
        /// Actor.
        actor: u8,
        /// The operation.
        op: Op,
        /// Forwarded by another node.
        forwarded: bool,
    },
    /// Node → control plane: a fenced commit of the counter's new value.
    Commit {
        /// Node.
        node: u8,
        /// Actor.
        actor: u8,
        /// Fence: epoch.
        epoch: u64,
        /// Fence: generation.
        generation: u8,
        /// The new value.
        value: u8,
    },
    /// Control plane → node.
    CommitAnswer {
        /// Node.
        node: u8,
        /// Actor.
        actor: u8,
        /// The commit's generation.
        generation: u8,
        /// The value committed.
        value: u8,
        /// Accepted.
        ok: bool,
    },
}

/// A node answers a client: the client observes it at once (delaying an answer only delays the
/// client's next call, which the other interleavings cover).
fn answer(state: &mut State, actor: u8, value: Option<u8>) {
    let client = &mut state.clients[usize::from(actor)];
    let op = client.pending.take().expect("an answer to a pending call");
    client.calls += 1;
    if let Some(v) = value {
        client.observe(op, v);
    }
}

impl Msg {
    fn is_heartbeat(&self) -> bool {
        matches!(self, Msg::Heartbeat { .. } | Msg::HeartbeatAnswer { .. })
    }

    /// The actor a call-related message concerns.
    fn actor(&self) -> Option<u8> {
        match *self {
            Msg::Call { actor, .. }
            | Msg::Commit { actor, .. }
            | Msg::CommitAnswer { actor, .. } => Some(actor),
            Msg::Heartbeat { .. } | Msg::HeartbeatAnswer { .. } => None,
        }
    }
}

/// A sequential client and what it has observed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// The call in progress.
    pub pending: Option<Op>,
    /// Calls finished (answered or given up).
    pub calls: u8,
    /// The counter's value as last observed.
    pub observed: u8,
    /// Increments given up on (their answer was lost): each may still apply.
    pub unknown: u8,
    /// An observation contradicted a sequential counter.
    pub violated: bool,
}

/// A step of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// One second passes.
    Tick,
    /// A node sends a heartbeat.
    SendHeartbeat(u8),
    /// A message arrives.
    Deliver(Msg),
    /// A heartbeat or its answer is lost.
    Lose(Msg),
    /// A client calls an actor through a node.
    Invoke {
        /// Actor.
        actor: u8,
        /// Node.
        node: u8,
        /// The operation.
        op: Op,
    },
    /// A client gives up on a call that can no longer be answered (its node crashed).
    GiveUp(u8),
    /// A node crashes: its memory is gone.
    Crash(u8),
    /// A crashed node starts again and registers (a new epoch).
    Restart(u8),
}

fn versions(time: u8) -> u64 {
    u64::from(time) * VERSIONS_PER_SECOND
}

/// Node-local clock in microseconds (all clocks run at the same rate in the model).
fn micros(time: u8) -> u64 {
    u64::from(time) * 1_000_000
}

fn generation_bytes(generation: u8) -> [u8; 10] {
    let mut bytes = [0; 10];
    bytes[9] = generation;
    bytes
}

impl ActivationModel {
    /// The bounds CI checks exhaustively (a few seconds to a minute each): 2 nodes; one actor
    /// with 3 calls over 4 s, one actor with 2 calls over 3 s and a crash, or two actors with a
    /// call each over 4 s.
    pub fn small(actors: usize, crashes: u8, variant: Variant) -> Self {
        let (max_time, max_calls) = match (actors, crashes) {
            (1, 0) => (4, 3),
            (1, _) => (3, 2),
            _ => (4, 1),
        };
        ActivationModel {
            nodes: 2,
            actors,
            max_time,
            max_calls,
            max_crashes: crashes,
            variant,
        }
    }

    fn heartbeat(&self, previous: &NodeLease, now: u64) -> fencing::HeartbeatOutcome {
        let outcome = fencing::heartbeat(previous, now, &SETTINGS);
        match self.variant {
            Variant::Fixed => outcome,
            Variant::NoEpochBump => fencing::HeartbeatOutcome {
                epoch: previous.epoch,
                ..outcome
            },
        }
    }

    fn node_index(id: &str) -> u8 {
        NODE_IDS
            .iter()
            .position(|n| *n == id)
            .expect("a model node") as u8
    }

    /// `ensure_activation` at the control plane: the live record, or a new placement.
    fn ensure(
        &self,
        registry: &mut Registry,
        requester: u8,
        actor: u8,
        now: u64,
    ) -> Option<Record> {
        let a = usize::from(actor);
        if let Some(record) = registry.records[a] {
            let owner = registry.leases[usize::from(record.node)];
            let id = NODE_IDS[usize::from(record.node)];
            if fencing::activation_live(id, record.epoch, owner.as_ref(), now, &SETTINGS).is_ok() {
                return Some(record);
            }
        }
        let candidates: Vec<Candidate<'_>> = registry
            .leases
            .iter()
            .enumerate()
            .filter_map(|(n, lease)| {
                lease.map(|lease| Candidate {
                    id: NODE_IDS[n],
                    region: "r",
                    lease,
                    weight: 1,
                })
            })
            .collect();
        let chosen = fencing::choose_node(
            NODE_IDS[usize::from(requester)],
            "counter",
            KEYS[a],
            None,
            &candidates,
            now,
            &SETTINGS,
        )?;
        let record = Record {
            node: Self::node_index(chosen.id),
            epoch: chosen.lease.epoch,
            generation: registry.next_generation,
        };
        registry.next_generation += 1;
        registry.records[a] = Some(record);
        Some(record)
    }

    /// A node runs a call on its local activation (already checked against its lease).
    fn serve(state: &mut State, node: u8, actor: u8, op: Op) {
        let local = state.nodes[usize::from(node)].activations[usize::from(actor)]
            .as_mut()
            .expect("serving a local activation");
        match op {
            Op::Get => {
                let value = Some(local.value);
                answer(state, actor, value);
            }
            Op::Inc => {
                local.busy = true;
                state.net.push(Msg::Commit {
                    node,
                    actor,
                    epoch: local.epoch,
                    generation: local.generation,
                    value: local.value + 1,
                });
            }
        }
    }

    fn deliver(&self, state: &mut State, msg: Msg) {
        let now = versions(state.time);
        let local_now = micros(state.time);
        match msg {
            Msg::Heartbeat { node, sent } => {
                let n = usize::from(node);
                let Some(previous) = state.registry.leases[n] else {
                    return;
                };
                let outcome = self.heartbeat(&previous, now);
                state.registry.leases[n] = Some(NodeLease {
                    epoch: outcome.epoch,
                    last_heartbeat: now,
                    // Only compared with `min_heartbeats`: capped, so the state space is finite.
                    streak: outcome.streak.min(SETTINGS.min_heartbeats),
                });
                state.net.push(Msg::HeartbeatAnswer {
                    node,
                    sent,
                    epoch: outcome.epoch,
                });
            }
            Msg::HeartbeatAnswer { node, sent, epoch } => {
                let n = &mut state.nodes[usize::from(node)];
                if !n.up {
                    return;
                }
                let renewal = renew(n.lease, micros(sent), epoch, SETTINGS.ttl_versions);
                if renewal.epoch_changed {
                    n.activations.iter_mut().for_each(|a| *a = None);
                }
                n.lease = renewal.state;
            }
            Msg::Call {
                node,
                actor,
                op,
                forwarded,
            } => {
                let (ni, ai) = (usize::from(node), usize::from(actor));
                if !state.nodes[ni].up {
                    return; // lost with the node
                }
                let Some(epoch) = state.nodes[ni].lease.valid_epoch(local_now) else {
                    answer(state, actor, None);
                    return;
                };
                match state.nodes[ni].activations[ai] {
                    Some(local) if local.epoch == epoch => {
                        return Self::serve(state, node, actor, op);
                    }
                    // The table drops an activation of another epoch.
                    Some(_) => state.nodes[ni].activations[ai] = None,
                    None => {}
                }
                let Some(record) = self.ensure(&mut state.registry, node, actor, now) else {
                    answer(state, actor, None);
                    return;
                };
                let owner = NODE_IDS[usize::from(record.node)];
                match placed(NODE_IDS[ni], epoch, owner, record.epoch, forwarded) {
                    Placed::Here => {
                        // Activation reads the stored value (a fenced read; atomic here).
                        state.nodes[ni].activations[ai] = Some(Local {
                            epoch: record.epoch,
                            generation: record.generation,
                            value: state.registry.values[ai],
                            busy: false,
                        });
                        Self::serve(state, node, actor, op);
                    }
                    Placed::WrongEpoch | Placed::Misdirected => {
                        answer(state, actor, None);
                    }
                    Placed::Elsewhere => state.net.push(Msg::Call {
                        node: record.node,
                        actor,
                        op,
                        forwarded: true,
                    }),
                }
            }
            Msg::Commit {
                node,
                actor,
                epoch,
                generation,
                value,
            } => {
                let a = usize::from(actor);
                let record = state.registry.records[a].map(|r| (NODE_IDS[usize::from(r.node)], r));
                let placement = record.map(|(id, r)| Placement {
                    node_id: id,
                    node_epoch: r.epoch,
                    generation: generation_bytes(r.generation),
                });
                let lease = state.registry.leases[usize::from(node)];
                let ok = fencing::check_fence(
                    placement.as_ref(),
                    NODE_IDS[usize::from(node)],
                    epoch,
                    &generation_bytes(generation),
                    lease.as_ref(),
                    now,
                    &SETTINGS,
                )
                .is_ok();
                if ok {
                    state.registry.values[a] = value;
                }
                state.net.push(Msg::CommitAnswer {
                    node,
                    actor,
                    generation,
                    value,
                    ok,
                });
            }
            Msg::CommitAnswer {
                node,
                actor,
                generation,
                value,
                ok,
            } => {
                let n = &mut state.nodes[usize::from(node)];
                if !n.up {
                    return;
                }
                let slot = &mut n.activations[usize::from(actor)];
                match slot {
                    Some(local) if ok && local.generation == generation => {
                        local.value = value;
                        local.busy = false;
                    }
                    // Fenced: the activation leaves the table; nothing was applied.
                    _ => *slot = None,
                }
                answer(state, actor, ok.then_some(value));
            }
        }
    }
}

impl Client {
    /// Checks an answer against a sequential counter whose value was last seen as `observed`,
    /// with `unknown` increments that may have applied since.
    fn observe(&mut self, op: Op, value: u8) {
        let lowest = self.observed + u8::from(op == Op::Inc);
        if value < lowest || value > lowest + self.unknown {
            self.violated = true;
            return;
        }
        self.unknown -= value - lowest;
        self.observed = value;
    }
}

impl Model for ActivationModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        // Every node registered at time 0 (epoch 1) and heartbeated once.
        let lease = NodeLease {
            epoch: 1,
            last_heartbeat: 0,
            streak: SETTINGS.min_heartbeats,
        };
        let node_lease = renew(LeaseState::default(), 0, 1, SETTINGS.ttl_versions).state;
        vec![State {
            time: 0,
            registry: Registry {
                leases: vec![Some(lease); self.nodes],
                records: vec![None; self.actors],
                values: vec![0; self.actors],
                next_generation: 1,
            },
            nodes: vec![
                Node {
                    up: true,
                    lease: node_lease,
                    activations: vec![None; self.actors],
                };
                self.nodes
            ],
            net: Vec::new(),
            clients: vec![
                Client {
                    pending: None,
                    calls: 0,
                    observed: 0,
                    unknown: 0,
                    violated: false,
                };
                self.actors
            ],
            crashes: 0,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.time < self.max_time {
            actions.push(Action::Tick);
        }
        for (n, node) in state.nodes.iter().enumerate() {
            let n = n as u8;
            let in_flight = state.net.iter().any(|m| {
                matches!(*m, Msg::Heartbeat { node, .. } | Msg::HeartbeatAnswer { node, .. } if node == n)
            });
            if node.up && !in_flight {
                actions.push(Action::SendHeartbeat(n));
            }
            if node.up && state.crashes < self.max_crashes {
                actions.push(Action::Crash(n));
            }
            if !node.up {
                actions.push(Action::Restart(n));
            }
        }
        let mut last = None;
        for &msg in &state.net {
            if last == Some(msg) {
                continue; // identical copies lead to identical states
            }
            last = Some(msg);
            let held = match msg {
                // A node's mailbox holds calls back while the actor's commit is in flight.
                Msg::Call { node, actor, .. } => state.nodes[usize::from(node)].activations
                    [usize::from(actor)]
                .is_some_and(|l| l.busy),
                _ => false,
            };
            if !held {
                actions.push(Action::Deliver(msg));
            }
            if msg.is_heartbeat() {
                actions.push(Action::Lose(msg));
            }
        }
        for (a, client) in state.clients.iter().enumerate() {
            let a = a as u8;
            match client.pending {
                None if client.calls < self.max_calls => {
                    for node in 0..self.nodes as u8 {
                        for op in [Op::Inc, Op::Get] {
                            actions.push(Action::Invoke { actor: a, node, op });
                        }
                    }
                }
                Some(_) if !state.net.iter().any(|m| m.actor() == Some(a)) => {
                    actions.push(Action::GiveUp(a));
                }
                _ => {}
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Tick => state.time += 1,
            Action::SendHeartbeat(node) => state.net.push(Msg::Heartbeat {
                node,
                sent: state.time,
            }),
            Action::Deliver(msg) | Action::Lose(msg) => {
                let at = state.net.iter().position(|m| *m == msg)?;
                state.net.remove(at);
                if let Action::Deliver(msg) = action {
                    self.deliver(&mut state, msg);
                }
            }
            Action::Invoke { actor, node, op } => {
                state.clients[usize::from(actor)].pending = Some(op);
                state.net.push(Msg::Call {
                    node,
                    actor,
                    op,
                    forwarded: false,
                });
            }
            Action::GiveUp(actor) => {
                let client = &mut state.clients[usize::from(actor)];
                if client.pending.take() == Some(Op::Inc) {
                    client.unknown += 1;
                }
                client.calls += 1;
            }
            Action::Crash(node) => {
                state.crashes += 1;
                let n = &mut state.nodes[usize::from(node)];
                n.up = false;
                n.lease = LeaseState::default();
                n.activations.iter_mut().for_each(|a| *a = None);
            }
            Action::Restart(node) => {
                let n = usize::from(node);
                // Refused (no step) while the crashed process's lease is still live.
                let (epoch, streak) = fencing::register(
                    state.registry.leases[n].as_ref(),
                    versions(state.time),
                    &SETTINGS,
                )
                .ok()?;
                state.registry.leases[n] = Some(NodeLease {
                    epoch,
                    last_heartbeat: versions(state.time),
                    streak,
                });
                let lease = renew(
                    LeaseState::default(),
                    micros(state.time),
                    epoch,
                    SETTINGS.ttl_versions,
                );
                state.nodes[n].up = true;
                state.nodes[n].lease = lease.state;
            }
        }
        state.net.sort_unstable();
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties = vec![
            Property::always("one serving node per actor", |_, s: &State| {
                (0..s.clients.len()).all(|a| serving_nodes(s, a) <= 1)
            }),
            Property::always("linearizable counters", |_, s: &State| {
                s.clients.iter().all(|c| !c.violated)
            }),
        ];
        // Not vacuous: the interesting things happen within the bounds.
        if self.max_calls >= 2 {
            properties.push(Property::sometimes(
                "an actor moves and keeps its count",
                |m: &Self, s: &State| {
                    let moved = usize::from(s.registry.next_generation) > m.actors + 1;
                    moved && s.clients.iter().any(|c| c.observed >= 2)
                },
            ));
        }
        if self.actors >= 2 {
            properties.push(Property::sometimes(
                "two actors answer from two nodes",
                |_, s: &State| {
                    let (a, b) = (s.registry.records[0], s.registry.records[1]);
                    let apart = a.zip(b).is_some_and(|(a, b)| a.node != b.node);
                    apart && s.clients.iter().all(|c| c.observed >= 1)
                },
            ));
        }
        properties
    }
}

/// Nodes that could answer a call of actor `a` from memory right now.
pub fn serving_nodes(state: &State, actor: usize) -> usize {
    let now = micros(state.time);
    state
        .nodes
        .iter()
        .filter(|n| {
            n.up && n.activations[actor].is_some_and(|l| n.lease.valid_epoch(now) == Some(l.epoch))
        })
        .count()
}
