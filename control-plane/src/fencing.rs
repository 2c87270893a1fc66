//! The activation-fencing protocol's decisions, as pure functions of explicit inputs (the
//! current store version, the records read, the lease settings). The registry's transactions
//! read records, call these, and write what they return; model checking and simulation call them
//! directly.
//!
//! The protocol follows `../shared/reference/activation-fencing-design.txt` with its fix:
//! - A node's lease lasts `ttl` versions from the commit version of its last heartbeat.
//! - A heartbeat that arrives after the lease expired starts a new **epoch**; so does every
//!   registration. Activations placed in an older epoch are dead: the node must drop them, and
//!   the control plane fences their reads and commits.
//! - An activation is live only while its node's lease is valid and the node's epoch is the one
//!   it was placed in; otherwise it may be placed again, with a new generation.
//! - A read or commit is accepted only if the activation record still names the presenting
//!   node, its epoch and the generation, and that node's lease is valid and epoch unchanged.

use latchkey_wire::lease::{LeaseSettings, valid_at};

/// What the registry knows of a node's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeLease {
    /// Current epoch.
    pub epoch: u64,
    /// Commit version of the last heartbeat (or registration).
    pub last_heartbeat: u64,
    /// Successive heartbeats without a lapse.
    pub streak: u32,
}

impl NodeLease {
    /// Whether the lease is valid at version `now`.
    pub fn is_live(&self, now: u64, settings: &LeaseSettings) -> bool {
        valid_at(self.last_heartbeat, settings.ttl_versions, now)
    }

    /// Whether the node may receive new placements at `now`.
    pub fn is_eligible(&self, now: u64, settings: &LeaseSettings) -> bool {
        self.is_live(now, settings) && self.streak >= settings.min_heartbeats
    }
}

/// Why a registration was refused: the node id still holds a live lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "this node id holds a live lease until version {until} (now {now}); a new registration is accepted once it has expired"
)]
pub struct LeaseStillLive {
    /// Last version of the live lease.
    pub until: u64,
    /// The version of the attempt.
    pub now: u64,
}

/// A node's epoch and streak after a (re)registration at version `now`. A registration starts a
/// new epoch, fencing off whatever an earlier process with this id held, but only once the
/// previous lease has expired: while it is live, the process holding it (or a registration of
/// its own that arrived late) may still serve from memory, so the epoch must not change under
/// it. The simulation in `tests/correctness` found the case: a registration that timed out at the
/// node but reached the control plane later bumped the epoch of a running node, whose actors
/// were then placed elsewhere while it still answered reads from memory.
pub fn register(
    previous: Option<&NodeLease>,
    now: u64,
    settings: &LeaseSettings,
) -> Result<(u64, u32), LeaseStillLive> {
    match previous {
        Some(p) if p.is_live(now, settings) => Err(LeaseStillLive {
            until: p.last_heartbeat.saturating_add(settings.ttl_versions),
            now,
        }),
        Some(p) => Ok((p.epoch + 1, 0)),
        None => Ok((1, 0)),
    }
}

/// The outcome of a heartbeat read at version `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    /// Epoch from now on.
    pub epoch: u64,
    /// Streak from now on.
    pub streak: u32,
    /// Whether the lease had lapsed (so the epoch changed).
    pub lapsed: bool,
}

/// A heartbeat of a registered node, arriving at read version `now`. If the lease had expired, the
/// node was considered dead for a while: a new epoch begins (the reference design's fix).
pub fn heartbeat(previous: &NodeLease, now: u64, settings: &LeaseSettings) -> HeartbeatOutcome {
    if previous.is_live(now, settings) {
        HeartbeatOutcome {
            epoch: previous.epoch,
            streak: previous.streak.saturating_add(1),
            lapsed: false,
        }
    } else {
        HeartbeatOutcome {
            epoch: previous.epoch + 1,
            streak: 1,
            lapsed: true,
        }
    }
}

/// Why an activation is no longer live.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// Its node is not registered.
    #[error("node `{0}` is not registered")]
    NodeUnknown(String),
    /// Its node started a new epoch since the placement.
    #[error("node epoch changed from {placed} to {current}")]
    EpochChanged {
        /// Epoch at placement.
        placed: u64,
        /// Node's epoch now.
        current: u64,
    },
    /// Its node's lease expired.
    #[error("node lease expired (last heartbeat at version {last_heartbeat}, now {now})")]
    LeaseExpired {
        /// Commit version of the node's last heartbeat.
        last_heartbeat: u64,
        /// The version of the check.
        now: u64,
    },
}

/// Whether an activation placed on `node_id` in `placed_epoch` is live at `now`, given the node's
/// lease (`None` if the node is unknown).
pub fn activation_live(
    node_id: &str,
    placed_epoch: u64,
    owner: Option<&NodeLease>,
    now: u64,
    settings: &LeaseSettings,
) -> Result<(), Stale> {
    let owner = owner.ok_or_else(|| Stale::NodeUnknown(node_id.to_owned()))?;
    if owner.epoch != placed_epoch {
        return Err(Stale::EpochChanged {
            placed: placed_epoch,
            current: owner.epoch,
        });
    }
    if !owner.is_live(now, settings) {
        return Err(Stale::LeaseExpired {
            last_heartbeat: owner.last_heartbeat,
            now,
        });
    }
    Ok(())
}

/// The placement an activation record holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement<'a> {
    /// Node holding the activation.
    pub node_id: &'a str,
    /// Its epoch at placement.
    pub node_epoch: u64,
    /// Placement versionstamp.
    pub generation: [u8; 10],
}

/// Why a read or commit was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FenceRejection {
    /// The actor has no activation.
    #[error("the actor has no activation")]
    NotActivated,
    /// The actor is activated on another node.
    #[error("the actor is activated on node `{owner}`")]
    OtherNode {
        /// Its node now.
        owner: String,
    },
    /// The actor was placed again (on this node, in a later epoch or generation).
    #[error("the activation was replaced (generation {current}, presented {presented})")]
    Replaced {
        /// Current generation (hex).
        current: String,
        /// Presented generation (hex).
        presented: String,
    },
    /// The presenting activation's node epoch or lease is no longer valid.
    #[error("{0}")]
    Stale(#[from] Stale),
}

/// Whether node `presenter`, holding an activation of `epoch` and `generation`, may read or
/// commit the actor's state at `now`, given the activation record and the node's lease.
pub fn check_fence(
    record: Option<&Placement<'_>>,
    presenter: &str,
    epoch: u64,
    generation: &[u8; 10],
    presenter_lease: Option<&NodeLease>,
    now: u64,
    settings: &LeaseSettings,
) -> Result<(), FenceRejection> {
    let record = record.ok_or(FenceRejection::NotActivated)?;
    if record.node_id != presenter {
        return Err(FenceRejection::OtherNode {
            owner: record.node_id.to_owned(),
        });
    }
    if record.node_epoch != epoch || &record.generation != generation {
        return Err(FenceRejection::Replaced {
            current: hex::encode(record.generation),
            presented: hex::encode(generation),
        });
    }
    activation_live(presenter, epoch, presenter_lease, now, settings)?;
    Ok(())
}

/// A node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Node id.
    pub id: &'a str,
    /// Region.
    pub region: &'a str,
    /// Lease.
    pub lease: NodeLease,
    /// Its region's placement weight (0: the region takes no new placements).
    pub weight: u32,
}

/// Where to place an actor that has no live activation: the requesting node if it is eligible,
/// in the hinted region and its region's weight is not 0; otherwise an eligible node of the
/// hinted region (any region if the hint has none, or there is no hint), chosen by weighted
/// rendezvous hashing on the actor, so the choice is stable, spread, and each region receives a
/// share of placements proportional to its weight. Nodes of weight-0 regions take no new
/// placements. `None` if no node is eligible.
pub fn choose_node<'a>(
    requester: &str,
    actor_type: &str,
    key: &str,
    region_hint: Option<&str>,
    candidates: &'a [Candidate<'a>],
    now: u64,
    settings: &LeaseSettings,
) -> Option<&'a Candidate<'a>> {
    let eligible = || {
        candidates
            .iter()
            .filter(|c| c.weight > 0 && c.lease.is_eligible(now, settings))
    };
    let in_region = |c: &&Candidate<'_>| region_hint.is_none_or(|r| c.region == r);
    if let Some(me) = eligible().find(|c| c.id == requester)
        && in_region(&me)
    {
        return Some(me);
    }
    let score = |c: &&Candidate<'_>| weighted_score(rendezvous(actor_type, key, c.id), c.weight);
    let best = |a: &&Candidate<'_>, b: &&Candidate<'_>| score(a).total_cmp(&score(b));
    eligible()
        .filter(in_region)
        .max_by(best)
        .or_else(|| eligible().max_by(best))
}

/// A stable pseudo-random score of (actor, node): FNV-1a over the three strings.
fn rendezvous(actor_type: &str, key: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [actor_type, key, node] {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // FNV's high bits mix poorly for short inputs: finish with a 64-bit avalanche (splitmix64).
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Weighted rendezvous hashing: `-weight / ln(u)` for `u` uniform in (0, 1) makes the highest
/// score land on each node with probability proportional to its weight.
fn weighted_score(hash: u64, weight: u32) -> f64 {
    #[allow(clippy::cast_precision_loss)] // 53 bits of the hash are plenty
    let u = ((hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight) / u.ln()
}

/// Whether an activation record placed at version `placed_at` (its generation) on a node in
/// `placed_epoch` may be deleted at `now` as idle: the placement is not live (so no instance of
/// it can read or commit again: its node has stopped serving it by its own clock), it was made
/// at least `idle` versions ago, and, when its node's lease expired in the placement's epoch
/// (the one case the registry knows when a placement ended), that expiry is `idle` ago too.
///
/// Deleting a record never lets a generation be reused: generations are commit versionstamps,
/// and store versions never go backwards, so a later placement's generation is greater than any
/// before; an old instance presenting its fence finds no record, or one of another generation.
pub fn collectable(
    placed_at: u64,
    placed_epoch: u64,
    owner: Option<&NodeLease>,
    now: u64,
    idle: u64,
    settings: &LeaseSettings,
) -> bool {
    let old = |since: u64| since.saturating_add(idle) <= now;
    if activation_live("", placed_epoch, owner, now, settings).is_ok() || !old(placed_at) {
        return false;
    }
    match owner {
        Some(lease) if lease.epoch == placed_epoch => {
            old(lease.last_heartbeat.saturating_add(settings.ttl_versions))
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_placements_dead_for_the_idle_time_are_collectable() {
        let live = lease(1, 1_000, 5);
        // Live: never, however old.
        assert!(!collectable(0, 1, Some(&live), 1_050, 10, &S));
        // Lease expired in the placement's epoch at 1,100: collectable from 1,110 on.
        assert!(!collectable(0, 1, Some(&live), 1_109, 10, &S));
        assert!(collectable(0, 1, Some(&live), 1_110, 10, &S));
        // Placed too recently, although dead.
        assert!(!collectable(1_105, 1, Some(&live), 1_110, 10, &S));
        // The node moved to another epoch (or is unknown): dead; old enough by its placement.
        let moved = lease(2, 1_100, 5);
        assert!(collectable(0, 1, Some(&moved), 1_150, 10, &S));
        assert!(!collectable(1_145, 1, Some(&moved), 1_150, 10, &S));
        assert!(collectable(0, 1, None, 20, 10, &S));
    }

    const S: LeaseSettings = LeaseSettings {
        ttl_versions: 100,
        heartbeat_interval_ms: 10,
        min_heartbeats: 2,
    };

    fn lease(epoch: u64, last_heartbeat: u64, streak: u32) -> NodeLease {
        NodeLease {
            epoch,
            last_heartbeat,
            streak,
        }
    }

    #[test]
    fn heartbeats_extend_until_a_lapse_starts_a_new_epoch() {
        let l = lease(3, 1_000, 5);
        assert_eq!(
            heartbeat(&l, 1_100, &S),
            HeartbeatOutcome {
                epoch: 3,
                streak: 6,
                lapsed: false
            }
        );
        assert_eq!(
            heartbeat(&l, 1_101, &S),
            HeartbeatOutcome {
                epoch: 4,
                streak: 1,
                lapsed: true
            }
        );
        assert_eq!(register(Some(&l), 1_101, &S), Ok((4, 0)));
        assert_eq!(
            register(Some(&l), 1_100, &S),
            Err(LeaseStillLive {
                until: 1_100,
                now: 1_100
            }),
            "a live lease is never cut short by a registration"
        );
        assert_eq!(register(None, 5, &S), Ok((1, 0)));
    }

    #[test]
    fn eligibility_needs_a_live_lease_and_a_streak() {
        assert!(!lease(1, 1_000, 1).is_eligible(1_050, &S));
        assert!(lease(1, 1_000, 2).is_eligible(1_050, &S));
        assert!(!lease(1, 1_000, 9).is_eligible(1_101, &S));
    }

    /// The reference design's bug: node A misses heartbeats, the actor moves to B, then A's late
    /// heartbeat arrives. With epochs, A's activation can neither be served nor commit.
    #[test]
    fn a_late_heartbeat_cannot_revive_a_moved_activation() {
        let gen_a = [1; 10];
        let a_before = lease(1, 1_000, 5);
        // At 1_200 A's lease has expired: the activation placed on A in epoch 1 is stale ...
        assert!(matches!(
            activation_live("a", 1, Some(&a_before), 1_200, &S),
            Err(Stale::LeaseExpired { .. })
        ));
        // ... so it is placed on B (a new record and generation).
        let gen_b = [2; 10];
        let moved = Placement {
            node_id: "b",
            node_epoch: 7,
            generation: gen_b,
        };
        // A's heartbeat arrives late: its epoch changes.
        let hb = heartbeat(&a_before, 1_250, &S);
        assert!(hb.lapsed);
        let a_after = lease(hb.epoch, 1_250, hb.streak);
        // A's old activation cannot commit: the record names B ...
        assert_eq!(
            check_fence(Some(&moved), "a", 1, &gen_a, Some(&a_after), 1_260, &S),
            Err(FenceRejection::OtherNode { owner: "b".into() })
        );
        // ... and even had the actor stayed on A, the old epoch is dead.
        let stayed = Placement {
            node_id: "a",
            node_epoch: 1,
            generation: gen_a,
        };
        assert_eq!(
            check_fence(Some(&stayed), "a", 1, &gen_a, Some(&a_after), 1_260, &S),
            Err(FenceRejection::Stale(Stale::EpochChanged {
                placed: 1,
                current: 2
            }))
        );
        // Without the epoch rule (the bug), the late heartbeat would have looked like a renewal:
        // the record check alone passes for an activation that is not on another node yet.
        assert!(activation_live("a", 2, Some(&a_after), 1_260, &S).is_ok());
    }

    #[test]
    fn fence_checks_each_field() {
        let g = [5; 10];
        let p = Placement {
            node_id: "a",
            node_epoch: 2,
            generation: g,
        };
        let live = lease(2, 1_000, 3);
        assert_eq!(
            check_fence(Some(&p), "a", 2, &g, Some(&live), 1_050, &S),
            Ok(())
        );
        assert_eq!(
            check_fence(None, "a", 2, &g, Some(&live), 1_050, &S),
            Err(FenceRejection::NotActivated)
        );
        assert!(matches!(
            check_fence(Some(&p), "a", 2, &[6; 10], Some(&live), 1_050, &S),
            Err(FenceRejection::Replaced { .. })
        ));
        assert!(matches!(
            check_fence(Some(&p), "a", 2, &g, Some(&live), 1_101, &S),
            Err(FenceRejection::Stale(Stale::LeaseExpired { .. }))
        ));
        assert!(matches!(
            check_fence(Some(&p), "a", 2, &g, None, 1_050, &S),
            Err(FenceRejection::Stale(Stale::NodeUnknown(_)))
        ));
    }

    #[test]
    fn placement_prefers_the_requester_then_the_region_then_anyone() {
        let c = |id, region, streak| Candidate {
            id,
            region,
            lease: lease(1, 1_000, streak),
            weight: 100,
        };
        let nodes = [
            c("a", "eu", 5),
            c("b", "us", 5),
            c("c", "us", 5),
            c("d", "eu", 0),
        ];
        let pick = |req, hint| choose_node(req, "t", "k", hint, &nodes, 1_050, &S).map(|c| c.id);
        assert_eq!(pick("a", None), Some("a"));
        assert_eq!(pick("a", Some("eu")), Some("a"));
        let us = pick("a", Some("us"));
        assert!(us == Some("b") || us == Some("c"));
        assert_eq!(pick("a", Some("us")), us, "stable choice");
        // d is not eligible yet (streak 0): placement goes to an eligible eu node.
        assert_eq!(pick("d", Some("eu")), Some("a"));
        assert!(
            pick("x", Some("mars")).is_some(),
            "a hint with no node falls back"
        );
        assert_eq!(choose_node("a", "t", "k", None, &nodes, 9_999, &S), None);
    }

    #[test]
    fn region_weights_share_placements_and_zero_drains_a_region() {
        let c = |id, region, weight| Candidate {
            id,
            region,
            lease: lease(1, 1_000, 5),
            weight,
        };
        let nodes = [
            c("a1", "a", 100),
            c("a2", "a", 100),
            c("b1", "b", 300),
            c("b2", "b", 300),
            c("z1", "z", 0),
        ];
        let mut in_b = 0;
        for i in 0..4_000 {
            let key = format!("k{i}");
            let chosen = choose_node("outsider", "t", &key, None, &nodes, 1_050, &S).unwrap();
            assert_ne!(chosen.region, "z", "a weight-0 region takes no placements");
            in_b += usize::from(chosen.region == "b");
        }
        // Weights 200 : 600 send three quarters of placements to region b.
        assert!((2_800..3_200).contains(&in_b), "{in_b} of 4000 in b");
        // A requester in a drained region is not chosen, even for itself.
        let own = choose_node("z1", "t", "k", None, &nodes, 1_050, &S).unwrap();
        assert_ne!(own.id, "z1");
        // Nothing but drained regions: nowhere to place.
        assert_eq!(
            choose_node("z1", "t", "k", None, &nodes[4..], 1_050, &S),
            None
        );
    }
}
