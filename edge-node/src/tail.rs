//! The node's side of `latchkey tail`: actors' log lines and call outcomes, produced only while
//! someone follows. Two kinds of followers: tail sessions on the control plane (their filters
//! arrive by long-poll, [`follow_interest`]; matching events go to the control plane in batches,
//! [`push`]) and subscribers in this process ([`Tail::subscribe`], used by `latchkey dev`).
//!
//! When nobody follows, the cost on the call path is one atomic load ([`Tail::tag`]). Every queue
//! is bounded; what does not fit is dropped and counted, never waited for.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey_wire::ErrorCode;
use latchkey_wire::client::Client;
use latchkey_wire::tail::{
    CallKind, Level, MAX_TAIL_BATCH, TailBatch, TailEvent, TailFilter, TailKind,
};
use tokio::sync::{broadcast, mpsc};

/// Events waiting to go to the control plane.
const OUTBOX: usize = 4096;
/// Events a local subscriber may fall behind by before it misses some.
const LOCAL: usize = 1024;
/// How long one interest long-poll waits.
const WAIT: Duration = Duration::from_secs(20);
/// [`Tail::followers`]: some control-plane session follows.
const REMOTE: usize = 1;
/// [`Tail::followers`]: one subscriber in this process.
const LOCAL_ONE: usize = 2;

/// What is about to run, as [`Tail::tag`] is asked about it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Site<'a> {
    /// A call to this method.
    Method(&'a str),
    /// `on-activate`.
    Activate,
    /// `on-upgrade`.
    Upgrade,
}

impl Site<'_> {
    fn kind(self) -> CallKind {
        match self {
            Site::Method(m) => CallKind::Method(m.to_owned()),
            Site::Activate => CallKind::Activate,
            Site::Upgrade => CallKind::Upgrade,
        }
    }
}

/// The call an instance is running, for the events it produces (set only while someone follows).
#[derive(Clone, Debug)]
pub(crate) struct CallTag {
    pub(crate) id: u64,
    pub(crate) call: CallKind,
}

impl CallTag {
    /// The tag of the `on-activate` a call runs first: the same call, the hook's kind.
    pub(crate) fn activation(&self) -> CallTag {
        CallTag {
            id: self.id,
            call: CallKind::Activate,
        }
    }
}

/// Who follows, and the queues to them.
pub struct Tail {
    /// The control plane's filters (empty: no session).
    filters: RwLock<Arc<Vec<TailFilter>>>,
    /// Who follows, in one word so that a call checks it with one load: bit 0 is set while some
    /// session has a filter ([`REMOTE`]); the rest counts subscribers in this process (in units
    /// of [`LOCAL_ONE`]).
    followers: AtomicUsize,
    local: broadcast::Sender<Arc<TailEvent>>,
    outbox: mpsc::Sender<TailEvent>,
    /// Events the outbox refused since the last batch.
    dropped: AtomicU64,
    next_call: AtomicU64,
}

/// A subscription in this process; unsubscribes when dropped.
pub struct LocalTail {
    tail: Arc<Tail>,
    /// Every event of this node, oldest first (`Lagged` if this subscriber fell behind).
    pub events: broadcast::Receiver<Arc<TailEvent>>,
}

impl Drop for LocalTail {
    fn drop(&mut self) {
        self.tail.followers.fetch_sub(LOCAL_ONE, Ordering::AcqRel);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Tail {
    /// A tail with nobody following, and the receiving end of its outbox (for [`push`]).
    pub(crate) fn new() -> (Arc<Self>, mpsc::Receiver<TailEvent>) {
        let (outbox, outgoing) = mpsc::channel(OUTBOX);
        let tail = Arc::new(Tail {
            filters: RwLock::default(),
            followers: AtomicUsize::new(0),
            local: broadcast::channel(LOCAL).0,
            outbox,
            dropped: AtomicU64::new(0),
            next_call: AtomicU64::new(0),
        });
        (tail, outgoing)
    }

    /// Follows every event of this node from now on.
    pub fn subscribe(self: &Arc<Self>) -> LocalTail {
        self.followers.fetch_add(LOCAL_ONE, Ordering::AcqRel);
        LocalTail {
            tail: Arc::clone(self),
            events: self.local.subscribe(),
        }
    }

    fn followed(&self) -> bool {
        self.followers.load(Ordering::Acquire) != 0
    }

    fn filters(&self) -> Arc<Vec<TailFilter>> {
        Arc::clone(&self.filters.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn wanted(&self, actor_type: &str, key: &str, call: &CallKind) -> (bool, bool) {
        let followers = self.followers.load(Ordering::Acquire);
        let local = followers >= LOCAL_ONE;
        let remote = followers & REMOTE != 0
            && TailFilter::any_matches(&self.filters(), actor_type, key, call);
        (local, remote)
    }

    /// Replaces the control plane's filters.
    pub(crate) fn set_filters(&self, filters: Vec<TailFilter>) {
        let remote = !filters.is_empty();
        *self.filters.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(filters);
        if remote {
            self.followers.fetch_or(REMOTE, Ordering::AcqRel);
        } else {
            self.followers.fetch_and(!REMOTE, Ordering::AcqRel);
        }
    }

    /// A tag for a call about to run on `(actor_type, key)`, if anyone may want its events.
    pub(crate) fn tag(&self, actor_type: &str, key: &str, site: Site<'_>) -> Option<CallTag> {
        if !self.followed() {
            return None;
        }
        let call = site.kind();
        let (local, remote) = self.wanted(actor_type, key, &call);
        (local || remote).then(|| CallTag {
            id: self.next_call.fetch_add(1, Ordering::Relaxed) + 1,
            call,
        })
    }

    /// Sends an event of `(actor_type, key)` from the call `tag` to whoever wants it.
    pub(crate) fn emit(&self, actor_type: &str, key: &str, tag: &CallTag, kind: TailKind) {
        let (local, remote) = self.wanted(actor_type, key, &tag.call);
        if !local && !remote {
            return;
        }
        let event = TailEvent {
            at_ms: now_ms(),
            actor_type: actor_type.to_owned(),
            key: key.to_owned(),
            call_id: tag.id,
            call: tag.call.clone(),
            kind,
        };
        match (local, remote) {
            (true, true) => {
                let _ = self.local.send(Arc::new(event.clone()));
                self.to_control_plane(event);
            }
            (true, false) => {
                let _ = self.local.send(Arc::new(event));
            }
            (false, _) => self.to_control_plane(event),
        }
    }

    fn to_control_plane(&self, event: TailEvent) {
        if self.outbox.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A guest's log line.
    pub(crate) fn log(
        &self,
        actor_type: &str,
        key: &str,
        tag: &CallTag,
        level: Level,
        message: &str,
    ) {
        self.emit(
            actor_type,
            key,
            tag,
            TailKind::Log {
                level,
                message: message.to_owned(),
            },
        );
    }

    /// How a call ended (`error`: the code and message its caller got).
    pub(crate) fn outcome(
        &self,
        actor_type: &str,
        key: &str,
        tag: &CallTag,
        error: Option<(ErrorCode, String)>,
        took: Duration,
    ) {
        let (error, message) = error.map_or((None, None), |(c, m)| (Some(c), Some(m)));
        self.emit(
            actor_type,
            key,
            tag,
            TailKind::Outcome {
                error,
                message,
                micros: took.as_micros() as u64,
            },
        );
    }
}

/// Keeps the control plane's tail filters current: long-polls them, acknowledging each revision
/// applied, until the task is aborted.
pub(crate) async fn follow_interest(tail: Arc<Tail>, cp: Client, node_id: String) {
    let mut applied = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let after = applied.unwrap_or(u64::MAX);
        match cp.tail_interest(&node_id, after, WAIT).await {
            Ok(interest) => {
                tail.set_filters(interest.filters);
                applied = Some(interest.revision);
                backoff = Duration::from_millis(100);
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::NotFound | ErrorCode::MethodNotAllowed)
                ) =>
            {
                // A control plane without tail support: nothing to follow; look again later.
                tail.set_filters(Vec::new());
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "following tail sessions failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Sends the outbox to the control plane in batches until the task is aborted. A batch that
/// cannot be sent is dropped (and counted): tail events are not worth a backlog.
pub(crate) async fn push(
    tail: Arc<Tail>,
    mut outgoing: mpsc::Receiver<TailEvent>,
    cp: Client,
    node_id: String,
) {
    while let Some(first) = outgoing.recv().await {
        let mut events = vec![first];
        while events.len() < MAX_TAIL_BATCH {
            match outgoing.try_recv() {
                Ok(event) => events.push(event),
                Err(_) => break,
            }
        }
        let sending = events.len() as u64;
        let batch = TailBatch {
            events,
            dropped: tail.dropped.swap(0, Ordering::Relaxed),
        };
        if let Err(e) = cp.push_tail(&node_id, &batch).await {
            tracing::debug!(error = %e, "sending tail events failed; dropped them");
            tail.dropped
                .fetch_add(sending + batch.dropped, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use latchkey_wire::tail::KeyFilter;

    use super::*;

    #[test]
    fn nothing_is_tagged_or_sent_while_nobody_follows() {
        let (tail, mut outgoing) = Tail::new();
        assert!(tail.tag("counter", "k", Site::Method("inc")).is_none());
        tail.set_filters(vec![TailFilter {
            actor_type: Some("chat-room".into()),
            ..TailFilter::default()
        }]);
        assert!(
            tail.tag("counter", "k", Site::Method("inc")).is_none(),
            "a session for another type"
        );
        let tag = tail
            .tag("chat-room", "k", Site::Method("send"))
            .expect("followed");
        tail.log("chat-room", "k", &tag, Level::Info, "hello");
        tail.outcome("chat-room", "k", &tag, None, Duration::from_micros(5));
        let log = outgoing.try_recv().expect("queued for the control plane");
        assert_eq!(log.call_id, tag.id);
        assert!(
            matches!(log.kind, TailKind::Log { level: Level::Info, ref message } if message == "hello")
        );
        assert!(matches!(
            outgoing.try_recv().expect("the outcome").kind,
            TailKind::Outcome {
                error: None,
                micros: 5,
                ..
            }
        ));
        tail.set_filters(Vec::new());
        tail.log(
            "chat-room",
            "k",
            &tag,
            Level::Info,
            "after the session ended",
        );
        assert!(outgoing.try_recv().is_err());
    }

    #[test]
    fn local_subscribers_see_everything_and_control_plane_sessions_their_filter() {
        let (tail, mut outgoing) = Tail::new();
        let mut local = tail.subscribe();
        tail.set_filters(vec![TailFilter {
            keys: Some(KeyFilter::Exact("a".into())),
            ..TailFilter::default()
        }]);
        for key in ["a", "b"] {
            let tag = tail
                .tag("t", key, Site::Method("m"))
                .expect("followed locally");
            tail.log("t", key, &tag, Level::Warn, key);
        }
        let seen: Vec<String> = std::iter::from_fn(|| local.events.try_recv().ok())
            .map(|e| e.key.clone())
            .collect();
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(outgoing.try_recv().expect("a matches").key, "a");
        assert!(outgoing.try_recv().is_err(), "b does not");
        drop(local);
        tail.set_filters(Vec::new());
        assert!(
            tail.tag("t", "a", Site::Method("m")).is_none(),
            "unsubscribed"
        );
    }

    #[test]
    fn a_full_outbox_drops_and_counts() {
        let (tail, _outgoing) = Tail::new();
        tail.set_filters(vec![TailFilter::default()]);
        let tag = tail.tag("t", "k", Site::Method("m")).expect("followed");
        for _ in 0..OUTBOX + 3 {
            tail.log("t", "k", &tag, Level::Debug, "x");
        }
        assert_eq!(tail.dropped.load(Ordering::Relaxed), 3);
    }
}
