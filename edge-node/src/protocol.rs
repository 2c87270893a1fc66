//! The edge node's protocol decisions as pure functions of explicit inputs, shared by the node
//! (`router.rs`, `instance.rs`, which the simulator in `tests/correctness` runs) and by the model
//! checker: where a placed call goes, and [`Commit`], the output gate's resend loop as a state machine.
//! The router's loop is [`crate::route`]; the lease rules are in [`crate::lease`].

use std::fmt::Display;
use std::time::Duration;

use latchkey_wire::{ApiError, ErrorCode};

use crate::error::CallError;

/// The first pause before a commit is resent; each further one doubles, up to
/// [`MAX_COMMIT_BACKOFF`].
pub const FIRST_COMMIT_BACKOFF: Duration = Duration::from_millis(20);
/// The longest pause between commit resends.
pub const MAX_COMMIT_BACKOFF: Duration = Duration::from_millis(500);

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

/// A deliberately wrong output gate, for showing that the simulation catches one. The node
/// always runs [`CommitFlaw::None`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitFlaw {
    /// The real output gate.
    #[default]
    None,
    /// Takes a commit the control plane did not answer for one it refused ("nothing was
    /// committed"), although it may have been applied: the caller then retries a call that may
    /// have taken effect.
    UnansweredNotApplied,
}

/// Why a commit (and so its call) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitError {
    /// The call's error.
    pub error: CallError,
    /// The activation was replaced: it must leave the node's table.
    pub fenced: bool,
}

/// What to do after a commit attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitStep {
    /// Send the same commit again after this pause.
    Resend(Duration),
    /// The call fails.
    Fail(CommitError),
}

/// The output gate's attempts at one commit: resent while its outcome is unknown, until the
/// call's deadline. The commit is idempotent per generation and number, and a resend of an
/// applied commit is answered as applied, so a resend settles the outcome without ever applying
/// twice.
#[derive(Clone, Debug)]
pub struct Commit {
    backoff: Duration,
    resent: bool,
    flaw: CommitFlaw,
}

impl Default for Commit {
    fn default() -> Self {
        Commit::with_flaw(CommitFlaw::None)
    }
}

impl Commit {
    #[doc(hidden)]
    pub fn with_flaw(flaw: CommitFlaw) -> Commit {
        Commit {
            backoff: FIRST_COMMIT_BACKOFF,
            resent: false,
            flaw,
        }
    }

    /// Judges a failed attempt: the error's code (`None` for transport failures), whether it is
    /// retryable, how long remains until the call's deadline, and the error's text.
    pub fn failed(
        &mut self,
        code: Option<ErrorCode>,
        retryable: bool,
        remaining: Duration,
        error: &dyn Display,
    ) -> CommitStep {
        let before_deadline = self.backoff < remaining;
        let fail = |error, fenced| CommitStep::Fail(CommitError { error, fenced });
        if self.flaw == CommitFlaw::UnansweredNotApplied && code.is_none() {
            let message = format!("the commit failed ({error}); nothing of the call was committed");
            return fail(CallError::Unavailable(message), false);
        }
        match commit_failure(code, retryable, before_deadline, self.resent) {
            CommitFailure::Resend => {
                let pause = self.backoff;
                self.resent = true;
                self.backoff = (self.backoff * 2).min(MAX_COMMIT_BACKOFF);
                CommitStep::Resend(pause)
            }
            CommitFailure::Fenced {
                maybe_applied: false,
            } => {
                let message = format!(
                    "the activation was replaced while the call ran ({error}); nothing of the call was committed, retry"
                );
                fail(CallError::Unavailable(message), true)
            }
            CommitFailure::Fenced { .. } => {
                let message = format!(
                    "the commit's outcome is unknown: an earlier attempt's answer was lost, and the activation was replaced before a resend could settle it ({error})"
                );
                fail(CallError::OutcomeUnknown(message), true)
            }
            CommitFailure::Unknown => {
                let message = format!(
                    "the commit's outcome is unknown: the control plane did not answer ({error}) before the call's deadline"
                );
                fail(CallError::OutcomeUnknown(message), false)
            }
            CommitFailure::Refused => {
                let message = format!("the commit was refused: {error}");
                // The actor's own writes were refused (its storage quota): the caller gets that
                // error under its own code, not as a node failure. Nothing was applied.
                if code == Some(ErrorCode::QuotaExceeded) {
                    let refusal = ApiError::new(ErrorCode::QuotaExceeded, message);
                    return fail(CallError::Remote(refusal), false);
                }
                fail(CallError::Internal(message), false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_back_off_and_stop_at_the_deadline() {
        let mut commit = Commit::default();
        let lost = |c: &mut Commit, remaining| c.failed(None, true, remaining, &"no answer");
        let second = Duration::from_secs(1);
        assert_eq!(
            lost(&mut commit, second),
            CommitStep::Resend(FIRST_COMMIT_BACKOFF)
        );
        assert_eq!(
            lost(&mut commit, second),
            CommitStep::Resend(FIRST_COMMIT_BACKOFF * 2)
        );
        for _ in 0..10 {
            lost(&mut commit, Duration::from_secs(60));
        }
        assert_eq!(
            lost(&mut commit, second * 10),
            CommitStep::Resend(MAX_COMMIT_BACKOFF)
        );
        let CommitStep::Fail(end) = lost(&mut commit, Duration::from_millis(1)) else {
            panic!("no resend past the deadline");
        };
        assert_eq!(
            (end.error.code(), end.fenced),
            (ErrorCode::OutcomeUnknown, false)
        );
    }

    #[test]
    fn a_fenced_resend_may_have_been_applied_and_a_refusal_keeps_its_code() {
        let fenced = Some(ErrorCode::Fenced);
        let mut commit = Commit::default();
        let CommitStep::Fail(first) = commit.failed(fenced, false, Duration::MAX, &"moved") else {
            panic!("a fence ends the commit");
        };
        assert_eq!(
            (first.error.code(), first.fenced),
            (ErrorCode::Unavailable, true)
        );
        let mut commit = Commit::default();
        commit.failed(None, true, Duration::MAX, &"lost");
        let CommitStep::Fail(resent) = commit.failed(fenced, false, Duration::MAX, &"moved") else {
            panic!("a fence ends the commit");
        };
        assert_eq!(resent.error.code(), ErrorCode::OutcomeUnknown);
        let quota = Some(ErrorCode::QuotaExceeded);
        let CommitStep::Fail(refused) =
            Commit::default().failed(quota, false, Duration::MAX, &"full")
        else {
            panic!("a refusal ends the commit");
        };
        assert_eq!(refused.error.code(), ErrorCode::QuotaExceeded);
    }

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
