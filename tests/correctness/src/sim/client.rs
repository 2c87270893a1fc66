//! The simulated clients, one per actor, each calling its counter one call at a time through a
//! random node, and the linearizability check of what they observe.
//!
//! The check keeps `lo`, the value the counter is known to have reached, and `pending`, the
//! `inc`s whose outcome is unknown (their answer was lost, timed out, or said
//! `outcome_unknown`): each may take effect at any later moment, or never. So an `inc` answered
//! `v` needs `lo + 1 <= v <= lo + 1 + pending`, a `get` answered `v` needs
//! `lo <= v <= lo + pending`; the pending `inc`s the answer shows applied are settled. A call that
//! failed with an error saying it did not take effect (`unavailable`, `misdirected`,
//! `overloaded`, `timeout`, or a refused connection) adds nothing, so if it did take effect a
//! later answer is out of range.

use latchkey_wire::ErrorCode;
use rand::RngExt as _;

use super::net::{Addr, Failure, Msg, Op};
use super::{Event, MS, Micros, SECOND, World};

/// How long a client waits for an answer.
const CLIENT_TIMEOUT: Micros = 5 * SECOND;

/// The key of actor `actor`.
pub(crate) fn key(actor: usize) -> String {
    format!("k{actor}")
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Timer {
    /// Make the next call.
    Next,
    /// Give up waiting for call `call`.
    Timeout(u64),
}

struct InFlight {
    call: u64,
    op: Op,
    node: usize,
    start: Micros,
}

pub(crate) struct Client {
    actor: usize,
    next_call: u64,
    in_flight: Option<InFlight>,
    lo: u64,
    pending: u64,
    last_answer: Option<Micros>,
}

impl Client {
    pub(crate) fn new(actor: usize) -> Client {
        Client {
            actor,
            next_call: 0,
            in_flight: None,
            lo: 0,
            pending: 0,
            last_answer: None,
        }
    }

    /// A complaint if the client had no answer after `after`.
    pub(crate) fn stalled(&self, after: Micros) -> Option<String> {
        match self.last_answer {
            Some(t) if t >= after => None,
            last => Some(format!(
                "no progress: client of {} had no answer after the faults stopped (last answer at {})",
                key(self.actor),
                last.map_or_else(
                    || "never".into(),
                    |t| format!("{:.3} ms", t as f64 / MS as f64)
                )
            )),
        }
    }
}

pub(crate) fn on_timer(w: &mut World, actor: usize, timer: Timer) {
    match timer {
        Timer::Next => call(w, actor),
        Timer::Timeout(call) => {
            if w.clients[actor]
                .in_flight
                .as_ref()
                .is_some_and(|f| f.call == call)
            {
                let failure = Failure::new(ErrorCode::OutcomeUnknown, "client timeout");
                judge(w, actor, &Err(failure));
            }
        }
    }
}

pub(crate) fn on_message(w: &mut World, actor: usize, msg: Msg) {
    let Msg::Reply { call, result } = msg else {
        return;
    };
    if w.clients[actor]
        .in_flight
        .as_ref()
        .is_some_and(|f| f.call == call)
    {
        judge(w, actor, &result);
    }
}

fn call(w: &mut World, actor: usize) {
    let node = w.rng.random_range(0..w.nodes.len());
    let op = if w.rng.random_range(0..10) < 7 {
        Op::Inc
    } else {
        Op::Get
    };
    let c = &mut w.clients[actor];
    c.next_call += 1;
    let call = c.next_call;
    c.in_flight = Some(InFlight {
        call,
        op,
        node,
        start: w.now,
    });
    w.report.calls += 1;
    let to = Addr::Node(node, w.nodes[node].incarnation);
    if w.send(Addr::Client(actor), to, Msg::Call { call, actor, op }) {
        w.after(
            CLIENT_TIMEOUT,
            Event::Client {
                actor,
                timer: Timer::Timeout(call),
            },
        );
    } else {
        let failure = Failure::new(ErrorCode::Unavailable, "connection refused");
        judge(w, actor, &Err(failure));
    }
}

/// Checks an answer against the counter's possible values, then schedules the next call.
fn judge(w: &mut World, actor: usize, result: &Result<u64, Failure>) {
    let now = w.now;
    let c = &mut w.clients[actor];
    let flight = c.in_flight.take().expect("judging the call in flight");
    let what = format!(
        "{} {:?} through n{} (sent at {:.3} ms)",
        key(actor),
        flight.op,
        flight.node,
        flight.start as f64 / MS as f64
    );
    let mut problem = None;
    match (result, flight.op) {
        (Ok(v), op) => {
            c.last_answer = Some(now);
            w.report.answered += 1;
            let v = *v;
            let base = c.lo + u64::from(op == Op::Inc);
            if v < base || v > base + c.pending {
                problem = Some(format!(
                    "{what} answered {v}; possible values are {base}..={} ({} known, {} inc(s) of unknown outcome)",
                    base + c.pending,
                    c.lo,
                    c.pending
                ));
            } else {
                c.pending -= v - base;
            }
            c.lo = c.lo.max(v);
        }
        (Err(f), op) if f.code == ErrorCode::OutcomeUnknown => {
            w.report.unknown_outcomes += 1;
            if op == Op::Inc {
                c.pending += 1;
            }
        }
        (Err(f), _) if definite(f.code) => w.report.definite_failures += 1,
        (Err(f), _) => {
            problem = Some(format!(
                "{what} failed with an unexpected error: {:?}: {}",
                f.code, f.message
            ));
        }
    }
    let line = format!("{what} -> {result:?}");
    w.trace(&line);
    if let Some(problem) = problem {
        w.violation(&problem);
    }
    let think = w.rng.random_range(0..20 * MS);
    w.after(
        think,
        Event::Client {
            actor,
            timer: Timer::Next,
        },
    );
}

/// Whether a failure says the call did not take effect.
fn definite(code: ErrorCode) -> bool {
    code.is_retryable()
}
