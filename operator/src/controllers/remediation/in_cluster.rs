//! The Remediation controller's steps for changes applied in the cluster (ConfigMap keys,
//! Deployment env/resources/replicas, restarts, rollbacks):
//! Approved (snapshot, or dry run) -> Applying (server-side apply) -> Verifying -> Succeeded,
//! or -> RollingBack (restore the snapshot) -> Failed.
//!
//! Restart safety: the snapshot is written to status (phase Applying) BEFORE the change is
//! applied and is never retaken; the apply itself is a server-side apply of a body derived only
//! from the spec, so repeating it after a crash changes nothing.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::step::{Error, Step, cond, failing, step, workload_of};
use crate::controllers::context::Context;
use crate::crd::*;
use crate::domain::time::{now_rfc3339, parse_time};
use crate::domain::verify::{VerifyOutcome, verify};
use crate::kube::{actions, health};

/// Approved: dry-run, or save the snapshot (once).
pub async fn prepare(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let action = &rem.spec.action;
    if ctx.policy.dry_run {
        return Ok(match actions::apply(&ctx.client, ns, action, &rem.name_any(), true).await {
            Ok((body, _result)) => {
                st.dry_run_result = Some(format!("server accepted: {body}"));
                step(RemediationPhase::DryRun, reason::DRY_RUN, format!("dry run of {} succeeded; nothing applied", action.describe()))
            }
            Err(e) => {
                st.dry_run_result = Some(format!("server rejected: {e}"));
                step(RemediationPhase::DryRun, reason::DRY_RUN, format!("dry run of {} failed: {e}", action.describe()))
            }
        });
    }
    if st.snapshot.is_none() {
        let (workload, _) = workload_of(rem, ns, ctx).await?;
        let baseline = health::observe(&ctx.client, ns, &workload).await.map(|h| h.restarts).unwrap_or(0);
        match actions::snapshot(&ctx.client, ns, action, baseline, &now_rfc3339()).await {
            Ok(s) => st.snapshot = Some(s),
            Err(actions::ActionError::Kube(e)) => return Err(e.into()),
            Err(e) => {
                let msg = format!("cannot take a snapshot: {e}");
                return Ok(failing(RemediationPhase::Failed, condition_type::APPLIED, reason::SNAPSHOT_FAILED, msg));
            }
        }
    }
    Ok(Step {
        condition: cond(condition_type::SNAPSHOT_SAVED, true, reason::SNAPSHOT_SAVED, "pre-change state saved"),
        ..step(RemediationPhase::Applying, reason::APPLYING, format!("snapshot saved; applying {}", action.describe()))
    })
}

/// Applying: the snapshot is already in status; server-side apply the change.
pub async fn apply(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let action = &rem.spec.action;
    match actions::apply(&ctx.client, ns, action, &rem.name_any(), false).await {
        Ok((body, _)) => {
            let now = Timestamp::now();
            let window = SignedDuration::from_secs(rem.spec.verification.window_seconds.into());
            st.applied_patch = Some(body.to_string());
            if st.applied_at.is_none() {
                st.applied_at = Some(now_rfc3339());
            }
            if st.verification.is_none() {
                st.verification = Some(VerificationResult { deadline: (now + window).to_string(), passed: None, message: String::new() });
            }
            Ok(Step {
                condition: cond(condition_type::APPLIED, true, reason::APPLIED, &action.describe()),
                ..step(
                    RemediationPhase::Verifying,
                    reason::APPLIED,
                    format!("applied {}; verifying for {}s", action.describe(), rem.spec.verification.window_seconds),
                )
            })
        }
        Err(actions::ActionError::Kube(e)) if !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 422) => Err(e.into()),
        Err(e) => {
            let msg = format!("apply failed: {e}; undoing");
            Ok(failing(RemediationPhase::RollingBack, condition_type::APPLIED, reason::APPLY_FAILED, msg))
        }
    }
}

/// Verifying: passed, still waiting, or window over -> roll back.
pub async fn check(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Option<Step>, Error> {
    let (workload, alarm_ok) = workload_of(rem, ns, ctx).await?;
    let h = health::observe(&ctx.client, ns, &workload).await?;
    let baseline = st.snapshot.as_ref().map(|s| s.restarts).unwrap_or(0);
    let deadline = st.verification.as_ref().and_then(|v| parse_time(&v.deadline));
    let over = deadline.is_none_or(|d| Timestamp::now() >= d);
    Ok(match verify(alarm_ok, &h, baseline, over) {
        VerifyOutcome::Pending => None,
        VerifyOutcome::Passed(msg) => {
            if let Some(v) = st.verification.as_mut() {
                v.passed = Some(true);
                v.message = msg.clone();
            }
            Some(Step {
                condition: cond(condition_type::VERIFIED, true, reason::SIGNAL_CLEARED, &msg),
                ..step(RemediationPhase::Succeeded, reason::VERIFIED, msg)
            })
        }
        VerifyOutcome::Failed(msg) => {
            if let Some(v) = st.verification.as_mut() {
                v.passed = Some(false);
                v.message = msg.clone();
            }
            Some(Step {
                to: RemediationPhase::RollingBack,
                condition: cond(condition_type::VERIFIED, false, reason::SIGNAL_NOT_CLEARED, &msg),
                reason: reason::VERIFICATION_FAILED,
                message: format!("{msg}; undoing"),
                warning: true,
            })
        }
    })
}

/// RollingBack: restore from the snapshot, then Failed.
pub async fn roll_back(ns: &str, st: &RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let Some(snapshot) = st.snapshot.as_ref() else {
        return Ok(step(RemediationPhase::Failed, reason::NOTHING_TO_UNDO, "no snapshot; nothing was applied"));
    };
    match actions::undo(&ctx.client, ns, snapshot).await {
        Ok(()) => {
            let why = st
                .conditions
                .iter()
                .find(|c| c.type_ == condition_type::VERIFIED || c.type_ == condition_type::APPLIED)
                .filter(|c| c.status == ConditionStatus::False)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            Ok(Step {
                to: RemediationPhase::Failed,
                condition: cond(condition_type::ROLLED_BACK, true, reason::UNDONE, &format!("{} restored from snapshot", snapshot.target)),
                reason: reason::ROLLED_BACK,
                message: format!("undone from snapshot: {why}"),
                warning: true,
            })
        }
        Err(actions::ActionError::Kube(e)) => Err(e.into()),
        Err(e) => Ok(Step {
            to: RemediationPhase::Failed,
            condition: cond(condition_type::ROLLED_BACK, false, reason::UNDO_FAILED, &e.to_string()),
            reason: reason::UNDO_FAILED,
            message: format!("undo failed: {e}; needs a person"),
            warning: true,
        }),
    }
}
