//! The `clock` host capability: wall-clock time in milliseconds, from the node's clock (`crate::ports::Clock`).

use super::HostState;
use crate::runtime::bindings::latchkey::actor::clock::Host;

impl Host for HostState {
    async fn now_millis(&mut self) -> u64 {
        self.actor.hosting.clock.unix_millis()
    }
}
