//! The simulated network — addresses, messages, delays, losses and partitions — and the control
//! plane's side of it: each request answered by the real registry.

use std::collections::BTreeSet;

use latchkey_control_plane::{Registry, RegistryError};
use latchkey_wire::ErrorCode;
use latchkey_wire::node::{
    Activation, CommitRequest, EnsureActivationRequest, Fence, ReadOp, ReadStateRequest,
    ReadStateResponse, RegisterRequest,
};
use rand::RngExt as _;
use rand::rngs::StdRng;

use super::identity::{Signed, covered};
use latchkey_edge_node::CallError;
use latchkey_wire::ApiError;

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

    /// The failure as the node's code sees an error answered by another node.
    pub(crate) fn into_call_error(self) -> CallError {
        CallError::from_api(ApiError::new(self.code, self.message))
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        Failure::new(e.code(), e.to_string())
    }
}

/// A control-plane request.
#[derive(Clone, Debug)]
pub(crate) enum CpRequest {
    Register,
    Heartbeat,
    Ensure(String),
    Read(Fence),
    Commit(CommitRequest),
}

/// A control-plane answer.
#[derive(Clone, Debug)]
pub(crate) enum CpAnswer {
    Lease { epoch: u64 },
    Placed(Activation),
    Value(Option<u64>),
    Committed,
}

/// A control-plane error as a node sees it.
#[derive(Clone, Debug)]
pub(crate) struct CpError {
    pub(crate) code: ErrorCode,
    pub(crate) retryable: bool,
    pub(crate) message: String,
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
        result: Result<CpAnswer, CpError>,
    },
    /// Client → node.
    Call { call: u64, actor: usize, op: Op },
    /// Node → node: a call forwarded to the actor's owner, signed by the forwarding node.
    Forward {
        fwd: u64,
        actor: usize,
        op: Op,
        auth: Signed,
    },
    /// Owner → forwarding node.
    ForwardReply {
        fwd: u64,
        result: Result<u64, Failure>,
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

/// The store key the counter keeps its value under.
const VALUE_KEY: &[u8] = b"n";

/// The write an `inc` to `value` commits.
pub(crate) fn write(value: u64) -> latchkey_wire::node::StateWrite {
    latchkey_wire::node::StateWrite::Put(VALUE_KEY.to_vec(), value.to_be_bytes().to_vec())
}

/// A refused signature as the control plane answers it.
pub(crate) fn auth_refusal(e: &latchkey_caps::node::NodeAuthError) -> CpError {
    CpError {
        code: if e.is_retryable() {
            ErrorCode::Unavailable
        } else {
            ErrorCode::Unauthenticated
        },
        retryable: e.is_retryable(),
        message: format!("node authentication failed: {e}"),
    }
}

fn cp_error(e: &RegistryError) -> CpError {
    CpError {
        code: e.code(),
        retryable: e.is_retryable(),
        message: e.to_string(),
    }
}

/// What a node's signature on a request to the control plane covers.
pub(crate) fn cp_covered(node_id: &str, request: &CpRequest) -> (String, Vec<u8>) {
    covered(format!("/v1/nodes/{node_id}/request"), request)
}

/// What a node's signature on a forwarded call covers.
pub(crate) fn forward_covered(actor: usize, op: &Op) -> (String, Vec<u8>) {
    covered(format!("/v1/actors/{}/{actor}", super::ACTOR_TYPE), op)
}

/// Answers a node's request with the registry (`None` for messages that are not requests).
pub(crate) fn serve(registry: &Registry, node_id: &str, msg: Msg) -> Option<Msg> {
    let Msg::Cp { req, request, .. } = msg else {
        return None;
    };
    let result = match request {
        CpRequest::Register => registry
            .register(
                node_id,
                &RegisterRequest {
                    region: "sim".into(),
                    address: node_id.into(),
                },
            )
            .map(|r| CpAnswer::Lease { epoch: r.epoch }),
        CpRequest::Heartbeat => registry
            .heartbeat(node_id)
            .map(|r| CpAnswer::Lease { epoch: r.epoch }),
        CpRequest::Ensure(key) => registry
            .ensure_activation(
                node_id,
                &EnsureActivationRequest {
                    actor_type: ACTOR_TYPE.into(),
                    key,
                    region_hint: None,
                    token_id: None,
                },
            )
            .map(CpAnswer::Placed),
        CpRequest::Read(fence) => registry
            .read_state(
                node_id,
                &ReadStateRequest {
                    fence,
                    op: ReadOp::Get(vec![VALUE_KEY.to_vec()]),
                },
            )
            .map(|r| match r {
                ReadStateResponse::Values(values) => CpAnswer::Value(
                    values
                        .into_iter()
                        .next()
                        .flatten()
                        .map(|v| u64::from_be_bytes(v.try_into().expect("8 bytes"))),
                ),
                ReadStateResponse::Entries(_) => unreachable!("a get answers values"),
            }),
        CpRequest::Commit(request) => registry
            .commit_state(node_id, &request)
            .map(|_| CpAnswer::Committed),
    };
    Some(Msg::CpReply {
        req,
        result: result.map_err(|e| cp_error(&e)),
    })
}
