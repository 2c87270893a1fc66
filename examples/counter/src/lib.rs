//! Example actor `counter`: a durable counter per key.
//!
//! | method | argument | answer |
//! |---|---|---|
//! | `get` | none | the value (`u64`) |
//! | `inc` | `by` (`u64`, default 1) | the new value, after adding `by` and storing it |
//! | `reset` | none | `null`; the value is 0 again |
//! | `version` | none | `{"release": …, "code_version": …}`: this build's label and content id |
//! | `upgraded_from` | none | the code version this actor was last upgraded from, or `null` |
//!
//! The value is kept in memory between calls and in storage under `n`. The upgrade hook records
//! the version it replaced under `upgraded-from`, in the same commit as the switch.
//!
//! Cargo features build the variants the upgrade tests deploy over one another: `v2` (only the
//! release label differs), `v3` (`inc` panics, so its calls trap) and `failing-upgrade` (the
//! upgrade hook refuses).

use latchkey_actor_sdk::{Actor, Context, Error, Result, export_actor, storage};
use serde::Serialize;

/// Where the value is stored.
const KEY: &str = "n";
/// Where the upgrade hook records the version it replaced.
const UPGRADED_FROM: &str = "upgraded-from";

/// This build's label.
const RELEASE: &str = if cfg!(feature = "v3") {
    "v3"
} else if cfg!(feature = "v2") {
    "v2"
} else if cfg!(feature = "failing-upgrade") {
    "failing-upgrade"
} else {
    "v1"
};

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

    fn upgrade(_ctx: &Context, previous: &str) -> Result<()> {
        if cfg!(feature = "failing-upgrade") {
            return Err(Error::failed(format!(
                "release {RELEASE} refuses to replace {previous}"
            )));
        }
        Ok(storage::put(UPGRADED_FROM, &previous)?)
    }
}

export_actor!(Counter {
    "get" => get,
    "inc" => inc,
    "reset" => reset,
    "version" => version,
    "upgraded_from" => upgraded_from,
});

/// The answer of `version`.
#[derive(Serialize)]
struct Version {
    release: &'static str,
    code_version: String,
}

impl Counter {
    fn get(&mut self, _ctx: &Context, _: ()) -> Result<u64> {
        Ok(self.n)
    }

    fn inc(&mut self, _ctx: &Context, by: Option<u64>) -> Result<u64> {
        if cfg!(feature = "v3") {
            panic!("release v3 cannot count");
        }
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

    fn version(&mut self, ctx: &Context, _: ()) -> Result<Version> {
        Ok(Version {
            release: RELEASE,
            code_version: ctx.code_version().to_owned(),
        })
    }

    fn upgraded_from(&mut self, _ctx: &Context, _: ()) -> Result<Option<String>> {
        Ok(storage::get(UPGRADED_FROM)?)
    }
}
