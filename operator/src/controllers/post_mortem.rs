//! The post-mortem of an Incident: assembled from the Incident and its Remediations (the
//! record type and its size bound are in `domain::post_mortem`), written in full to a ConfigMap
//! the Incident owns, copied (bounded) into its status, and archived to S3 when configured.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::context::Context;
use crate::crd::*;
use crate::domain::diagnoser::ActionLimits;
use crate::domain::names::derived_name;
use crate::domain::outbound;
use crate::domain::post_mortem::{AppliedRemediation, POST_MORTEM_LABEL, PostMortem, SCHEMA_VERSION, STATUS_COPY_LIMIT};
use crate::domain::post_mortem_store::{ArchiveError, ArchivedPostMortem};
use crate::domain::signature::content_hash;
use crate::domain::simulation::{PromptInputs, SimulationContext};
use crate::domain::time::now_rfc3339;
use crate::kube::events::PendingEvent;
use crate::kube::remediations::owned_remediations;

/// How soon a failed post-mortem archive upload is tried again.
pub const ARCHIVE_RETRY: Duration = Duration::from_secs(10);

/// Builds the full record. `status` is the Incident's status as about to be written (the
/// controller calls this while making the terminal transition); `remediations` are the
/// Incident's own, in any order. Deterministic: the same inputs give the same JSON, so a
/// content hash tells whether it must be written again.
pub fn assemble(incident: &Incident, status: &IncidentStatus, remediations: &[Remediation], feedback_score: Option<u8>) -> PostMortem {
    let ordered: Vec<AppliedRemediation> = status
        .remediations
        .iter()
        .filter_map(|name| remediations.iter().find(|r| r.metadata.name.as_deref() == Some(name.as_str())))
        .map(applied_remediation)
        .collect();
    let inputs = status.diagnosis_inputs.clone().unwrap_or_else(|| PromptInputs {
        // Recorded before `diagnosisInputs` existed: the best reconstruction we have.
        feedback: status.feedback.clone(),
        excluded_actions: Vec::new(),
        action_limits: ActionLimits::default(),
    });
    let closed_at = if status.phase.is_terminal() { status.timeline.last().map(|t| t.time.clone()) } else { None };
    // The record leaves the cluster (S3 under Object Lock, a copy in status): it is assembled
    // through the outbound gate, so every writer and the in-step check see the same JSON.
    outbound::post_mortem(PostMortem {
        schema_version: SCHEMA_VERSION.into(),
        incident_name: incident.metadata.name.clone().unwrap_or_default(),
        incident_namespace: incident.metadata.namespace.clone().unwrap_or_default(),
        service: incident.spec.service.clone(),
        severity: incident.spec.severity,
        source: incident.spec.source.clone(),
        outcome: status.phase,
        created_at: incident.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
        closed_at,
        incident_signature: status.signature.clone(),
        root_cause_category: status.diagnosis.as_ref().and_then(|d| d.root_cause_category),
        remediation_action: ordered,
        human_feedback_score: feedback_score.filter(|s| (1..=5).contains(s)),
        simulation_context: Box::new(SimulationContext {
            evidence: status.evidence.as_deref().cloned(),
            feedback: inputs.feedback,
            excluded_actions: inputs.excluded_actions,
            action_limits: inputs.action_limits,
            recorded_diagnosis: status.diagnosis.as_deref().cloned(),
        }),
        llm_usage: status.llm_usage.clone().unwrap_or_default(),
        timeline: status.timeline.clone(),
        truncated: Vec::new(),
    })
}

/// What a Remediation's record in the post-mortem is, hashed (see `RecordedCopy`): the
/// Remediation cache keeps this instead of the parts of the status only the record reads.
pub fn remediation_record_hash(r: &Remediation) -> u64 {
    json_hash(&applied_remediation(r))
}

/// Hashed through the JSON, so every type counts without implementing `Hash` (in one process:
/// never stored elsewhere).
fn json_hash(value: &impl serde::Serialize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    serde_json::to_string(value).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

/// A Remediation's record: its patches and snapshot leave the cluster with a hash of each value
/// (the Remediation itself keeps them whole for its undo).
fn applied_remediation(r: &Remediation) -> AppliedRemediation {
    let st = r.status.clone().unwrap_or_default();
    outbound::applied_remediation(AppliedRemediation {
        remediation: r.metadata.name.clone().unwrap_or_default(),
        action: r.spec.action.clone(),
        description: r.spec.action.describe(),
        risk: r.spec.risk,
        approval: r.spec.approval.as_ref().map(|a| a.state),
        approved_by: r.spec.approval.as_ref().and_then(|a| a.by.clone()),
        outcome: st.phase,
        applied_patch: st.applied_patch,
        applied_at: st.applied_at,
        undo_patch: st.snapshot.map(|s| s.undo_patch),
        verification: st.verification.map(|v| v.message),
        dry_run_result: st.dry_run_result,
        pr_url: st.pr_url,
    })
}

/// Annotation a person sets to score the outcome (1-5), copied into the post-mortem.
pub const FEEDBACK_SCORE_ANNOTATION: &str = "salve.dev/feedback-score";

fn feedback_score(inc: &Incident) -> Option<u8> {
    inc.annotations().get(FEEDBACK_SCORE_ANNOTATION).and_then(|s| s.trim().parse::<u8>().ok()).filter(|s| (1..=5).contains(s))
}

/// What the in-step check reads of the post-mortem copy in an Incident's status; the cache
/// keeps this instead of the copy's compared parts (about 1 KiB of JSON per Incident).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCopy {
    /// The parts `recorded_in_step` compares, hashed (in one process: never stored elsewhere).
    pub compared: u64,
    /// Its Remediation records were cut to fit the status: it cannot be compared then.
    pub actions_truncated: bool,
}

impl RecordedCopy {
    pub fn of(copy: &PostMortem) -> Self {
        let records: Vec<u64> = copy.remediation_action.iter().map(json_hash).collect();
        RecordedCopy {
            compared: compared_parts_hash(copy, &records),
            actions_truncated: copy.truncated.iter().any(|t| t.starts_with("remediation_action")),
        }
    }
}

/// What can change after the terminal transition: the Incident's identity and spec (service,
/// severity, source), its outcome, the feedback score annotation and the Remediations' records
/// (`records`, hashed one by one, in the record's order: see `remediation_record_hash`).
fn compared_parts_hash(pm: &PostMortem, records: &[u64]) -> u64 {
    json_hash(&(
        &pm.incident_name,
        &pm.incident_namespace,
        &pm.created_at,
        &pm.service,
        pm.severity,
        &pm.source,
        pm.outcome,
        pm.human_feedback_score,
        records,
    ))
}

/// Whether the post-mortem recorded in `status` (its `copy`) is what `sync_post_mortem` would
/// write now, judged without a request from a cached Incident and the cached records of its
/// Remediations (`records`, one per name in `status.remediations`, in that order: see
/// `remediation_record_hash`): recorded (reference and digest), archived when an archive is
/// configured, and its copy agreeing with the record the Incident and its Remediations make now
/// (see `compared_parts_hash`). The rest of the record comes from the status the operator wrote
/// in the same apply as the digest. `false` whenever unsure (a Remediation not in the cache, a
/// copy trimmed of its Remediations): then the full sync runs.
pub fn recorded_in_step(
    incident: &Incident,
    status: &IncidentStatus,
    copy: Option<RecordedCopy>,
    records: &[u64],
    archive_configured: bool,
) -> bool {
    let (Some(copy), Some(digest), Some(_)) = (copy, &status.post_mortem_digest, &status.post_mortem_ref) else {
        return false;
    };
    if archive_configured && status.post_mortem_archive.as_ref().is_none_or(|a| &a.digest != digest) {
        return false;
    }
    if copy.actions_truncated || records.len() != status.remediations.len() {
        return false;
    }
    let now = assemble(incident, status, &[], feedback_score(incident));
    compared_parts_hash(&now, records) == copy.compared
}

/// What `sync_post_mortem` did.
#[derive(Default)]
pub struct PostMortemSync {
    /// The status (copy, digest, archive reference or condition) must be written.
    pub status_changed: bool,
    /// The archive upload failed and must be retried.
    pub archive_pending: bool,
    /// To publish once the status is written.
    pub events: Vec<PendingEvent>,
}

/// Brings the post-mortem in line with the Incident: the full JSON in the owned ConfigMap and
/// the bounded copy in `st` when its content changed (a new score, say), then the S3 archive
/// when configured and out of date. The record is deterministic, so its content hash decides.
pub async fn sync_post_mortem(inc: &Incident, ns: &str, st: &mut IncidentStatus, ctx: &Context) -> Result<PostMortemSync, kube::Error> {
    let rems = owned_remediations(&ctx.client, ns, st).await?;
    let pm = assemble(inc, st, &rems, feedback_score(inc));
    let full = pm.to_json();
    let digest = content_hash(&full);
    let mut out = PostMortemSync::default();
    if st.post_mortem_digest.as_deref() != Some(digest.as_str()) || st.post_mortem_ref.is_none() {
        st.post_mortem_ref = Some(write_post_mortem_config_map(inc, ns, &full, ctx).await?);
        st.post_mortem = Some(Box::new(pm.bounded(STATUS_COPY_LIMIT)));
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
            let c = Condition::new(condition_type::POST_MORTEM_ARCHIVED, ConditionStatus::True, reason::ARCHIVED, msg.clone(), &now);
            set_condition(&mut st.conditions, c);
            out.events.push(PendingEvent::normal(reason::POST_MORTEM_ARCHIVED, "Archive", msg));
            out.status_changed = true;
        }
        Err(e) => {
            let msg = e.to_string();
            let why = match e {
                ArchiveError::ObjectLockNotEnabled { .. } => reason::OBJECT_LOCK_NOT_ENABLED,
                ArchiveError::NoSuchBucket { .. } => reason::NO_SUCH_BUCKET,
                ArchiveError::Upload { .. } => reason::UPLOAD_FAILED,
            };
            tracing::warn!(incident = %inc.name_any(), error = %msg, "post-mortem archive upload failed; will retry");
            let unchanged = st
                .conditions
                .iter()
                .any(|c| c.type_ == condition_type::POST_MORTEM_ARCHIVED && c.status == ConditionStatus::False && c.message == msg);
            if !unchanged {
                // Written once per distinct failure: an identical rewrite would wake the
                // controller at once instead of after ARCHIVE_RETRY.
                let c = Condition::new(condition_type::POST_MORTEM_ARCHIVED, ConditionStatus::False, why, msg.clone(), &now);
                set_condition(&mut st.conditions, c);
                out.events.push(PendingEvent::warning(reason::POST_MORTEM_ARCHIVE_FAILED, "Archive", msg));
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
    let name = derived_name(&inc.name_any(), "-postmortem");
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {POST_MORTEM_LABEL: "true"}, "ownerReferences": [{"apiVersion": Incident::api_version(&()), "kind": "Incident", "name": inc.name_any(), "uid": inc.uid().unwrap_or_default()}]},
        "data": {"postmortem.json": json},
    });
    Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
        .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&cm))
        .await?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        ActionKind, Approval, Diagnosis, Evidence, IncidentSpec, RemediationSpec, RemediationStatus, Snapshot, SourceKind, Verification,
        VerificationResult, WorkloadRef,
    };
    use crate::domain::approval::AUTO_APPROVER;
    use crate::domain::diagnoser::DiagnosisInput;
    use crate::domain::diagnosis::diagnose_with_rules;
    use crate::domain::evidence::{EventEvidence, LogTail};

    fn incident() -> Incident {
        let mut i = Incident::new(
            "oms-5xx",
            IncidentSpec {
                service: "oms".into(),
                severity: Severity::High,
                source: IncidentSource {
                    kind: SourceKind::CloudWatchAlarm,
                    alarm_name: Some("oms-5xx".into()),
                    alarm_arn: None,
                    region: Some("eu-west-1".into()),
                    state_change_time: None,
                    reason: Some("5xx > 5%".into()),
                    alert_name: None,
                    fingerprint: None,
                    metric: None,
                },
                target: WorkloadRef { kind: "Deployment".into(), name: "oms".into() },
                signal: None,
            },
        );
        i.metadata.namespace = Some("shop".into());
        i
    }

    fn remediation(name: &str, phase: RemediationPhase) -> Remediation {
        let mut a = ProposedAction::new(ActionKind::SetConfigMapKey, "oms-config");
        a.key = Some("POOL_SIZE".into());
        a.value = Some("10".into());
        let mut r = Remediation::new(
            name,
            RemediationSpec {
                incident_ref: "oms-5xx".into(),
                action: a,
                rationale: "restore".into(),
                risk: Risk::Low,
                approval: Some(Approval { state: ApprovalState::Approved, feedback: None, by: Some(AUTO_APPROVER.into()) }),
                verification: Verification::default(),
            },
        );
        r.status = Some(RemediationStatus {
            phase,
            applied_patch: Some(r#"{"data":{"POOL_SIZE":"10"}}"#.into()),
            snapshot: Some(Snapshot {
                target: "ConfigMap/oms-config".into(),
                resource_version: "7".into(),
                undo_patch: r#"{"data":{"POOL_SIZE":"0"}}"#.into(),
                restarts: 5,
                taken_at: "2026-01-01T00:01:00Z".into(),
                healthy_before: Some(false),
                restart: None,
            }),
            verification: Some(VerificationResult { deadline: "t".into(), passed: Some(true), message: "alarm OK".into() }),
            ..Default::default()
        });
        r
    }

    fn evidence(log_lines: usize) -> Evidence {
        Evidence {
            workload: "Deployment/oms".into(),
            desired_replicas: 2,
            logs: vec![LogTail {
                pod: "oms-1".into(),
                container: "oms".into(),
                lines: vec!["x".repeat(200); log_lines],
                ..Default::default()
            }],
            events: vec![EventEvidence {
                reason: "BackOff".into(),
                object: "Pod/oms-1".into(),
                message: "y".repeat(100),
                type_: "Warning".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn resolved_status(ev: Evidence) -> IncidentStatus {
        let input = DiagnosisInput { evidence: ev.clone(), feedback: vec!["not a restart".into()], ..Default::default() };
        let diagnosis: Diagnosis = diagnose_with_rules(&input);
        IncidentStatus {
            phase: IncidentPhase::Resolved,
            signature: Some("sha256:abc".into()),
            evidence: Some(Box::new(ev)),
            diagnosis: Some(Box::new(diagnosis)),
            diagnosis_inputs: Some(PromptInputs::from(&input)),
            remediations: vec!["oms-5xx-r1".into(), "oms-5xx-r2".into()],
            timeline: vec![TimelineEntry { time: "2026-01-01T00:05:00Z".into(), phase: IncidentPhase::Resolved, message: "ok".into() }],
            ..Default::default()
        }
    }

    #[test]
    fn json_has_exactly_the_documented_top_level_keys() {
        let pm = assemble(&incident(), &resolved_status(evidence(3)), &[], None);
        let v: serde_json::Value = serde_json::from_str(&pm.to_json()).expect("json");
        let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "closed_at",
                "created_at",
                "human_feedback_score",
                "incident_name",
                "incident_namespace",
                "incident_signature",
                "llm_usage",
                "outcome",
                "remediation_action",
                "root_cause_category",
                "schema_version",
                "service",
                "severity",
                "simulation_context",
                "source",
                "timeline",
                "truncated"
            ]
        );
        assert!(v["human_feedback_score"].is_null(), "no score yet is an explicit null");
        let mut ctx: Vec<&str> = v["simulation_context"].as_object().expect("object").keys().map(String::as_str).collect();
        ctx.sort_unstable();
        assert_eq!(ctx, ["action_limits", "evidence", "excluded_actions", "feedback", "recorded_diagnosis"]);
    }

    #[test]
    fn builder_records_remediations_in_order_with_patch_outcome_and_undo() {
        // Given out of order, with a stranger that is not this incident's.
        let rems = [remediation("oms-5xx-r2", RemediationPhase::Succeeded), remediation("other", RemediationPhase::Failed), {
            remediation("oms-5xx-r1", RemediationPhase::Failed)
        }];
        let pm = assemble(&incident(), &resolved_status(evidence(3)), &rems, Some(4));
        let names: Vec<&str> = pm.remediation_action.iter().map(|r| r.remediation.as_str()).collect();
        assert_eq!(names, ["oms-5xx-r1", "oms-5xx-r2"]);
        let last = &pm.remediation_action[1];
        assert_eq!(last.outcome, RemediationPhase::Succeeded);
        // The key that changed is named; its values leave the cluster as hashes.
        let hashed = |v: &str| format!(r#"{{"data":{{"POOL_SIZE":"{}"}}}}"#, outbound::value_hash(v));
        assert_eq!(last.applied_patch, Some(hashed("10")));
        assert_eq!(last.undo_patch, Some(hashed("0")));
        assert_eq!(last.description, "set ConfigMap oms-config key POOL_SIZE");
        assert_eq!(pm.human_feedback_score, Some(4));
        assert_eq!(pm.outcome, IncidentPhase::Resolved);
        assert_eq!(pm.closed_at.as_deref(), Some("2026-01-01T00:05:00Z"));
        assert_eq!(pm.simulation_context.feedback, ["not a restart"]);
        assert_eq!(pm.incident_namespace, "shop");
        assert!(pm.simulation_context.recorded_diagnosis.is_some());
    }

    #[test]
    fn scores_outside_one_to_five_are_not_recorded() {
        let st = resolved_status(evidence(1));
        assert_eq!(assemble(&incident(), &st, &[], Some(0)).human_feedback_score, None);
        assert_eq!(assemble(&incident(), &st, &[], Some(6)).human_feedback_score, None);
    }

    #[test]
    fn small_records_are_kept_whole() {
        let pm = assemble(&incident(), &resolved_status(evidence(3)), &[], None);
        assert_eq!(pm.bounded(STATUS_COPY_LIMIT), pm);
    }

    #[test]
    fn big_records_are_trimmed_under_the_bound_and_say_what_was_dropped() {
        let pm = assemble(&incident(), &resolved_status(evidence(400)), &[remediation("oms-5xx-r1", RemediationPhase::Succeeded)], None);
        assert!(pm.serialized_len() > STATUS_COPY_LIMIT, "the fixture is over the bound");
        let b = pm.bounded(STATUS_COPY_LIMIT);
        assert!(b.serialized_len() <= STATUS_COPY_LIMIT);
        assert_eq!(b.truncated, ["simulation_context.evidence.logs"], "only the log tails had to go");
        let ev = b.simulation_context.evidence.as_ref().expect("the rest of the evidence stays");
        assert!(ev.truncated && ev.logs.is_empty() && !ev.events.is_empty());
        assert_eq!(b.remediation_action, pm.remediation_action, "the applied patch is kept");
        assert_eq!(b.incident_signature, pm.incident_signature);
    }

    #[test]
    fn the_bound_holds_whatever_the_inputs() {
        let mut st = resolved_status(evidence(10));
        st.feedback = vec!["f".repeat(50_000)];
        st.diagnosis_inputs = None;
        let mut r = remediation("oms-5xx-r1", RemediationPhase::Succeeded);
        if let Some(s) = r.status.as_mut() {
            s.applied_patch = Some("p".repeat(100_000));
        }
        let pm = assemble(&incident(), &st, &[r], None);
        let b = pm.bounded(4096);
        assert!(b.serialized_len() <= 4096, "{} bytes", b.serialized_len());
        assert!(b.truncated.contains(&"simulation_context.evidence".to_string()));
    }

    #[test]
    fn the_cached_incident_is_in_step_exactly_when_the_full_one_is() {
        use crate::controllers::cache::{CachedIncident, CachedRemediation};
        let mut inc = incident();
        inc.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2026-01-01T00:00:00Z".parse().expect("time")));
        let rems = [remediation("oms-5xx-r1", RemediationPhase::Failed), remediation("oms-5xx-r2", RemediationPhase::Succeeded)];
        let mut st = resolved_status(evidence(3));
        let pm = assemble(&inc, &st, &rems, None);
        st.post_mortem_digest = Some(content_hash(&pm.to_json()));
        st.post_mortem_ref = Some("oms-5xx-postmortem".into());
        st.post_mortem = Some(Box::new(pm.bounded(STATUS_COPY_LIMIT)));
        inc.status = Some(st);
        // What the controller's cache holds of the same objects.
        let cached = |inc: &Incident| -> (Incident, Option<RecordedCopy>) {
            let c: CachedIncident = serde_json::from_value(serde_json::to_value(inc).expect("json")).expect("cached");
            c.object_and_summary().expect("parses")
        };
        let cached_record = |r: &Remediation| -> u64 {
            let c: CachedRemediation = serde_json::from_value(serde_json::to_value(r).expect("json")).expect("cached");
            c.summary().expect("parses").record
        };
        let cached_records: Vec<u64> = rems.iter().map(cached_record).collect();
        let full_records: Vec<u64> = rems.iter().map(remediation_record_hash).collect();
        let in_step = |inc: &Incident, copy: Option<RecordedCopy>, records: &[u64]| {
            recorded_in_step(inc, inc.status.as_ref().expect("status"), copy, records, false)
        };
        let full_copy = |inc: &Incident| inc.status.as_ref().and_then(|s| s.post_mortem.as_deref()).map(RecordedCopy::of);
        let (c, copy) = cached(&inc);
        assert!(c.status.as_ref().is_some_and(|s| s.evidence.is_none() && s.timeline.is_empty()), "the cache skips the bulk");
        assert!(c.status.as_ref().is_some_and(|s| s.post_mortem.is_none()) && copy.is_some(), "the copy is kept as its summary");
        assert_eq!(cached_records, full_records, "the cache keeps each Remediation's record as it is");
        assert!(
            in_step(&inc, full_copy(&inc), &full_records) && in_step(&c, copy, &cached_records),
            "recorded: nothing to do, from either copy"
        );
        assert!(!in_step(&c, copy, &cached_records[..1]), "a Remediation missing from the cache: unsure, so not in step");
        assert!(!in_step(&c, copy, &[cached_records[1], cached_records[0]]), "the records' order is part of the record");
        // A person scores the incident: the record is out of step, and the cache sees it too.
        inc.metadata.annotations = Some([(FEEDBACK_SCORE_ANNOTATION.to_string(), "4".to_string())].into());
        let (c, copy) = cached(&inc);
        assert!(!in_step(&inc, full_copy(&inc), &full_records) && !in_step(&c, copy, &cached_records));
        // So does a Remediation that changed after the record was written, in a part the cache
        // keeps only as the record's hash.
        let mut changed = rems[1].clone();
        if let Some(st) = changed.status.as_mut() {
            st.applied_patch = Some("{\"data\":{\"POOL_SIZE\":\"20\"}}".into());
        }
        let changed_records = [cached_records[0], cached_record(&changed)];
        inc.metadata.annotations = None;
        let (c, copy) = cached(&inc);
        assert!(in_step(&c, copy, &cached_records) && !in_step(&c, copy, &changed_records));
    }
}
