//! The simulation's implementations of the node's ports ([`ControlPlane`], [`Membership`],
//! [`Peers`]): each request is signed as the node signs it and sent through the simulated
//! network; its answer (or its loss) comes back as the real client and forwarder report them —
//! a refused connection, a timeout, an error answer. What the node does with them is the node's.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use latchkey_edge_node::CallError;
use latchkey_edge_node::ports::{CallRequest, ControlPlane, Membership, Peers, Remote};
use latchkey_wire::client::{ClientError, DEFAULT_TIMEOUT};
use latchkey_wire::node::{
    Activation, CommitRequest, CommitResponse, EnsureActivationRequest, Fence, HeartbeatRequest,
    HeartbeatResponse, ReadStateRequest, ReadStateResponse, RegisterResponse, SelfToken,
    UpgradeRequest,
};
use tokio::sync::oneshot;

use super::World;
use super::net::{CpAnswer, CpRequest, ForwardedCall};
use super::node::node_index;

/// What the control plane's URL is called in errors.
const CONTROL_PLANE: &str = "sim://control-plane";

/// One incarnation of one node's ports.
pub(crate) struct Port {
    world: Weak<Mutex<World>>,
    node: usize,
    incarnation: u32,
}

fn transport(message: &str) -> ClientError {
    ClientError::Transport {
        url: CONTROL_PLANE.into(),
        message: message.into(),
    }
}

fn unexpected(answer: &CpAnswer) -> ClientError {
    ClientError::Decode {
        url: CONTROL_PLANE.into(),
        message: format!("an answer of the wrong kind: {answer:?}"),
    }
}

impl Port {
    pub(crate) fn new(world: Weak<Mutex<World>>, node: usize, incarnation: u32) -> Port {
        Port {
            world,
            node,
            incarnation,
        }
    }

    /// Sends `request` to the control plane and waits up to `timeout` for its answer.
    async fn ask(&self, request: CpRequest, timeout: Duration) -> Result<CpAnswer, ClientError> {
        let asked = {
            let Some(world) = self.world.upgrade() else {
                return Err(transport("the simulation ended"));
            };
            super::lock(&world).ask_control_plane(self.node, self.incarnation, request)
        };
        let Some(answer) = asked else {
            return Err(transport("connection refused"));
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result.map_err(ClientError::Api),
            Ok(Err(_)) => Err(transport("the connection broke")),
            Err(_) => Err(ClientError::Timeout {
                url: CONTROL_PLANE.into(),
                timeout,
            }),
        }
    }
}

#[async_trait]
impl ControlPlane for Port {
    async fn ensure_activation(
        &self,
        request: &EnsureActivationRequest,
    ) -> Result<Activation, ClientError> {
        match self
            .ask(CpRequest::Ensure(request.clone()), DEFAULT_TIMEOUT)
            .await?
        {
            CpAnswer::Placed(placed) => Ok(placed),
            other => Err(unexpected(&other)),
        }
    }

    async fn read_state(
        &self,
        request: &ReadStateRequest,
    ) -> Result<ReadStateResponse, ClientError> {
        match self
            .ask(CpRequest::Read(request.clone()), DEFAULT_TIMEOUT)
            .await?
        {
            CpAnswer::Read(read) => Ok(read),
            other => Err(unexpected(&other)),
        }
    }

    async fn commit(&self, request: &CommitRequest) -> Result<CommitResponse, ClientError> {
        match self
            .ask(CpRequest::Commit(request.clone()), DEFAULT_TIMEOUT)
            .await?
        {
            CpAnswer::Committed(committed) => Ok(committed),
            other => Err(unexpected(&other)),
        }
    }

    async fn upgrade_activation(
        &self,
        request: &UpgradeRequest,
    ) -> Result<Activation, ClientError> {
        match self
            .ask(CpRequest::Upgrade(request.clone()), DEFAULT_TIMEOUT)
            .await?
        {
            CpAnswer::Placed(placed) => Ok(placed),
            other => Err(unexpected(&other)),
        }
    }

    async fn fetch_module(&self, content_id: &str) -> Result<Bytes, ClientError> {
        match self
            .ask(CpRequest::Module(content_id.to_owned()), DEFAULT_TIMEOUT)
            .await?
        {
            CpAnswer::Module(bytes) => Ok(Bytes::from(bytes)),
            other => Err(unexpected(&other)),
        }
    }

    async fn self_token(&self, fence: &Fence) -> Result<SelfToken, ClientError> {
        let answer = self
            .ask(CpRequest::SelfToken(fence.clone()), DEFAULT_TIMEOUT)
            .await?;
        Err(unexpected(&answer))
    }
}

#[async_trait]
impl Membership for Port {
    async fn register(&self) -> Result<RegisterResponse, ClientError> {
        match self.ask(CpRequest::Register, DEFAULT_TIMEOUT).await? {
            CpAnswer::Registered(registered) => Ok(registered),
            other => Err(unexpected(&other)),
        }
    }

    async fn heartbeat(
        &self,
        request: &HeartbeatRequest,
        timeout: Duration,
    ) -> Result<HeartbeatResponse, ClientError> {
        match self
            .ask(CpRequest::Heartbeat(request.clone()), timeout)
            .await?
        {
            CpAnswer::Beat(beat) => Ok(beat),
            other => Err(unexpected(&other)),
        }
    }
}

#[async_trait]
impl Peers for Port {
    async fn forward(&self, to: &Remote, call: &CallRequest) -> Result<Bytes, CallError> {
        let owner = node_index(&to.node_id).ok_or_else(|| {
            CallError::Unavailable(format!("no simulated node is called {}", to.node_id))
        })?;
        let left = call
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let forwarded = ForwardedCall {
            key: call.key.clone(),
            method: call.method.clone(),
            payload: call.payload.clone(),
            token: call.token.clone(),
            deadline_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
        };
        let sent: Option<oneshot::Receiver<_>> = match self.world.upgrade() {
            Some(world) => {
                super::lock(&world).forward(self.node, self.incarnation, owner, forwarded)
            }
            None => None,
        };
        let Some(answer) = sent else {
            return Err(CallError::Unavailable(format!(
                "could not connect to {}",
                to.node_id
            )));
        };
        match tokio::time::timeout(left, answer).await {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(e))) => Err(CallError::from_api(e)),
            Ok(Err(_)) | Err(_) => Err(CallError::OutcomeUnknown(format!(
                "{} did not answer before the deadline; the call may have taken effect",
                to.node_id
            ))),
        }
    }
}
