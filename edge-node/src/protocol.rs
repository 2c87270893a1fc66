//! The edge node's protocol decisions as pure functions of explicit inputs, shared by the node
//! (`router.rs`, `instance.rs`) and by the model checker and simulator in `tests/correctness`.
//! The lease rules are in [`crate::lease`].

use latchkey_wire::ErrorCode;

/// What to do with the control plane's answer to `ensure_activation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// This node holds the actor in the epoch it holds its lease in: activate it here.
    Here,
    /// This node holds it, but in another epoch than its lease's (the lease changed meanwhile):
    /// ask again.
    WrongEpoch,
    /// Another node holds it, and this call was already forwarded once: refuse (the forwarding
    /// node asks again) rather than forward again.
    Misdirected,
    /// Another node holds it: forward the call there and remember where it is.
    Elsewhere,
}

/// Decides where a call goes once the control plane named the actor's node. `me` and
/// `lease_epoch` are this node's id and current lease epoch; `owner` and `placed_epoch` the
/// activation the control plane returned.
pub fn placed(
    me: &str,
    lease_epoch: u64,
    owner: &str,
    placed_epoch: u64,
    forwarded: bool,
) -> Placed {
    match (owner == me, placed_epoch == lease_epoch, forwarded) {
        (true, true, _) => Placed::Here,
        (true, false, _) => Placed::WrongEpoch,
        (false, _, true) => Placed::Misdirected,
        (false, _, false) => Placed::Elsewhere,
    }
}

/// What a node does after a commit attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitFailure {
    /// The outcome is unknown (the control plane did not answer): send the same commit again.
    /// Commits are idempotent per generation and number, and the control plane answers a resend
    /// of an applied commit as applied, so the resend settles the outcome.
    Resend,
    /// The activation was replaced. Fail the call and drop the activation. If this was the first
    /// attempt, nothing of the call was applied; after a resend, an earlier attempt may have been
    /// applied before the fence moved (the control plane recognises a resend only while the
    /// generation it names is the last one that committed), so the outcome is unknown.
    Fenced {
        /// An earlier attempt may have been applied.
        maybe_applied: bool,
    },
    /// The call's deadline passed without a definite answer: fail it as "outcome unknown".
    Unknown,
    /// The control plane refused the commit for good (e.g. too large): nothing was applied.
    Refused,
}

/// Classifies a failed commit attempt: the error's code (`None` for transport failures), whether
/// it is retryable, whether the call's deadline still allows another attempt, and whether this
/// attempt was a resend.
pub fn commit_failure(
    code: Option<ErrorCode>,
    retryable: bool,
    before_deadline: bool,
    resent: bool,
) -> CommitFailure {
    match code {
        Some(ErrorCode::Fenced) => CommitFailure::Fenced {
            maybe_applied: resent,
        },
        _ if retryable && before_deadline => CommitFailure::Resend,
        _ if retryable => CommitFailure::Unknown,
        _ => CommitFailure::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_call_is_never_forwarded_again() {
        assert_eq!(placed("a", 2, "a", 2, true), Placed::Here);
        assert_eq!(placed("a", 2, "a", 1, false), Placed::WrongEpoch);
        assert_eq!(placed("a", 2, "b", 7, true), Placed::Misdirected);
        assert_eq!(placed("a", 2, "b", 2, false), Placed::Elsewhere);
    }

    #[test]
    fn only_a_fence_or_a_refusal_ends_a_commit_before_its_deadline() {
        let fenced = |resent| commit_failure(Some(ErrorCode::Fenced), false, true, resent);
        assert_eq!(
            fenced(false),
            CommitFailure::Fenced {
                maybe_applied: false
            }
        );
        assert_eq!(
            commit_failure(None, true, true, false),
            CommitFailure::Resend
        );
        assert_eq!(
            commit_failure(None, true, false, true),
            CommitFailure::Unknown
        );
        assert_eq!(
            commit_failure(Some(ErrorCode::TooLarge), false, true, false),
            CommitFailure::Refused
        );
    }

    #[test]
    fn a_fence_met_by_a_resend_leaves_the_outcome_open() {
        // The first attempt may have been applied and its answer lost; then the actor moved
        // and committed elsewhere, so the resend no longer matches the last commit.
        assert_eq!(
            commit_failure(Some(ErrorCode::Fenced), false, true, true),
            CommitFailure::Fenced {
                maybe_applied: true
            }
        );
    }
}
