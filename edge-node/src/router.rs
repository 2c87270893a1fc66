//! Routing a call to the single live instance of its actor: the local activation if this node
//! holds it, else the node the location cache names, else wherever the control plane places it.
//! Stale locations are retried through the control plane, a bounded number of times. Calls from
//! HTTP clients, forwarded by other nodes, and made by actors all take this path, and every one
//! is checked with `caps` first.

use std::sync::Arc;

use bytes::Bytes;
use latchkey_caps::{AuthError, Verified};
use latchkey_wire::ErrorCode;
use latchkey_wire::limits::MAX_COMMIT_BYTES;
use latchkey_wire::node::EnsureActivationRequest;
use tokio::time::Instant;

use crate::activation::{Activation, Call};
use crate::error::CallError;
use crate::node::NodeInner;
use crate::protocol::{Placed, placed};
use crate::table::{Remote, actor_id};

/// Attempts to reach an actor before giving up (each may ask the control plane once).
const ATTEMPTS: usize = 4;

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
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let Some(epoch) = self.lease.valid_epoch() else {
                return Err(CallError::Unavailable(
                    "this node holds no valid lease right now; retry".into(),
                ));
            };
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
            if !request.forwarded
                && let Some(remote) = self.table.location(&id)
            {
                match self.forwarder.forward(self, &remote, &request).await {
                    // The owner did not run it (it moved, lost its lease, or could not be
                    // reached): ask the control plane where the actor is now.
                    Err(e)
                        if matches!(e.code(), ErrorCode::Misdirected | ErrorCode::Unavailable) =>
                    {
                        self.table.forget_location(&id);
                        last_error = Some(e);
                        continue;
                    }
                    result => return result,
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
            match placed(
                &self.config.node_id,
                epoch,
                &placement.node_id,
                placement.node_epoch,
                request.forwarded,
            ) {
                Placed::Here if self.table.draining(&id, &placement.generation) => {
                    return Err(CallError::Unavailable(format!(
                        "the previous activation of {}/{} on this node is still finishing its calls; retry",
                        request.actor_type, request.key
                    )));
                }
                Placed::Here => self
                    .table
                    .insert_local(id.clone(), || Activation::new(self, placement)),
                Placed::WrongEpoch => {
                    last_error = Some(CallError::Unavailable(format!(
                        "the control plane placed the actor in epoch {} but this node is in epoch {epoch}; retry",
                        placement.node_epoch
                    )));
                }
                Placed::Misdirected => {
                    return Err(CallError::Misdirected(format!(
                        "node {} does not hold {}/{}; it is on node {}",
                        self.config.node_id, request.actor_type, request.key, placement.node_id
                    )));
                }
                Placed::Elsewhere => {
                    let remote = Remote {
                        node_id: placement.node_id,
                        address: placement.node_address,
                        generation: placement.generation,
                    };
                    self.table.set_location(id.clone(), remote);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            CallError::Unavailable(format!(
                "could not reach {}/{} after {ATTEMPTS} attempts; retry",
                request.actor_type, request.key
            ))
        }))
    }
}

/// Largest answer forwarded between nodes.
pub(crate) const MAX_RESPONSE: usize = MAX_COMMIT_BYTES * 8;
