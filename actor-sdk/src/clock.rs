//! Wall-clock time, from the host.

use crate::__bindings::latchkey::actor::clock as raw;

/// Milliseconds since the Unix epoch, by the host's wall clock (it may step backwards).
pub fn now_millis() -> u64 {
    raw::now_millis()
}
