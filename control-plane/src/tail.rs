//! Tail sessions held by this control plane (`latchkey tail`): each follows the log lines and
//! call outcomes its filter matches, as edge nodes report them. Nothing is stored: a session
//! lives as long as its client's connection, and nodes send events only while some session
//! follows (they long-poll [`TailHub::interest`]).
//!
//! Every queue is bounded: a session that reads too slowly loses events (and is told how many),
//! never the hub's or another session's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use latchkey_wire::tail::{TailBatch, TailFilter, TailInterest, TailLine, TailMessage};
use tokio::sync::{mpsc, watch};

/// Messages a session's queue holds before it drops events.
const SESSION_QUEUE: usize = 1024;

/// Why a session cannot start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TailError {
    /// As many sessions as allowed already run.
    #[error("{0} tail sessions are already open on this control plane; try again later")]
    TooMany(usize),
}

impl TailError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TailError::TooMany(_))
    }
}

/// The sessions and what nodes know of them.
pub struct TailHub {
    state: Mutex<State>,
    /// The revision of the set of sessions, for node long-polls.
    revision: watch::Sender<u64>,
    max_sessions: usize,
}

#[derive(Default)]
struct State {
    revision: u64,
    next_id: u64,
    sessions: BTreeMap<u64, Session>,
    /// Node id → the latest revision it said it applies.
    applied: HashMap<String, u64>,
}

struct Session {
    filter: TailFilter,
    /// The revision that added it: a node applying this revision or a later one follows it.
    since: u64,
    queue: mpsc::Sender<TailMessage>,
    /// Messages its queue refused since it last accepted one.
    dropped: u64,
    following: BTreeSet<String>,
}

impl Session {
    /// Queues `message`, after a note of what was dropped before it, if anything was.
    fn offer(&mut self, message: TailMessage) {
        if self.dropped > 0 {
            let note = TailMessage::Dropped {
                at: "control-plane".into(),
                count: self.dropped,
            };
            if self.queue.try_send(note).is_err() {
                self.dropped += 1;
                return;
            }
            self.dropped = 0;
        }
        if self.queue.try_send(message).is_err() {
            self.dropped += 1;
        }
    }
}

/// One session, removed from the hub when dropped.
pub struct Subscription {
    hub: Arc<TailHub>,
    id: u64,
    /// The session's messages, oldest first; the first is [`TailMessage::Started`].
    pub messages: mpsc::Receiver<TailMessage>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl TailHub {
    /// A hub allowing `max_sessions` at once.
    pub fn new(max_sessions: usize) -> Arc<Self> {
        // Revisions start at the wall clock in microseconds, so that a node that applied a
        // revision of an earlier process does not take this one's for it.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Self::starting_at(max_sessions, start)
    }

    /// A hub whose first revision is `revision`.
    pub fn starting_at(max_sessions: usize, revision: u64) -> Arc<Self> {
        Arc::new(TailHub {
            state: Mutex::new(State {
                revision,
                ..State::default()
            }),
            revision: watch::channel(revision).0,
            max_sessions,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session following `filter`; `live_nodes` are the nodes whose lease is valid now
    /// (the client is told which of them follow as they pick the session up).
    pub fn subscribe(
        self: &Arc<Self>,
        filter: TailFilter,
        live_nodes: Vec<String>,
    ) -> Result<Subscription, TailError> {
        let (queue, messages) = mpsc::channel(SESSION_QUEUE);
        let mut state = self.lock();
        if state.sessions.len() >= self.max_sessions {
            return Err(TailError::TooMany(self.max_sessions));
        }
        state.revision += 1;
        state.next_id += 1;
        let (id, since) = (state.next_id, state.revision);
        let started = TailMessage::Started {
            filter: filter.clone(),
            live_nodes,
        };
        queue.try_send(started).expect("a new queue has room");
        state.sessions.insert(
            id,
            Session {
                filter,
                since,
                queue,
                dropped: 0,
                following: BTreeSet::new(),
            },
        );
        self.revision.send_replace(since);
        Ok(Subscription {
            hub: Arc::clone(self),
            id,
            messages,
        })
    }

    fn remove(&self, id: u64) {
        let mut state = self.lock();
        if state.sessions.remove(&id).is_some() {
            state.revision += 1;
            self.revision.send_replace(state.revision);
        }
    }

    /// Ends every session (their streams finish): on shutdown.
    pub fn close_all(&self) {
        let mut state = self.lock();
        if !state.sessions.is_empty() {
            state.sessions.clear();
            state.revision += 1;
            self.revision.send_replace(state.revision);
        }
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        self.lock().sessions.len()
    }

    /// The current filters, one per session.
    pub fn interest(&self) -> TailInterest {
        let state = self.lock();
        TailInterest {
            revision: state.revision,
            filters: state.sessions.values().map(|s| s.filter.clone()).collect(),
        }
    }

    /// Wakes when the set of sessions changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// `node` applies the filters of `revision` (it asked with `after = revision`): the sessions
    /// that revision includes learn that the node follows them. A revision this hub never had
    /// (a node's first ask, or one of an earlier process) acknowledges nothing.
    pub fn applied(&self, node: &str, revision: u64) {
        let mut state = self.lock();
        let state = &mut *state;
        if revision > state.revision {
            return;
        }
        let known = state.applied.entry(node.to_owned()).or_insert(0);
        *known = (*known).max(revision);
        let applied = *known;
        for session in state.sessions.values_mut() {
            if session.since <= applied && !session.following.contains(node) {
                session.following.insert(node.to_owned());
                session.offer(TailMessage::Following {
                    node: node.to_owned(),
                });
            }
        }
    }

    /// Passes `node`'s events to the sessions whose filter matches each (whatever the node
    /// matched itself).
    pub fn publish(&self, node: &str, batch: TailBatch) {
        let mut state = self.lock();
        if state.sessions.is_empty() {
            return;
        }
        if batch.dropped > 0 {
            for session in state.sessions.values_mut() {
                session.offer(TailMessage::Dropped {
                    at: node.to_owned(),
                    count: batch.dropped,
                });
            }
        }
        for event in batch.events {
            let mut line = None;
            for session in state.sessions.values_mut() {
                if session
                    .filter
                    .matches(&event.actor_type, &event.key, &event.call)
                {
                    let line =
                        line.get_or_insert_with(|| TailLine::from_event(node, event.clone()));
                    session.offer(TailMessage::Line(line.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use latchkey_wire::tail::{CallKind, KeyFilter, Level, TailEvent, TailKind};

    use super::*;

    fn log(actor_type: &str, key: &str, message: &str) -> TailEvent {
        TailEvent {
            at_ms: 1,
            actor_type: actor_type.into(),
            key: key.into(),
            call_id: 1,
            call: CallKind::Method("inc".into()),
            kind: TailKind::Log {
                level: Level::Info,
                message: message.into(),
            },
        }
    }

    fn drain(sub: &mut Subscription) -> Vec<TailMessage> {
        std::iter::from_fn(|| sub.messages.try_recv().ok()).collect()
    }

    fn of_type(actor_type: &str) -> TailFilter {
        TailFilter {
            actor_type: Some(actor_type.into()),
            ..TailFilter::default()
        }
    }

    #[test]
    fn sessions_see_only_what_their_filter_matches() {
        let hub = TailHub::starting_at(8, 0);
        let mut counters = hub
            .subscribe(of_type("counter"), vec!["n1".into()])
            .unwrap();
        let mut user1 = hub
            .subscribe(
                TailFilter {
                    keys: Some(KeyFilter::Exact("user/1".into())),
                    ..TailFilter::default()
                },
                vec![],
            )
            .unwrap();
        assert!(
            matches!(&drain(&mut counters)[..], [TailMessage::Started { live_nodes, .. }] if live_nodes == &["n1"])
        );
        drain(&mut user1);
        hub.publish(
            "n1",
            TailBatch {
                events: vec![
                    log("counter", "user/1", "a"),
                    log("chat-room", "user/1", "b"),
                    log("counter", "user/2", "c"),
                ],
                dropped: 0,
            },
        );
        let texts = |messages: Vec<TailMessage>| -> Vec<String> {
            messages
                .into_iter()
                .map(|m| match m {
                    TailMessage::Line(l) => {
                        assert_eq!(l.node, "n1");
                        match l.what {
                            latchkey_wire::tail::LineKind::Log { message, .. } => message,
                            other => panic!("{other:?}"),
                        }
                    }
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(texts(drain(&mut counters)), ["a", "c"]);
        assert_eq!(texts(drain(&mut user1)), ["a", "b"]);
    }

    #[test]
    fn nodes_follow_sessions_once_they_apply_the_revision_that_added_them() {
        let hub = TailHub::starting_at(8, 0);
        assert_eq!(hub.interest(), TailInterest::default());
        assert!(
            TailHub::new(1).interest().revision > 1_700_000_000_000_000,
            "a new process starts at the clock"
        );
        let mut sub = hub.subscribe(of_type("counter"), vec![]).unwrap();
        drain(&mut sub);
        let interest = hub.interest();
        assert_eq!(interest.filters, [of_type("counter")]);
        hub.applied("n1", interest.revision - 1);
        assert!(
            drain(&mut sub).is_empty(),
            "an older revision lacks the session"
        );
        hub.applied("n1", interest.revision);
        hub.applied("n1", interest.revision);
        assert_eq!(
            drain(&mut sub),
            [TailMessage::Following { node: "n1".into() }],
            "told once"
        );
        hub.applied("n2", u64::MAX);
        assert!(
            drain(&mut sub).is_empty(),
            "a first ask (or a revision of another process) acknowledges nothing"
        );
        hub.applied("n2", interest.revision + 1);
        assert!(
            drain(&mut sub).is_empty(),
            "nor does a revision yet to come"
        );
        hub.applied("n2", interest.revision);
        assert_eq!(
            drain(&mut sub),
            [TailMessage::Following { node: "n2".into() }]
        );
        drop(sub);
        let after = hub.interest();
        assert!(after.filters.is_empty(), "a dropped session is gone");
        assert!(after.revision > interest.revision, "and nodes hear of it");
    }

    #[test]
    fn a_slow_session_loses_events_and_is_told_how_many() {
        let hub = TailHub::starting_at(8, 0);
        let mut slow = hub.subscribe(TailFilter::default(), vec![]).unwrap();
        let events = (0..SESSION_QUEUE + 10)
            .map(|i| log("t", "k", &i.to_string()))
            .collect();
        hub.publish("n1", TailBatch { events, dropped: 0 });
        let got = drain(&mut slow);
        assert_eq!(got.len(), SESSION_QUEUE, "started + what fitted");
        hub.publish(
            "n1",
            TailBatch {
                events: vec![log("t", "k", "late")],
                dropped: 3,
            },
        );
        let got = drain(&mut slow);
        assert_eq!(
            got[0],
            TailMessage::Dropped {
                at: "control-plane".into(),
                count: 11
            }
        );
        assert_eq!(
            got[1],
            TailMessage::Dropped {
                at: "n1".into(),
                count: 3
            }
        );
        assert!(matches!(got[2], TailMessage::Line(_)));
    }

    #[test]
    fn sessions_are_bounded_and_close_on_shutdown() {
        let hub = TailHub::starting_at(2, 0);
        let mut a = hub.subscribe(TailFilter::default(), vec![]).unwrap();
        let _b = hub.subscribe(TailFilter::default(), vec![]).unwrap();
        let refused = hub.subscribe(TailFilter::default(), vec![]).err().unwrap();
        assert_eq!(refused, TailError::TooMany(2));
        assert!(refused.is_retryable());
        hub.close_all();
        assert_eq!(hub.sessions(), 0);
        drain(&mut a);
        assert_eq!(
            a.messages.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected),
            "its stream ends"
        );
    }
}
