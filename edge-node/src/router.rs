//! Routing a call to the single live instance of its actor: the local activation if this node
//! holds it, else the node the location cache names, else wherever the control plane places it.
//! Stale locations are retried through the control plane, a bounded number of times (the
//! decisions are [`crate::route::Route`]'s). Calls from HTTP clients, forwarded by other nodes,
//! and made by actors all take this path, and every one is checked with `caps` first.
//!
//! The router owns the activation table; activations never reach back into it. A call whose
//! activation ended (fenced, lost, retired) comes back here, and the router drops the
//! activation from the table.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use latchkey_caps::{AuthError, Verified};
use latchkey_wire::limits::MAX_COMMIT_BYTES;
use latchkey_wire::node::{Activation as Placed, EnsureActivationRequest};

use crate::activation::{Activation, Call};
use crate::auth::Auth;
use crate::error::CallError;
use crate::hosting::Hosting;
use crate::ports::{CallRequest, Calls, Peers};
use crate::route::{Flaw, Forwarded, Placement, Route};
use crate::table::{Remote, Table, actor_id};

/// Largest answer forwarded between nodes.
pub(crate) const MAX_RESPONSE: usize = MAX_COMMIT_BYTES * 8;

/// Limits the router applies to every call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Largest payload.
    pub(crate) max_payload: usize,
    /// Calls that may wait for one activation behind the one running.
    pub(crate) mailbox_size: usize,
    /// The router's planted mistake, if any (`assembly::Flaws`; none in a real node).
    pub(crate) route_flaw: Flaw,
}

/// Gets calls to their actors: token checks, the table of activations and locations, forwarding,
/// and placement by the control plane.
pub struct Router {
    node_id: String,
    auth: Arc<Auth>,
    pub(crate) table: Table,
    peers: Arc<dyn Peers>,
    pub(crate) hosting: Arc<Hosting>,
    limits: Limits,
}

impl Router {
    pub(crate) fn new(
        node_id: &str,
        auth: Arc<Auth>,
        table: Table,
        peers: Arc<dyn Peers>,
        hosting: Arc<Hosting>,
        limits: Limits,
    ) -> Self {
        Router {
            node_id: node_id.to_owned(),
            auth,
            table,
            peers,
            hosting,
            limits,
        }
    }

    /// Checks the token, then runs the call on the actor's single live instance.
    pub async fn call(&self, request: CallRequest) -> Result<Bytes, CallError> {
        let verified = self.authorize(&request)?;
        self.call_authorized(request, &verified).await
    }

    /// Verifies the call's token and authorizes the call with it (the payload plays no part).
    pub(crate) fn authorize(&self, request: &CallRequest) -> Result<Arc<Verified>, CallError> {
        match self.auth.authorize_call(
            &request.token,
            &request.actor_type,
            &request.key,
            &request.method,
            request.presenter.as_deref(),
        ) {
            Ok(verified) => Ok(verified),
            // Checked only when a token fails, to keep the call path to one lock: before the
            // trusted keys are loaded no token can be judged, so the answer is "retry".
            Err(AuthError::Invalid(_)) if !self.auth.has_keys() => Err(CallError::Unavailable(
                "this node has not loaded the trusted issuer keys yet; retry".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a call whose token [`Router::authorize`] accepted (as `verified`).
    pub(crate) async fn call_authorized(
        &self,
        request: CallRequest,
        verified: &Verified,
    ) -> Result<Bytes, CallError> {
        let max = self.limits.max_payload;
        if request.payload.len() > max {
            return Err(CallError::TooLarge(format!(
                "payload is {} bytes; the limit is {max}",
                request.payload.len()
            )));
        }
        let caller = Some(verified.token_id_text().to_owned());
        let id = actor_id(&request.actor_type, &request.key);
        let actor = (request.actor_type.as_str(), request.key.as_str());
        let mut route = Route::with_flaw(request.forwarded, self.limits.route_flaw);
        loop {
            let epoch = route.attempt(self.hosting.lease.valid_epoch(), actor)?;
            // 1. Here.
            if let Some(admitted) = self.table.admit_local(&id, epoch, self.limits.mailbox_size) {
                return self.run_here(&id, admitted?, &request, caller).await;
            }
            // 2. Where it was last seen.
            if route.may_forward()
                && let Some(remote) = self.table.location(&id)
            {
                let result = self.peers.forward(&remote, &request).await;
                match route.forwarded(result) {
                    Forwarded::Answer(result) => return result,
                    Forwarded::Retry => {
                        self.table.forget_location(&id);
                        continue;
                    }
                }
            }
            // 3. Wherever the control plane says.
            let placement = self.ensure(&request, caller.clone()).await?;
            self.placed(&mut route, &id, placement)?;
        }
    }

    /// Runs the call on the local activation; an activation the call found ended leaves the
    /// table (the next call asks the control plane where the actor lives).
    async fn run_here(
        &self,
        id: &str,
        admitted: crate::activation::Admitted,
        request: &CallRequest,
        caller: Option<String>,
    ) -> Result<Bytes, CallError> {
        let call = Call {
            method: request.method.clone(),
            payload: request.payload.clone(),
            caller,
            deadline: request.deadline,
        };
        let result = admitted.run(call).await;
        if result.is_err() {
            self.table.remove_ended(id);
        }
        result
    }

    /// Asks the control plane where the actor lives (placing it if it lives nowhere).
    async fn ensure(
        &self,
        request: &CallRequest,
        token_id: Option<String>,
    ) -> Result<Placed, CallError> {
        let ensure = EnsureActivationRequest {
            actor_type: request.actor_type.clone(),
            key: request.key.clone(),
            region_hint: None,
            token_id,
        };
        let asked = self.hosting.cp.ensure_activation(&ensure);
        match tokio::time::timeout_at(request.deadline, asked).await {
            Ok(placed) => placed.map_err(CallError::from_client),
            Err(_) => Err(CallError::Timeout(
                "the control plane did not place the actor before the call's deadline".into(),
            )),
        }
    }

    /// The epoch in which this node can answer `(actor_type, key)` from an instance's memory
    /// now, if it can: its lease is valid, and the table holds a live activation of that epoch
    /// with an instance (or a call running on it). For the simulation's check that no two
    /// nodes can.
    #[doc(hidden)]
    pub fn serving(&self, actor_type: &str, key: &str) -> Option<u64> {
        let epoch = self.hosting.lease.valid_epoch()?;
        self.table
            .serving(&actor_id(actor_type, key), epoch)
            .then_some(epoch)
    }

    /// The node's lease (for the simulation's report of what each node holds).
    #[doc(hidden)]
    pub fn lease(&self) -> crate::lease::LeaseState {
        self.hosting.lease.state()
    }

    /// Records what the control plane answered, as [`Route::placed`] decides.
    fn placed(&self, route: &mut Route, id: &str, placement: Placed) -> Result<(), CallError> {
        let draining = || self.table.draining(id, &placement.generation);
        match route.placed(&self.node_id, &placement, draining) {
            Placement::Activate => self
                .table
                .insert_local(id.to_owned(), || Activation::new(&self.hosting, placement)),
            Placement::Locate => {
                let remote = Remote {
                    node_id: placement.node_id,
                    address: placement.node_address,
                    generation: placement.generation,
                };
                self.table.set_location(id.to_owned(), remote);
            }
            Placement::Again => {}
            Placement::Fail(e) => return Err(e),
        }
        Ok(())
    }
}

#[async_trait]
impl Calls for Router {
    async fn call(&self, request: CallRequest) -> Result<Bytes, CallError> {
        Router::call(self, request).await
    }
}
