//! Routing a call to the single live instance of its actor: the local activation if this node
//! holds it, else the node the location cache names, else wherever the control plane places it.
//! Stale locations are retried through the control plane, a bounded number of times (the
//! decisions are [`crate::route::Route`]'s). Calls from
//! HTTP clients, forwarded by other nodes, and made by actors all take this path, and every one
//! is checked with `caps` first.

use std::sync::Arc;

use bytes::Bytes;
use latchkey_caps::{AuthError, Verified};
use latchkey_wire::limits::MAX_COMMIT_BYTES;
use latchkey_wire::node::EnsureActivationRequest;
use tokio::time::Instant;

use crate::activation::{Activation, Call};
use crate::error::CallError;
use crate::node::NodeInner;
use crate::route::{Forwarded, Placement, Route};
use crate::table::{Remote, actor_id};

/// A call on its way to an actor.
#[derive(Clone, Debug)]
pub struct CallRequest {
    /// Actor type.
    pub actor_type: String,
    /// Actor key.
    pub key: String,
    /// Method.
    pub method: String,
    /// Payload (JSON by convention).
    pub payload: Bytes,
    /// The caller's token, as presented.
    pub token: Bytes,
    /// Who presents it (`actor:{type}/{key}` for actors; `None` for HTTP clients).
    pub presenter: Option<String>,
    /// When the call must have finished.
    pub deadline: Instant,
    /// Whether another node forwarded it here (it is not forwarded again).
    pub forwarded: bool,
}

impl NodeInner {
    /// Checks the token, then runs the call on the actor's single live instance.
    pub async fn call(self: &Arc<Self>, request: CallRequest) -> Result<Bytes, CallError> {
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

    /// Runs a call whose token [`NodeInner::authorize`] accepted (as `verified`).
    pub(crate) async fn call_authorized(
        self: &Arc<Self>,
        request: CallRequest,
        verified: &Verified,
    ) -> Result<Bytes, CallError> {
        let max = self.config.max_payload;
        if request.payload.len() > max {
            return Err(CallError::TooLarge(format!(
                "payload is {} bytes; the limit is {max}",
                request.payload.len()
            )));
        }
        let caller = Some(verified.token_id_text().to_owned());
        let id = actor_id(&request.actor_type, &request.key);
        let actor = (request.actor_type.as_str(), request.key.as_str());
        let mut route = Route::new(request.forwarded);
        loop {
            let epoch = route.attempt(self.lease.valid_epoch(), actor)?;
            // 1. Here.
            if let Some(admitted) = self.table.admit_local(&id, epoch, self.config.mailbox_size) {
                let call = Call {
                    method: request.method.clone(),
                    payload: request.payload.clone(),
                    caller: caller.clone(),
                    deadline: request.deadline,
                };
                return admitted?.run(call).await;
            }
            // 2. Where it was last seen.
            if route.may_forward()
                && let Some(remote) = self.table.location(&id)
            {
                let result = self.forwarder.forward(self, &remote, &request).await;
                match route.forwarded(result) {
                    Forwarded::Answer(result) => return result,
                    Forwarded::Retry => {
                        self.table.forget_location(&id);
                        continue;
                    }
                }
            }
            // 3. Wherever the control plane says.
            let ensure = EnsureActivationRequest {
                actor_type: request.actor_type.clone(),
                key: request.key.clone(),
                region_hint: None,
                token_id: caller.clone(),
            };
            let placement = self
                .cp
                .ensure_activation(&self.config.node_id, &ensure)
                .await
                .map_err(CallError::from_client)?;
            let me = &self.config.node_id;
            match route.placed(me, &placement, || {
                self.table.draining(&id, &placement.generation)
            }) {
                Placement::Activate => self
                    .table
                    .insert_local(id.clone(), || Activation::new(self, placement)),
                Placement::Locate => {
                    let remote = Remote {
                        node_id: placement.node_id,
                        address: placement.node_address,
                        generation: placement.generation,
                    };
                    self.table.set_location(id.clone(), remote);
                }
                Placement::Again => {}
                Placement::Fail(e) => return Err(e),
            }
        }
    }
}

/// Largest answer forwarded between nodes.
pub(crate) const MAX_RESPONSE: usize = MAX_COMMIT_BYTES * 8;
