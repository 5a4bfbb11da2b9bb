//! The Remediation controller's steps for changes applied in the cluster (ConfigMap keys,
//! Deployment env/resources/replicas, restarts, rollbacks):
//! Approved (snapshot, or dry run) -> Applying (server-side apply) -> Verifying -> Succeeded,
//! or -> RollingBack (restore the snapshot) -> Failed.
//!
//! A restored ConfigMap value the running containers cannot see (env, subPath, a long
//! back-off) is followed by a rollout restart, planned with the snapshot and undone with it.
//!
//! Restart safety: the snapshot is written to status (phase Applying) BEFORE the change is
//! applied and is never retaken; the apply itself is a server-side apply of a body derived only
//! from the spec, so repeating it after a crash changes nothing.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use serde_json::json;

use super::step::{Error, Step, cond, ensure_leading, failing, step, workload_of};
use crate::controllers::context::Context;
use crate::crd::*;
use crate::domain::time::{now_rfc3339, parse_time};
use crate::domain::verify::{VerifyInput, VerifyOutcome, verify};
use crate::kube::claim::{self, Claim};
use crate::kube::finalizer;
use crate::kube::{actions, health, restart};

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
        // Before anything changes: from here on, deleting this Remediation (or its Incident)
        // waits for the undo.
        finalizer::add(&kube::Api::<Remediation>::namespaced(ctx.client.clone(), ns), rem).await?;
        // The claim comes before the snapshot: the snapshot is then the state this Remediation
        // alone changes from.
        if let Claim::Busy(holder) = claim::claim(&ctx.client, ns, &action.target(), &rem.name_any()).await? {
            let msg = format!("{} is being changed by Remediation {holder}; one change per target at a time", action.target());
            return Ok(failing(RemediationPhase::Refused, condition_type::POLICY_ALLOWED, "TargetBusy", msg));
        }
        let (workload, _) = workload_of(rem, ns, ctx).await?;
        let before = health::observe(&ctx.client, ns, &workload).await.ok();
        let baseline = before.as_ref().map(|h| h.restarts).unwrap_or(0);
        let follow_up = restart::plan(&ctx.client, ns, &workload, action).await?;
        match actions::snapshot(&ctx.client, ns, action, baseline, &now_rfc3339()).await {
            Ok(s) => {
                st.snapshot = Some(Snapshot { healthy_before: before.map(|h| h.looks_healthy()), restart: follow_up, ..s });
            }
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
    ensure_leading(ctx)?;
    match actions::apply(&ctx.client, ns, action, &rem.name_any(), false).await {
        Ok((body, _)) => {
            let follow_up = st.snapshot.as_ref().and_then(|s| s.restart.clone());
            if let Some(r) = &follow_up {
                restart::apply(&ctx.client, ns, r, &rem.name_any()).await?;
            }
            let then = follow_up.map(|r| format!(", then restarted {} ({})", r.target, r.reason)).unwrap_or_default();
            let now = Timestamp::now();
            let window = SignedDuration::from_secs(rem.spec.verification.window_seconds.into());
            st.applied_patch = Some(body.to_string());
            let described = format!("{}{then}", action.describe());
            if st.applied_at.is_none() {
                st.applied_at = Some(now_rfc3339());
            }
            if st.verification.is_none() {
                st.verification = Some(VerificationResult { deadline: (now + window).to_string(), passed: None, message: String::new() });
            }
            Ok(Step {
                condition: cond(condition_type::APPLIED, true, reason::APPLIED, &described),
                ..step(
                    RemediationPhase::Verifying,
                    reason::APPLIED,
                    format!("applied {described}; verifying for {}s", rem.spec.verification.window_seconds),
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

/// The first changed object that no longer holds what this Remediation applied (someone changed
/// it since), or `None` when all do. Nothing recorded as applied: nothing to compare.
async fn changed_since(rem: &Remediation, ns: &str, st: &RemediationStatus, ctx: &Context) -> Result<Option<String>, Error> {
    let (Some(snapshot), Some(applied)) = (st.snapshot.as_ref(), st.applied_patch.as_deref()) else { return Ok(None) };
    let applied: serde_json::Value = serde_json::from_str(applied).unwrap_or_default();
    let mut changed = vec![(snapshot.target.clone(), applied)];
    if let Some(r) = &snapshot.restart {
        let annotation = json!({"spec": {"template": {"metadata": {"annotations": {actions::RESTART_ANNOTATION: rem.name_any()}}}}});
        changed.push((r.target.clone(), annotation));
    }
    for (target, applied) in changed {
        match actions::still_holds(&ctx.client, ns, &target, &applied).await {
            Ok(true) => {}
            Ok(false) => return Ok(Some(target)),
            Err(actions::ActionError::Kube(e)) => return Err(e.into()),
            Err(e) => return Ok(Some(format!("{target} ({e})"))),
        }
    }
    Ok(None)
}

fn changed_since_step(target: &str, then: &str) -> Step {
    let msg = format!("{target} no longer holds the change Salve applied (changed since by someone else); {then}");
    failing(RemediationPhase::Failed, condition_type::ROLLED_BACK, reason::CHANGED_SINCE_APPLIED, msg)
}

/// Verifying: passed, still waiting, or window over -> roll back.
pub async fn check(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Option<Step>, Error> {
    let (workload, alarm_ok) = workload_of(rem, ns, ctx).await?;
    let health = health::observe(&ctx.client, ns, &workload).await?;
    let deadline = st.verification.as_ref().and_then(|v| parse_time(&v.deadline));
    let now = Timestamp::now();
    let input = VerifyInput {
        alarm_ok,
        health,
        healthy_before: st.snapshot.as_ref().and_then(|s| s.healthy_before),
        applied_at: st.applied_time(),
        now,
        stability: ctx.settings.verify_stability,
        window_over: deadline.is_none_or(|d| now >= d),
    };
    let outcome = verify(&input);
    if matches!(outcome, VerifyOutcome::Passed(_))
        && let Some(target) = changed_since(rem, ns, st, ctx).await?
    {
        let msg = format!("{target} no longer holds the change Salve applied: the signal cleared, but this change is not what holds");
        if let Some(v) = st.verification.as_mut() {
            v.passed = Some(false);
            v.message = msg.clone();
        }
        // The undo finds the same and leaves the newer change in place.
        return Ok(Some(Step {
            to: RemediationPhase::RollingBack,
            condition: cond(condition_type::VERIFIED, false, reason::CHANGED_SINCE_APPLIED, &msg),
            reason: reason::VERIFICATION_FAILED,
            message: msg,
            warning: true,
        }));
    }
    Ok(match outcome {
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

/// RollingBack: restore from the snapshot, then Failed. Only what still holds this
/// Remediation's change is restored: a newer change (a person's hotfix) is never overwritten.
pub async fn roll_back(rem: &Remediation, ns: &str, st: &RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let Some(snapshot) = st.snapshot.as_ref() else {
        return Ok(step(RemediationPhase::Failed, reason::NOTHING_TO_UNDO, "no snapshot; nothing was applied"));
    };
    if let Some(target) = changed_since(rem, ns, st, ctx).await? {
        return Ok(changed_since_step(&target, "not undone, so the newer change stays; a person must decide"));
    }
    ensure_leading(ctx)?;
    let undone = match actions::undo(&ctx.client, ns, snapshot).await {
        Ok(()) => match &snapshot.restart {
            Some(r) => restart::undo(&ctx.client, ns, r).await.map_err(actions::ActionError::Kube),
            None => Ok(()),
        },
        Err(e) => Err(e),
    };
    match undone {
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
