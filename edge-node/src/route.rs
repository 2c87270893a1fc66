//! The router's decisions as a state machine of explicit inputs: which attempt a call is on,
//! whether it may be forwarded, what a forward's failure or the control plane's placement means
//! for it, and the error it ends with. `router.rs` drives it with the node's lease, table and
//! clients (in the simulator in `tests/correctness` too, which runs the real router).

use latchkey_wire::ErrorCode;
use latchkey_wire::node::Activation;

use crate::error::CallError;
use crate::protocol::{Placed, placed};

/// Attempts to reach an actor before giving up (each may ask the control plane once).
pub const ATTEMPTS: usize = 4;

/// A deliberately wrong router, for showing that the simulation catches one. The node always
/// runs [`Flaw::None`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flaw {
    /// The real router.
    #[default]
    None,
    /// Retries elsewhere after a forward whose outcome is unknown (it may have run), as if the
    /// owner had refused it: the call can then take effect twice.
    RetryUnknownForwards,
}

/// One call's way to its actor.
#[derive(Debug)]
pub struct Route {
    forwarded: bool,
    attempts: usize,
    epoch: u64,
    last_error: Option<CallError>,
    flaw: Flaw,
}

/// What became of a forwarded call.
#[derive(Debug)]
pub enum Forwarded<T> {
    /// The owner answered (or may have run it): this is the call's result.
    Answer(Result<T, CallError>),
    /// The owner did not run it (it moved, lost its lease, or could not be reached): forget its
    /// location and try again.
    Retry,
}

/// What to do with the control plane's placement.
#[derive(Debug)]
pub enum Placement {
    /// Activate the actor here, then try again (the next attempt finds it in the table).
    Activate,
    /// Remember that the actor is on the placement's node, then try again (and forward there).
    Locate,
    /// Try again (the call's [`Route::attempt`] decides whether it may).
    Again,
    /// End the call with this error.
    Fail(CallError),
}

impl Route {
    /// A call to route; `forwarded`: another node forwarded it here (it is not forwarded again).
    pub fn new(forwarded: bool) -> Route {
        Route::with_flaw(forwarded, Flaw::None)
    }

    #[doc(hidden)]
    pub fn with_flaw(forwarded: bool, flaw: Flaw) -> Route {
        Route {
            forwarded,
            attempts: 0,
            epoch: 0,
            last_error: None,
            flaw,
        }
    }

    /// Starts the next attempt, given the epoch of this node's lease if it is valid now; the
    /// epoch the attempt runs in, or the error the call ends with.
    pub fn attempt(
        &mut self,
        valid_epoch: Option<u64>,
        actor: (&str, &str),
    ) -> Result<u64, CallError> {
        if self.attempts >= ATTEMPTS {
            return Err(self.last_error.take().unwrap_or_else(|| {
                CallError::Unavailable(format!(
                    "could not reach {}/{} after {ATTEMPTS} attempts; retry",
                    actor.0, actor.1
                ))
            }));
        }
        self.attempts += 1;
        let Some(epoch) = valid_epoch else {
            return Err(CallError::Unavailable(
                "this node holds no valid lease right now; retry".into(),
            ));
        };
        self.epoch = epoch;
        Ok(epoch)
    }

    /// Whether the call may go where the actor was last seen (a forwarded call is not
    /// forwarded again).
    pub fn may_forward(&self) -> bool {
        !self.forwarded
    }

    /// Judges a forward's result.
    pub fn forwarded<T>(&mut self, result: Result<T, CallError>) -> Forwarded<T> {
        let retry = |code| match self.flaw {
            Flaw::None => matches!(code, ErrorCode::Misdirected | ErrorCode::Unavailable),
            Flaw::RetryUnknownForwards => matches!(
                code,
                ErrorCode::Misdirected | ErrorCode::Unavailable | ErrorCode::OutcomeUnknown
            ),
        };
        match result {
            Err(e) if retry(e.code()) => {
                self.last_error = Some(e);
                Forwarded::Retry
            }
            result => Forwarded::Answer(result),
        }
    }

    /// Judges the control plane's placement of the actor for this attempt. `draining` is asked
    /// only for a placement here: whether the previous activation object of the placement's
    /// generation is still finishing its calls on this node.
    pub fn placed(
        &mut self,
        me: &str,
        placement: &Activation,
        draining: impl FnOnce() -> bool,
    ) -> Placement {
        let (actor_type, key) = (&placement.actor_type, &placement.key);
        match placed(
            me,
            self.epoch,
            &placement.node_id,
            placement.node_epoch,
            self.forwarded,
        ) {
            Placed::Here if draining() => Placement::Fail(CallError::Unavailable(format!(
                "the previous activation of {actor_type}/{key} on this node is still finishing its calls; retry"
            ))),
            Placed::Here => Placement::Activate,
            Placed::WrongEpoch => {
                self.last_error = Some(CallError::Unavailable(format!(
                    "the control plane placed the actor in epoch {} but this node is in epoch {}; retry",
                    placement.node_epoch, self.epoch
                )));
                Placement::Again
            }
            Placed::Misdirected => Placement::Fail(CallError::Misdirected(format!(
                "node {me} does not hold {actor_type}/{key}; it is on node {}",
                placement.node_id
            ))),
            Placed::Elsewhere => Placement::Locate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_wire::Generation;

    const ACTOR: (&str, &str) = ("counter", "k");

    fn placement(node_id: &str, node_epoch: u64) -> Activation {
        Activation {
            actor_type: ACTOR.0.into(),
            key: ACTOR.1.into(),
            node_id: node_id.into(),
            node_address: String::new(),
            node_epoch,
            generation: Generation([0; 10]),
            module_version: "v1".into(),
            no_state: false,
            deployment_revision: 1,
        }
    }

    #[test]
    fn a_call_ends_after_its_attempts_with_the_last_reason() {
        let mut route = Route::new(false);
        for _ in 0..ATTEMPTS {
            assert_eq!(route.attempt(Some(3), ACTOR), Ok(3));
            assert!(matches!(
                route.placed("a", &placement("a", 2), || false),
                Placement::Again
            ));
        }
        let e = route.attempt(Some(3), ACTOR).unwrap_err();
        assert!(e.to_string().contains("epoch 2"), "{e}");
    }

    #[test]
    fn without_a_lease_nothing_is_tried() {
        let e = Route::new(false).attempt(None, ACTOR).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unavailable);
    }

    #[test]
    fn only_a_refused_forward_is_retried() {
        let mut route = Route::new(false);
        let refused: Result<(), _> = Err(CallError::Misdirected("moved".into()));
        assert!(matches!(route.forwarded(refused), Forwarded::Retry));
        let unknown: Result<(), _> = Err(CallError::OutcomeUnknown("lost".into()));
        assert!(matches!(
            route.forwarded(unknown),
            Forwarded::Answer(Err(_))
        ));
        let mut flawed = Route::with_flaw(false, Flaw::RetryUnknownForwards);
        let unknown: Result<(), _> = Err(CallError::OutcomeUnknown("lost".into()));
        assert!(matches!(flawed.forwarded(unknown), Forwarded::Retry));
    }

    #[test]
    fn a_forwarded_call_placed_elsewhere_is_refused_not_forwarded_again() {
        let mut route = Route::new(true);
        assert!(!route.may_forward());
        route.attempt(Some(1), ACTOR).unwrap();
        let Placement::Fail(e) = route.placed("a", &placement("b", 1), || false) else {
            panic!("a forwarded call is not forwarded again");
        };
        assert_eq!(e.code(), ErrorCode::Misdirected);
    }

    #[test]
    fn a_placement_here_waits_for_the_draining_activation() {
        let mut route = Route::new(false);
        route.attempt(Some(1), ACTOR).unwrap();
        assert!(matches!(
            route.placed("a", &placement("a", 1), || true),
            Placement::Fail(_)
        ));
        assert!(matches!(
            route.placed("a", &placement("a", 1), || false),
            Placement::Activate
        ));
        assert!(matches!(
            route.placed("a", &placement("b", 1), || true),
            Placement::Locate
        ));
    }
}
