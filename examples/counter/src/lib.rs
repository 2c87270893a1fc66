//! Example actor `counter`: a durable counter per key.
//!
//! | method | argument | answer |
//! |---|---|---|
//! | `get` | none | the value (`u64`) |
//! | `inc` | `by` (`u64`, default 1) | the new value, after adding `by` and storing it |
//! | `reset` | none | `null`; the value is 0 again |
//!
//! The value is kept in memory between calls and in storage under `n`.

use latchkey_actor_sdk::{Actor, Context, Error, Result, export_actor, storage};

/// Where the value is stored.
const KEY: &str = "n";

/// The counter's in-memory state: its value, as stored.
struct Counter {
    n: u64,
}

impl Actor for Counter {
    fn activate(_ctx: &Context) -> Result<Self> {
        Ok(Self {
            n: storage::get(KEY)?.unwrap_or(0),
        })
    }
}

export_actor!(Counter {
    "get" => get,
    "inc" => inc,
    "reset" => reset,
});

impl Counter {
    fn get(&mut self, _ctx: &Context, _: ()) -> Result<u64> {
        Ok(self.n)
    }

    fn inc(&mut self, _ctx: &Context, by: Option<u64>) -> Result<u64> {
        let by = by.unwrap_or(1);
        let n = self
            .n
            .checked_add(by)
            .ok_or_else(|| Error::bad_request(format!("adding {by} to {} overflows", self.n)))?;
        storage::put(KEY, &n)?;
        self.n = n;
        Ok(n)
    }

    fn reset(&mut self, _ctx: &Context, _: ()) -> Result<()> {
        storage::delete(KEY)?;
        self.n = 0;
        Ok(())
    }
}
