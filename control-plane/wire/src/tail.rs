//! Tailing actors (`latchkey tail`): the filter a tail session follows, the events edge nodes
//! send while someone follows, and the messages a tail client receives.
//!
//! The control plane computes a session's [`TailFilter`] from the request and the presented
//! token (never wider than the token), hands the filters of all sessions to every node
//! ([`TailInterest`]), and nodes send only the events some filter matches ([`TailBatch`]). The
//! control plane matches again per session before it passes an event on, so a session never sees
//! an event outside its own filter whatever a node sends. Both sides decide with
//! [`TailFilter::matches`].

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// Which keys a filter covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFilter {
    /// Exactly this key.
    Exact(String),
    /// Every key starting with this prefix.
    Prefix(String),
}

impl KeyFilter {
    /// Whether `key` is covered.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            KeyFilter::Exact(k) => k == key,
            KeyFilter::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

/// What a tail session follows. `None` in a field: any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailFilter {
    /// Only this actor type.
    pub actor_type: Option<String>,
    /// Only these keys.
    pub keys: Option<KeyFilter>,
    /// Only calls of these methods (hooks excluded).
    pub methods: Option<Vec<String>>,
}

impl TailFilter {
    /// Whether an event of actor `(actor_type, key)` from `call` passes.
    pub fn matches(&self, actor_type: &str, key: &str, call: &CallKind) -> bool {
        self.actor_type.as_deref().is_none_or(|t| t == actor_type)
            && self.keys.as_ref().is_none_or(|k| k.contains(key))
            && self.methods.as_ref().is_none_or(|methods| match call {
                CallKind::Method(m) => methods.iter().any(|allowed| allowed == m),
                CallKind::Activate | CallKind::Upgrade => false,
            })
    }

    /// Whether any of `filters` passes the event.
    pub fn any_matches(
        filters: &[TailFilter],
        actor_type: &str,
        key: &str,
        call: &CallKind,
    ) -> bool {
        filters.iter().any(|f| f.matches(actor_type, key, call))
    }
}

/// What produced an event: a call to a method, or a hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallKind {
    /// A call to this method.
    Method(String),
    /// `on-activate`, as an activation starts.
    Activate,
    /// `on-upgrade`, as a new version replaces the running one.
    Upgrade,
}

/// A guest log line's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

impl Level {
    /// The level's name, as in the JSON form (`info`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TailKind {
    /// The actor logged a line.
    Log {
        /// Its level.
        level: Level,
        /// The line (at most 4 KiB; longer lines are cut and say so).
        message: String,
    },
    /// A call (or hook) ended.
    Outcome {
        /// `None`: it succeeded; otherwise the error the caller got.
        error: Option<ErrorCode>,
        /// The error's message.
        message: Option<String>,
        /// How long it took on the node, in microseconds (commit included).
        micros: u64,
    },
}

/// One event as a node reports it (node API, postcard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailEvent {
    /// Node wall clock, Unix milliseconds.
    pub at_ms: u64,
    /// The actor's type.
    pub actor_type: String,
    /// The actor's key.
    pub key: String,
    /// Numbers the calls of one node process: an outcome and the lines logged before it share it.
    pub call_id: u64,
    /// What the call was.
    pub call: CallKind,
    /// What happened.
    pub kind: TailKind,
}

/// `GET /v1/nodes/{id}/tail?after={revision}&wait_ms={ms}`: a long-poll for the filters of every
/// tail session. The request travels in the query (no body). Answered at once when the revision
/// differs from `after`, else when it changes or the wait ends. Asking with `after = R` tells the
/// control plane the node applies revision `R`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailInterestRequest {
    /// The revision the node applies (`None`: none yet).
    pub after: Option<u64>,
    /// Longest the control plane waits for a change (`None`: its own longest wait).
    pub wait_ms: Option<u64>,
}

impl TailInterestRequest {
    /// The filters once their revision is not `after`, waiting up to `wait`.
    pub fn new(after: u64, wait: std::time::Duration) -> Self {
        TailInterestRequest {
            after: Some(after),
            wait_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// The answer to the tail long-poll: the filters of every tail session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailInterest {
    /// Counts every change of the set of sessions.
    pub revision: u64,
    /// One filter per session; empty: nobody follows, send nothing.
    pub filters: Vec<TailFilter>,
}

/// `POST /v1/nodes/{id}/tail`: events some filter matched (answered 204).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailBatch {
    /// The events, oldest first.
    pub events: Vec<TailEvent>,
    /// Events the node could not send since its last batch (its queue was full).
    pub dropped: u64,
}

/// Most events in one [`TailBatch`].
pub const MAX_TAIL_BATCH: usize = 512;

/// A line a tail client receives (admin API, JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailLine {
    /// The node that ran the call.
    pub node: String,
    /// Node wall clock, Unix milliseconds.
    pub at_ms: u64,
    /// The actor's type.
    pub actor_type: String,
    /// The actor's key.
    pub key: String,
    /// The call's number on its node (lines of one call share it).
    pub call_id: u64,
    /// The method called; absent for hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `activate` or `upgrade` for hooks; absent for calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub what: LineKind,
}

/// What a [`TailLine`] reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LineKind {
    /// A log line.
    Log {
        /// Its level.
        level: Level,
        /// The text.
        message: String,
    },
    /// A call's outcome.
    Outcome {
        /// `ok`, or the error code the caller got (`actor_failed`, `trapped`, …).
        outcome: String,
        /// The error's message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Time on the node, in microseconds.
        micros: u64,
    },
}

impl TailLine {
    /// The line a client receives for `event`, reported by `node`.
    pub fn from_event(node: &str, event: TailEvent) -> Self {
        let (method, hook) = match event.call {
            CallKind::Method(m) => (Some(m), None),
            CallKind::Activate => (None, Some("activate".to_owned())),
            CallKind::Upgrade => (None, Some("upgrade".to_owned())),
        };
        let what = match event.kind {
            TailKind::Log { level, message } => LineKind::Log { level, message },
            TailKind::Outcome {
                error,
                message,
                micros,
            } => LineKind::Outcome {
                outcome: error.map_or_else(|| "ok".to_owned(), |c| c.to_string()),
                message,
                micros,
            },
        };
        TailLine {
            node: node.to_owned(),
            at_ms: event.at_ms,
            actor_type: event.actor_type,
            key: event.key,
            call_id: event.call_id,
            method,
            hook,
            what,
        }
    }
}

/// One message of a tail stream (`GET /v1/tail`, server-sent events: each `data:` field holds
/// one of these as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TailMessage {
    /// The session started: what it follows, and the nodes live at that moment.
    Started {
        /// The session's filter (the request narrowed to the token).
        filter: TailFilter,
        /// Nodes whose lease was valid when the session started.
        live_nodes: Vec<String>,
    },
    /// `node` now sends this session's events (it applied the session's filter).
    Following {
        /// The node.
        node: String,
    },
    /// An event.
    Line(TailLine),
    /// Events lost: a node's queue or this session's was full.
    Dropped {
        /// Where they were lost: a node id, or `control-plane` for this session's queue.
        at: String,
        /// How many.
        count: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(m: &str) -> CallKind {
        CallKind::Method(m.to_owned())
    }

    #[test]
    fn a_filter_passes_only_what_every_field_allows() {
        let any = TailFilter::default();
        assert!(any.matches("counter", "k", &CallKind::Activate));
        let f = TailFilter {
            actor_type: Some("counter".into()),
            keys: Some(KeyFilter::Prefix("user/".into())),
            methods: Some(vec!["inc".into()]),
        };
        assert!(f.matches("counter", "user/1", &method("inc")));
        assert!(!f.matches("chat-room", "user/1", &method("inc")), "type");
        assert!(!f.matches("counter", "admin/1", &method("inc")), "key");
        assert!(!f.matches("counter", "user/1", &method("get")), "method");
        assert!(
            !f.matches("counter", "user/1", &CallKind::Activate),
            "a method-scoped filter shows no hooks"
        );
        let exact = TailFilter {
            keys: Some(KeyFilter::Exact("user/1".into())),
            ..TailFilter::default()
        };
        assert!(!exact.matches("counter", "user/10", &method("inc")));
        assert!(TailFilter::any_matches(
            &[f.clone(), exact],
            "x",
            "user/1",
            &method("get")
        ));
        assert!(!TailFilter::any_matches(&[], "x", "y", &method("get")));
    }

    #[test]
    fn lines_are_flat_json_for_scripts() {
        let event = TailEvent {
            at_ms: 7,
            actor_type: "counter".into(),
            key: "k".into(),
            call_id: 3,
            call: method("inc"),
            kind: TailKind::Outcome {
                error: Some(ErrorCode::Trapped),
                message: Some("boom".into()),
                micros: 12,
            },
        };
        let json = serde_json::to_value(TailMessage::Line(TailLine::from_event("n1", event)))
            .expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "event": "line", "node": "n1", "at_ms": 7, "actor_type": "counter", "key": "k",
                "call_id": 3, "method": "inc", "kind": "outcome", "outcome": "trapped",
                "message": "boom", "micros": 12
            })
        );
        let back: TailMessage = serde_json::from_value(json).expect("parses back");
        assert!(matches!(back, TailMessage::Line(l) if l.hook.is_none() && l.call_id == 3));
        let log = TailLine::from_event(
            "n1",
            TailEvent {
                at_ms: 1,
                actor_type: "t".into(),
                key: "k".into(),
                call_id: 1,
                call: CallKind::Activate,
                kind: TailKind::Log {
                    level: Level::Warn,
                    message: "hi".into(),
                },
            },
        );
        let json = serde_json::to_value(&log).expect("serialises");
        assert_eq!(json["hook"], "activate");
        assert_eq!(json["level"], "warn");
        assert!(json.get("method").is_none());
    }

    #[test]
    fn node_messages_round_trip_in_postcard() {
        let batch = TailBatch {
            events: vec![TailEvent {
                at_ms: 1,
                actor_type: "t".into(),
                key: "k".into(),
                call_id: 9,
                call: CallKind::Upgrade,
                kind: TailKind::Log {
                    level: Level::Info,
                    message: "m".into(),
                },
            }],
            dropped: 2,
        };
        let back: TailBatch = crate::decode(&crate::encode(&batch)).expect("decodes");
        assert_eq!(back, batch);
        let interest = TailInterest {
            revision: 4,
            filters: vec![TailFilter {
                keys: Some(KeyFilter::Exact("a/b".into())),
                ..TailFilter::default()
            }],
        };
        let back: TailInterest = crate::decode(&crate::encode(&interest)).expect("decodes");
        assert_eq!(back, interest);
    }
}
