//! What the controllers cache of an Incident (see `Cached` and `CachedKind`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::error_boundary::InvalidObject;
use serde::Deserialize;
use serde_json::Value;

use super::cached::{Cached, CachedKind, Parts};
use super::post_mortem::RecordedCopy;
use crate::crd::{Incident, IncidentSpec, IncidentStatus, condition_type};
use crate::domain::llm_usage::LlmUsage;
use crate::domain::post_mortem::PostMortem;

/// `kubectl apply`'s copy of the whole object, in an annotation: never needed in a cache.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An Incident as the controllers cache it.
pub type CachedIncident = Cached<Incident>;

/// Of an Incident, the cache keeps what `incident::reconcile_cached` (and the notifier and the
/// metrics) read: metadata, spec, phase, remediations, the post-mortem's reference, digest and
/// archive, of its copy a summary of the parts compared with the current Incident and
/// Remediations (`RecordedCopy`), and the `NotificationDelivered` condition.
///
/// It is decoded straight from the API server's JSON: the parser skips everything else
/// (evidence, diagnosis, its inputs, timeline, usage, the copy's context) without allocating
/// it. kube's `DeserializeGuard` would first copy each whole object into a generic tree, twice,
/// and then decode it in full; across a list of 10,000 Incidents that transient, and the heap
/// it fragments, cost about 27 MiB of the operator's RSS. An Incident whose kept parts do not
/// parse (or whose `status` or post-mortem copy is not even an object, as an object stored
/// under an older, looser schema could be) is kept as invalid with its metadata.
impl CachedKind for Incident {
    type Spec = IncidentSpec;
    type Status = IncidentStatus;
    type Summary = RecordedCopy;

    fn decode<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Result<Self, InvalidObject>, D::Error> {
        let json = IncidentJson::deserialize(deserializer)?;
        let mut metadata = json.metadata;
        if let Some(meta) = metadata.as_object_mut() {
            meta.remove("managedFields");
            if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove(LAST_APPLIED);
            }
        }
        Ok(match typed_incident(metadata.clone(), json.spec, json.status) {
            Ok(inc) => Ok(inc),
            Err(e) => {
                let metadata: ObjectMeta = serde_json::from_value(metadata).map_err(serde::de::Error::custom)?;
                Err(InvalidObject { error: e.to_string(), metadata })
            }
        })
    }

    /// The post-mortem copy's compared parts are kept as their summary.
    fn into_parts(mut self) -> Parts<Self> {
        let summary = self.status.as_mut().and_then(|s| s.post_mortem.take()).map(|pm| RecordedCopy::of(&pm));
        Parts { meta: self.metadata, spec: self.spec, status: self.status, summary }
    }

    fn from_parts(metadata: ObjectMeta, spec: IncidentSpec, status: Option<IncidentStatus>) -> Self {
        Incident { metadata, spec, status }
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
    status: Option<ObjectOr<StatusJson>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson {
    #[serde(default)]
    phase: Value,
    #[serde(default)]
    conditions: Value,
    #[serde(default)]
    remediations: Value,
    #[serde(default)]
    attempts: Value,
    #[serde(default)]
    post_mortem_ref: Value,
    #[serde(default)]
    post_mortem: Option<ObjectOr<PostMortemJson>>,
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

/// A JSON object decoded as `T` (whose fields cannot fail: they are kept as `Value`s), or what
/// else was there, so that a wrong shape marks the Incident invalid instead of failing the page.
struct ObjectOr<T>(Result<T, String>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOr<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer};
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = ObjectOr<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| ObjectOr(Ok(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ObjectOr(Err("expected an object, found a list".into())))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ObjectOr(Err(format!("expected an object, found {v}"))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ObjectOr(Err(format!("expected an object, found {v}"))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ObjectOr(Err(format!("expected an object, found {v}"))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ObjectOr(Err(format!("expected an object, found {v}"))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ObjectOr(Err(format!("expected an object, found {v:?}"))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ObjectOr(Err("expected an object, found null".into())))
            }
        }
        deserializer.deserialize_any(ObjectVisitor(std::marker::PhantomData))
    }
}

/// The typed Incident from the kept parts (absent ones stay absent, so defaults apply).
fn typed_incident(metadata: Value, spec: Value, status: Option<ObjectOr<StatusJson>>) -> Result<Incident, serde_json::Error> {
    use serde::de::Error;
    let mut inc = serde_json::Map::new();
    inc.insert("metadata".into(), metadata);
    inc.insert("spec".into(), spec);
    let post_mortem = match status.map(|s| s.0) {
        None => None,
        Some(Err(e)) => return Err(serde_json::Error::custom(format!("status: {e}"))),
        Some(Ok(st)) => {
            // Only the condition the decision compares; anything but a list is left for the
            // typed decoding to refuse.
            let conditions = match st.conditions {
                Value::Array(all) => Value::Array(
                    all.into_iter()
                        .filter(|c| c.get("type").and_then(Value::as_str) == Some(condition_type::NOTIFICATION_DELIVERED))
                        .collect(),
                ),
                other => other,
            };
            let fields = [
                ("phase", st.phase),
                ("conditions", conditions),
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
    match (post_mortem.map(|p| p.0), inc.status.as_mut()) {
        (Some(Ok(pm)), Some(st)) => st.post_mortem = Some(Box::new(compared_post_mortem(pm)?)),
        (Some(Err(e)), _) => return Err(serde_json::Error::custom(format!("status.postMortem: {e}"))),
        _ => {}
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
        let inc = g.object().expect("parsed");
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
        let invalid = g.object().expect_err("invalid");
        assert!(invalid.error.contains("Apocalyptic"), "{}", invalid.error);
        assert_eq!((invalid.metadata.name.as_deref(), invalid.metadata.namespace.as_deref()), (Some("bad"), Some("shop")));
        assert!(invalid.metadata.managed_fields.is_none());
    }

    #[test]
    fn a_status_of_the_wrong_shape_marks_the_incident_invalid_and_the_rest_still_decodes() {
        let page: Vec<CachedIncident> = serde_json::from_value(json!([
            {"metadata": {"name": "a", "namespace": "shop"}, "spec": {"service": "oms", "severity": "High", "source": {"kind": "Manual"}, "target": {"name": "oms"}},
                "status": "oops"},
            {"metadata": {"name": "b", "namespace": "shop"}, "spec": {"service": "oms", "severity": "High", "source": {"kind": "Manual"}, "target": {"name": "oms"}},
                "status": {"phase": "Resolved", "postMortem": [1, 2]}},
            {"metadata": {"name": "c", "namespace": "shop"}, "spec": {"service": "oms", "severity": "High", "source": {"kind": "Manual"}, "target": {"name": "oms"}},
                "status": {"phase": "Resolved", "conditions": "none"}},
            {"metadata": {"name": "d", "namespace": "shop"}, "spec": {"service": "oms", "severity": "High", "source": {"kind": "Manual"}, "target": {"name": "oms"}},
                "status": null}
        ]))
        .expect("one page, whatever its objects hold");
        let errors: Vec<String> = page.iter().filter_map(|g| g.object().err().map(|e| e.error)).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("status: expected an object") && errors[1].contains("status.postMortem"), "{errors:?}");
        let d = page[3].object().expect("no status is fine");
        assert!(d.status.is_none());
    }
}
