//! The Incident as the controllers cache it (see `CachedIncident`).

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use serde::Deserialize;
use serde_json::Value;

use crate::crd::{Incident, condition_type};
use crate::domain::llm_usage::LlmUsage;
use crate::domain::post_mortem::PostMortem;

/// `kubectl apply`'s copy of the whole object, in an annotation: never needed in a cache.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An Incident as the controller caches it: what `incident::reconcile_cached` (and the
/// notifier and the metrics) read — metadata, spec, phase, remediations, the post-mortem's
/// reference, digest and archive, of its copy the parts compared with the current Incident and
/// Remediations, and the `NotificationDelivered` condition.
///
/// It is decoded straight from the API server's JSON: the parser skips everything else
/// (evidence, diagnosis, its inputs, timeline, usage, the copy's context) without allocating
/// it. kube's `DeserializeGuard` would first copy each whole object into a generic tree, twice,
/// and then decode it in full; across a list of 10,000 Incidents that transient, and the heap
/// it fragments, was most of the operator's memory. An Incident that does not parse is kept as
/// `Err` with its metadata, as `DeserializeGuard` does, so one bad object never stops the watch.
#[derive(Clone, Debug)]
pub struct CachedIncident {
    guard: DeserializeGuard<Incident>,
}

impl std::ops::Deref for CachedIncident {
    type Target = DeserializeGuard<Incident>;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl CachedIncident {
    pub fn guard(&self) -> &DeserializeGuard<Incident> {
        &self.guard
    }
}

impl Resource for CachedIncident {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Incident::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        Incident::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        Incident::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        Incident::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        self.guard.meta()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.guard.meta_mut()
    }
}

/// The parts of an Incident's JSON that are kept; unnamed fields are skipped unread.
#[derive(Deserialize)]
struct IncidentJson {
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    spec: Value,
    #[serde(default)]
    status: Option<StatusJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson {
    #[serde(default)]
    phase: Value,
    #[serde(default)]
    conditions: Vec<Value>,
    #[serde(default)]
    remediations: Value,
    #[serde(default)]
    attempts: Value,
    #[serde(default)]
    post_mortem_ref: Value,
    #[serde(default)]
    post_mortem: Option<PostMortemJson>,
    #[serde(default)]
    post_mortem_digest: Value,
    #[serde(default)]
    post_mortem_archive: Value,
    #[serde(default)]
    observed_generation: Value,
}

/// Of the post-mortem copy, what `post_mortem::recorded_in_step` compares.
#[derive(Deserialize)]
struct PostMortemJson {
    #[serde(default)]
    incident_name: Value,
    #[serde(default)]
    incident_namespace: Value,
    #[serde(default)]
    service: Value,
    #[serde(default)]
    severity: Value,
    #[serde(default)]
    source: Value,
    #[serde(default)]
    outcome: Value,
    #[serde(default)]
    created_at: Value,
    #[serde(default)]
    remediation_action: Value,
    #[serde(default)]
    human_feedback_score: Value,
    #[serde(default)]
    truncated: Value,
}

impl<'de> Deserialize<'de> for CachedIncident {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = IncidentJson::deserialize(deserializer)?;
        let mut metadata = json.metadata;
        if let Some(meta) = metadata.as_object_mut() {
            meta.remove("managedFields");
            if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove(LAST_APPLIED);
            }
        }
        let guard = match typed_incident(metadata.clone(), json.spec, json.status) {
            Ok(inc) => DeserializeGuard(Ok(inc)),
            Err(e) => {
                let metadata: ObjectMeta = serde_json::from_value(metadata).map_err(serde::de::Error::custom)?;
                DeserializeGuard(Err(InvalidObject { error: e.to_string(), metadata }))
            }
        };
        Ok(CachedIncident { guard })
    }
}

/// The typed Incident from the kept parts (absent ones stay absent, so defaults apply).
fn typed_incident(metadata: Value, spec: Value, status: Option<StatusJson>) -> Result<Incident, serde_json::Error> {
    let mut inc = serde_json::Map::new();
    inc.insert("metadata".into(), metadata);
    inc.insert("spec".into(), spec);
    let post_mortem = match status {
        None => None,
        Some(st) => {
            let conditions: Vec<Value> = st
                .conditions
                .into_iter()
                .filter(|c| c.get("type").and_then(Value::as_str) == Some(condition_type::NOTIFICATION_DELIVERED))
                .collect();
            let fields = [
                ("phase", st.phase),
                ("conditions", Value::Array(conditions)),
                ("remediations", st.remediations),
                ("attempts", st.attempts),
                ("postMortemRef", st.post_mortem_ref),
                ("postMortemDigest", st.post_mortem_digest),
                ("postMortemArchive", st.post_mortem_archive),
                ("observedGeneration", st.observed_generation),
            ];
            let status: serde_json::Map<String, Value> =
                fields.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.to_string(), v)).collect();
            inc.insert("status".into(), Value::Object(status));
            st.post_mortem
        }
    };
    let mut inc: Incident = serde_json::from_value(Value::Object(inc))?;
    if let (Some(pm), Some(st)) = (post_mortem, inc.status.as_mut()) {
        st.post_mortem = Some(Box::new(compared_post_mortem(pm)?));
    }
    Ok(inc)
}

fn compared_post_mortem(pm: PostMortemJson) -> Result<PostMortem, serde_json::Error> {
    use serde_json::from_value;
    let or_default = |v: Value| if v.is_null() { Value::Array(Vec::new()) } else { v };
    Ok(PostMortem {
        schema_version: String::new(),
        incident_name: from_value(pm.incident_name)?,
        incident_namespace: from_value(pm.incident_namespace)?,
        service: from_value(pm.service)?,
        severity: from_value(pm.severity)?,
        source: from_value(pm.source)?,
        outcome: from_value(pm.outcome)?,
        created_at: from_value(pm.created_at)?,
        closed_at: None,
        incident_signature: None,
        root_cause_category: None,
        remediation_action: from_value(or_default(pm.remediation_action))?,
        human_feedback_score: from_value(pm.human_feedback_score)?,
        simulation_context: Box::default(),
        llm_usage: LlmUsage::default(),
        timeline: Vec::new(),
        truncated: from_value(or_default(pm.truncated))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_incident_keeps_what_the_decision_reads() {
        let g: CachedIncident = serde_json::from_value(json!({
            "apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": "inc", "namespace": "shop", "annotations": {"salve.dev/feedback-score": "4"},
                "managedFields": [{"manager": "salve-operator", "operation": "Apply"}]},
            "spec": {"service": "oms", "severity": "High", "source": {"kind": "Manual"}, "target": {"kind": "Deployment", "name": "oms"}},
            "status": {"phase": "Resolved", "remediations": ["inc-r1"], "postMortemDigest": "sha256:1", "postMortemRef": "inc-postmortem",
                "evidence": {"workload": "Deployment/oms", "logs": [{"pod": "p", "container": "c", "lines": ["x"]}]},
                "timeline": [{"time": "t", "phase": "Resolved", "message": "ok"}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "Resolved", "message": "", "lastTransitionTime": "t"}]}
        }))
        .expect("incident");
        let inc = g.guard().0.clone().expect("parsed");
        assert!(inc.metadata.managed_fields.is_none());
        assert_eq!(inc.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
        let st = inc.status.expect("status");
        assert!(st.evidence.is_none() && st.timeline.is_empty() && st.conditions.is_empty());
        assert_eq!(st.remediations, ["inc-r1"]);
        assert_eq!(st.post_mortem_digest.as_deref(), Some("sha256:1"));
        assert_eq!(st.post_mortem_ref.as_deref(), Some("inc-postmortem"));
    }

    #[test]
    fn an_incident_that_does_not_parse_is_kept_with_its_metadata() {
        let g: CachedIncident = serde_json::from_value(json!({
            "apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": "bad", "namespace": "shop", "managedFields": [{"manager": "x"}]},
            "spec": {"service": "oms", "severity": "Apocalyptic", "source": {"kind": "Manual"}}
        }))
        .expect("the watch goes on");
        let invalid = g.guard().0.as_ref().expect_err("invalid");
        assert!(invalid.error.contains("Apocalyptic"), "{}", invalid.error);
        assert_eq!((invalid.metadata.name.as_deref(), invalid.metadata.namespace.as_deref()), (Some("bad"), Some("shop")));
        assert!(invalid.metadata.managed_fields.is_none());
    }
}
