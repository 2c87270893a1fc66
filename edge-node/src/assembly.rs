//! A node's layers built over given ports: the router, its table, and what activations share
//! ([`Hosting`]). The one place they are wired — the edge node builds itself with it over HTTP
//! and the system clock, the simulation over its own network and clocks, so both run the same
//! router, activation and instance code.

use std::num::NonZeroUsize;
use std::sync::{Arc, Weak};

use latchkey_wire::tail::TailEvent;
use tokio::sync::mpsc;

use crate::auth::Auth;
use crate::config::NodeConfig;
use crate::deployments::Deployments;
use crate::hosting::{Hosting, Shared};
use crate::lease::Lease;
use crate::outcomes::Outcomes;
use crate::ports::{Calls, Clock, ControlPlane, Peers};
use crate::protocol::CommitFlaw;
use crate::route::Flaw;
use crate::router::{Limits, Router};
use crate::runtime::Runtime;
use crate::table::Table;
use crate::tail::Tail;

/// Remote actor locations a node remembers.
const MAX_LOCATIONS: usize = 100_000;

/// The ports a node's layers sit on.
pub struct Ports {
    /// The control plane.
    pub control_plane: Arc<dyn ControlPlane>,
    /// Other nodes.
    pub peers: Arc<dyn Peers>,
    /// Every clock the node reads.
    pub clock: Arc<dyn Clock>,
    /// Token and node-signature checks (on the same clock).
    pub auth: Arc<Auth>,
    /// wasmtime.
    pub runtime: Arc<Runtime>,
}

/// Deliberate mistakes planted in the node's real router and output gate, to show that the
/// simulation catches them. A node always runs the default (none).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Flaws {
    /// In the router's decisions ([`crate::route::Route`]).
    pub route: Flaw,
    /// In the output gate's ([`crate::protocol::Commit`]).
    pub commit: CommitFlaw,
}

/// What the node's own loops need besides the router.
pub(crate) struct Extras {
    pub(crate) deployments: Arc<Deployments>,
    pub(crate) outcomes: Arc<Outcomes>,
    pub(crate) tail: Arc<Tail>,
    pub(crate) tail_outgoing: mpsc::Receiver<TailEvent>,
}

/// The router of node `config.node_id` (and its table and activations) over `ports`, with the
/// limits `config` sets.
pub fn router(config: &NodeConfig, ports: Ports, flaws: Flaws) -> Arc<Router> {
    build(config, ports, flaws).0
}

/// The router, and the parts the node's loops share with it.
pub(crate) fn build(config: &NodeConfig, ports: Ports, flaws: Flaws) -> (Arc<Router>, Extras) {
    let Ports {
        control_plane,
        peers,
        clock,
        auth,
        runtime,
    } = ports;
    let lease = Arc::new(Lease::new(Arc::clone(&clock)));
    let deployments = Arc::new(Deployments::default());
    let outcomes = Arc::new(Outcomes::default());
    let (tail, tail_outgoing) = Tail::new();
    let router = Arc::new_cyclic(|router: &Weak<Router>| {
        let calls: Weak<dyn Calls> = router.clone();
        let hosting = Arc::new(Hosting {
            cp: control_plane,
            clock,
            lease,
            runtime,
            deployments: Arc::clone(&deployments),
            outcomes: Arc::clone(&outcomes),
            tail: Arc::clone(&tail),
            calls,
            call_timeout: config.call_timeout,
            commit_flaw: flaws.commit,
            shared: Shared::default(),
        });
        Router::new(
            &config.node_id,
            auth,
            Table::new(
                config.max_activations,
                NonZeroUsize::new(MAX_LOCATIONS).expect("nonzero"),
            ),
            peers,
            hosting,
            Limits {
                max_payload: config.max_payload,
                mailbox_size: config.mailbox_size,
                route_flaw: flaws.route,
            },
        )
    });
    let extras = Extras {
        deployments,
        outcomes,
        tail,
        tail_outgoing,
    };
    (router, extras)
}
