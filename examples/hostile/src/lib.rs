//! Example actor `hostile`: misbehaves on request, so tests can show the host contains it.
//!
//! | method | what it does |
//! |---|---|
//! | `ok` | answers `"fine"` (the actor still works) |
//! | `count` | increments a stored counter and answers it |
//! | `trap` | panics (a trap) |
//! | `write_then_trap` | stores `count + 1000`, then panics: the write must not be committed |
//! | `spin` | loops forever (hits the CPU limit) |
//! | `bomb` | allocates until memory runs out (hits the memory limit) |
//! | `deep` | recurses until the stack overflows |

use latchkey_actor_sdk::{Actor, Context, Result, export_actor, storage};

/// No in-memory state.
struct Hostile;

impl Actor for Hostile {
    fn activate(_ctx: &Context) -> Result<Self> {
        Ok(Hostile)
    }
}

export_actor!(Hostile {
    "ok" => ok,
    "count" => count,
    "trap" => trap,
    "write_then_trap" => write_then_trap,
    "spin" => spin,
    "bomb" => bomb,
    "deep" => deep,
});

impl Hostile {
    fn ok(&mut self, _ctx: &Context, _: ()) -> Result<&'static str> {
        Ok("fine")
    }

    fn count(&mut self, _ctx: &Context, _: ()) -> Result<u64> {
        let n = storage::get::<u64>("count")?.unwrap_or(0) + 1;
        storage::put("count", &n)?;
        Ok(n)
    }

    fn trap(&mut self, _ctx: &Context, _: ()) -> Result<()> {
        panic!("deliberate trap")
    }

    fn write_then_trap(&mut self, _ctx: &Context, _: ()) -> Result<()> {
        let n = storage::get::<u64>("count")?.unwrap_or(0);
        storage::put("count", &(n + 1000))?;
        panic!("deliberate trap after a write")
    }

    fn spin(&mut self, _ctx: &Context, _: ()) -> Result<()> {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    fn bomb(&mut self, _ctx: &Context, _: ()) -> Result<()> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }

    fn deep(&mut self, _ctx: &Context, depth: Option<u64>) -> Result<u64> {
        Ok(recurse(depth.unwrap_or(0)))
    }
}

fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    if n == u64::MAX {
        return pad[0];
    }
    recurse(n + 1).wrapping_add(pad[1])
}
