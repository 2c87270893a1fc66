//! The `log` host capability: guest log lines become `tracing` events tagged with the actor, and
//! tail events while someone follows the actor.

use super::HostState;
use crate::runtime::bindings::latchkey::actor::log::{Host, Level};

/// Longest message kept; longer ones are cut (and say so).
const MAX_MESSAGE: usize = 4096;

impl Host for HostState {
    async fn log(&mut self, level: Level, mut message: String) {
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" …(truncated)");
        }
        if matches!(level, Level::Error) {
            self.actor.last_error = Some(message.clone());
        }
        let fence = &self.actor.fence;
        let (t, k) = (fence.actor_type.as_str(), fence.key.as_str());
        if let Some(call) = &self.actor.call {
            self.actor.tail.log(t, k, call, tail_level(level), &message);
        }
        match level {
            Level::Trace => tracing::trace!(target: "actor", actor_type = t, key = k, "{message}"),
            Level::Debug => tracing::debug!(target: "actor", actor_type = t, key = k, "{message}"),
            Level::Info => tracing::info!(target: "actor", actor_type = t, key = k, "{message}"),
            Level::Warn => tracing::warn!(target: "actor", actor_type = t, key = k, "{message}"),
            Level::Error => tracing::error!(target: "actor", actor_type = t, key = k, "{message}"),
        }
    }
}

fn tail_level(level: Level) -> latchkey_wire::tail::Level {
    use latchkey_wire::tail::Level as Tail;
    match level {
        Level::Trace => Tail::Trace,
        Level::Debug => Tail::Debug,
        Level::Info => Tail::Info,
        Level::Warn => Tail::Warn,
        Level::Error => Tail::Error,
    }
}
