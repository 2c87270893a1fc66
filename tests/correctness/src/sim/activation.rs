//! A simulated activation's execution (`activation.rs`, `instance.rs`): one call at a time,
//! the lease check before each call, a fenced read when the value is not in memory, and output
//! gating — an `inc` is answered only once its commit is acknowledged, resent while its outcome is
//! unknown, both decided by the real output gate ([`Commit`]).

use std::time::Duration;

use latchkey_edge_node::protocol::{Commit, CommitError, CommitStep};
use latchkey_wire::ErrorCode;
use latchkey_wire::node::CommitRequest;
use rand::RngExt as _;

use super::net::{CpError, CpRequest, Failure, Op, write};
use super::node::{CP_TIMEOUT, Job, Pending, Stage, Timer, answer, set_timer, to_cp};
use super::{MS, Micros, World};

/// A commit attempt failed: an error answer, or no answer in time (`transport`); the real
/// output gate ([`Commit`]) decides what follows.
pub(super) fn commit_failed(w: &mut World, i: usize, act: u64, e: &CpError, transport: bool) {
    let now = w.now;
    let n = &mut w.nodes[i];
    let local = n.local(now);
    let Some(a) = n.acts.get_mut(&act) else {
        return;
    };
    let Some((job, Stage::Committing { attempts, .. })) = &mut a.running else {
        return;
    };
    let code = (!transport).then_some(e.code);
    let remaining = Duration::from_micros(job.deadline.saturating_sub(local));
    match attempts.failed(code, e.retryable, remaining, &e.message) {
        CommitStep::Resend(pause) => {
            set_timer(w, i, pause.as_micros() as Micros, Timer::Resend(act));
        }
        CommitStep::Fail(CommitError { error, fenced }) => {
            let (job, _) = a.running.take().expect("checked above");
            a.value = None;
            if fenced && a.listed {
                a.listed = false;
                n.table.remove(&a.actor);
            }
            answer(w, i, job.cid, Err(error.into()));
            pump(w, i, act);
        }
    }
}

/// Runs the activation's next call, if it is idle (`activation.rs`: one call at a time).
pub(super) fn pump(w: &mut World, i: usize, act: u64) {
    loop {
        let now = w.now;
        let n = &mut w.nodes[i];
        let local = n.local(now);
        let valid = n.valid_epoch(now);
        let Some(a) = n.acts.get_mut(&act) else {
            return;
        };
        if a.running.is_some() {
            return;
        }
        let Some(job) = a.queue.pop_front() else {
            if !a.listed {
                n.acts.remove(&act);
            }
            return;
        };
        if valid != Some(a.placement.node_epoch) {
            a.value = None;
            let failure = Failure::new(
                ErrorCode::Unavailable,
                "this node's lease lapsed or its epoch changed; retry",
            );
            answer(w, i, job.cid, Err(failure));
            continue;
        }
        if local >= job.deadline {
            let failure = Failure::new(ErrorCode::Timeout, "the deadline passed before it started");
            answer(w, i, job.cid, Err(failure));
            continue;
        }
        if a.value.is_none() {
            let fence = a.placement.fence();
            a.running = Some((job, Stage::Reading));
            if !to_cp(
                w,
                i,
                Pending::Read { act },
                CpRequest::Read(fence),
                CP_TIMEOUT,
            ) {
                let a = w.nodes[i].acts.get_mut(&act).expect("just seen");
                let (job, _) = a.running.take().expect("just set");
                let failure = Failure::new(ErrorCode::Unavailable, "control plane unreachable");
                answer(w, i, job.cid, Err(failure));
                continue;
            }
            return;
        }
        return compute(w, i, act, job);
    }
}

/// The actor's code: a `get` answers the value after a moment of computing; an `inc` commits
/// the value plus one (output gating: the answer waits for the commit).
pub(super) fn compute(w: &mut World, i: usize, act: u64, job: Job) {
    let flaw = w.cfg.flaws.commit;
    let a = w.nodes[i].acts.get_mut(&act).expect("running");
    let value = a.value.expect("read before computing");
    match job.op {
        Op::Get => {
            a.running = Some((job, Stage::Computing { answer: value }));
            let delay = w.rng.random_range(0..2 * MS);
            set_timer(w, i, delay, Timer::Finish(act));
        }
        Op::Inc => {
            let request = CommitRequest {
                fence: a.placement.fence(),
                seq: 0,
                writes: vec![write(value + 1)],
            };
            a.running = Some((
                job,
                Stage::Committing {
                    request,
                    value: value + 1,
                    attempts: Commit::with_flaw(flaw),
                },
            ));
            let n = &mut w.nodes[i];
            n.commit_seq += 1;
            let seq = n.commit_seq;
            if let Some((_, Stage::Committing { request, .. })) =
                &mut n.acts.get_mut(&act).expect("running").running
            {
                request.seq = seq;
            }
            send_commit(w, i, act);
        }
    }
}

/// Sends (or resends) the running call's commit.
pub(super) fn send_commit(w: &mut World, i: usize, act: u64) {
    let Some(a) = w.nodes[i].acts.get(&act) else {
        return;
    };
    let Some((_, Stage::Committing { request, .. })) = &a.running else {
        return;
    };
    let request = CpRequest::Commit(request.clone());
    if !to_cp(w, i, Pending::Commit { act }, request, CP_TIMEOUT) {
        let e = CpError {
            code: ErrorCode::Unavailable,
            retryable: true,
            message: "control plane unreachable".into(),
        };
        commit_failed(w, i, act, &e, true);
    }
}
