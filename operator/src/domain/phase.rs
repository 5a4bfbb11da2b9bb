//! Phase machines of Incident and Remediation. Controllers ask `allowed` before every move, so
//! an unexpected jump (a bug, or a hand-edited status) is refused instead of acted upon.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum IncidentPhase {
    #[default]
    Detected,
    Investigating,
    Diagnosed,
    Remediating,
    Verifying,
    Resolved,
    Escalated,
}

impl IncidentPhase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Resolved | Self::Escalated)
    }

    /// Legal moves. Every open phase may escalate; Remediating/Verifying go back to
    /// Investigating when a remediation is rejected or fails, so the incident is re-diagnosed.
    pub fn allowed(self, to: IncidentPhase) -> bool {
        use IncidentPhase::*;
        if self == to {
            return true;
        }
        if to == Escalated {
            return !self.is_terminal();
        }
        matches!(
            (self, to),
            (Detected, Investigating)
                | (Investigating, Diagnosed)
                | (Diagnosed, Remediating | Investigating)
                | (Remediating, Verifying | Investigating)
                | (Verifying, Resolved | Investigating)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detected => "Detected",
            Self::Investigating => "Investigating",
            Self::Diagnosed => "Diagnosed",
            Self::Remediating => "Remediating",
            Self::Verifying => "Verifying",
            Self::Resolved => "Resolved",
            Self::Escalated => "Escalated",
        }
    }

    pub const ALL: [IncidentPhase; 7] =
        [Self::Detected, Self::Investigating, Self::Diagnosed, Self::Remediating, Self::Verifying, Self::Resolved, Self::Escalated];
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum RemediationPhase {
    /// Created; policy not yet evaluated.
    #[default]
    Pending,
    /// Allowed by policy, waiting for `spec.approval`.
    AwaitingApproval,
    /// Approved (automatically or by a person); about to snapshot and apply.
    Approved,
    /// Snapshot saved; the change is being applied.
    Applying,
    /// PullRequest: the pull request is open; polled until a person merges or closes it.
    AwaitingMerge,
    /// PullRequest: merged; waiting for the target Deployment to finish rolling out.
    RollingOut,
    /// Applied; watching the signal until the verification window ends.
    Verifying,
    /// The signal cleared.
    Succeeded,
    /// The signal did not clear; undoing from the snapshot.
    RollingBack,
    /// Undone after failed verification (or the apply failed).
    Failed,
    /// A person rejected it.
    Rejected,
    /// The policy refused it; nothing was changed.
    Refused,
    /// Dry-run mode: the server-side dry-run result is recorded, nothing was changed.
    DryRun,
}

impl RemediationPhase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Rejected | Self::Refused | Self::DryRun)
    }

    /// In flight = may still change the target. Used for "one in-flight remediation per target".
    pub fn is_in_flight(self) -> bool {
        matches!(self, Self::Approved | Self::Applying | Self::AwaitingMerge | Self::RollingOut | Self::Verifying | Self::RollingBack)
    }

    pub fn allowed(self, to: RemediationPhase) -> bool {
        use RemediationPhase::*;
        if self == to {
            return true;
        }
        matches!(
            (self, to),
            (Pending, AwaitingApproval | Approved | Refused)
                | (AwaitingApproval, Approved | Rejected | Refused)
                | (Approved, Applying | DryRun | Refused | Failed)
                | (Applying, Verifying | AwaitingMerge | RollingBack | Failed)
                | (AwaitingMerge, RollingOut | Rejected | Failed)
                | (RollingOut, Verifying | RollingBack | Failed)
                // Failed straight from Verifying: abandoned by a person, the change left in place.
                | (Verifying, Succeeded | RollingBack | Failed)
                | (RollingBack, Failed)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::AwaitingApproval => "AwaitingApproval",
            Self::Approved => "Approved",
            Self::Applying => "Applying",
            Self::AwaitingMerge => "AwaitingMerge",
            Self::RollingOut => "RollingOut",
            Self::Verifying => "Verifying",
            Self::Succeeded => "Succeeded",
            Self::RollingBack => "RollingBack",
            Self::Failed => "Failed",
            Self::Rejected => "Rejected",
            Self::Refused => "Refused",
            Self::DryRun => "DryRun",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_happy_path_is_legal() {
        use IncidentPhase::*;
        let path = [Detected, Investigating, Diagnosed, Remediating, Verifying, Resolved];
        for w in path.windows(2) {
            assert!(w[0].allowed(w[1]), "{:?} -> {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn incident_terminal_phases_do_not_move() {
        use IncidentPhase::*;
        for to in IncidentPhase::ALL {
            if to != Resolved {
                assert!(!Resolved.allowed(to));
            }
            if to != Escalated {
                assert!(!Escalated.allowed(to));
            }
        }
        assert!(!Detected.allowed(Resolved));
        assert!(Verifying.allowed(Investigating), "failed fix goes back to diagnosis");
    }

    #[test]
    fn remediation_cannot_skip_the_snapshot_step() {
        use RemediationPhase::*;
        assert!(!Approved.allowed(Verifying));
        assert!(!AwaitingApproval.allowed(Applying));
        assert!(Approved.allowed(Applying));
        assert!(Verifying.allowed(RollingBack));
        assert!(!Succeeded.allowed(RollingBack));
        assert!(Applying.is_in_flight() && !Succeeded.is_in_flight());
    }

    #[test]
    fn pull_request_path_waits_for_merge_and_roll_out() {
        use RemediationPhase::*;
        let path = [Pending, Approved, Applying, AwaitingMerge, RollingOut, Verifying, Succeeded];
        for w in path.windows(2) {
            assert!(w[0].allowed(w[1]), "{:?} -> {:?}", w[0], w[1]);
        }
        assert!(AwaitingMerge.allowed(Rejected), "closed without merge is a rejection");
        assert!(!AwaitingMerge.allowed(Verifying), "nothing to verify before the roll-out");
        assert!(!AwaitingMerge.allowed(Succeeded));
        assert!(AwaitingMerge.is_in_flight() && RollingOut.is_in_flight());
    }
}
