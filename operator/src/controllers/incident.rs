//! Incident controller: Detected -> Investigating -> Diagnosed -> Remediating -> Verifying ->
//! Resolved | Escalated. Each reconcile performs at most one transition and writes it to status
//! (server-side apply) before publishing any Event, so a restart resumes from the last written
//! phase and never repeats a side effect. A permanent error (the API server rejects what we
//! write, an illegal transition) ends in a `Stalled` condition and a Warning Event, and the
//! Incident waits for a change instead of retrying.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::PostParams;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::cache;
/// The Incidents this controller has seen (stripped), for the by-phase gauge.
pub use super::cache::IncidentStore;
use super::cached_incident::CachedIncident;
use super::context::Context;
use super::post_mortem::{ARCHIVE_RETRY, RecordedCopy, recorded_in_step, sync_post_mortem};
use super::{settled, stalled};
use crate::crd::*;
use crate::domain::approval::initial_approval;
use crate::domain::cloud_evidence::{CloudEvidenceRequest, MetricRef};
use crate::domain::diagnoser::{ActionLimits, DiagnoseError, DiagnosisInput, Investigation};
use crate::domain::incident_steps::{IncidentStep, RemediationReport, after_remediation};
use crate::domain::llm_usage::llm_call;
use crate::domain::names::{derived_name, label_value};
use crate::domain::policy::Verdict;
use crate::domain::redact::{Bounds, redact_and_bound};
use crate::domain::signature::incident_signature;
use crate::domain::simulation::PromptInputs;
use crate::domain::time::{now_rfc3339, parse_time};
use crate::kube::events::{self, PendingEvent};
use crate::kube::policy_context::IncidentScope;
use crate::kube::remediations::owned_remediations;
use crate::kube::{evidence, finalizer, policy_context, status};

const CONTROLLER: &str = "incident";
const MAX_TIMELINE: usize = 50;
/// Label on every Remediation naming its Incident (hashed when the name is too long for a label).
pub const INCIDENT_LABEL: &str = "salve.dev/incident";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("collecting evidence: {0}")]
    Collect(#[source] kube::Error),
    #[error("diagnosing: {0}")]
    Diagnose(#[from] DiagnoseError),
    #[error("asking the policy: {0}")]
    Judge(#[source] kube::Error),
    #[error("creating the remediation: {0}")]
    CreateRemediation(#[source] kube::Error),
    #[error("reading remediations: {0}")]
    ReadRemediations(#[source] kube::Error),
    #[error("reading the incident: {0}")]
    ReadIncident(#[source] kube::Error),
    #[error("writing the post-mortem: {0}")]
    PostMortem(#[source] kube::Error),
    #[error("writing status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("illegal phase transition {0:?} -> {1:?}")]
    IllegalTransition(IncidentPhase, IncidentPhase),
    #[error("this replica no longer leads: its lease ran out before the write")]
    NotLeading,
}

impl Error {
    /// Errors that repeating the same request cannot fix: the API server rejected the content
    /// (400 Bad Request, 422 Invalid) or the state machine refuses the move.
    pub fn permanent_reason(&self) -> Option<&'static str> {
        match self {
            Error::IllegalTransition(..) => Some(reason::ILLEGAL_TRANSITION),
            Error::Collect(e)
            | Error::Judge(e)
            | Error::CreateRemediation(e)
            | Error::ReadRemediations(e)
            | Error::ReadIncident(e)
            | Error::PostMortem(e)
            | Error::WriteStatus(e) => stalled::permanent_api_reason(e),
            Error::Diagnose(_) | Error::NotLeading => None,
        }
    }
}

/// The controller's entry. Its cache holds stripped Incidents (see `cache`), enough to see that
/// a terminal Incident has nothing left to do (its post-mortem and notification condition in
/// step): that costs no request. Anything else is reconciled on the full Incident, read now.
pub async fn reconcile_cached(cached: Arc<CachedIncident>, ctx: Arc<Context>) -> Result<Action, Error> {
    let decoded = cached.object_and_summary();
    if decoded.as_ref().is_ok_and(|(inc, copy)| terminal_in_step(inc, *copy, &ctx)) {
        ctx.metrics.reconciles.with_label_values(&[CONTROLLER]).inc();
        return Ok(Action::await_change());
    }
    // The full reconcile is a future of tens of KiB; boxed, a task that ends above stays small.
    Box::pin(read_and_reconcile(decoded.map(|(inc, _)| inc), ctx)).await
}

async fn read_and_reconcile(decoded: Result<Incident, InvalidObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let inc = match decoded {
        Ok(inc) => inc,
        Err(invalid) => return reconcile(Arc::new(DeserializeGuard(Err(invalid))), ctx).await,
    };
    let api = Api::<DeserializeGuard<Incident>>::namespaced(ctx.client.clone(), &inc.namespace().unwrap_or_default());
    match api.get_opt(&inc.name_any()).await.map_err(Error::ReadIncident)? {
        Some(full) => reconcile(Arc::new(full), ctx).await,
        // Deleted since: nothing to do.
        None => Ok(Action::await_change()),
    }
}

/// Nothing left to do for this Incident, judged on the cache (see `terminal_in_step`).
fn is_settled(cached: &CachedIncident, ctx: &Context) -> bool {
    cached.object_and_summary().is_ok_and(|(inc, copy)| terminal_in_step(&inc, copy, ctx))
}

/// Whether a change of this Remediation wakes its Incident. Not when the Incident is settled
/// (counted as such), and not when the cache does not hold it (yet): the Incident's own arrival
/// from its watch wakes it then, judged against the Remediation cache as it is by that time.
fn wakes_owner(rem: &cache::CachedRemediation, incidents: &IncidentStore, ctx: &Context) -> bool {
    let ns = rem.namespace().unwrap_or_default();
    let owners = rem.owner_references().iter().filter(|o| o.kind == Incident::kind(&()));
    owners
        .filter_map(|o| incidents.get(&ObjectRef::new(&o.name).within(&ns)))
        .any(|inc| settled::keep(ctx, CONTROLLER, is_settled(&inc, ctx)))
}

/// What the terminal branch of `reconcile_incident` would find to write, checked on the cache
/// (keep the two in step): `true` when it would write nothing and publish nothing.
fn terminal_in_step(inc: &Incident, copy: Option<RecordedCopy>, ctx: &Context) -> bool {
    if finalizer::has(inc) && inc.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(st) = inc.status.as_ref().filter(|s| s.phase.is_terminal()) else { return false };
    if sync_notification_condition(inc, &mut st.clone(), &now_rfc3339()) {
        return false;
    }
    let Some(store) = ctx.remediation_cache.get() else { return false };
    let ns = inc.namespace().unwrap_or_else(|| "default".into());
    let records: Vec<u64> = st.remediations.iter().filter_map(|name| cache::cached_remediation_record(&store, &ns, name)).collect();
    recorded_in_step(inc, st, copy, &records, ctx.post_mortem_store.is_some())
}

pub async fn reconcile(guard: Arc<DeserializeGuard<Incident>>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciles.with_label_values(&[CONTROLLER]).inc();
    let inc = match &guard.0 {
        Ok(inc) => inc,
        Err(invalid) => {
            // Reported once per change; the controller keeps serving every other Incident.
            let note = format!("cannot parse Incident: {}", invalid.error);
            events::publish(&ctx.recorder, &guard.object_ref(&()), PendingEvent::warning(reason::INVALID_OBJECT, "Validate", note)).await;
            return Ok(Action::await_change());
        }
    };
    match reconcile_incident(inc, &ctx).await {
        Err(e) if e.permanent_reason().is_some() => {
            stall(inc, &ctx, &e).await?;
            Ok(Action::await_change())
        }
        other => other,
    }
}

/// Records a permanent error; the Incident is reconciled again when it (or one of its
/// Remediations) changes.
async fn stall(inc: &Incident, ctx: &Context, e: &Error) -> Result<(), Error> {
    let why = e.permanent_reason().unwrap_or(reason::REJECTED_BY_API_SERVER);
    tracing::warn!(incident = %inc.name_any(), error = %e, "incident stalled on a permanent error");
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &inc.namespace().unwrap_or_default());
    let message = format!("{e}; fix the cause and edit the Incident to retry");
    let st = inc.status.clone().unwrap_or_default();
    stalled::stall(&ctx.recorder, &api, inc, st, |s| &mut s.conditions, why, message).await.map_err(Error::WriteStatus)
}

async fn reconcile_incident(inc: &Incident, ctx: &Context) -> Result<Action, Error> {
    if !ctx.write_gate.may_write() {
        return Err(Error::NotLeading);
    }
    let ns = inc.namespace().unwrap_or_else(|| "default".into());
    if inc.metadata.deletion_timestamp.is_some() {
        return release_when_undone(inc, &ns, ctx).await;
    }
    let key = format!("{ns}/{}", inc.name_any());
    let mut st = inc.status.clone().unwrap_or_default();
    // Status as data: the notifier's annotations say whether notifications get through.
    let notification_changed = sync_notification_condition(inc, &mut st, &now_rfc3339());
    let mut pending = Vec::new();
    let next = match st.phase {
        // Nothing may change in a namespace the policy does not allow, and the operator's RBAC
        // may not even let it look: one status write says so, and nothing else is tried.
        IncidentPhase::Detected if !ctx.policy.allows_namespace(&ns) => Some(namespace_not_allowed(&ns)),
        IncidentPhase::Detected => Some(IncidentStep::new(IncidentPhase::Investigating, reason::INVESTIGATING, "collecting evidence")),
        IncidentPhase::Investigating => Some(investigate(inc, &ns, &mut st, ctx, &mut pending).await?),
        IncidentPhase::Diagnosed => Some(create_remediation(inc, &ns, &mut st, ctx).await?),
        IncidentPhase::Remediating | IncidentPhase::Verifying => follow_remediation(&ns, &mut st, ctx).await?,
        // Nothing was done in a namespace the policy does not allow, and nothing is written
        // there but the Incident's status: no post-mortem.
        IncidentPhase::Resolved | IncidentPhase::Escalated if !ctx.policy.allows_namespace(&ns) => {
            if notification_changed {
                status::apply_status(&Api::<Incident>::namespaced(ctx.client.clone(), &ns), inc, &st).await.map_err(Error::WriteStatus)?;
            }
            return Ok(Action::await_change());
        }
        IncidentPhase::Resolved | IncidentPhase::Escalated => {
            // A person may score the outcome later, and an archive upload may have failed:
            // keep the post-mortem (ConfigMap, status copy, S3) in step.
            let sync = sync_post_mortem(inc, &ns, &mut st, ctx).await.map_err(Error::PostMortem)?;
            if sync.status_changed || notification_changed {
                status::apply_status(&Api::<Incident>::namespaced(ctx.client.clone(), &ns), inc, &st).await.map_err(Error::WriteStatus)?;
            }
            events::publish_all(&ctx.recorder, &inc.object_ref(&()), sync.events).await;
            return Ok(if sync.archive_pending { Action::requeue(ARCHIVE_RETRY) } else { Action::await_change() });
        }
    };
    let Some(next) = next else {
        if notification_changed {
            status::apply_status(&Api::<Incident>::namespaced(ctx.client.clone(), &ns), inc, &st).await.map_err(Error::WriteStatus)?;
        }
        return Ok(Action::requeue(Duration::from_secs(60)));
    };
    if !st.phase.allowed(next.to) {
        return Err(Error::IllegalTransition(st.phase, next.to));
    }
    let now = now_rfc3339();
    let from = st.phase;
    st.phase = next.to;
    st.observed_generation = inc.metadata.generation;
    st.timeline.push(TimelineEntry { time: now.clone(), phase: next.to, message: next.message.clone() });
    let len = st.timeline.len();
    if len > MAX_TIMELINE {
        st.timeline.drain(..len - MAX_TIMELINE);
    }
    let ready = if next.to.is_terminal() { ConditionStatus::True } else { ConditionStatus::False };
    set_condition(&mut st.conditions, Condition::new(condition_type::READY, ready, next.reason, next.message.clone(), &now));
    stalled::clear_stalled(&mut st.conditions, &now);
    if next.to.is_terminal() && ctx.policy.allows_namespace(&ns) {
        // Never blocks the terminal phase: whatever fails here is retried by the next reconcile.
        match sync_post_mortem(inc, &ns, &mut st, ctx).await {
            Ok(sync) => pending.extend(sync.events),
            Err(e) => tracing::warn!(incident = %key, error = %e, "post-mortem not written yet"),
        }
    }
    if !ctx.write_gate.may_write() {
        return Err(Error::NotLeading);
    }
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &ns);
    status::advance_status(&api, inc, &st).await.map_err(Error::WriteStatus)?;
    // Recorded: the answer is in status now, so the cache entry is no longer needed.
    if from == IncidentPhase::Investigating {
        forget_investigation(ctx, inc, st.attempts);
    }
    record_stage_time(inc, next.to, ctx);
    tracing::info!(incident = %key, from = from.as_str(), to = next.to.as_str(), "incident transition");
    pending.push(PendingEvent { warning: next.is_warning(), reason: next.reason, action: next.to.as_str(), note: next.message });
    events::publish_all(&ctx.recorder, &inc.object_ref(&()), pending).await;
    Ok(Action::requeue(Duration::from_secs(1)))
}

/// A deleted Incident goes once none of its Remediations holds an applied, unverified change
/// (the Remediation controller undoes them when it sees the Incident going).
async fn release_when_undone(inc: &Incident, ns: &str, ctx: &Context) -> Result<Action, Error> {
    if !finalizer::has(inc) {
        return Ok(Action::await_change());
    }
    let st = inc.status.clone().unwrap_or_default();
    let remediations = owned_remediations(&ctx.client, ns, &st).await.map_err(Error::ReadRemediations)?;
    let undoing = remediations.iter().filter(|r| finalizer::has(*r)).count();
    if undoing > 0 {
        tracing::info!(incident = %inc.name_any(), undoing, "incident deleted; waiting for its changes to be undone");
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), ns);
    finalizer::remove(&api, inc).await.map_err(Error::WriteStatus)?;
    Ok(Action::await_change())
}

/// Sets the `NotificationDelivered` condition the notifier's annotations call for (a change of
/// them is a change of the Incident, so it is reconciled); `true` when the condition changed.
fn sync_notification_condition(inc: &Incident, st: &mut IncidentStatus, now: &str) -> bool {
    let Some(c) = crate::notify::delivery_condition(inc.annotations(), now) else { return false };
    let before = st.conditions.clone();
    set_condition(&mut st.conditions, c);
    st.conditions != before
}

fn record_stage_time(inc: &Incident, to: IncidentPhase, ctx: &Context) {
    let stage = match to {
        IncidentPhase::Diagnosed => "diagnose",
        IncidentPhase::Verifying => "remediate",
        IncidentPhase::Resolved => "resolve",
        _ => return,
    };
    if let Some(created) = inc.meta().creation_timestamp.as_ref() {
        let secs = k8s_openapi::jiff::Timestamp::now().duration_since(created.0).as_secs_f64();
        ctx.metrics.durations.with_label_values(&[stage]).observe(secs.max(0.0));
    }
}

fn investigation_key(inc: &Incident, attempt: u32) -> String {
    format!("{}/{attempt}", inc.uid().unwrap_or_default())
}

fn forget_investigation(ctx: &Context, inc: &Incident, attempt: u32) {
    ctx.unrecorded_diagnoses.lock().unwrap_or_else(|e| e.into_inner()).remove(&investigation_key(inc, attempt));
}

/// Investigating: collect the evidence, diagnose it, and judge the proposed action.
async fn investigate(
    inc: &Incident,
    ns: &str,
    st: &mut IncidentStatus,
    ctx: &Context,
    pending: &mut Vec<PendingEvent>,
) -> Result<IncidentStep, Error> {
    if st.attempts >= ctx.settings.max_attempts {
        return Ok(IncidentStep::new(
            IncidentPhase::Escalated,
            reason::ATTEMPTS_EXHAUSTED,
            format!("{} remediation attempt(s) did not resolve the incident", st.attempts),
        ));
    }
    if !ctx.policy.allows_namespace(ns) {
        return Ok(namespace_not_allowed(ns));
    }
    let key = investigation_key(inc, st.attempts);
    let cached = ctx.unrecorded_diagnoses.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
    let investigation = match cached {
        Some(i) => i,
        None => {
            let input = match collect(inc, ns, st, ctx).await? {
                Ok(input) => input,
                Err(unavailable) => return Ok(unavailable),
            };
            let diagnosis = diagnose(&input, ctx).await?;
            let i = Investigation { input, diagnosis };
            ctx.unrecorded_diagnoses.lock().unwrap_or_else(|e| e.into_inner()).insert(key, i.clone());
            i
        }
    };
    record_investigation(&investigation, st, pending);
    judge(inc, ns, st, ctx, investigation.diagnosis, pending).await
}

fn namespace_not_allowed(ns: &str) -> IncidentStep {
    IncidentStep::new(
        IncidentPhase::Escalated,
        reason::NAMESPACE_NOT_ALLOWED,
        format!(
            "namespace {ns} is not in the allowed namespaces (--allowed-namespaces / SALVE_ALLOWED_NAMESPACES); a person must handle it"
        ),
    )
}

/// Evidence (Kubernetes, then AWS when configured), redacted and bounded, with what the
/// earlier attempts taught: `Err(step)` when the workload cannot be investigated at all.
async fn collect(inc: &Incident, ns: &str, st: &IncidentStatus, ctx: &Context) -> Result<Result<DiagnosisInput, IncidentStep>, Error> {
    let signal =
        [inc.spec.source.alarm_name.as_deref(), inc.spec.source.reason.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": ");
    let mut raw = match evidence::collect(&ctx.client, &ctx.history, ns, &inc.spec.target.kind, &inc.spec.target.name, &signal).await {
        Ok(ev) => ev,
        Err(evidence::EvidenceError::Kube(e)) => return Err(Error::Collect(e)),
        Err(e) => return Ok(Err(IncidentStep::new(IncidentPhase::Escalated, reason::EVIDENCE_UNAVAILABLE, e.to_string()))),
    };
    if let Some(source) = &ctx.cloud_evidence {
        raw.cloud = Some(source.collect(&cloud_evidence_request(inc, ns)).await);
    }
    let excluded = owned_remediations(&ctx.client, ns, st)
        .await
        .map_err(Error::Collect)?
        .iter()
        .filter(|r| r.status.as_ref().is_some_and(|s| matches!(s.phase, RemediationPhase::Failed | RemediationPhase::Rejected)))
        .map(|r| r.spec.action.kind)
        .collect();
    Ok(Ok(DiagnosisInput {
        evidence: redact_and_bound(raw, &Bounds::default()),
        feedback: st.feedback.clone(),
        excluded,
        limits: ActionLimits {
            max_memory: ctx.policy.max_memory.clone(),
            max_replicas: ctx.policy.max_replicas,
            max_cpu: ctx.policy.max_cpu.clone(),
            max_ephemeral_storage: ctx.policy.max_ephemeral_storage.clone(),
        },
    }))
}

/// One call of the diagnoser (the model, or the rules); the call is counted in metrics here,
/// once, and in the Incident's usage when the investigation is recorded.
async fn diagnose(input: &DiagnosisInput, ctx: &Context) -> Result<Diagnosis, Error> {
    let diagnosis = ctx.diagnoser.diagnose(input).await?;
    ctx.metrics.diagnoses.with_label_values(&[&diagnosis.model]).inc();
    if let Some(call) = llm_call(&diagnosis) {
        // A failed call is answered by the rules; label it with the model that was asked.
        let model = match diagnosis.fallback_reason {
            Some(_) => ctx.settings.model_id.clone().unwrap_or_else(|| "unknown".into()),
            None => diagnosis.model.clone(),
        };
        ctx.metrics.record_llm_call(&model, &call);
    }
    Ok(diagnosis)
}

/// Writes the investigation into the status about to be applied.
fn record_investigation(i: &Investigation, st: &mut IncidentStatus, pending: &mut Vec<PendingEvent>) {
    let ev = &i.input.evidence;
    let category = i.diagnosis.root_cause_category.map(|c| c.as_str()).unwrap_or("Unknown");
    let markers: Vec<String> = ev
        .pods
        .iter()
        .flat_map(|p| [p.waiting_reason.clone(), p.last_termination_reason.clone()])
        .flatten()
        .chain(ev.config_changes.iter().map(|c| format!("cm:{}/{}", c.config_map, c.key)))
        .collect();
    st.signature = Some(incident_signature(&ev.workload, category, &markers));
    st.diagnosis_inputs = Some(PromptInputs::from(&i.input));
    st.evidence = Some(Box::new(ev.clone()));
    st.diagnosis = Some(Box::new(i.diagnosis.clone()));
    if let Some(call) = llm_call(&i.diagnosis) {
        st.llm_usage.get_or_insert_default().record(&call);
    }
    if let Some(why) = &i.diagnosis.fallback_reason {
        // The model failed; say so, so a reviewer knows this answer came from the rules.
        let msg = format!("model diagnosis failed, offline rules answered: {why}");
        let c = Condition::new(
            condition_type::MODEL_DIAGNOSIS,
            ConditionStatus::False,
            reason::FELL_BACK_TO_RULES,
            msg.clone(),
            &now_rfc3339(),
        );
        set_condition(&mut st.conditions, c);
        pending.push(PendingEvent::warning(reason::MODEL_FALLBACK, "Diagnose", msg));
    }
}

/// The Incident as the policy sees it: its workload and the replicas its evidence recorded.
fn scope<'a>(inc: &'a Incident, st: &IncidentStatus) -> IncidentScope<'a> {
    IncidentScope {
        kind: &inc.spec.target.kind,
        name: &inc.spec.target.name,
        replicas_before: st.evidence.as_ref().map(|e| e.desired_replicas),
    }
}

/// The action with a restored ConfigMap value in full: a diagnosis reads bounded, redacted
/// evidence, so the value it proposes may be cut or masked; what is written is the value the
/// key really held, from the recorded history. A value not found there stays as proposed, and
/// the policy refuses it when it is a cut or masked one.
fn in_full(mut action: ProposedAction, ns: &str, ctx: &Context) -> ProposedAction {
    if action.kind == ActionKind::SetConfigMapKey
        && let (Some(key), Some(value)) = (action.key.as_deref(), action.value.as_deref())
        && let Some(full) = ctx.history.recorded_previous(ns, &action.target_name, key, value)
    {
        action.value = Some(full);
    }
    action
}

/// The policy decides whether the proposed action may go ahead.
async fn judge(
    inc: &Incident,
    ns: &str,
    st: &mut IncidentStatus,
    ctx: &Context,
    diagnosis: Diagnosis,
    pending: &mut Vec<PendingEvent>,
) -> Result<IncidentStep, Error> {
    let Some(action) = diagnosis.proposed_action.clone().map(|a| in_full(a, ns, ctx)) else {
        return Ok(IncidentStep::new(IncidentPhase::Escalated, reason::NO_SAFE_ACTION, diagnosis.summary));
    };
    let cache = ctx.remediation_cache.get();
    let pctx = policy_context::gather(&ctx.client, cache.as_ref(), &ctx.history, ns, &action, None, Some(scope(inc, st)))
        .await
        .map_err(Error::Judge)?;
    let now = now_rfc3339();
    match ctx.policy.evaluate(&action, &pctx) {
        Verdict::Refused { reason: why, message } => {
            let msg = format!("policy refused {}: {message}", action.describe());
            set_condition(
                &mut st.conditions,
                Condition::new(condition_type::POLICY_ALLOWED, ConditionStatus::False, why, msg.clone(), &now),
            );
            pending.push(PendingEvent::warning(reason::POLICY_REFUSED, "Diagnose", msg.clone()));
            Ok(IncidentStep::new(IncidentPhase::Escalated, reason::POLICY_REFUSED, msg))
        }
        Verdict::Allowed { .. } => {
            let c = Condition::new(condition_type::POLICY_ALLOWED, ConditionStatus::True, reason::ALLOWED, action.describe(), &now);
            set_condition(&mut st.conditions, c);
            let category = diagnosis.root_cause_category.map(|c| c.as_str()).unwrap_or("Unknown");
            // The rules' summaries already start with their category.
            let message = if diagnosis.summary.starts_with(category) {
                diagnosis.summary.clone()
            } else {
                format!("{category}: {}", diagnosis.summary)
            };
            Ok(IncidentStep::new(IncidentPhase::Diagnosed, reason::DIAGNOSED, message))
        }
    }
}

/// What the cloud evidence source needs: the workload, the alarm metric and the alarm's time
/// (the Incident's creation when the alarm's is missing or unreadable).
fn cloud_evidence_request(inc: &Incident, ns: &str) -> CloudEvidenceRequest {
    let source = &inc.spec.source;
    let alarm_time = source
        .state_change_time
        .as_deref()
        .and_then(parse_time)
        .or_else(|| inc.meta().creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or_else(k8s_openapi::jiff::Timestamp::now);
    CloudEvidenceRequest {
        namespace: ns.to_string(),
        workload: inc.spec.target.name.clone(),
        metric: source.metric.as_ref().map(|m| MetricRef {
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            dimensions: m.dimensions.clone(),
            statistic: m.statistic.clone(),
        }),
        alarm_time,
    }
}

/// The name of an Incident's `attempt`-th Remediation (always a valid object name).
pub fn remediation_name(incident: &str, attempt: u32) -> String {
    derived_name(incident, &format!("-r{attempt}"))
}

async fn create_remediation(inc: &Incident, ns: &str, st: &mut IncidentStatus, ctx: &Context) -> Result<IncidentStep, Error> {
    let Some(diagnosis) = st.diagnosis.clone() else {
        return Ok(IncidentStep::new(IncidentPhase::Investigating, reason::REDIAGNOSE, "diagnosis missing"));
    };
    let Some(action) = diagnosis.proposed_action.clone().map(|a| in_full(a, ns, ctx)) else {
        return Ok(IncidentStep::new(IncidentPhase::Escalated, reason::NO_SAFE_ACTION, diagnosis.summary));
    };
    let attempt = st.attempts + 1;
    let name = remediation_name(&inc.name_any(), attempt);
    let cache = ctx.remediation_cache.get();
    let pctx = policy_context::gather(&ctx.client, cache.as_ref(), &ctx.history, ns, &action, Some(&name), Some(scope(inc, st)))
        .await
        .map_err(Error::Judge)?;
    let (risk, auto) = match ctx.policy.evaluate(&action, &pctx) {
        Verdict::Allowed { risk, auto_approve, .. } => (risk, auto_approve),
        // The Remediation controller refuses it with a condition and an Event.
        Verdict::Refused { .. } => (Risk::of(action.kind), false),
    };
    let (state, by) = initial_approval(auto);
    let owner = OwnerReference {
        api_version: Incident::api_version(&()).into(),
        kind: Incident::kind(&()).into(),
        name: inc.name_any(),
        uid: inc.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let rem = Remediation {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.to_string()),
            owner_references: Some(vec![owner]),
            labels: Some([(INCIDENT_LABEL.to_string(), label_value(&inc.name_any()))].into_iter().collect()),
            ..Default::default()
        },
        spec: RemediationSpec {
            incident_ref: inc.name_any(),
            action: action.clone(),
            rationale: diagnosis.summary.clone(),
            risk,
            approval: Some(Approval { state, feedback: None, by }),
            verification: Verification { window_seconds: ctx.settings.verify_window_seconds },
        },
        status: None,
    };
    if !ctx.write_gate.may_write() {
        return Err(Error::NotLeading);
    }
    // Before the change exists: deleting the Incident from now on waits for its undo.
    finalizer::add(&Api::<Incident>::namespaced(ctx.client.clone(), ns), inc).await.map_err(Error::CreateRemediation)?;
    let api: Api<Remediation> = Api::namespaced(ctx.client.clone(), ns);
    match api.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &rem).await {
        Ok(_) => {}
        // Created before a restart, but the status write was lost: adopt it.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(Error::CreateRemediation(e)),
    }
    if !st.remediations.contains(&name) {
        st.remediations.push(name.clone());
    }
    st.attempts = attempt;
    let how = if auto { "auto-approved by policy" } else { "waiting for approval" };
    Ok(IncidentStep::new(IncidentPhase::Remediating, reason::REMEDIATION_CREATED, format!("{name}: {} ({how})", action.describe())))
}

/// Remediating / Verifying: read the latest Remediation and let `after_remediation` decide.
async fn follow_remediation(ns: &str, st: &mut IncidentStatus, ctx: &Context) -> Result<Option<IncidentStep>, Error> {
    let Some(name) = st.remediations.last().cloned() else {
        return Ok(Some(IncidentStep::new(IncidentPhase::Investigating, reason::REDIAGNOSE, "no remediation found")));
    };
    let api: Api<Remediation> = Api::namespaced(ctx.client.clone(), ns);
    let Some(rem) = api.get_opt(&name).await.map_err(Error::ReadRemediations)? else {
        // Someone removed it (after its undo, or abandoned): a person took this over, and
        // another automatic change now would act behind their back.
        let msg = format!("remediation {name} was deleted; a person took the incident over");
        return Ok(Some(IncidentStep::new(IncidentPhase::Escalated, reason::REMEDIATION_DELETED, msg)));
    };
    let rs = rem.status.clone().unwrap_or_default();
    // A person's rejection in spec, or a reviewer's words on a closed pull request.
    let feedback = rem.spec.approval.as_ref().and_then(|a| a.feedback.clone()).or_else(|| rs.feedback.clone()).unwrap_or_default();
    let report = RemediationReport {
        name: name.clone(),
        phase: rs.phase,
        ready_reason: rs.conditions.iter().find(|c| c.type_ == condition_type::READY).map(|c| c.reason.clone()),
        last_failure: rs
            .conditions
            .iter()
            .rev()
            .find(|c| c.status == ConditionStatus::False)
            .map(|c| c.message.clone())
            .unwrap_or_default(),
        verification: rs.verification.as_ref().map(|v| v.message.clone()).unwrap_or_default(),
        dry_run_result: rs.dry_run_result.clone().unwrap_or_default(),
        feedback: feedback.clone(),
    };
    if rs.phase == RemediationPhase::Rejected && !feedback.is_empty() && !st.feedback.contains(&feedback) {
        st.feedback.push(feedback);
    }
    Ok(after_remediation(st.phase, st.attempts, ctx.settings.max_attempts, &report))
}

pub fn error_policy(_obj: Arc<CachedIncident>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failures.with_label_values(&[CONTROLLER]).inc();
    tracing::warn!(error = %err, "incident reconcile failed");
    Action::requeue(super::retry::jittered(Duration::from_secs(2)))
}

/// Runs the controller until `shutdown`, filling `cached` (a store and its writer) from its watch.
/// `remediations` are the shared Remediation watch's changes: each wakes its Incident.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: CancellationToken,
    remediations: impl futures::Stream<Item = Arc<cache::CachedRemediation>> + Send + 'static,
    cached: (IncidentStore, Writer<CachedIncident>),
) {
    use futures::TryStreamExt;
    use kube::runtime::WatchStreamExt;
    let (store, writer) = cached;
    let keep_incident = {
        let ctx = ctx.clone();
        move |cached: &CachedIncident| std::future::ready(settled::keep(&ctx, CONTROLLER, is_settled(cached, &ctx)))
    };
    let incidents = watcher(Api::<CachedIncident>::all(ctx.client.clone()), cache::watch_config())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .try_filter(keep_incident);
    let wakes_owner = {
        let (ctx, incidents) = (ctx.clone(), store.clone());
        move |rem: &Arc<cache::CachedRemediation>| std::future::ready(wakes_owner(rem, &incidents, &ctx))
    };
    Controller::for_stream(incidents, store)
        .with_config(cache::controller_config(ctx.settings.max_concurrent_reconciles))
        .owns_shared_stream(remediations.filter(wakes_owner))
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile_cached, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "incident controller event");
            }
        })
        .await;
}
