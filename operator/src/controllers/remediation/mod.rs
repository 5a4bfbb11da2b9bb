//! Remediation controller: policy -> approval -> snapshot -> apply -> verify -> (undo).
//! In-cluster changes and pull requests share the first and last steps; their own steps are in
//! `in_cluster` and `pull_request`. A permanent error ends in a `Stalled` condition and a
//! Warning Event, and the Remediation waits for a change instead of retrying.

mod in_cluster;
mod pull_request;
mod step;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::{Action, Controller};
use kube::{Api, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

pub use self::step::Error;
use self::step::{Step, cond, ensure_leading, step};
use crate::controllers::cache::{self, CachedRemediation, RemediationStore};
use crate::controllers::context::Context;
use crate::controllers::settled;
use crate::controllers::stalled;
use crate::crd::*;
use crate::domain::approval::{ApprovalDecision, decide, persons_decision};
use crate::domain::policy::{PolicyContext, Verdict};
use crate::domain::time::now_rfc3339;
use crate::kube::events::{self, PendingEvent};
use crate::kube::policy_context::IncidentScope;
use crate::kube::{finalizer, policy_context, status};

const CONTROLLER: &str = "remediation";

/// The controller's entry. Its cache holds stripped Remediations (see `cache`): a terminal one
/// has nothing left to do and costs no request; anything else is reconciled on the full
/// Remediation, read now.
pub async fn reconcile_cached(cached: Arc<CachedRemediation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let decoded = cached.object();
    if decoded.as_ref().is_ok_and(is_settled) {
        ctx.metrics.reconciles.with_label_values(&[CONTROLLER]).inc();
        return Ok(Action::await_change());
    }
    // The full reconcile is a large future; boxed, a task that ends above stays small.
    Box::pin(read_and_reconcile(decoded, ctx)).await
}

/// What `reconcile_remediation` answers for a terminal phase, without a request: nothing to do
/// (once its finalizer is gone).
fn is_settled(rem: &Remediation) -> bool {
    rem.status.as_ref().is_some_and(|s| s.phase.is_terminal()) && !finalizer::has(rem)
}

/// The change is applied (or being applied, or undone) and not yet verified.
fn change_applied(phase: RemediationPhase) -> bool {
    matches!(phase, RemediationPhase::Applying | RemediationPhase::Verifying | RemediationPhase::RollingOut)
}

/// A Remediation whose change is applied and not verified must not go away with its change in
/// place: when it (or its Incident) is being deleted, it is undone first, unless a person
/// abandoned it, and then it is left as it is and the record says who did. `None`: carry on.
async fn leaving(rem: &Remediation, ns: &str, phase: RemediationPhase, ctx: &Context) -> Result<Option<Step>, Error> {
    if !change_applied(phase) {
        return Ok(None);
    }
    if let Some(by) = rem.annotations().get(finalizer::ABANDONED_BY_ANNOTATION) {
        let msg = format!("abandoned by {by}: the change stays in place, neither verified nor undone");
        return Ok(Some(Step {
            condition: cond(condition_type::ROLLED_BACK, false, reason::ABANDONED, &msg),
            ..step(RemediationPhase::Failed, reason::ABANDONED, msg)
        }));
    }
    // The Incident is read only while verifying, the phase that lasts: applying is one step,
    // and the next reconcile verifies.
    let incident_going = async {
        if phase == RemediationPhase::Applying {
            return Ok(false);
        }
        let inc = Api::<Incident>::namespaced(ctx.client.clone(), ns).get_opt(&rem.spec.incident_ref).await?;
        Ok::<bool, kube::Error>(inc.is_none_or(|i| i.metadata.deletion_timestamp.is_some()))
    };
    if rem.metadata.deletion_timestamp.is_some() || incident_going.await? {
        let msg = "deleted (or its Incident was) before the change was verified; undoing it first".to_string();
        return Ok(Some(Step {
            to: RemediationPhase::RollingBack,
            condition: cond(condition_type::VERIFIED, false, reason::DELETED_BEFORE_VERIFIED, &msg),
            reason: reason::DELETED_BEFORE_VERIFIED,
            message: msg,
            warning: true,
        }));
    }
    Ok(None)
}

async fn read_and_reconcile(decoded: Result<Remediation, InvalidObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let rem = match decoded {
        Ok(rem) => rem,
        Err(invalid) => return reconcile(Arc::new(DeserializeGuard(Err(invalid))), ctx).await,
    };
    let api = Api::<DeserializeGuard<Remediation>>::namespaced(ctx.client.clone(), &rem.namespace().unwrap_or_default());
    match api.get_opt(&rem.name_any()).await? {
        Some(full) => reconcile(Arc::new(full), ctx).await,
        None => Ok(Action::await_change()),
    }
}

pub async fn reconcile(guard: Arc<DeserializeGuard<Remediation>>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciles.with_label_values(&[CONTROLLER]).inc();
    let rem = match &guard.0 {
        Ok(r) => r,
        Err(invalid) => {
            let note = format!("cannot parse Remediation: {}", invalid.error);
            events::publish(&ctx.recorder, &guard.object_ref(&()), PendingEvent::warning(reason::INVALID_OBJECT, "Validate", note)).await;
            return Ok(Action::await_change());
        }
    };
    match reconcile_remediation(rem, &ctx).await {
        Err(e) if e.permanent_reason().is_some() => {
            stall(rem, &ctx, &e).await?;
            Ok(Action::await_change())
        }
        other => other,
    }
}

/// Records a permanent error; the Remediation is reconciled again when it changes.
async fn stall(rem: &Remediation, ctx: &Context, e: &Error) -> Result<(), Error> {
    let why = e.permanent_reason().unwrap_or(reason::REJECTED_BY_API_SERVER);
    tracing::warn!(remediation = %rem.name_any(), error = %e, "remediation stalled on a permanent error");
    let api: Api<Remediation> = Api::namespaced(ctx.client.clone(), &rem.namespace().unwrap_or_default());
    let message = format!("{e}; fix the cause and edit the Remediation to retry");
    let st = rem.status.clone().unwrap_or_default();
    stalled::stall(&ctx.recorder, &api, rem, st, |s| &mut s.conditions, why, message).await.map_err(Error::WriteStatus)
}

async fn reconcile_remediation(rem: &Remediation, ctx: &Context) -> Result<Action, Error> {
    ensure_leading(ctx)?;
    let ns = rem.namespace().unwrap_or_else(|| "default".into());
    let mut st = rem.status.clone().unwrap_or_default();
    let api: Api<Remediation> = Api::namespaced(ctx.client.clone(), &ns);
    if st.phase.is_terminal() && finalizer::has(rem) {
        // Finished: undone, verified, or abandoned. Nothing holds it any more.
        finalizer::remove(&api, rem).await?;
        return Ok(Action::await_change());
    }
    let is_pr = rem.spec.action.kind == ActionKind::PullRequest;
    let next = match leaving(rem, &ns, st.phase, ctx).await? {
        Some(step) if !is_pr => Some(step),
        _ => match st.phase {
            RemediationPhase::Pending => Some(evaluate(rem, &ns, ctx).await?),
            RemediationPhase::AwaitingApproval => approval(rem),
            RemediationPhase::Approved => Some(prepare(rem, &ns, &mut st, ctx).await?),
            RemediationPhase::Applying if is_pr => Some(pull_request::open(rem, &ns, &mut st, ctx).await?),
            RemediationPhase::Applying => Some(in_cluster::apply(rem, &ns, &mut st, ctx).await?),
            RemediationPhase::AwaitingMerge => pull_request::await_merge(rem, &mut st, ctx).await?,
            RemediationPhase::RollingOut => pull_request::roll_out(rem, &ns, &mut st, ctx).await?,
            RemediationPhase::Verifying => in_cluster::check(rem, &ns, &mut st, ctx).await?,
            RemediationPhase::RollingBack if is_pr => Some(pull_request::revert(rem, &ns, &mut st, ctx).await?),
            RemediationPhase::RollingBack => Some(in_cluster::roll_back(rem, &ns, &st, ctx).await?),
            _ => None,
        },
    };
    let Some(next) = next else {
        return Ok(match st.phase {
            p if p.is_terminal() => Action::await_change(),
            p => requeue_after(p, ctx).unwrap_or(Action::requeue(Duration::from_secs(30))),
        });
    };
    if !st.phase.allowed(next.to) {
        return Err(Error::IllegalTransition(st.phase, next.to));
    }
    let now = now_rfc3339();
    let from = st.phase;
    st.phase = next.to;
    st.observed_generation = rem.metadata.generation;
    if let Some(c) = next.condition {
        set_condition(&mut st.conditions, c);
    }
    let ready = if next.to.is_terminal() { ConditionStatus::True } else { ConditionStatus::False };
    set_condition(&mut st.conditions, Condition::new(condition_type::READY, ready, next.reason, next.message.clone(), &now));
    stalled::clear_stalled(&mut st.conditions, &now);
    ensure_leading(ctx)?;
    status::advance_status(&api, rem, &st).await.map_err(Error::WriteStatus)?;
    // Counted once: here the terminal phase is written; a later reconcile finds it terminal.
    if next.to.is_terminal() && from != next.to {
        ctx.metrics.record_remediation(rem.spec.action.kind.as_str(), next.to, next.reason);
    }
    tracing::info!(remediation = %rem.name_any(), to = next.to.as_str(), "remediation transition");
    let event = PendingEvent { warning: next.warning, reason: next.reason, action: next.to.as_str(), note: next.message };
    events::publish(&ctx.recorder, &rem.object_ref(&()), event).await;
    Ok(match next.to {
        p if p.is_terminal() => Action::await_change(),
        p => requeue_after(p, ctx).unwrap_or(Action::requeue(Duration::from_millis(200))),
    })
}

/// Phases that wait on the outside world are polled.
fn requeue_after(phase: RemediationPhase, ctx: &Context) -> Option<Action> {
    match phase {
        RemediationPhase::AwaitingMerge => Some(Action::requeue(ctx.settings.github_poll)),
        RemediationPhase::Verifying | RemediationPhase::RollingOut => Some(Action::requeue(ctx.settings.verify_poll)),
        _ => None,
    }
}

fn refused(action: &ProposedAction, why: &'static str, message: &str) -> Step {
    let msg = format!("policy refused {}: {message}", action.describe());
    Step {
        to: RemediationPhase::Refused,
        condition: cond(condition_type::POLICY_ALLOWED, false, why, &msg),
        reason: reason::POLICY_REFUSED,
        message: msg,
        warning: true,
    }
}

/// The policy's facts for this Remediation, within the blast radius of its Incident (read now:
/// a Remediation names its Incident, and whoever wrote it cannot widen what that is about).
async fn policy_facts(rem: &Remediation, ns: &str, ctx: &Context) -> Result<PolicyContext, Error> {
    // A pull request changes a repository, not a cluster object: no blast radius to read.
    let incident = match rem.spec.action.kind {
        ActionKind::PullRequest => None,
        _ => Api::<Incident>::namespaced(ctx.client.clone(), ns).get_opt(&rem.spec.incident_ref).await?,
    };
    let scope = incident.as_ref().map(|inc| IncidentScope {
        kind: &inc.spec.target.kind,
        name: &inc.spec.target.name,
        replicas_before: inc.status.as_ref().and_then(|s| s.evidence.as_ref()).map(|e| e.desired_replicas),
    });
    let cache = ctx.remediation_cache.get();
    let name = rem.name_any();
    let mut facts = policy_context::gather(&ctx.client, cache.as_ref(), &ctx.history, ns, &rem.spec.action, Some(&name), scope).await?;
    facts.started_last_hour += ctx.starts.unseen(cache.as_ref(), ns, &name);
    Ok(facts)
}

/// Pending: the policy decides, whatever the spec says.
async fn evaluate(rem: &Remediation, ns: &str, ctx: &Context) -> Result<Step, Error> {
    let action = &rem.spec.action;
    let _turn = ctx.starts.turn().await;
    let pctx = policy_facts(rem, ns, ctx).await?;
    let auto_approve = match ctx.policy.evaluate(action, &pctx) {
        Verdict::Refused { reason: why, message } => return Ok(refused(action, why, &message)),
        Verdict::Allowed { auto_approve, .. } => auto_approve,
    };
    if let Some(refusal) = pull_request::refuse_without_github(action, ctx) {
        return Ok(refusal);
    }
    let recorded = rem.spec.approval.as_ref().map(|a| (a.state, a.by.as_deref()));
    let mut s = match decide(recorded, auto_approve) {
        ApprovalDecision::ApprovedByPerson => step(RemediationPhase::Approved, reason::APPROVED, "approved by a person"),
        ApprovalDecision::AutoApproved => step(
            RemediationPhase::Approved,
            reason::AUTO_APPROVED,
            format!("{} is within the policy's auto-approve risk", action.describe()),
        ),
        ApprovalDecision::AwaitPerson => step(
            RemediationPhase::AwaitingApproval,
            reason::AWAITING_APPROVAL,
            format!(
                "{} ({:?} risk) needs approval: kubectl patch remediation {} --type merge -p '{{\"spec\":{{\"approval\":{{\"state\":\"Approved\",\"by\":\"<you>\"}}}}}}'",
                action.describe(),
                rem.spec.risk,
                rem.name_any()
            ),
        ),
    };
    s.condition = cond(condition_type::POLICY_ALLOWED, true, reason::ALLOWED, &action.describe());
    if s.to == RemediationPhase::Approved {
        ctx.starts.record(ns, &rem.name_any());
    }
    Ok(s)
}

/// AwaitingApproval: only a person's decision in `spec.approval` moves it on.
fn approval(rem: &Remediation) -> Option<Step> {
    let a = rem.spec.approval.as_ref()?;
    let by = a.by.clone().unwrap_or_else(|| "a person".into());
    match persons_decision(a.state, a.by.as_deref())? {
        ApprovalState::Pending => None,
        ApprovalState::Approved => Some(Step {
            condition: cond(condition_type::APPROVED, true, reason::APPROVED, &format!("approved by {by}")),
            ..step(RemediationPhase::Approved, reason::APPROVED, format!("approved by {by}"))
        }),
        ApprovalState::Rejected => {
            let fb = a.feedback.clone().unwrap_or_default();
            Some(Step {
                condition: cond(condition_type::APPROVED, false, reason::REJECTED, &fb),
                ..step(RemediationPhase::Rejected, reason::REJECTED, format!("rejected by {by}: {fb}"))
            })
        }
    }
}

/// Approved: re-check the policy (the in-flight rule may have changed), then let the kind of
/// change take its snapshot (or dry-run).
async fn prepare(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let action = &rem.spec.action;
    let turn = ctx.starts.turn().await;
    let pctx = policy_facts(rem, ns, ctx).await?;
    if let Verdict::Refused { reason: why, message } = ctx.policy.evaluate(action, &pctx) {
        return Ok(refused(action, why, &message));
    }
    ctx.starts.record(ns, &rem.name_any());
    drop(turn);
    if action.kind == ActionKind::PullRequest {
        return pull_request::prepare(rem, ns, st, ctx).await;
    }
    in_cluster::prepare(rem, ns, st, ctx).await
}

pub fn error_policy(_obj: Arc<CachedRemediation>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failures.with_label_values(&[CONTROLLER]).inc();
    tracing::warn!(error = %err, "remediation reconcile failed");
    match err {
        // GitHub is down or rate limiting: back off longer than for a conflict with the API server.
        Error::Github(_) => Action::requeue(crate::controllers::retry::jittered(ctx.settings.github_retry)),
        _ => Action::requeue(crate::controllers::retry::jittered(Duration::from_secs(2))),
    }
}

/// Runs the controller until `shutdown` on the shared Remediation watch: its cache `store` and
/// its changes `trigger`.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: CancellationToken,
    store: RemediationStore,
    trigger: impl futures::Stream<Item = Arc<CachedRemediation>> + Send + 'static,
) {
    let keep = {
        let ctx = ctx.clone();
        move |cached: &Arc<CachedRemediation>| {
            std::future::ready(settled::keep(&ctx, CONTROLLER, cached.object().is_ok_and(|r| is_settled(&r))))
        }
    };
    Controller::for_shared_stream(trigger.filter(keep), store)
        .with_config(cache::controller_config(ctx.settings.max_concurrent_reconciles))
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile_cached, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "remediation controller event");
            }
        })
        .await;
}
