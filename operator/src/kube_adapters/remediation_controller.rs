//! Remediation controller: policy -> approval -> snapshot -> apply -> verify -> (undo).
//!
//! Restart safety: the snapshot is written to status (phase Applying) BEFORE the change is
//! applied and is never retaken; the apply itself is a server-side apply of a body derived only
//! from the spec, so repeating it after a crash changes nothing.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::{actions, events, health, now_rfc3339, parse_time, policy_context, pull_request_steps, status};
use crate::crd::*;
use crate::domain::policy::Verdict;
use crate::domain::verify::{VerifyOutcome, verify};

const CONTROLLER: &str = "remediation";
pub const AUTO_APPROVER: &str = "salve-operator/policy";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("illegal phase transition {0:?} -> {1:?}")]
    IllegalTransition(RemediationPhase, RemediationPhase),
    /// Transient only (5xx, rate limit, unreachable): retried by requeue. Permanent GitHub
    /// failures end the Remediation instead.
    #[error(transparent)]
    Github(#[from] super::github::GithubError),
}

pub(super) struct Step {
    pub to: RemediationPhase,
    pub condition: Option<Condition>,
    pub reason: &'static str,
    pub message: String,
    pub warning: bool,
}

pub(super) fn step(to: RemediationPhase, reason: &'static str, message: impl Into<String>) -> Step {
    Step { to, condition: None, reason, message: message.into(), warning: false }
}

pub(super) fn cond(type_: &str, ok: bool, reason: &str, message: &str) -> Option<Condition> {
    let s = if ok { ConditionStatus::True } else { ConditionStatus::False };
    Some(Condition::new(type_, s, reason, message, &now_rfc3339()))
}

pub async fn reconcile(guard: Arc<DeserializeGuard<Remediation>>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciles.with_label_values(&[CONTROLLER]).inc();
    let rem = match &guard.0 {
        Ok(r) => r,
        Err(invalid) => {
            events::publish(
                &ctx.recorder,
                &guard.object_ref(&()),
                true,
                "InvalidObject",
                "Validate",
                format!("cannot parse Remediation: {}", invalid.error),
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    if rem.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = rem.namespace().unwrap_or_else(|| "default".into());
    let mut st = rem.status.clone().unwrap_or_default();
    let poll = ctx.settings.verify_poll();
    let is_pr = rem.spec.action.kind == ActionKind::PullRequest;
    let next = match st.phase {
        RemediationPhase::Pending => Some(evaluate(rem, &ns, &ctx).await?),
        RemediationPhase::AwaitingApproval => approval(rem),
        RemediationPhase::Approved => Some(prepare(rem, &ns, &mut st, &ctx).await?),
        RemediationPhase::Applying if is_pr => Some(pull_request_steps::open(rem, &ns, &mut st, &ctx).await?),
        RemediationPhase::Applying => Some(apply(rem, &ns, &mut st, &ctx).await?),
        RemediationPhase::AwaitingMerge => pull_request_steps::await_merge(rem, &mut st, &ctx).await?,
        RemediationPhase::RollingOut => pull_request_steps::roll_out(rem, &ns, &mut st, &ctx).await?,
        RemediationPhase::Verifying => check(rem, &ns, &mut st, &ctx).await?,
        RemediationPhase::RollingBack if is_pr => Some(pull_request_steps::revert(rem, &ns, &mut st, &ctx).await?),
        RemediationPhase::RollingBack => Some(roll_back(&ns, &st, &ctx).await?),
        _ => None,
    };
    let Some(next) = next else {
        return Ok(match st.phase {
            RemediationPhase::AwaitingMerge => Action::requeue(ctx.settings.github.poll()),
            RemediationPhase::Verifying | RemediationPhase::RollingOut => Action::requeue(poll),
            p if p.is_terminal() => Action::await_change(),
            _ => Action::requeue(Duration::from_secs(30)),
        });
    };
    if !st.phase.allowed(next.to) {
        return Err(Error::IllegalTransition(st.phase, next.to));
    }
    st.phase = next.to;
    st.observed_generation = rem.metadata.generation;
    if let Some(c) = next.condition {
        set_condition(&mut st.conditions, c);
    }
    let ready = if next.to.is_terminal() { ConditionStatus::True } else { ConditionStatus::False };
    set_condition(&mut st.conditions, Condition::new("Ready", ready, next.reason, next.message.clone(), &now_rfc3339()));
    let api: Api<Remediation> = Api::namespaced(ctx.client.clone(), &ns);
    status::apply_status(&api, rem, &st).await?;
    tracing::info!(remediation = %rem.name_any(), to = next.to.as_str(), "remediation transition");
    events::publish(&ctx.recorder, &rem.object_ref(&()), next.warning, next.reason, next.to.as_str(), next.message).await;
    Ok(match next.to {
        RemediationPhase::AwaitingMerge => Action::requeue(ctx.settings.github.poll()),
        RemediationPhase::Verifying | RemediationPhase::RollingOut => Action::requeue(poll),
        p if p.is_terminal() => Action::await_change(),
        _ => Action::requeue(Duration::from_millis(200)),
    })
}

/// Pending: the policy decides, whatever the spec says.
async fn evaluate(rem: &Remediation, ns: &str, ctx: &Context) -> Result<Step, Error> {
    let action = &rem.spec.action;
    let pctx = policy_context::gather(&ctx.client, ns, action, Some(&rem.name_any())).await?;
    Ok(match ctx.policy.evaluate(action, &pctx) {
        Verdict::Refused { reason, message } => {
            let msg = format!("policy refused {}: {message}", action.describe());
            Step {
                to: RemediationPhase::Refused,
                condition: cond("PolicyAllowed", false, reason, &msg),
                reason: "PolicyRefused",
                message: msg,
                warning: true,
            }
        }
        Verdict::Allowed { .. } if pull_request_steps::refuse_without_github(action, ctx).is_some() => {
            pull_request_steps::refuse_without_github(action, ctx).unwrap_or_else(|| step(RemediationPhase::Refused, "PolicyRefused", ""))
        }
        Verdict::Allowed { auto_approve, .. } => {
            let human = rem.spec.approval.as_ref().filter(|a| a.by.as_deref() != Some(AUTO_APPROVER));
            let mut s = match (human.map(|a| a.state), auto_approve) {
                (Some(ApprovalState::Rejected), _) => {
                    step(RemediationPhase::AwaitingApproval, "AwaitingApproval", "rejected before evaluation")
                }
                (Some(ApprovalState::Approved), _) => step(RemediationPhase::Approved, "Approved", "approved by a person"),
                (_, true) => step(
                    RemediationPhase::Approved,
                    "AutoApproved",
                    format!("{} is within the policy's auto-approve risk", action.describe()),
                ),
                (_, false) => step(
                    RemediationPhase::AwaitingApproval,
                    "AwaitingApproval",
                    format!(
                        "{} ({:?} risk) needs approval: kubectl patch remediation {} --type merge -p '{{\"spec\":{{\"approval\":{{\"state\":\"Approved\"}}}}}}'",
                        action.describe(),
                        rem.spec.risk,
                        rem.name_any()
                    ),
                ),
            };
            s.condition = cond("PolicyAllowed", true, "Allowed", &action.describe());
            s
        }
    })
}

/// AwaitingApproval: only a person's decision in `spec.approval` moves it on.
fn approval(rem: &Remediation) -> Option<Step> {
    let a = rem.spec.approval.as_ref()?;
    let by = a.by.clone().unwrap_or_else(|| "a person".into());
    match a.state {
        ApprovalState::Pending => None,
        ApprovalState::Approved => Some(Step {
            condition: cond("Approved", true, "Approved", &format!("approved by {by}")),
            ..step(RemediationPhase::Approved, "Approved", format!("approved by {by}"))
        }),
        ApprovalState::Rejected => {
            let fb = a.feedback.clone().unwrap_or_default();
            Some(Step {
                condition: cond("Approved", false, "Rejected", &fb),
                ..step(RemediationPhase::Rejected, "Rejected", format!("rejected by {by}: {fb}"))
            })
        }
    }
}

pub(super) async fn workload_of(rem: &Remediation, ns: &str, ctx: &Context) -> Result<(String, bool), kube::Error> {
    let inc = Api::<Incident>::namespaced(ctx.client.clone(), ns).get_opt(&rem.spec.incident_ref).await?;
    let target = inc.as_ref().map(|i| i.spec.target.name.clone()).unwrap_or_else(|| rem.spec.action.target_name.clone());
    let ok = inc.and_then(|i| i.spec.signal).is_some_and(|s| s == SignalState::Ok);
    Ok((target, ok))
}

/// Approved: re-check the in-flight rule, then save the snapshot (or dry-run).
async fn prepare(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let action = &rem.spec.action;
    let pctx = policy_context::gather(&ctx.client, ns, action, Some(&rem.name_any())).await?;
    if let Verdict::Refused { reason, message } = ctx.policy.evaluate(action, &pctx) {
        let msg = format!("policy refused {}: {message}", action.describe());
        return Ok(Step {
            to: RemediationPhase::Refused,
            condition: cond("PolicyAllowed", false, reason, &msg),
            reason: "PolicyRefused",
            message: msg,
            warning: true,
        });
    }
    if action.kind == ActionKind::PullRequest {
        return pull_request_steps::prepare(rem, ns, st, ctx).await;
    }
    if ctx.policy.dry_run {
        return Ok(match actions::apply(&ctx.client, ns, action, &rem.name_any(), true).await {
            Ok((body, _result)) => {
                st.dry_run_result = Some(format!("server accepted: {body}"));
                step(RemediationPhase::DryRun, "DryRun", format!("dry run of {} succeeded; nothing applied", action.describe()))
            }
            Err(e) => {
                st.dry_run_result = Some(format!("server rejected: {e}"));
                step(RemediationPhase::DryRun, "DryRun", format!("dry run of {} failed: {e}", action.describe()))
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
                return Ok(Step {
                    to: RemediationPhase::Failed,
                    condition: cond("Applied", false, "SnapshotFailed", &msg),
                    reason: "SnapshotFailed",
                    message: msg,
                    warning: true,
                });
            }
        }
    }
    Ok(Step {
        condition: cond("SnapshotSaved", true, "SnapshotSaved", "pre-change state saved"),
        ..step(RemediationPhase::Applying, "Applying", format!("snapshot saved; applying {}", action.describe()))
    })
}

/// Applying: the snapshot is already in status; server-side apply the change.
async fn apply(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Step, Error> {
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
                condition: cond("Applied", true, "Applied", &action.describe()),
                ..step(
                    RemediationPhase::Verifying,
                    "Applied",
                    format!("applied {}; verifying for {}s", action.describe(), rem.spec.verification.window_seconds),
                )
            })
        }
        Err(actions::ActionError::Kube(e)) if !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 422) => Err(e.into()),
        Err(e) => {
            let msg = format!("apply failed: {e}; undoing");
            Ok(Step {
                to: RemediationPhase::RollingBack,
                condition: cond("Applied", false, "ApplyFailed", &msg),
                reason: "ApplyFailed",
                message: msg,
                warning: true,
            })
        }
    }
}

/// Verifying: passed, still waiting, or window over -> roll back.
async fn check(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Option<Step>, Error> {
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
            Some(Step { condition: cond("Verified", true, "SignalCleared", &msg), ..step(RemediationPhase::Succeeded, "Verified", msg) })
        }
        VerifyOutcome::Failed(msg) => {
            if let Some(v) = st.verification.as_mut() {
                v.passed = Some(false);
                v.message = msg.clone();
            }
            Some(Step {
                to: RemediationPhase::RollingBack,
                condition: cond("Verified", false, "SignalNotCleared", &msg),
                reason: "VerificationFailed",
                message: format!("{msg}; undoing"),
                warning: true,
            })
        }
    })
}

/// RollingBack: restore from the snapshot, then Failed.
async fn roll_back(ns: &str, st: &RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let Some(snapshot) = st.snapshot.as_ref() else {
        return Ok(step(RemediationPhase::Failed, "NothingToUndo", "no snapshot; nothing was applied"));
    };
    match actions::undo(&ctx.client, ns, snapshot).await {
        Ok(()) => {
            let why = st
                .conditions
                .iter()
                .find(|c| c.type_ == "Verified" || c.type_ == "Applied")
                .filter(|c| c.status == ConditionStatus::False)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            Ok(Step {
                to: RemediationPhase::Failed,
                condition: cond("RolledBack", true, "Undone", &format!("{} restored from snapshot", snapshot.target)),
                reason: "RolledBack",
                message: format!("undone from snapshot: {why}"),
                warning: true,
            })
        }
        Err(actions::ActionError::Kube(e)) => Err(e.into()),
        Err(e) => Ok(Step {
            to: RemediationPhase::Failed,
            condition: cond("RolledBack", false, "UndoFailed", &e.to_string()),
            reason: "UndoFailed",
            message: format!("undo failed: {e}; needs a person"),
            warning: true,
        }),
    }
}

pub fn error_policy(_obj: Arc<DeserializeGuard<Remediation>>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failures.with_label_values(&[CONTROLLER]).inc();
    tracing::warn!(error = %err, "remediation reconcile failed");
    match err {
        // GitHub is down or rate limiting: back off longer than for a conflict with the API server.
        Error::Github(_) => Action::requeue(ctx.settings.github.retry()),
        _ => Action::requeue(Duration::from_secs(2)),
    }
}

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let api = Api::<DeserializeGuard<Remediation>>::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "remediation controller event");
            }
        })
        .await;
}
