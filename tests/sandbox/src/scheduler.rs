//! The scheduler, for the one simulated node: a pod is bound when its resource requests fit in
//! what the node has left, its nodeSelector and required node affinity (matchExpressions on
//! labels, matchFields on `metadata.name`) match the node and it tolerates the node's
//! NoSchedule/NoExecute taints (Toleration.ToleratesTaint); otherwise it stays Pending with
//! `PodScheduled=False/Unschedulable` and a `FailedScheduling` event worded as kube-scheduler
//! words it ("0/1 nodes are available: 1 Insufficient memory. preemption: ...").

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec};
use kube::ResourceExt;

use operator::domain::quantity::parse_bytes;

/// Millicores of a CPU quantity (`500m`, `2`, `0.5`).
pub fn parse_millicores(q: &str) -> Option<u64> {
    match q.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => q.parse::<f64>().ok().map(|c| (c * 1000.0).round() as u64),
    }
}

fn requests(p: &Pod) -> (u64, u64) {
    let mut cpu = 0;
    let mut mem = 0;
    for c in p.spec.iter().flat_map(|s| s.containers.iter()) {
        let r = c.resources.clone().unwrap_or_default();
        let req = r.requests.unwrap_or_default();
        // A limit without a request counts as the request (API server defaulting).
        let lim = r.limits.unwrap_or_default();
        cpu += req.get("cpu").or(lim.get("cpu")).and_then(|q| parse_millicores(&q.0)).unwrap_or(0);
        mem += req.get("memory").or(lim.get("memory")).and_then(|q| parse_bytes(&q.0)).unwrap_or(0);
    }
    (cpu, mem)
}

/// The pod's `nodeSelector` and required node affinity accept the node (the scheduler's
/// NodeAffinity filter; the DaemonSet controller asks the same question).
pub fn node_selected(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
        .map(|s| s.node_selector_terms.clone())
        .unwrap_or_default();
    spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v)) && node_selector_terms_match(&terms, node)
}

/// Does a required node-selector term list match the node (labels via matchExpressions,
/// `metadata.name` via matchFields)?
pub fn node_selector_terms_match(terms: &[NodeSelectorTerm], node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.name_any();
    let req_ok = |r: &NodeSelectorRequirement, value: Option<&String>| {
        let values = r.values.clone().unwrap_or_default();
        match r.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    };
    terms.is_empty()
        || terms.iter().any(|t| {
            t.match_expressions.iter().flatten().all(|r| req_ok(r, labels.get(&r.key)))
                && t.match_fields.iter().flatten().all(|r| r.key == "metadata.name" && req_ok(r, Some(&name)))
        })
}

/// `Ok(())` to bind, `Err(message)` for the FailedScheduling event.
pub fn schedule(pod: &Pod, node: &Node, bound: &[Pod]) -> Result<(), String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let reason = if !node_selected(&spec, node) {
        Some(("1 node(s) didn't match Pod's node affinity/selector", "Preemption is not helpful for scheduling"))
    } else if let Some(t) = node.spec.iter().flat_map(|s| s.taints.iter().flatten()).find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute")
            && !crate::controllers::tolerates(spec.tolerations.as_deref().unwrap_or_default(), t)
    }) {
        let taint = format!("1 node(s) had untolerated taint {{{}: {}}}", t.key, t.value.clone().unwrap_or_default());
        return Err(format!(
            "0/1 nodes are available: {taint}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        ));
    } else {
        let alloc = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
        let cap_cpu = alloc.get("cpu").and_then(|q| parse_millicores(&q.0)).unwrap_or(u64::MAX);
        let cap_mem = alloc.get("memory").and_then(|q| parse_bytes(&q.0)).unwrap_or(u64::MAX);
        let (used_cpu, used_mem) = bound.iter().map(requests).fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        let (cpu, mem) = requests(pod);
        let mut short = Vec::new();
        if used_cpu + cpu > cap_cpu {
            short.push("1 Insufficient cpu");
        }
        if used_mem + mem > cap_mem {
            short.push("1 Insufficient memory");
        }
        if short.is_empty() {
            None
        } else {
            return Err(format!(
                "0/1 nodes are available: {}. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
                short.join(", ")
            ));
        }
    };
    match reason {
        None => Ok(()),
        Some((why, preemption)) => Err(format!("0/1 nodes are available: {why}. preemption: 0/1 nodes are available: 1 {preemption}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> Node {
        serde_json::from_value(json!({"metadata": {"name": "sandbox-node", "labels": {"kubernetes.io/os": "linux"}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi"}}}))
        .expect("node")
    }

    fn pod(cpu: &str, mem: &str, selector: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"nodeSelector": selector, "containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}))
        .expect("pod")
    }

    #[test]
    fn requests_that_fit_nowhere_are_worded_as_the_scheduler_words_them() {
        assert_eq!(schedule(&pod("500m", "1Gi", json!({})), &node(), &[]), Ok(()));
        let err = schedule(&pod("500m", "16Gi", json!({})), &node(), &[]).expect_err("too big");
        assert_eq!(
            err,
            "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        let bound = vec![pod("3500m", "1Gi", json!({}))];
        assert!(schedule(&pod("1", "1Gi", json!({})), &node(), &bound).expect_err("cpu").contains("1 Insufficient cpu"));
        assert!(
            schedule(&pod("1", "1Gi", json!({"gpu": "a100"})), &node(), &[])
                .expect_err("selector")
                .contains("didn't match Pod's node affinity/selector")
        );
    }
}
