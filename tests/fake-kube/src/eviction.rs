//! `POST .../pods/{name}/eviction` (policy/v1 Eviction): a pod deletion that honours
//! PodDisruptionBudgets, as pkg/registry/core/pod/storage/eviction.go does it.
//!
//! The real server reads `status.disruptionsAllowed`, which the disruption controller keeps up
//! to date. The fake has no such controller, so it computes the same figure at the moment of
//! the request from the PDB's spec and the pods that match its selector (see
//! `disruptions_allowed`); a PDB's `status` is never written by the fake.

use serde_json::{Value, json};

use crate::deletion::DeleteOptions;
use crate::registry::ResourceType;
use crate::selector::label;
use crate::store::{Store, StoreError};

const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// Evicts `pod` in `ns`; `body` is the Eviction (its `deleteOptions` apply to the deletion).
pub fn evict(store: &mut Store, pods: &ResourceType, ns: &str, pod: &str, body: &Value) -> Result<Value, StoreError> {
    let obj = store.get_typed(pods, Some(ns), pod)?;
    let opts = DeleteOptions::parse(body.get("deleteOptions").unwrap_or(&Value::Null), None, false)?;
    let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
    // A pod that is done, or already being deleted, disrupts nothing: no budget is consulted.
    let terminal = matches!(phase, "Succeeded" | "Failed") || obj.pointer("/metadata/deletionTimestamp").is_some();
    if !terminal {
        let pdbs: Vec<Value> = match store.find_type("policy", "v1", "poddisruptionbudgets") {
            Some(rt) => store.list(&rt, Some(ns), "", "").into_iter().filter(|p| selects(p, &obj)).collect(),
            None => vec![],
        };
        if pdbs.len() > 1 {
            return Err(StoreError::Status {
                code: 500,
                reason: "InternalError",
                message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
                details: Value::Null,
            });
        }
        if let Some(pdb) = pdbs.first() {
            let budget = Budget::of(store, pods, ns, pdb);
            // unhealthyPodEvictionPolicy: an unready pod may go while the budget is met
            // (IfHealthyBudget, the default) or always (AlwaysAllow).
            let policy = pdb.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str).unwrap_or("IfHealthyBudget");
            let allowed = if healthy(&obj) {
                budget.current_healthy > budget.desired_healthy
            } else {
                policy == "AlwaysAllow" || budget.current_healthy >= budget.desired_healthy
            };
            if !allowed {
                let name = pdb.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                return Err(StoreError::Status {
                    code: 429,
                    reason: "TooManyRequests",
                    message: VIOLATION.into(),
                    details: json!({"causes": [{"reason": "DisruptionBudget", "message": format!(
                        "The disruption budget {name} needs {} healthy pods and has {} currently",
                        budget.desired_healthy, budget.current_healthy)}]}),
                });
            }
        }
    }
    store.delete_with(pods, Some(ns), pod, &opts)?;
    Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
}

/// Ready and not being deleted: what the disruption controller counts as healthy.
fn healthy(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// `spec.selector` (matchLabels and matchExpressions) of a PDB against a pod. An empty
/// selector selects every pod of the namespace (policy/v1 semantics).
fn selects(pdb: &Value, pod: &Value) -> bool {
    let sel = pdb.pointer("/spec/selector").cloned().unwrap_or(Value::Null);
    let labels_ok =
        sel.get("matchLabels").and_then(Value::as_object).is_none_or(|m| m.iter().all(|(k, v)| label(pod, k).as_deref() == v.as_str()));
    let exprs_ok = sel.get("matchExpressions").and_then(Value::as_array).is_none_or(|es| {
        es.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"].as_array().map(|v| v.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            let have = label(pod, key);
            match e["operator"].as_str().unwrap_or_default() {
                "In" => have.is_some_and(|h| values.contains(&h.as_str())),
                "NotIn" => have.is_none_or(|h| !values.contains(&h.as_str())),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

struct Budget {
    current_healthy: i64,
    desired_healthy: i64,
}

impl Budget {
    /// The disruption controller's figures, with the matching pods (not terminal) as the
    /// expected count instead of the owning controllers' scale.
    fn of(store: &Store, pods: &ResourceType, ns: &str, pdb: &Value) -> Self {
        let matching: Vec<Value> = store
            .list(pods, Some(ns), "", "")
            .into_iter()
            .filter(|p| selects(pdb, p))
            .filter(|p| !matches!(p.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed")))
            .collect();
        let expected = matching.len() as i64;
        let current_healthy = matching.iter().filter(|p| healthy(p)).count() as i64;
        let spec = pdb.get("spec").cloned().unwrap_or(Value::Null);
        let desired_healthy = if let Some(min) = spec.get("minAvailable") {
            scaled(min, expected)
        } else if let Some(max) = spec.get("maxUnavailable") {
            (expected - scaled(max, expected)).max(0)
        } else {
            // Neither set (an unusual budget): the fake allows no voluntary disruption.
            expected
        };
        Self { current_healthy, desired_healthy }
    }
}

/// An IntOrString of a PDB: an absolute count, or a percentage of `expected` rounded up
/// (`intstr.GetScaledValueFromIntOrPercent(..., roundUp=true)`).
fn scaled(v: &Value, expected: i64) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or_default(),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.trim().parse::<i64>().ok()) {
            Some(pct) => (pct * expected + 99) / 100,
            None => s.parse().unwrap_or_default(),
        },
        _ => 0,
    }
}
