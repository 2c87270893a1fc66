//! A simulated edge node. Its shape follows the real node (`edge-node/src/node.rs` heartbeats,
//! `router.rs` routing, `activation.rs` and `instance.rs` execution and output gating); its
//! decisions are the real node's functions: [`renew`] and [`LeaseState::valid_epoch`] for the
//! lease, [`Route`] for routing, [`Commit`] for output gating. What the real node does with
//! tokio (timers, sockets, tasks) is events here.
//!
//! An activation keeps running the calls queued on it after it leaves the node's table (as the
//! real activation task drains its mailbox); each call checks the lease before it runs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::identity::NodeAuth;
use latchkey_caps::node::{CONTROL_PLANE_AUDIENCE, node_audience};
use latchkey_wire::identity::NodeCredentials;

use latchkey_edge_node::CallError;
use latchkey_edge_node::lease::{LeaseState, renew};
use latchkey_edge_node::protocol::Commit;
use latchkey_edge_node::route::{Forwarded, Placement, Route};
use latchkey_wire::ErrorCode;
use latchkey_wire::node::{Activation, CommitRequest};

use super::client::key;
use super::identity;
use super::net::{
    Addr, CpAnswer, CpError, CpRequest, Failure, Msg, Op, cp_covered, forward_covered,
};
use super::{ACTOR_TYPE, Event, MS, Micros, SECOND, SETTINGS, World};

/// A call's deadline at the node that took it.
const CALL_TIMEOUT: Micros = 4 * SECOND;
/// How long a node waits for the control plane's answer (heartbeats wait longer).
pub(super) const CP_TIMEOUT: Micros = SECOND;

/// A node's timers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timer {
    /// Register or heartbeat (every heartbeat interval).
    Heartbeat,
    /// The control plane did not answer request `req` in time.
    CpTimeout(u64),
    /// Call `cid` reached its deadline here.
    CallDeadline(u64),
    /// The call running on activation `act` finishes computing: its answer is released.
    Finish(u64),
    /// Resend the commit of the call running on activation `act`.
    Resend(u64),
}

/// Who is waiting for a call's answer.
#[derive(Clone, Copy, Debug)]
enum Origin {
    Client {
        actor: usize,
        call: u64,
    },
    Forward {
        node: usize,
        incarnation: u32,
        fwd: u64,
    },
}

/// A call this node took and has not answered yet.
pub(super) struct OpenCall {
    origin: Origin,
    /// The call was handed on (forwarded, or queued on an activation): from then on, if no
    /// answer comes, its outcome is unknown.
    handed: bool,
}

/// A call being routed: the real router's decisions ([`Route`]) and what the call is.
#[derive(Debug)]
pub(super) struct Routing {
    cid: u64,
    actor: usize,
    op: Op,
    route: Route,
}

/// A request awaiting an answer.
pub(super) enum Pending {
    Register { sent_at: u64 },
    Heartbeat { sent_at: u64 },
    Ensure(Routing),
    Forward(Routing),
    Read { act: u64 },
    Commit { act: u64 },
}

/// A call queued on an activation.
pub(super) struct Job {
    pub(super) cid: u64,
    pub(super) op: Op,
    /// Local time.
    pub(super) deadline: u64,
}

pub(super) enum Stage {
    Reading,
    Computing {
        answer: u64,
    },
    Committing {
        request: CommitRequest,
        value: u64,
        /// The real output gate's resend loop.
        attempts: Commit,
    },
}

/// An activation: the placement, the instance's memory (the counter's value, if read), and
/// its mailbox.
pub(super) struct Act {
    pub(super) actor: usize,
    pub(super) placement: Activation,
    pub(super) value: Option<u64>,
    pub(super) queue: VecDeque<Job>,
    pub(super) running: Option<(Job, Stage)>,
    /// Still in the node's table.
    pub(super) listed: bool,
}

/// A node's identity: its key and certificate (kept across crashes, like its key file), the
/// real node's token and signature checks (whose memory does not survive a crash), and how far
/// its wall clock is off.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) credentials: Arc<NodeCredentials>,
    pub(crate) auth: Arc<NodeAuth>,
    pub(crate) wall_skew_ms: i64,
}

/// The id of node `index`.
pub(crate) fn node_id(index: usize) -> String {
    format!("n{index}")
}

pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) identity: Identity,
    pub(crate) up: bool,
    pub(crate) paused: bool,
    pub(crate) incarnation: u32,
    /// Events that arrived while paused, handled on resume.
    pub(crate) deferred: Vec<Event>,
    pub(super) clock_offset: u64,
    pub(super) drift_ppm: i64,
    pub(super) registered: bool,
    pub(super) lease: LeaseState,
    pub(super) heartbeat_out: bool,
    /// Actor → activation id (the node's table).
    pub(super) table: BTreeMap<usize, u64>,
    pub(super) acts: BTreeMap<u64, Act>,
    /// Actor → node it was last seen on.
    pub(super) locations: BTreeMap<usize, usize>,
    pub(super) pending: BTreeMap<u64, Pending>,
    pub(super) calls: BTreeMap<u64, OpenCall>,
    pub(super) next_id: u64,
    /// The node's commit counter (`Hosting::next_commit_seq` in the edge node).
    pub(super) commit_seq: u64,
}

impl Node {
    pub(crate) fn new(index: usize, clock_offset: u64, drift_ppm: i64, identity: Identity) -> Node {
        Node {
            id: node_id(index),
            identity,
            up: true,
            paused: false,
            incarnation: 0,
            deferred: Vec::new(),
            clock_offset,
            drift_ppm,
            registered: false,
            lease: LeaseState::default(),
            heartbeat_out: false,
            table: BTreeMap::new(),
            acts: BTreeMap::new(),
            locations: BTreeMap::new(),
            pending: BTreeMap::new(),
            calls: BTreeMap::new(),
            next_id: 1,
            commit_seq: 0,
        }
    }

    /// The node's monotonic clock at simulated time `now` (its own offset and drift).
    pub(super) fn local(&self, now: Micros) -> u64 {
        let drift = now as i128 * self.drift_ppm as i128 / 1_000_000;
        (self.clock_offset as i128 + now as i128 + drift) as u64
    }

    /// The node's wall clock at simulated time `now`, in Unix milliseconds (what it stamps its
    /// signatures with).
    pub(super) fn wall_ms(&self, now: Micros) -> u64 {
        identity::wall_ms(now).saturating_add_signed(self.identity.wall_skew_ms)
    }

    pub(super) fn valid_epoch(&self, now: Micros) -> Option<u64> {
        self.lease.valid_epoch(self.local(now))
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Whether the node could answer `actor` from memory right now: it holds an activation
    /// with the value in memory, placed in the epoch its lease is valid for.
    pub(crate) fn can_serve(&self, actor: usize, now: Micros) -> bool {
        let Some(epoch) = self.up.then(|| self.valid_epoch(now)).flatten() else {
            return false;
        };
        self.acts
            .values()
            .any(|a| a.actor == actor && a.value.is_some() && a.placement.node_epoch == epoch)
    }

    pub(crate) fn describe(&self, actor: usize, now: Micros) -> String {
        let acts: Vec<String> = self
            .acts
            .values()
            .filter(|a| a.actor == actor)
            .map(|a| {
                format!(
                    "epoch {} generation {:?} value {:?}",
                    a.placement.node_epoch, a.placement.generation, a.value
                )
            })
            .collect();
        format!(
            "{} (lease epoch {} until local {}, local now {}{}; {})",
            self.id,
            self.lease.epoch,
            self.lease.deadline,
            self.local(now),
            if self.paused { ", paused" } else { "" },
            acts.join(", ")
        )
    }

    /// Drops every activation from the table (a new epoch, or a lease that lapsed).
    fn clear_table(&mut self) {
        for (_, act) in std::mem::take(&mut self.table) {
            if let Some(a) = self.acts.get_mut(&act) {
                a.listed = false;
            }
        }
        self.acts
            .retain(|_, a| a.listed || a.running.is_some() || !a.queue.is_empty());
    }

    fn me(&self, index: usize) -> Addr {
        Addr::Node(index, self.incarnation)
    }
}

pub(super) fn set_timer(w: &mut World, i: usize, delay: Micros, timer: Timer) {
    let incarnation = w.nodes[i].incarnation;
    w.after(
        delay,
        Event::Node {
            node: i,
            incarnation,
            timer,
        },
    );
}

/// Sends a request to the control plane; false if the connection was refused.
pub(super) fn to_cp(
    w: &mut World,
    i: usize,
    pending: Pending,
    request: CpRequest,
    timeout: Micros,
) -> bool {
    let req = w.nodes[i].id();
    let me = w.nodes[i].me(i);
    let covered = cp_covered(&w.nodes[i].id, &request);
    let auth = identity::sign(
        &w.nodes[i].identity.credentials,
        CONTROL_PLANE_AUDIENCE,
        &covered,
        w.nodes[i].wall_ms(w.now),
        &mut w.rng,
    );
    if !w.send(me, Addr::ControlPlane, Msg::Cp { req, request, auth }) {
        return false;
    }
    w.nodes[i].pending.insert(req, pending);
    set_timer(w, i, timeout, Timer::CpTimeout(req));
    true
}

pub(crate) fn crash(w: &mut World, i: usize) {
    w.trace(&format!("crash n{i}"));
    let mut identity = w.nodes[i].identity.clone();
    identity.auth = Arc::new(w.fleet.node_auth(&w.nodes[i].id, w.now));
    let n = &mut w.nodes[i];
    let (offset, drift, incarnation) = (n.clock_offset, n.drift_ppm, n.incarnation);
    *n = Node::new(i, offset, drift, identity);
    n.up = false;
    n.incarnation = incarnation + 1;
}

pub(crate) fn restart(w: &mut World, i: usize) {
    w.nodes[i].up = true;
    set_timer(w, i, 0, Timer::Heartbeat);
}

pub(crate) fn on_timer(w: &mut World, i: usize, timer: Timer) {
    match timer {
        Timer::Heartbeat => heartbeat(w, i),
        Timer::CpTimeout(req) => {
            if let Some(pending) = w.nodes[i].pending.remove(&req) {
                cp_failed(
                    w,
                    i,
                    pending,
                    CpError {
                        code: ErrorCode::Unavailable,
                        retryable: true,
                        message: "no answer from the control plane in time".into(),
                    },
                    true,
                );
            }
        }
        Timer::CallDeadline(cid) => {
            let Some(call) = w.nodes[i].calls.get(&cid) else {
                return;
            };
            let failure = if call.handed {
                Failure::new(
                    ErrorCode::OutcomeUnknown,
                    "the call did not finish before its deadline; it may still take effect",
                )
            } else {
                Failure::new(
                    ErrorCode::Timeout,
                    "no activation found before the deadline",
                )
            };
            answer(w, i, cid, Err(failure));
        }
        Timer::Finish(act) => {
            let Some(a) = w.nodes[i].acts.get_mut(&act) else {
                return;
            };
            if let Some((job, Stage::Computing { answer: v })) = a.running.take() {
                answer(w, i, job.cid, Ok(v));
                super::activation::pump(w, i, act);
            }
        }
        Timer::Resend(act) => super::activation::send_commit(w, i, act),
    }
}

/// Registers, or heartbeats (one at a time); drops the table once the lease is no longer valid.
fn heartbeat(w: &mut World, i: usize) {
    let interval = SETTINGS.heartbeat_interval_ms * MS;
    set_timer(w, i, interval, Timer::Heartbeat);
    let n = &mut w.nodes[i];
    if n.valid_epoch(w.now).is_none() && !n.table.is_empty() {
        n.clear_table();
    }
    if n.heartbeat_out {
        return;
    }
    let sent_at = n.local(w.now);
    let (pending, request) = if n.registered {
        (Pending::Heartbeat { sent_at }, CpRequest::Heartbeat)
    } else {
        (Pending::Register { sent_at }, CpRequest::Register)
    };
    let timeout = (SETTINGS.ttl_versions / 3).max(interval);
    let sent = to_cp(w, i, pending, request, timeout);
    w.nodes[i].heartbeat_out = sent;
}

pub(crate) fn on_message(w: &mut World, i: usize, from: Addr, msg: Msg) {
    match msg {
        Msg::CpReply { req, result } => {
            let Some(pending) = w.nodes[i].pending.remove(&req) else {
                return; // timed out already
            };
            match result {
                Ok(answer) => cp_answered(w, i, pending, answer),
                Err(e) => cp_failed(w, i, pending, e, false),
            }
        }
        Msg::Call { call, actor, op } => {
            take_call(w, i, Origin::Client { actor, call }, actor, op, false);
        }
        Msg::Forward {
            fwd,
            actor,
            op,
            auth,
        } => {
            let Addr::Node(node, incarnation) = from else {
                return;
            };
            let sender = w.nodes[node].id.clone();
            let wall = w.nodes[i].wall_ms(w.now);
            let checked = auth.check_at_node(
                &forward_covered(actor, &op),
                &w.nodes[i].identity.auth,
                &sender,
                wall,
            );
            if let Err(e) = checked {
                w.trace(&format!("n{i} refused a call forwarded by {sender}: {e}"));
                *w.report
                    .refusals
                    .entry("forwarded call refused by a node")
                    .or_default() += 1;
                let code = if e.is_retryable() {
                    ErrorCode::Unavailable
                } else {
                    ErrorCode::Unauthenticated
                };
                let result = Err(Failure::new(
                    code,
                    format!("node authentication failed: {e}"),
                ));
                w.send(w.nodes[i].me(i), from, Msg::ForwardReply { fwd, result });
                return;
            }
            let origin = Origin::Forward {
                node,
                incarnation,
                fwd,
            };
            take_call(w, i, origin, actor, op, true);
        }
        Msg::ForwardReply { fwd, result } => {
            let Some(Pending::Forward(mut r)) = w.nodes[i].pending.remove(&fwd) else {
                return;
            };
            match r.route.forwarded(result.map_err(Failure::into_call_error)) {
                Forwarded::Retry => {
                    // The owner did not run it: ask the control plane where the actor is now.
                    let n = &mut w.nodes[i];
                    n.locations.remove(&r.actor);
                    if let Some(call) = n.calls.get_mut(&r.cid) {
                        call.handed = false;
                    }
                    route(w, i, r);
                }
                Forwarded::Answer(result) => answer(w, i, r.cid, result.map_err(Failure::from)),
            }
        }
        Msg::Cp { .. } | Msg::Reply { .. } => {}
    }
}

fn take_call(w: &mut World, i: usize, origin: Origin, actor: usize, op: Op, forwarded: bool) {
    let flaw = w.cfg.flaws.route;
    let cid = w.nodes[i].id();
    w.nodes[i].calls.insert(
        cid,
        OpenCall {
            origin,
            handed: false,
        },
    );
    set_timer(w, i, CALL_TIMEOUT, Timer::CallDeadline(cid));
    route(
        w,
        i,
        Routing {
            cid,
            actor,
            op,
            route: Route::with_flaw(forwarded, flaw),
        },
    );
}

/// Answers call `cid` (once; later answers are ignored).
pub(super) fn answer(w: &mut World, i: usize, cid: u64, result: Result<u64, Failure>) {
    let Some(call) = w.nodes[i].calls.remove(&cid) else {
        return;
    };
    let me = w.nodes[i].me(i);
    match call.origin {
        Origin::Client { actor, call } => {
            w.send(me, Addr::Client(actor), Msg::Reply { call, result });
        }
        Origin::Forward {
            node,
            incarnation,
            fwd,
        } => {
            w.send(
                me,
                Addr::Node(node, incarnation),
                Msg::ForwardReply { fwd, result },
            );
        }
    }
}

/// The router's loop (`router.rs`): here, where it was last seen, or wherever the control
/// plane says, as the real [`Route`] decides.
fn route(w: &mut World, i: usize, mut r: Routing) {
    loop {
        let now = w.now;
        let n = &mut w.nodes[i];
        if !n.calls.contains_key(&r.cid) {
            return; // answered already (its deadline passed)
        }
        let actor_key = key(r.actor);
        let epoch = match r
            .route
            .attempt(n.valid_epoch(now), (ACTOR_TYPE, &actor_key))
        {
            Ok(epoch) => epoch,
            Err(e) => return answer(w, i, r.cid, Err(e.into())),
        };
        // 1. Here (`Table::admit_local`).
        if let Some(&act) = n.table.get(&r.actor) {
            let deadline = n.local(now) + CALL_TIMEOUT;
            let a = n.acts.get_mut(&act).expect("listed activations exist");
            if a.placement.node_epoch == epoch {
                a.queue.push_back(Job {
                    cid: r.cid,
                    op: r.op,
                    deadline,
                });
                n.calls.get_mut(&r.cid).expect("open").handed = true;
                return super::activation::pump(w, i, act);
            }
            n.table.remove(&r.actor);
            a.listed = false;
        }
        // 2. Where it was last seen.
        if r.route.may_forward()
            && let Some(&owner) = n.locations.get(&r.actor)
        {
            let fwd = n.id();
            n.calls.get_mut(&r.cid).expect("open").handed = true;
            let (me, wall) = (n.me(i), n.wall_ms(w.now));
            let to = Addr::Node(owner, w.nodes[owner].incarnation);
            let auth = identity::sign(
                &w.nodes[i].identity.credentials,
                &node_audience(&w.nodes[owner].id),
                &forward_covered(r.actor, &r.op),
                wall,
                &mut w.rng,
            );
            let msg = Msg::Forward {
                fwd,
                actor: r.actor,
                op: r.op,
                auth,
            };
            if w.send(me, to, msg) {
                w.nodes[i].pending.insert(fwd, Pending::Forward(r));
                return;
            }
            // Connection refused: nothing was sent.
            let refused = CallError::Unavailable(format!("could not connect to n{owner}"));
            match r.route.forwarded::<u64>(Err(refused)) {
                Forwarded::Retry => {
                    let n = &mut w.nodes[i];
                    n.calls.get_mut(&r.cid).expect("open").handed = false;
                    n.locations.remove(&r.actor);
                    continue;
                }
                Forwarded::Answer(result) => {
                    return answer(w, i, r.cid, result.map_err(Failure::from));
                }
            }
        }
        // 3. Wherever the control plane says.
        let (cid, actor) = (r.cid, r.actor);
        if !to_cp(
            w,
            i,
            Pending::Ensure(r),
            CpRequest::Ensure(key(actor)),
            CP_TIMEOUT,
        ) {
            let failure = Failure::new(ErrorCode::Unavailable, "control plane unreachable");
            answer(w, i, cid, Err(failure));
        }
        return;
    }
}

fn cp_answered(w: &mut World, i: usize, pending: Pending, result: CpAnswer) {
    match (pending, result) {
        (Pending::Register { sent_at }, CpAnswer::Lease { epoch }) => {
            let n = &mut w.nodes[i];
            n.heartbeat_out = false;
            n.registered = true;
            n.lease = renew(n.lease, sent_at, epoch, SETTINGS.ttl_versions).state;
            n.clear_table();
        }
        (Pending::Heartbeat { sent_at }, CpAnswer::Lease { epoch }) => {
            let n = &mut w.nodes[i];
            n.heartbeat_out = false;
            let renewal = renew(n.lease, sent_at, epoch, SETTINGS.ttl_versions);
            n.lease = renewal.state;
            if renewal.epoch_changed {
                n.clear_table();
            }
        }
        (Pending::Ensure(mut r), CpAnswer::Placed(placement)) => {
            let n = &mut w.nodes[i];
            // `Table::draining`: the previous object of this generation is finishing.
            let draining = || {
                n.acts.values().any(|a| {
                    !a.listed
                        && a.actor == r.actor
                        && a.placement.generation == placement.generation
                })
            };
            match r.route.placed(&n.id, &placement, draining) {
                Placement::Activate => {
                    if !n.table.contains_key(&r.actor) {
                        let act = n.id();
                        n.table.insert(r.actor, act);
                        n.acts.insert(
                            act,
                            Act {
                                actor: r.actor,
                                placement,
                                value: None,
                                queue: VecDeque::new(),
                                running: None,
                                listed: true,
                            },
                        );
                    }
                }
                Placement::Locate => {
                    let j = placement.node_id[1..]
                        .parse()
                        .expect("node ids are n<index>");
                    n.locations.insert(r.actor, j);
                }
                Placement::Again => {}
                Placement::Fail(e) => return answer(w, i, r.cid, Err(e.into())),
            }
            route(w, i, r);
        }
        (Pending::Read { act }, CpAnswer::Value(v)) => {
            let Some(a) = w.nodes[i].acts.get_mut(&act) else {
                return;
            };
            a.value = Some(v.unwrap_or(0));
            if let Some((job, Stage::Reading)) = a.running.take() {
                super::activation::compute(w, i, act, job);
            }
        }
        (Pending::Commit { act }, CpAnswer::Committed) => {
            let Some(a) = w.nodes[i].acts.get_mut(&act) else {
                return;
            };
            if let Some((job, Stage::Committing { value, .. })) = a.running.take() {
                a.value = Some(value);
                answer(w, i, job.cid, Ok(value));
                super::activation::pump(w, i, act);
            }
        }
        (pending, answer) => {
            unreachable!(
                "answer {answer:?} does not fit the request ({:?})",
                kind(&pending)
            )
        }
    }
}

fn kind(p: &Pending) -> &'static str {
    match p {
        Pending::Register { .. } => "register",
        Pending::Heartbeat { .. } => "heartbeat",
        Pending::Ensure(_) => "ensure",
        Pending::Forward(_) => "forward",
        Pending::Read { .. } => "read",
        Pending::Commit { .. } => "commit",
    }
}

/// A request failed: an error answer, or no answer in time (`transport`).
fn cp_failed(w: &mut World, i: usize, pending: Pending, e: CpError, transport: bool) {
    match pending {
        Pending::Register { .. } => w.nodes[i].heartbeat_out = false,
        Pending::Heartbeat { .. } => {
            let n = &mut w.nodes[i];
            n.heartbeat_out = false;
            if e.code == ErrorCode::NotFound {
                n.registered = false;
            }
        }
        Pending::Ensure(r) => {
            let failure = Failure::new(
                if e.retryable {
                    ErrorCode::Unavailable
                } else {
                    e.code
                },
                e.message,
            );
            answer(w, i, r.cid, Err(failure));
        }
        Pending::Forward(r) => {
            // Only a forward's own timeout would land here; the call's deadline covers it.
            let failure = Failure::new(ErrorCode::OutcomeUnknown, e.message);
            answer(w, i, r.cid, Err(failure));
        }
        Pending::Read { act } => {
            let n = &mut w.nodes[i];
            let Some(a) = n.acts.get_mut(&act) else {
                return;
            };
            let Some((job, Stage::Reading)) = a.running.take() else {
                return;
            };
            if e.code == ErrorCode::Fenced && a.listed {
                a.listed = false;
                n.table.remove(&a.actor);
            }
            let failure = Failure::new(
                ErrorCode::Unavailable,
                format!(
                    "reading state failed ({}); nothing of the call was committed",
                    e.message
                ),
            );
            answer(w, i, job.cid, Err(failure));
            super::activation::pump(w, i, act);
        }
        Pending::Commit { act } => super::activation::commit_failed(w, i, act, &e, transport),
    }
}
