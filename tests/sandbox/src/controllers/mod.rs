//! The built-in controllers Salve's fixes go through: Deployment (ReplicaSets per pod-template
//! hash, revisions, rolling updates), ReplicaSet (Pods with owner references), StatefulSet
//! (ordinal Pods, ordered or parallel, partitioned rolling updates), DaemonSet (a Pod per node
//! that should run one) and Job (Pods run to completion, backoffLimit, deadline). Each resyncs
//! every object on a short period instead of watching (a documented difference).

pub mod daemon_set;
pub mod deployment;
pub mod job;
pub mod replica_set;
pub mod stateful_set;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::Resource;
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

/// Objects owned (as controller) by the object with `uid`.
pub fn owned_by(owners: Option<&Vec<OwnerReference>>, uid: &str) -> bool {
    owners.is_some_and(|o| o.iter().any(|r| r.uid == uid && r.controller == Some(true)))
}

/// Every object of `api` (one namespace) that the object with `uid` controls.
pub async fn list_owned<K>(api: &Api<K>, uid: &str) -> Result<Vec<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(api.list(&ListParams::default()).await?.items.into_iter().filter(|o| owned_by(o.meta().owner_references.as_ref(), uid)).collect())
}

/// The controller owner reference a workload controller puts on what it creates.
pub fn controller_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending")
}

/// Succeeded or Failed: the pod will never run again.
pub fn terminal(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

/// `controller.IsPodActive` (pkg/controller/controller_utils.go): not terminal, not being deleted.
pub fn active(p: &Pod) -> bool {
    !terminal(p) && p.metadata.deletion_timestamp.is_none()
}

/// Running with the Ready condition True (`isRunningAndReady` of the StatefulSet controller).
pub fn running_and_ready(p: &Pod) -> bool {
    phase(p) == "Running" && replica_set::pod_ready(p)
}

/// Five characters of apimachinery's `rand.String` alphabet, as `generateName` appends.
pub fn random_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = (k8s_openapi::jiff::Timestamp::now().as_nanosecond() as u64)
        .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let n = n ^ (n >> 29);
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5).map(|i| ALPHABET[((n >> (i * 7)) % ALPHABET.len() as u64) as usize] as char).collect()
}

/// `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist) against `labels`.
/// Written here again on purpose (the operator has its own): the simulator must never inherit
/// the operator's mistakes.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// `Toleration.ToleratesTaint` (staging/src/k8s.io/api/core/v1/toleration.go): an empty effect
/// tolerates every effect, `Exists` with no key tolerates every taint.
pub fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty() || k == taint.key);
        let exists = t.operator.as_deref() == Some("Exists");
        let key_ok = if t.key.as_deref().is_none_or(str::is_empty) { exists } else { key_ok };
        let value_ok = exists || t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("");
        effect_ok && key_ok && value_ok
    })
}

/// The RFC 3339 timestamp of now, to the second (what the API server stores).
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().round(k8s_openapi::jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_follow_the_api_rules() {
        let taint = Taint { key: "node.kubernetes.io/memory-pressure".into(), effect: "NoSchedule".into(), ..Default::default() };
        let exists = Toleration { key: Some(taint.key.clone()), operator: Some("Exists".into()), ..Default::default() };
        assert!(tolerates(&[exists], &taint));
        let everything = Toleration { operator: Some("Exists".into()), ..Default::default() };
        assert!(tolerates(&[everything], &taint));
        let other_effect = Toleration {
            key: Some(taint.key.clone()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        };
        assert!(!tolerates(&[other_effect], &taint));
        assert!(!tolerates(&[], &taint));
    }
}
