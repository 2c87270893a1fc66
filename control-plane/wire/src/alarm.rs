//! Alarms (durable timers) on the wire, and their rules in one place for both sides: what one
//! call may set or cancel (the control plane checks it at commit; nodes do not send alarm changes
//! yet), how many an actor may hold, and when a failed alarm is to be tried again.
//!
//! An actor holds up to [`MAX_ALARMS_PER_ACTOR`] named alarms. Setting or cancelling one is part
//! of the call's commit ([`crate::node::CommitRequest::alarms`]): a call whose commit fails sets
//! and cancels nothing. Running due alarms is not built yet (issue #17); [`retry_delay_ms`] and
//! [`MAX_ALARM_ATTEMPTS`] are the rule it is to follow for an alarm that fails.

use serde::{Deserialize, Serialize};

/// Most alarms one actor may hold (Durable Objects allows one; Orleans reminders many).
pub const MAX_ALARMS_PER_ACTOR: usize = 1_000;
/// Longest alarm name, in bytes.
pub const MAX_ALARM_NAME_BYTES: usize = 256;
/// Largest alarm payload, in bytes.
pub const MAX_ALARM_PAYLOAD_BYTES: usize = 16 << 10;
/// Most alarm changes one call may make.
pub const MAX_ALARM_WRITES: usize = 1_000;
/// Attempts to run an alarm (the first and its retries) before it is given up and recorded.
pub const MAX_ALARM_ATTEMPTS: u32 = 6;
/// The first retry's delay; each further retry waits twice as long.
pub const FIRST_RETRY_MS: u64 = 2_000;

/// One alarm change of a call, applied with its commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmWrite {
    /// Sets (or replaces) alarm `name`, due at `at_ms` (Unix milliseconds), with `payload`.
    Set {
        /// The alarm's name, unique within the actor.
        name: String,
        /// When it is due, in milliseconds since the Unix epoch.
        at_ms: u64,
        /// What `on-alarm` receives.
        payload: Vec<u8>,
    },
    /// Cancels alarm `name` (nothing if there is none).
    Cancel(String),
}

impl AlarmWrite {
    /// The alarm this change is about.
    pub fn name(&self) -> &str {
        match self {
            AlarmWrite::Set { name, .. } | AlarmWrite::Cancel(name) => name,
        }
    }
}

/// An alarm as the control plane keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// Its name within the actor.
    pub name: String,
    /// When it is due next (Unix milliseconds): when it was set for, or its next retry.
    pub due_ms: u64,
    /// What `on-alarm` receives.
    pub payload: Vec<u8>,
    /// Attempts made so far (0 until it first runs).
    pub attempts: u32,
}

/// An alarm that is due, with the actor it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueAlarm {
    /// The actor's type.
    pub actor_type: String,
    /// The actor's key.
    pub key: String,
    /// The alarm.
    pub alarm: Alarm,
}

/// A call's alarm changes that break a limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlarmLimit {
    /// More changes than [`MAX_ALARM_WRITES`].
    #[error("a call changed {0} alarms; the limit is {MAX_ALARM_WRITES}")]
    TooManyWrites(usize),
    /// A name that is empty or longer than [`MAX_ALARM_NAME_BYTES`].
    #[error("alarm name is {0} bytes; it must be 1 to {MAX_ALARM_NAME_BYTES}")]
    Name(usize),
    /// A payload over [`MAX_ALARM_PAYLOAD_BYTES`].
    #[error("alarm payload is {0} bytes; the limit is {MAX_ALARM_PAYLOAD_BYTES}")]
    Payload(usize),
    /// The actor would hold more than [`MAX_ALARMS_PER_ACTOR`].
    #[error("the actor would hold {0} alarms; the limit is {MAX_ALARMS_PER_ACTOR}")]
    TooMany(usize),
}

/// Checks one call's alarm changes on their own (the per-actor count needs the store).
pub fn check_writes(writes: &[AlarmWrite]) -> Result<(), AlarmLimit> {
    if writes.len() > MAX_ALARM_WRITES {
        return Err(AlarmLimit::TooManyWrites(writes.len()));
    }
    for write in writes {
        let name = write.name().len();
        if name == 0 || name > MAX_ALARM_NAME_BYTES {
            return Err(AlarmLimit::Name(name));
        }
        if let AlarmWrite::Set { payload, .. } = write
            && payload.len() > MAX_ALARM_PAYLOAD_BYTES
        {
            return Err(AlarmLimit::Payload(payload.len()));
        }
    }
    Ok(())
}

/// How long to wait before attempt `attempts + 1` of an alarm that failed `attempts` times, or
/// `None` once it has had [`MAX_ALARM_ATTEMPTS`]: 2 s, 4 s, 8 s, 16 s, 32 s.
pub fn retry_delay_ms(attempts: u32) -> Option<u64> {
    if attempts == 0 || attempts >= MAX_ALARM_ATTEMPTS {
        return None;
    }
    Some(FIRST_RETRY_MS << (attempts - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, payload: usize) -> AlarmWrite {
        AlarmWrite::Set {
            name: name.into(),
            at_ms: 1,
            payload: vec![0; payload],
        }
    }

    #[test]
    fn limits_name_what_was_too_large() {
        assert_eq!(
            check_writes(&[set("a", 10), AlarmWrite::Cancel("b".into())]),
            Ok(())
        );
        assert_eq!(check_writes(&[set("", 0)]), Err(AlarmLimit::Name(0)));
        let long = "x".repeat(MAX_ALARM_NAME_BYTES + 1);
        assert_eq!(
            check_writes(&[AlarmWrite::Cancel(long)]),
            Err(AlarmLimit::Name(MAX_ALARM_NAME_BYTES + 1))
        );
        assert_eq!(
            check_writes(&[set("a", MAX_ALARM_PAYLOAD_BYTES + 1)]),
            Err(AlarmLimit::Payload(MAX_ALARM_PAYLOAD_BYTES + 1))
        );
        let many: Vec<_> = (0..=MAX_ALARM_WRITES)
            .map(|i| set(&i.to_string(), 0))
            .collect();
        assert_eq!(
            check_writes(&many),
            Err(AlarmLimit::TooManyWrites(MAX_ALARM_WRITES + 1))
        );
        let message = AlarmLimit::TooMany(1_001).to_string();
        assert!(
            message.contains("1001") && message.contains("1000"),
            "{message}"
        );
    }

    #[test]
    fn retries_back_off_exponentially_then_stop() {
        let delays: Vec<_> = (0..=MAX_ALARM_ATTEMPTS).map(retry_delay_ms).collect();
        assert_eq!(
            delays,
            [
                None,
                Some(2_000),
                Some(4_000),
                Some(8_000),
                Some(16_000),
                Some(32_000),
                None
            ]
        );
    }
}
