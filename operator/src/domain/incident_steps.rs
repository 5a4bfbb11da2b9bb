//! The Incident's next step once it has a Remediation, decided as data from what the
//! Remediation reports. The Incident controller reads the Remediation and writes the result.

use super::conditions::reason;
use super::phase::{IncidentPhase, RemediationPhase};

/// A change of phase with its reason and message (for the timeline, the condition and the Event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentStep {
    pub to: IncidentPhase,
    pub reason: &'static str,
    pub message: String,
}

impl IncidentStep {
    pub fn new(to: IncidentPhase, reason: &'static str, message: impl Into<String>) -> Self {
        // The message becomes the timeline entry, the condition and the Event.
        Self { to, reason, message: super::outbound::text(&message.into()) }
    }

    /// Escalations are warnings: a person has to act.
    pub fn is_warning(&self) -> bool {
        self.to == IncidentPhase::Escalated
    }
}

/// What the Incident controller knows of its latest Remediation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemediationReport {
    pub name: String,
    pub phase: RemediationPhase,
    /// Reason of the Remediation's `Ready` condition.
    pub ready_reason: Option<String>,
    /// Message of the latest condition that is `False` (why it failed).
    pub last_failure: String,
    pub verification: String,
    pub dry_run_result: String,
    /// A person's or reviewer's words when it was rejected.
    pub feedback: String,
}

/// `None` while the Remediation is still on its way (awaiting approval, applying, verifying).
pub fn after_remediation(current: IncidentPhase, attempts: u32, max_attempts: u32, r: &RemediationReport) -> Option<IncidentStep> {
    use IncidentPhase::*;
    let name = &r.name;
    let needs_person =
        [reason::UNDO_FAILED, reason::CHANGED_SINCE_APPLIED, reason::ABANDONED].into_iter().find(|w| r.ready_reason.as_deref() == Some(*w));
    let step = match r.phase {
        RemediationPhase::Verifying if current == Remediating => {
            IncidentStep::new(Verifying, reason::VERIFYING, format!("{name} applied; verifying"))
        }
        // Remediating -> Verifying -> Resolved: if Verifying was missed, take it first.
        RemediationPhase::Succeeded if current == Remediating => {
            IncidentStep::new(Verifying, reason::VERIFYING, format!("{name} applied; verifying"))
        }
        RemediationPhase::Succeeded => IncidentStep::new(Resolved, reason::RESOLVED, format!("{name} verified: {}", r.verification)),
        RemediationPhase::Rejected => {
            IncidentStep::new(Investigating, reason::REJECTED, format!("{name} rejected: {}; re-diagnosing", r.feedback))
        }
        // A merged change that never rolled out needs a person, not another automatic attempt.
        RemediationPhase::Failed if r.ready_reason.as_deref() == Some(reason::ROLLOUT_TIMED_OUT) => {
            IncidentStep::new(Escalated, reason::ROLLOUT_TIMED_OUT, format!("{name}: {}", r.last_failure))
        }
        // The change could not be undone, or someone changed the target since: another
        // automatic change would act on a state nobody has diagnosed.
        // A person abandoned the change: they have taken the incident over.
        RemediationPhase::Failed if needs_person.is_some() => {
            let why = needs_person.unwrap_or(reason::UNDO_FAILED);
            IncidentStep::new(Escalated, why, format!("{name}: {}; a person must decide", r.last_failure))
        }
        RemediationPhase::Failed if attempts >= max_attempts => {
            IncidentStep::new(Escalated, reason::ATTEMPTS_EXHAUSTED, format!("{name} failed and was undone: {}", r.last_failure))
        }
        RemediationPhase::Failed => IncidentStep::new(
            Investigating,
            reason::REMEDIATION_FAILED,
            format!("{name} failed and was undone: {}; re-diagnosing", r.last_failure),
        ),
        RemediationPhase::Refused => IncidentStep::new(Escalated, reason::POLICY_REFUSED, format!("{name} refused: {}", r.last_failure)),
        RemediationPhase::DryRun => {
            IncidentStep::new(Escalated, reason::DRY_RUN, format!("dry-run mode: {name} was not applied; result: {}", r.dry_run_result))
        }
        _ => return None,
    };
    Some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(phase: RemediationPhase) -> RemediationReport {
        RemediationReport { name: "oms-5xx-r1".into(), phase, last_failure: "still crashing".into(), ..Default::default() }
    }

    #[test]
    fn success_passes_through_verifying_before_resolving() {
        let r = report(RemediationPhase::Succeeded);
        assert_eq!(after_remediation(IncidentPhase::Remediating, 1, 3, &r).map(|s| s.to), Some(IncidentPhase::Verifying));
        assert_eq!(after_remediation(IncidentPhase::Verifying, 1, 3, &r).map(|s| s.to), Some(IncidentPhase::Resolved));
    }

    #[test]
    fn failures_are_rediagnosed_until_the_attempts_run_out() {
        let r = report(RemediationPhase::Failed);
        assert_eq!(after_remediation(IncidentPhase::Verifying, 1, 3, &r).map(|s| s.to), Some(IncidentPhase::Investigating));
        let last = after_remediation(IncidentPhase::Verifying, 3, 3, &r).expect("step");
        assert_eq!((last.to, last.reason), (IncidentPhase::Escalated, reason::ATTEMPTS_EXHAUSTED));
        assert!(last.is_warning());
    }

    #[test]
    fn a_stuck_rollout_escalates_at_once() {
        let r = RemediationReport { ready_reason: Some(reason::ROLLOUT_TIMED_OUT.into()), ..report(RemediationPhase::Failed) };
        assert_eq!(after_remediation(IncidentPhase::Remediating, 1, 3, &r).map(|s| s.to), Some(IncidentPhase::Escalated));
    }

    #[test]
    fn a_change_that_was_not_undone_escalates_instead_of_trying_another() {
        for why in [reason::UNDO_FAILED, reason::CHANGED_SINCE_APPLIED, reason::ABANDONED] {
            let r = RemediationReport { ready_reason: Some(why.into()), ..report(RemediationPhase::Failed) };
            let step = after_remediation(IncidentPhase::Verifying, 1, 3, &r).expect("step");
            assert_eq!((step.to, step.reason), (IncidentPhase::Escalated, why));
        }
    }

    #[test]
    fn work_in_progress_waits() {
        for p in
            [RemediationPhase::Pending, RemediationPhase::AwaitingApproval, RemediationPhase::Applying, RemediationPhase::AwaitingMerge]
        {
            assert_eq!(after_remediation(IncidentPhase::Remediating, 1, 3, &report(p)), None, "{p:?}");
        }
    }
}
