//! Incident controller: Detected -> Investigating -> Diagnosed -> Remediating -> Verifying ->
//! Resolved | Escalated. Each reconcile performs at most one transition and writes it to status
//! (server-side apply) before publishing an Event, so a restart resumes from the last written
//! phase and never repeats a side effect.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::{events, evidence, now_rfc3339, parse_time, policy_context, status};
use crate::crd::*;
use crate::domain::cloud_evidence::{CloudEvidenceRequest, MetricRef};
use crate::domain::diagnoser::{ActionLimits, DiagnoseError, DiagnosisInput};
use crate::domain::llm_usage::llm_call;
use crate::domain::policy::Verdict;
use crate::domain::post_mortem::{PostMortem, STATUS_COPY_LIMIT};
use crate::domain::post_mortem_store::{ArchiveError, ArchivedPostMortem};
use crate::domain::redact::{Bounds, redact_and_bound};
use crate::domain::signature::{content_hash, incident_signature};
use crate::domain::simulation::PromptInputs;

const CONTROLLER: &str = "incident";
const MAX_TIMELINE: usize = 50;
/// How soon a failed post-mortem archive upload is tried again.
const ARCHIVE_RETRY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Diagnose(#[from] DiagnoseError),
    #[error("illegal phase transition {0:?} -> {1:?}")]
    IllegalTransition(IncidentPhase, IncidentPhase),
}

/// A pending change of phase, written together with the rest of the status.
struct Step {
    to: IncidentPhase,
    reason: &'static str,
    message: String,
    warning: bool,
}

fn step(to: IncidentPhase, reason: &'static str, message: impl Into<String>) -> Step {
    Step { to, reason, message: message.into(), warning: matches!(to, IncidentPhase::Escalated) }
}

pub async fn reconcile(guard: Arc<DeserializeGuard<Incident>>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciles.with_label_values(&[CONTROLLER]).inc();
    let inc = match &guard.0 {
        Ok(inc) => inc,
        Err(invalid) => {
            // Reported once per change; the controller keeps serving every other Incident.
            events::publish(
                &ctx.recorder,
                &guard.object_ref(&()),
                true,
                "InvalidObject",
                "Validate",
                format!("cannot parse Incident: {}", invalid.error),
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    let ns = inc.namespace().unwrap_or_else(|| "default".into());
    let key = format!("{ns}/{}", inc.name_any());
    if inc.meta().deletion_timestamp.is_some() {
        ctx.metrics.observe_incident(&key, None);
        return Ok(Action::await_change());
    }
    let mut st = inc.status.clone().unwrap_or_default();
    ctx.metrics.observe_incident(&key, Some(st.phase.as_str()));
    let next = match st.phase {
        IncidentPhase::Detected => Some(step(IncidentPhase::Investigating, "Investigating", "collecting evidence")),
        IncidentPhase::Investigating => Some(investigate(inc, &ns, &mut st, &ctx).await?),
        IncidentPhase::Diagnosed => Some(create_remediation(inc, &ns, &mut st, &ctx).await?),
        IncidentPhase::Remediating | IncidentPhase::Verifying => follow_remediation(inc, &ns, &mut st, &ctx).await?,
        IncidentPhase::Resolved | IncidentPhase::Escalated => {
            // A person may score the outcome later, and an archive upload may have failed:
            // keep the post-mortem (ConfigMap, status copy, S3) in step.
            let sync = sync_post_mortem(inc, &ns, &mut st, &ctx).await?;
            if sync.status_changed {
                status::apply_status(&Api::<Incident>::namespaced(ctx.client.clone(), &ns), inc, &st).await?;
            }
            return Ok(if sync.archive_pending { Action::requeue(ARCHIVE_RETRY) } else { Action::await_change() });
        }
    };
    let Some(next) = next else {
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
    set_condition(&mut st.conditions, Condition::new("Ready", ready, next.reason, next.message.clone(), &now));
    if next.to.is_terminal() {
        // Never blocks the terminal phase: whatever fails here is retried by the next reconcile.
        if let Err(e) = sync_post_mortem(inc, &ns, &mut st, &ctx).await {
            tracing::warn!(incident = %key, error = %e, "post-mortem not written yet");
        }
    }
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &ns);
    status::apply_status(&api, inc, &st).await?;
    record_stage_time(inc, next.to, &ctx);
    ctx.metrics.observe_incident(&key, Some(next.to.as_str()));
    tracing::info!(incident = %key, from = from.as_str(), to = next.to.as_str(), "incident transition");
    events::publish(&ctx.recorder, &inc.object_ref(&()), next.warning, next.reason, next.to.as_str(), next.message).await;
    Ok(Action::requeue(Duration::from_secs(1)))
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

async fn owned_remediations(ctx: &Context, ns: &str, st: &IncidentStatus) -> Result<Vec<Remediation>, kube::Error> {
    let api: Api<Remediation> = Api::namespaced(ctx.client.clone(), ns);
    let mut out = Vec::new();
    for name in &st.remediations {
        if let Some(r) = api.get_opt(name).await? {
            out.push(r);
        }
    }
    Ok(out)
}

async fn investigate(inc: &Incident, ns: &str, st: &mut IncidentStatus, ctx: &Context) -> Result<Step, Error> {
    let max = ctx.settings.max_attempts;
    if st.attempts >= max {
        return Ok(step(
            IncidentPhase::Escalated,
            "AttemptsExhausted",
            format!("{} remediation attempt(s) did not resolve the incident", st.attempts),
        ));
    }
    let signal =
        [inc.spec.source.alarm_name.as_deref(), inc.spec.source.reason.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": ");
    let mut raw = match evidence::collect(&ctx.client, &ctx.history, ns, &inc.spec.target.kind, &inc.spec.target.name, &signal).await {
        Ok(ev) => ev,
        Err(evidence::EvidenceError::Kube(e)) => return Err(e.into()),
        Err(e) => return Ok(step(IncidentPhase::Escalated, "EvidenceUnavailable", e.to_string())),
    };
    if let Some(source) = &ctx.cloud_evidence {
        raw.cloud = Some(source.collect(&cloud_evidence_request(inc, ns)).await);
    }
    let ev = redact_and_bound(raw, &Bounds::default());
    let excluded = owned_remediations(ctx, ns, st)
        .await?
        .iter()
        .filter(|r| r.status.as_ref().is_some_and(|s| matches!(s.phase, RemediationPhase::Failed | RemediationPhase::Rejected)))
        .map(|r| r.spec.action.kind)
        .collect();
    let input = DiagnosisInput {
        evidence: ev.clone(),
        feedback: st.feedback.clone(),
        excluded,
        limits: ActionLimits { max_memory: ctx.policy.max_memory.clone(), max_replicas: ctx.policy.max_replicas },
    };
    let diagnosis = ctx.diagnoser.diagnose(&input).await?;
    ctx.metrics.diagnoses.with_label_values(&[&diagnosis.model]).inc();
    if let Some(call) = llm_call(&diagnosis) {
        // A failed call is answered by the rules; label it with the model that was asked.
        let model = if diagnosis.fallback_reason.is_some() {
            ctx.settings.bedrock_model_id.clone().unwrap_or_else(|| "unknown".into())
        } else {
            diagnosis.model.clone()
        };
        ctx.metrics.record_llm_call(&model, &call);
        st.llm_usage.get_or_insert_default().record(&call);
    }
    st.diagnosis_inputs = Some(PromptInputs::from(&input));
    let category = diagnosis.root_cause_category.map(|c| c.as_str()).unwrap_or("Unknown");
    let markers: Vec<String> = ev
        .pods
        .iter()
        .flat_map(|p| [p.waiting_reason.clone(), p.last_termination_reason.clone()])
        .flatten()
        .chain(ev.config_changes.iter().map(|c| format!("cm:{}/{}", c.config_map, c.key)))
        .collect();
    st.signature = Some(incident_signature(&ev.workload, category, &markers));
    st.evidence = Some(ev);
    st.diagnosis = Some(diagnosis.clone());
    if let Some(reason) = &diagnosis.fallback_reason {
        // The model failed; say so, so a reviewer knows this answer came from the rules.
        let msg = format!("model diagnosis failed, offline rules answered: {reason}");
        set_condition(
            &mut st.conditions,
            Condition::new("ModelDiagnosis", ConditionStatus::False, "FellBackToRules", msg.clone(), &now_rfc3339()),
        );
        events::publish(&ctx.recorder, &inc.object_ref(&()), true, "ModelFallback", "Diagnose", msg).await;
    }
    let Some(action) = diagnosis.proposed_action else {
        return Ok(step(IncidentPhase::Escalated, "NoSafeAction", diagnosis.summary));
    };
    let pctx = policy_context::gather(&ctx.client, ns, &action, None).await?;
    let now = now_rfc3339();
    match ctx.policy.evaluate(&action, &pctx) {
        Verdict::Refused { reason, message } => {
            let msg = format!("policy refused {}: {message}", action.describe());
            set_condition(&mut st.conditions, Condition::new("PolicyAllowed", ConditionStatus::False, reason, msg.clone(), &now));
            events::publish(&ctx.recorder, &inc.object_ref(&()), true, "PolicyRefused", "Diagnose", msg.clone()).await;
            Ok(step(IncidentPhase::Escalated, "PolicyRefused", msg))
        }
        Verdict::Allowed { .. } => {
            set_condition(&mut st.conditions, Condition::new("PolicyAllowed", ConditionStatus::True, "Allowed", action.describe(), &now));
            Ok(step(IncidentPhase::Diagnosed, "Diagnosed", format!("{category}: {}", diagnosis.summary)))
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

pub fn remediation_name(incident: &str, attempt: u32) -> String {
    format!("{incident}-r{attempt}")
}

async fn create_remediation(inc: &Incident, ns: &str, st: &mut IncidentStatus, ctx: &Context) -> Result<Step, Error> {
    let Some(diagnosis) = st.diagnosis.clone() else {
        return Ok(step(IncidentPhase::Investigating, "Rediagnose", "diagnosis missing"));
    };
    let Some(action) = diagnosis.proposed_action.clone() else {
        return Ok(step(IncidentPhase::Escalated, "NoSafeAction", diagnosis.summary));
    };
    let attempt = st.attempts + 1;
    let name = remediation_name(&inc.name_any(), attempt);
    let pctx = policy_context::gather(&ctx.client, ns, &action, Some(&name)).await?;
    let (risk, auto) = match ctx.policy.evaluate(&action, &pctx) {
        Verdict::Allowed { risk, auto_approve, .. } => (risk, auto_approve),
        // The Remediation controller refuses it with a condition and an Event.
        Verdict::Refused { .. } => (Risk::of(action.kind), false),
    };
    let approval = if auto {
        Approval { state: ApprovalState::Approved, feedback: None, by: Some("salve-operator/policy".into()) }
    } else {
        Approval { state: ApprovalState::Pending, feedback: None, by: None }
    };
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
            labels: Some([("salve.dev/incident".to_string(), inc.name_any())].into_iter().collect()),
            ..Default::default()
        },
        spec: RemediationSpec {
            incident_ref: inc.name_any(),
            action: action.clone(),
            rationale: diagnosis.summary.clone(),
            risk,
            approval: Some(approval),
            verification: Verification { window_seconds: ctx.settings.verify_window_seconds },
        },
        status: None,
    };
    let api: Api<Remediation> = Api::namespaced(ctx.client.clone(), ns);
    match api.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &rem).await {
        Ok(_) => {}
        // Created before a restart, but the status write was lost: adopt it.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    if !st.remediations.contains(&name) {
        st.remediations.push(name.clone());
    }
    st.attempts = attempt;
    let how = if auto { "auto-approved by policy" } else { "waiting for approval" };
    Ok(step(IncidentPhase::Remediating, "RemediationCreated", format!("{name}: {} ({how})", action.describe())))
}

async fn follow_remediation(inc: &Incident, ns: &str, st: &mut IncidentStatus, ctx: &Context) -> Result<Option<Step>, Error> {
    let Some(name) = st.remediations.last().cloned() else {
        return Ok(Some(step(IncidentPhase::Investigating, "Rediagnose", "no remediation found")));
    };
    let api: Api<Remediation> = Api::namespaced(ctx.client.clone(), ns);
    let Some(rem) = api.get_opt(&name).await? else {
        return Ok(Some(step(IncidentPhase::Investigating, "Rediagnose", format!("remediation {name} was deleted"))));
    };
    let rs = rem.status.clone().unwrap_or_default();
    let last_message =
        rs.conditions.iter().rev().find(|c| c.status == ConditionStatus::False).map(|c| c.message.clone()).unwrap_or_default();
    let s = match rs.phase {
        RemediationPhase::Verifying if st.phase == IncidentPhase::Remediating => {
            step(IncidentPhase::Verifying, "Verifying", format!("{name} applied; verifying"))
        }
        RemediationPhase::Succeeded => {
            let msg = rs.verification.as_ref().map(|v| v.message.clone()).unwrap_or_default();
            // Remediating -> Verifying -> Resolved: if we missed Verifying, take it first.
            if st.phase == IncidentPhase::Remediating {
                step(IncidentPhase::Verifying, "Verifying", format!("{name} applied; verifying"))
            } else {
                step(IncidentPhase::Resolved, "Resolved", format!("{name} verified: {msg}"))
            }
        }
        RemediationPhase::Rejected => {
            // A person's rejection in spec, or a reviewer's words on a closed pull request.
            let feedback = rem.spec.approval.as_ref().and_then(|a| a.feedback.clone()).or_else(|| rs.feedback.clone()).unwrap_or_default();
            if !feedback.is_empty() && !st.feedback.contains(&feedback) {
                st.feedback.push(feedback.clone());
            }
            step(IncidentPhase::Investigating, "Rejected", format!("{name} rejected: {feedback}; re-diagnosing"))
        }
        RemediationPhase::Failed if ready_reason(&rs) == Some(super::pull_request_steps::ROLLOUT_TIMED_OUT) => {
            step(IncidentPhase::Escalated, "RolloutTimedOut", format!("{name}: {last_message}"))
        }
        RemediationPhase::Failed if st.attempts >= ctx.settings.max_attempts => {
            step(IncidentPhase::Escalated, "AttemptsExhausted", format!("{name} failed and was undone: {last_message}"))
        }
        RemediationPhase::Failed => {
            step(IncidentPhase::Investigating, "RemediationFailed", format!("{name} failed and was undone: {last_message}; re-diagnosing"))
        }
        RemediationPhase::Refused => step(IncidentPhase::Escalated, "PolicyRefused", format!("{name} refused: {last_message}")),
        RemediationPhase::DryRun => step(
            IncidentPhase::Escalated,
            "DryRun",
            format!("dry-run mode: {name} was not applied; result: {}", rs.dry_run_result.unwrap_or_default()),
        ),
        _ => return Ok(None),
    };
    tracing::debug!(incident = %inc.name_any(), remediation = %name, phase = rs.phase.as_str(), "following remediation");
    Ok(Some(s))
}

fn ready_reason(rs: &RemediationStatus) -> Option<&str> {
    rs.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.reason.as_str())
}

/// Annotation a person sets to score the outcome (1-5), copied into the post-mortem.
pub const FEEDBACK_SCORE_ANNOTATION: &str = "salve.dev/feedback-score";

fn feedback_score(inc: &Incident) -> Option<u8> {
    inc.annotations().get(FEEDBACK_SCORE_ANNOTATION).and_then(|s| s.trim().parse::<u8>().ok()).filter(|s| (1..=5).contains(s))
}

/// What `sync_post_mortem` did.
#[derive(Default)]
struct PostMortemSync {
    /// The status (copy, digest, archive reference or condition) must be written.
    status_changed: bool,
    /// The archive upload failed and must be retried.
    archive_pending: bool,
}

/// Brings the post-mortem in line with the Incident: the full JSON in the owned ConfigMap and
/// the bounded copy in `st` when its content changed (a new score, say), then the S3 archive
/// when configured and out of date. The record is deterministic, so its content hash decides.
async fn sync_post_mortem(inc: &Incident, ns: &str, st: &mut IncidentStatus, ctx: &Context) -> Result<PostMortemSync, kube::Error> {
    let rems = owned_remediations(ctx, ns, st).await?;
    let pm = PostMortem::build(inc, st, &rems, feedback_score(inc));
    let full = pm.to_json();
    let digest = content_hash(&full);
    let mut out = PostMortemSync::default();
    if st.post_mortem_digest.as_deref() != Some(digest.as_str()) || st.post_mortem_ref.is_none() {
        st.post_mortem_ref = Some(write_post_mortem_config_map(inc, ns, &full, ctx).await?);
        st.post_mortem = Some(pm.bounded(STATUS_COPY_LIMIT));
        st.post_mortem_digest = Some(digest.clone());
        out.status_changed = true;
    }
    let Some(store) = &ctx.post_mortem_store else {
        return Ok(out);
    };
    if st.post_mortem_archive.as_ref().is_some_and(|a| a.digest == digest) {
        return Ok(out);
    }
    let now = now_rfc3339();
    match store.put(ns, &inc.name_any(), full.as_bytes()).await {
        Ok(obj) => {
            let msg = format!("{} (version {})", obj.uri, obj.version_id.as_deref().unwrap_or("-"));
            st.post_mortem_archive =
                Some(ArchivedPostMortem { uri: obj.uri, version_id: obj.version_id, retain_until: obj.retain_until, digest });
            set_condition(&mut st.conditions, Condition::new("PostMortemArchived", ConditionStatus::True, "Archived", msg.clone(), &now));
            events::publish(&ctx.recorder, &inc.object_ref(&()), false, "PostMortemArchived", "Archive", msg).await;
            out.status_changed = true;
        }
        Err(e) => {
            let msg = e.to_string();
            let reason = match e {
                ArchiveError::ObjectLockNotEnabled { .. } => "ObjectLockNotEnabled",
                ArchiveError::NoSuchBucket { .. } => "NoSuchBucket",
                ArchiveError::Upload { .. } => "UploadFailed",
            };
            tracing::warn!(incident = %inc.name_any(), error = %msg, "post-mortem archive upload failed; will retry");
            let unchanged =
                st.conditions.iter().any(|c| c.type_ == "PostMortemArchived" && c.status == ConditionStatus::False && c.message == msg);
            if !unchanged {
                // Written once per distinct failure: an identical rewrite would wake the
                // controller at once instead of after ARCHIVE_RETRY.
                set_condition(&mut st.conditions, Condition::new("PostMortemArchived", ConditionStatus::False, reason, msg.clone(), &now));
                events::publish(&ctx.recorder, &inc.object_ref(&()), true, "PostMortemArchiveFailed", "Archive", msg).await;
                out.status_changed = true;
            }
            out.archive_pending = true;
        }
    }
    Ok(out)
}

/// The full post-mortem JSON in a ConfigMap owned by the Incident. Server-side apply, so a
/// rewrite is idempotent.
async fn write_post_mortem_config_map(inc: &Incident, ns: &str, json: &str, ctx: &Context) -> Result<String, kube::Error> {
    let name = format!("{}-postmortem", inc.name_any());
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": [{"apiVersion": Incident::api_version(&()), "kind": "Incident", "name": inc.name_any(), "uid": inc.uid().unwrap_or_default()}]},
        "data": {"postmortem.json": json},
    });
    Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
        .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&cm))
        .await?;
    Ok(name)
}

pub fn error_policy(_obj: Arc<DeserializeGuard<Incident>>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failures.with_label_values(&[CONTROLLER]).inc();
    tracing::warn!(error = %err, "incident reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let incidents = Api::<DeserializeGuard<Incident>>::all(ctx.client.clone());
    let remediations = Api::<DeserializeGuard<Remediation>>::all(ctx.client.clone());
    Controller::new(incidents, watcher::Config::default())
        .owns(remediations, watcher::Config::default())
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "incident controller event");
            }
        })
        .await;
}
