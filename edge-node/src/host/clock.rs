//! The `clock` host capability: wall-clock time in milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use super::HostState;
use crate::runtime::bindings::latchkey::actor::clock::Host;

impl Host for HostState {
    async fn now_millis(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}
