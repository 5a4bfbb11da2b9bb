//! Who may move a remediation past approval, decided as data: the policy's verdict and what a
//! person (or the policy, at creation) wrote in `spec.approval`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The one name of automatic approvals. A person's approval carries their own name; anything
/// else signed with this name is treated as the policy's, so both controllers must use it.
pub const AUTO_APPROVER: &str = "salve-operator/policy";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
}

/// The approval a new Remediation starts with: approved by the policy when it may run without
/// a person, otherwise pending. `(state, by)`.
pub fn initial_approval(auto_approve: bool) -> (ApprovalState, Option<String>) {
    if auto_approve { (ApprovalState::Approved, Some(AUTO_APPROVER.to_string())) } else { (ApprovalState::Pending, None) }
}

/// What happens to a Remediation the policy allowed, before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// A person approved it: proceed.
    ApprovedByPerson,
    /// The policy's auto-approve risk covers it and no person objected: proceed.
    AutoApproved,
    /// Wait for a person (their rejection is acted on once it is awaiting approval).
    AwaitPerson,
}

/// A person's decision in `spec.approval`, if any: an approval signed by the policy is not one.
pub fn persons_decision(state: ApprovalState, by: Option<&str>) -> Option<ApprovalState> {
    (by != Some(AUTO_APPROVER)).then_some(state)
}

/// `recorded` is `spec.approval` as `(state, by)`. An approval signed by the policy at
/// creation does not count as a person's: the policy is asked again now (it may have changed).
pub fn decide(recorded: Option<(ApprovalState, Option<&str>)>, auto_approve: bool) -> ApprovalDecision {
    let by_person = recorded.and_then(|(state, by)| persons_decision(state, by));
    match (by_person, auto_approve) {
        (Some(ApprovalState::Rejected), _) => ApprovalDecision::AwaitPerson,
        (Some(ApprovalState::Approved), _) => ApprovalDecision::ApprovedByPerson,
        (_, true) => ApprovalDecision::AutoApproved,
        (_, false) => ApprovalDecision::AwaitPerson,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policys_own_approval_is_not_mistaken_for_a_person() {
        let policy = Some((ApprovalState::Approved, Some(AUTO_APPROVER)));
        // The policy no longer auto-approves (risk lowered since creation): a person must decide.
        assert_eq!(decide(policy, false), ApprovalDecision::AwaitPerson);
        assert_eq!(decide(policy, true), ApprovalDecision::AutoApproved);
        assert_eq!(initial_approval(true), (ApprovalState::Approved, Some(AUTO_APPROVER.to_string())));
        assert_eq!(persons_decision(ApprovalState::Approved, Some(AUTO_APPROVER)), None);
    }

    #[test]
    fn a_person_decides_over_the_policy() {
        assert_eq!(decide(Some((ApprovalState::Approved, Some("alice"))), false), ApprovalDecision::ApprovedByPerson);
        assert_eq!(decide(Some((ApprovalState::Rejected, Some("alice"))), true), ApprovalDecision::AwaitPerson);
        assert_eq!(decide(Some((ApprovalState::Pending, None)), false), ApprovalDecision::AwaitPerson);
        assert_eq!(decide(None, true), ApprovalDecision::AutoApproved);
    }
}
