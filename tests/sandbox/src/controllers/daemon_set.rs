//! DaemonSet controller, after pkg/controller/daemon (daemon_controller.go `manage`,
//! `podsShouldBeOnNode`, `NodeShouldRunDaemonPod`, `updateDaemonSetStatus`; update.go
//! `rollingUpdate`; util/daemonset_util.go):
//!
//! - a node should run the daemon Pod when the template's nodeSelector (and required node
//!   affinity) matches it and it has no NoSchedule/NoExecute taint the Pod does not tolerate; a
//!   Pod already there keeps running through NoSchedule taints (only NoExecute removes it)
//! - Pods are named `<set>-<random>`, carry a controller owner reference, the labels
//!   `controller-revision-hash` and `pod-template-generation`, a required node affinity to their
//!   node (`matchFields metadata.name In [node]`, ReplaceDaemonSetPodNodeNameNodeAffinity) and the
//!   tolerations every daemon Pod gets (not-ready / unreachable NoExecute; disk-pressure,
//!   memory-pressure, pid-pressure, unschedulable NoSchedule)
//! - failed daemon Pods are deleted ("Found failed daemon pod ns/x on node n, will try to kill
//!   it") and re-created; a node with more than one Pod keeps the oldest
//! - RollingUpdate (default maxUnavailable 1, maxSurge 0): old Pods that are not available are
//!   deleted at once, available ones while fewer than maxUnavailable nodes are unavailable;
//!   OnDelete: Pods are only replaced when deleted
//! - status: desiredNumberScheduled, currentNumberScheduled, numberMisscheduled, numberReady,
//!   numberAvailable, numberUnavailable, updatedNumberScheduled, observedGeneration
//! - events `SuccessfulCreate` "Created pod: x", `SuccessfulDelete` "Deleted pod: x",
//!   `FailedDaemonPod` (pkg/controller/controller_utils.go)
//!
//! Not simulated: maxSurge > 0, minReadySeconds, the failed-pod back-off, ControllerRevisions
//! (the hash label alone identifies the template), preferred node affinity.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{active, controller_ref, list_owned, phase, random_suffix, running_and_ready, tolerates};
use crate::controllers::deployment::template_hash;
use crate::events::{Recorder, reference};

pub const HASH_LABEL: &str = "controller-revision-hash";
pub const GENERATION_LABEL: &str = "pod-template-generation";

pub async fn sync_all(client: &Client, events: &Recorder) -> Result<(), kube::Error> {
    let sets: Api<DaemonSet> = Api::all(client.clone());
    let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await?.items;
    for ds in sets.list(&ListParams::default()).await?.items {
        if let Err(e) = sync(client, events, &ds, &nodes).await {
            tracing::debug!(daemonset = %ds.name_any(), error = %e, "daemonset sync failed; retried");
        }
    }
    Ok(())
}

/// The tolerations the controller adds to every daemon Pod (AddOrUpdateDaemonPodTolerations).
pub fn daemon_tolerations(spec: &PodSpec) -> Vec<Toleration> {
    let mut t = spec.tolerations.clone().unwrap_or_default();
    let mut add = |key: &str, effect: &str| {
        if !t.iter().any(|x| x.key.as_deref() == Some(key) && x.effect.as_deref() == Some(effect)) {
            t.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some(effect.into()),
                ..Default::default()
            });
        }
    };
    add("node.kubernetes.io/not-ready", "NoExecute");
    add("node.kubernetes.io/unreachable", "NoExecute");
    add("node.kubernetes.io/disk-pressure", "NoSchedule");
    add("node.kubernetes.io/memory-pressure", "NoSchedule");
    add("node.kubernetes.io/pid-pressure", "NoSchedule");
    add("node.kubernetes.io/unschedulable", "NoSchedule");
    if spec.host_network == Some(true) {
        add("node.kubernetes.io/network-unavailable", "NoSchedule");
    }
    t
}

/// `(shouldRun, shouldContinueRunning)` of NodeShouldRunDaemonPod.
pub fn should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    if !crate::scheduler::node_selected(spec, node) {
        return (false, false);
    }
    let tolerations = daemon_tolerations(spec);
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let untolerated = |effects: &[&str]| taints.iter().any(|t| effects.contains(&t.effect.as_str()) && !tolerates(&tolerations, t));
    (!untolerated(&["NoSchedule", "NoExecute"]), !untolerated(&["NoExecute"]))
}

/// The node a daemon Pod is for: where it is bound, or its node affinity's `metadata.name`.
fn target_node(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = &spec.node_name {
        return Some(n.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

fn hash_of(p: &Pod) -> Option<&String> {
    p.metadata.labels.as_ref()?.get(HASH_LABEL)
}

async fn sync(client: &Client, events: &Recorder, ds: &DaemonSet, nodes: &[Node]) -> Result<(), kube::Error> {
    let ns = ds.namespace().unwrap_or_default();
    let name = ds.name_any();
    let uid = ds.uid().unwrap_or_default();
    let spec = ds.spec.clone();
    let template = spec.template.clone();
    let pod_spec = template.spec.clone().unwrap_or_default();
    let hash = template_hash(&template);
    let ds_ref = reference("DaemonSet", "apps/v1", &ds.metadata);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mine: Vec<Pod> = list_owned(&pods_api, &uid).await?.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
    let mut by_node: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in mine {
        by_node.entry(target_node(&p).unwrap_or_default()).or_default().push(p);
    }
    let delete = |p: Pod| {
        let pods_api = pods_api.clone();
        let events = events.clone();
        let ds_ref = ds_ref.clone();
        async move {
            if pods_api.delete(&p.name_any(), &DeleteParams::default()).await.is_ok() {
                events.record(&ds_ref, false, "SuccessfulDelete", &format!("Deleted pod: {}", p.name_any())).await;
            }
        }
    };
    let (mut desired, mut current, mut misscheduled, mut ready, mut updated) = (0, 0, 0, 0, 0);
    let mut olds: Vec<(Pod, bool)> = Vec::new();
    let mut unavailable_nodes = 0;
    for node in nodes {
        let node_name = node.name_any();
        let (run, keep) = should_run(&pod_spec, node);
        let mut pods = by_node.remove(&node_name).unwrap_or_default();
        if run {
            desired += 1;
        }
        if !pods.is_empty() && !run {
            misscheduled += 1;
        }
        if !keep || (!run && pods.iter().all(|p| !active(p))) {
            for p in pods.drain(..) {
                delete(p).await;
            }
            continue;
        }
        // Failed daemon pods are killed and replaced.
        let (failed, mut live): (Vec<Pod>, Vec<Pod>) = pods.into_iter().partition(|p| phase(p) == "Failed");
        for p in failed {
            events
                .record(
                    &ds_ref,
                    true,
                    "FailedDaemonPod",
                    &format!("Found failed daemon pod {ns}/{} on node {node_name}, will try to kill it", p.name_any()),
                )
                .await;
            delete(p).await;
        }
        // More than one: keep the oldest.
        live.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        for p in live.split_off(live.len().min(1)) {
            delete(p).await;
        }
        match live.pop() {
            None if run => {
                unavailable_nodes += 1;
                create(&pods_api, events, ds, &hash, &node_name).await;
            }
            None => {}
            Some(p) => {
                if run {
                    current += 1;
                }
                let is_ready = running_and_ready(&p);
                if is_ready {
                    ready += 1;
                }
                if hash_of(&p) == Some(&hash) {
                    updated += 1;
                    if !is_ready {
                        unavailable_nodes += 1;
                    }
                } else {
                    if !is_ready {
                        unavailable_nodes += 1;
                    }
                    olds.push((p, is_ready));
                }
            }
        }
    }
    // Pods for nodes that no longer exist.
    for (_, pods) in by_node {
        for p in pods {
            delete(p).await;
        }
    }
    // RollingUpdate (update.go rollingUpdate, maxSurge 0).
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.as_deref() != Some("OnDelete") {
        let max_unavailable = match strategy.rolling_update.as_ref().and_then(|r| r.max_unavailable.clone()) {
            Some(IntOrString::Int(n)) => n,
            Some(IntOrString::String(s)) => {
                let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
                ((f64::from(desired) * pct / 100.0).ceil() as i32).max(1)
            }
            None => 1,
        };
        let mut budget = (max_unavailable - unavailable_nodes).max(0);
        for (p, is_ready) in olds {
            if !is_ready {
                delete(p).await;
            } else if budget > 0 {
                budget -= 1;
                delete(p).await;
            }
        }
    }
    let status = DaemonSetStatus {
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        number_misscheduled: misscheduled,
        number_ready: ready,
        number_available: Some(ready),
        number_unavailable: Some((desired - ready).max(0)),
        updated_number_scheduled: Some(updated),
        observed_generation: ds.metadata.generation,
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    if ds.status.as_ref() != Some(&status) {
        let api: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    }
    Ok(())
}

async fn create(pods_api: &Api<Pod>, events: &Recorder, ds: &DaemonSet, hash: &str, node: &str) {
    let name = ds.name_any();
    let spec = ds.spec.clone();
    let mut meta: ObjectMeta = spec.template.metadata.clone().unwrap_or_default();
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(HASH_LABEL.into(), hash.into());
    labels.insert(GENERATION_LABEL.into(), ds.metadata.generation.unwrap_or(1).to_string());
    let pod_name = format!("{name}-{}", random_suffix());
    meta.name = Some(pod_name.clone());
    meta.namespace = ds.namespace();
    meta.owner_references = Some(vec![controller_ref("apps/v1", "DaemonSet", &name, &ds.uid().unwrap_or_default())]);
    let mut pod_spec = spec.template.spec.clone().unwrap_or_default();
    pod_spec.tolerations = Some(daemon_tolerations(&pod_spec));
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.into()]),
        }]),
        ..Default::default()
    };
    let affinity = pod_spec.affinity.get_or_insert_with(Affinity::default);
    affinity.node_affinity = Some(NodeAffinity {
        required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: vec![term] }),
        ..affinity.node_affinity.clone().unwrap_or_default()
    });
    let pod = Pod { metadata: meta, spec: Some(pod_spec), status: None };
    let ds_ref = reference("DaemonSet", "apps/v1", &ds.metadata);
    match pods_api.create(&PostParams::default(), &pod).await {
        Ok(_) => events.record(&ds_ref, false, "SuccessfulCreate", &format!("Created pod: {pod_name}")).await,
        Err(e) => events.record(&ds_ref, true, "FailedCreate", &format!("Error creating: {e}")).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints}})).expect("node")
    }

    #[test]
    fn a_node_runs_the_daemon_when_selected_and_tolerated() {
        let spec: PodSpec = serde_json::from_value(json!({"containers": [], "nodeSelector": {"disk": "ssd"}})).expect("spec");
        assert_eq!(should_run(&spec, &node(json!({"disk": "ssd"}), json!([]))), (true, true));
        assert_eq!(should_run(&spec, &node(json!({"disk": "hdd"}), json!([]))), (false, false));
        let plain = PodSpec::default();
        let pressure = json!([{"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}]);
        assert_eq!(should_run(&plain, &node(json!({}), pressure)), (true, true), "daemon pods tolerate node pressure");
        let dedicated = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
        assert_eq!(should_run(&plain, &node(json!({}), dedicated)), (false, true), "NoSchedule: no new pod, the old one stays");
        let evict = json!([{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]);
        assert_eq!(should_run(&plain, &node(json!({}), evict)), (false, false));
    }
}
