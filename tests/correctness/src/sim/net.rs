//! The simulated network — addresses, messages, delays, losses and partitions — and the control
//! plane's side of it: each request (the real request types) answered by the real registry.

use std::collections::BTreeSet;

use bytes::Bytes;
use latchkey_control_plane::Registry;
use latchkey_edge_node::CallError;
use latchkey_wire::node::{
    Activation, CommitRequest, CommitResponse, EnsureActivationRequest, Fence, HeartbeatRequest,
    HeartbeatResponse, ReadStateRequest, ReadStateResponse, RegisterRequest, RegisterResponse,
    UpgradeRequest,
};
use latchkey_wire::{ApiError, ErrorCode};
use rand::RngExt as _;
use rand::rngs::StdRng;

use super::identity::{Signed, covered};
use super::{ACTOR_TYPE, MS, Micros, SECOND};

/// Where a message goes. A node's address names its incarnation: a message for an earlier
/// incarnation (sent before a crash) is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Addr {
    ControlPlane,
    Node(usize, u32),
    Client(usize),
}

impl Addr {
    /// The endpoint, whatever its incarnation (links join endpoints).
    fn endpoint(self) -> (u8, usize) {
        match self {
            Addr::ControlPlane => (0, 0),
            Addr::Node(i, _) => (1, i),
            Addr::Client(i) => (2, i),
        }
    }
}

/// A counter operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Inc,
    Get,
}

impl Op {
    /// The counter's method.
    pub(crate) fn method(self) -> &'static str {
        match self {
            Op::Inc => "inc",
            Op::Get => "get",
        }
    }
}

/// Why a call failed, as a node answers it.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        Failure::new(e.code(), e.to_string())
    }
}

/// A node's request to the control plane: the real request types.
#[derive(Clone, Debug)]
pub(crate) enum CpRequest {
    Register,
    #[expect(
        dead_code,
        reason = "signed, as part of the request, but the registry needs none of it"
    )]
    Heartbeat(HeartbeatRequest),
    Ensure(EnsureActivationRequest),
    Read(ReadStateRequest),
    Commit(CommitRequest),
    Upgrade(UpgradeRequest),
    Module(String),
    #[expect(
        dead_code,
        reason = "signed, as part of the request; the simulation issues no self tokens"
    )]
    SelfToken(Fence),
}

/// The control plane's answer: the real response types.
#[derive(Clone, Debug)]
pub(crate) enum CpAnswer {
    Registered(RegisterResponse),
    Beat(HeartbeatResponse),
    Placed(Activation),
    Read(ReadStateResponse),
    Committed(CommitResponse),
    Module(Vec<u8>),
}

/// A call forwarded between nodes: what the real forwarder sends (the path, the token, the
/// deadline and the payload).
#[derive(Clone, Debug)]
pub(crate) struct ForwardedCall {
    pub(crate) key: String,
    pub(crate) method: String,
    pub(crate) payload: Bytes,
    pub(crate) token: Bytes,
    pub(crate) deadline_ms: u64,
}

#[derive(Clone, Debug)]
pub(crate) enum Msg {
    /// Node → control plane, signed by the node.
    Cp {
        req: u64,
        request: CpRequest,
        auth: Signed,
    },
    /// Control plane → node.
    CpReply {
        req: u64,
        result: Result<CpAnswer, ApiError>,
    },
    /// Client → node.
    Call { call: u64, actor: usize, op: Op },
    /// Node → node: a call forwarded to the actor's owner, signed by the forwarding node.
    Forward {
        fwd: u64,
        call: ForwardedCall,
        auth: Signed,
    },
    /// Owner → forwarding node.
    ForwardReply {
        fwd: u64,
        result: Result<Bytes, ApiError>,
    },
    /// Node → client.
    Reply {
        call: u64,
        result: Result<u64, Failure>,
    },
}

/// Links and delays.
#[derive(Default)]
pub(crate) struct Net {
    /// Cut links, each as its two endpoints in order.
    cut: BTreeSet<((u8, usize), (u8, usize))>,
    /// Until then, messages are often slow (reordering them).
    pub(crate) slow_until: Micros,
}

fn link(a: Addr, b: Addr) -> ((u8, usize), (u8, usize)) {
    let (a, b) = (a.endpoint(), b.endpoint());
    if a <= b { (a, b) } else { (b, a) }
}

impl Net {
    pub(crate) fn is_cut(&self, a: Addr, b: Addr) -> bool {
        self.cut.contains(&link(a, b))
    }

    pub(crate) fn cut(&mut self, a: Addr, b: Addr) {
        self.cut.insert(link(a, b));
    }

    pub(crate) fn heal(&mut self, a: Addr, b: Addr) {
        self.cut.remove(&link(a, b));
    }

    /// A message's delay: usually under 5 ms; while faults are injected, sometimes hundreds of
    /// ms and rarely seconds (often, while the network is slow), so messages overtake each other.
    pub(crate) fn delay(&self, faulty: bool, now: Micros, rng: &mut StdRng) -> Micros {
        let slow = match (faulty, now < self.slow_until) {
            (false, _) => 0,
            (true, true) => 300,
            (true, false) => 30,
        };
        let roll = rng.random_range(0..1000);
        if roll < slow / 6 {
            rng.random_range(400 * MS..3 * SECOND)
        } else if roll < slow {
            rng.random_range(5 * MS..400 * MS)
        } else {
            rng.random_range(100..5 * MS)
        }
    }
}

/// A refused signature as the control plane answers it.
pub(crate) fn auth_refusal(e: &latchkey_caps::node::NodeAuthError) -> ApiError {
    let code = if e.is_retryable() {
        ErrorCode::Unavailable
    } else {
        ErrorCode::Unauthenticated
    };
    ApiError::new(code, format!("node authentication failed: {e}"))
}

/// What a node's signature on a request to the control plane covers.
pub(crate) fn cp_covered(node_id: &str, request: &CpRequest) -> (String, Vec<u8>) {
    covered(format!("/v1/nodes/{node_id}/request"), request)
}

/// What a node's signature on a forwarded call covers.
pub(crate) fn forward_covered(call: &ForwardedCall) -> (String, Vec<u8>) {
    covered(format!("/v1/actors/{ACTOR_TYPE}/{}", call.key), call)
}

/// Answers a node's request with the real registry, as the control plane's API does.
pub(crate) fn serve(
    registry: &Registry,
    node_id: &str,
    request: CpRequest,
) -> Result<CpAnswer, ApiError> {
    let answer = match request {
        CpRequest::Register => registry
            .register(
                node_id,
                &RegisterRequest {
                    region: "sim".into(),
                    address: node_id.into(),
                },
            )
            .map(CpAnswer::Registered),
        CpRequest::Heartbeat(_) => registry.heartbeat(node_id).map(CpAnswer::Beat),
        CpRequest::Ensure(request) => registry
            .ensure_activation(node_id, &request)
            .map(CpAnswer::Placed),
        CpRequest::Read(request) => registry.read_state(node_id, &request).map(CpAnswer::Read),
        CpRequest::Commit(request) => registry
            .commit_state(node_id, &request)
            .map(CpAnswer::Committed),
        CpRequest::Upgrade(request) => registry
            .upgrade_activation(node_id, &request)
            .map(CpAnswer::Placed),
        CpRequest::Module(content_id) => registry.module_bytes(&content_id).map(CpAnswer::Module),
        CpRequest::SelfToken(_) => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "the simulation's control plane issues no self tokens (its actors call no one)",
            ));
        }
    };
    answer.map_err(|e| e.to_api())
}
