//! Node-pressure eviction, after pkg/kubelet/eviction (eviction_manager.go `synchronize`,
//! helpers.go `rankMemoryPressure`, `evictionMessage`) and the node status setters
//! (pkg/kubelet/nodestatus/setters.go `MemoryPressureCondition`, `DiskPressureCondition`):
//!
//! - `memory.available` = the node's memory capacity minus the resident memory (VmRSS) of every
//!   container process of the node's pods — the kubelet's working set, measured the same way the
//!   OOM killer's limit is judged here. The default hard threshold `memory.available<100Mi`
//! - threshold met: the node's `MemoryPressure` condition becomes True
//!   (`KubeletHasInsufficientMemory`, "kubelet has insufficient memory available") with a
//!   `NodeHasInsufficientMemory` event, and the node gets the taint
//!   `node.kubernetes.io/memory-pressure:NoSchedule` (in a cluster the node lifecycle
//!   controller's taint-by-condition adds it); the condition stays True for
//!   `evictionPressureTransitionPeriod` (5 min) after the threshold is last met
//! - while the threshold is met, every monitoring interval (10 s) one pod is evicted, ranked as
//!   `rankMemoryPressure` ranks them: pods whose usage exceeds their memory requests first
//!   (BestEffort pods request nothing), then lower priority, then the largest usage above
//!   requests. An `EvictionThresholdMet` event ("Attempting to reclaim memory") on the node; the
//!   pod's processes are killed at once (a hard threshold has no grace period) and its status
//!   becomes phase `Failed`, reason `Evicted`, the kubelet's message ("The node was low on
//!   resource: memory. Threshold quantity: 100Mi, available: 51200Ki. Container hog was using
//!   215040Ki, request is 0, has larger consumption of memory. ") and a `DisruptionTarget`
//!   condition (`TerminationByKubelet`); an `Evicted` event with the same message
//! - DiskPressure: `nodefs.available` = the node's `ephemeral-storage` capacity minus the bytes
//!   under the pods' directories (volumes and container root directories) against the default
//!   `nodefs.available<10%`; the condition (`KubeletHasDiskPressure`), its event and the taint
//!   `node.kubernetes.io/disk-pressure:NoSchedule` are reported, but nothing is evicted for disk
//!
//! The intervals are divided by the sandbox's time scale.

use std::cmp::Reverse;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use operator::domain::quantity::parse_bytes;
use serde_json::json;

use super::{Kubelet, NODE, container};
use crate::controllers::terminal;
use crate::events::reference;

/// The default hard eviction threshold `memory.available<100Mi`.
pub const MEMORY_THRESHOLD: u64 = 100 * 1024 * 1024;
pub const MEMORY_THRESHOLD_TEXT: &str = "100Mi";
/// The default hard eviction threshold `nodefs.available<10%`.
pub const NODEFS_THRESHOLD_PERCENT: u64 = 10;
/// The eviction manager's monitoring interval.
pub const MONITORING_INTERVAL: Duration = Duration::from_secs(10);
/// `evictionPressureTransitionPeriod`'s default.
pub const PRESSURE_TRANSITION_PERIOD: Duration = Duration::from_secs(300);
pub const MEMORY_PRESSURE_TAINT: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE_TAINT: &str = "node.kubernetes.io/disk-pressure";

#[derive(Default)]
pub struct EvictionState {
    memory_met_at: Option<Instant>,
    disk_met_at: Option<Instant>,
    last_eviction: Option<Instant>,
    last_disk_check: Option<Instant>,
    disk_met: bool,
}

/// A quantity of bytes as `resource.Quantity` prints a BinarySI value (`51200Ki`, `100Mi`,
/// `0`); values that are not a multiple of 1024 print in DecimalSI, as the real type does.
pub fn format_bytes(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        let (mut v, mut i) = (bytes, 0);
        while v.is_multiple_of(1024) && i < 6 {
            v /= 1024;
            i += 1;
        }
        return format!("{v}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][i]);
    }
    let (mut v, mut i) = (bytes, 0);
    while v.is_multiple_of(1000) && i < 6 {
        v /= 1000;
        i += 1;
    }
    format!("{v}{}", ["", "k", "M", "G", "T", "P", "E"][i])
}

/// A container's memory request as written (a limit alone is also the request, as API-server
/// defaulting makes it), and its bytes.
fn memory_request(c: &k8s_openapi::api::core::v1::Container) -> (String, u64) {
    let r = c.resources.clone().unwrap_or_default();
    let q = r.requests.as_ref().and_then(|m| m.get("memory")).or(r.limits.as_ref().and_then(|m| m.get("memory"))).map(|q| q.0.clone());
    match q {
        Some(q) => {
            let b = parse_bytes(&q).unwrap_or(0);
            (q, b)
        }
        None => ("0".into(), 0),
    }
}

struct Candidate {
    pod: Pod,
    /// (container, usage bytes, request text, request bytes)
    containers: Vec<(String, u64, String, u64)>,
}

impl Candidate {
    fn usage(&self) -> u64 {
        self.containers.iter().map(|c| c.1).sum()
    }
    fn request(&self) -> u64 {
        self.containers.iter().map(|c| c.3).sum()
    }
    fn priority(&self) -> i32 {
        self.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }
}

/// rankMemoryPressure: exceeding requests first, then lower priority, then more usage above
/// requests.
fn rank(candidates: &mut [Candidate]) {
    candidates.sort_by_key(|c| (c.usage() <= c.request(), c.priority(), Reverse(i128::from(c.usage()) - i128::from(c.request()))));
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

impl Kubelet {
    /// One pass of the eviction manager and the pressure conditions of the node status.
    pub(super) async fn manage_pressure(&mut self, pods: &[Pod]) -> Result<(), kube::Error> {
        let scale = self.opts.scale;
        let nodes: Api<Node> = Api::all(self.client.clone());
        let Some(node) = nodes.get_opt(NODE).await? else { return Ok(()) };
        let capacity = node.status.as_ref().and_then(|s| s.capacity.clone()).unwrap_or_default();
        let memory_capacity = capacity.get("memory").and_then(|q| parse_bytes(&q.0)).unwrap_or(u64::MAX);
        let mut candidates: Vec<Candidate> = Vec::new();
        for pod in pods.iter().filter(|p| !terminal(p) && p.metadata.deletion_timestamp.is_none()) {
            let Some(rt) = self.pods.get(&pod.uid().unwrap_or_default()) else { continue };
            let containers: Vec<(String, u64, String, u64)> = rt
                .containers
                .iter()
                .chain(rt.init.iter())
                .filter_map(|c| {
                    let usage = container::resident_bytes(c.pid()?)?;
                    let (text, bytes) = memory_request(&c.spec);
                    Some((c.spec.name.clone(), usage, text, bytes))
                })
                .collect();
            if !containers.is_empty() {
                candidates.push(Candidate { pod: pod.clone(), containers });
            }
        }
        let used: u64 = candidates.iter().map(Candidate::usage).sum();
        let available = memory_capacity.saturating_sub(used);
        let memory_met = available < MEMORY_THRESHOLD;
        let now = Instant::now();
        if memory_met {
            self.eviction.memory_met_at = Some(now);
        }
        // DiskPressure, measured every monitoring interval (walking directories is not free).
        if self.eviction.last_disk_check.is_none_or(|t| t.elapsed() >= scale.wall(MONITORING_INTERVAL)) {
            self.eviction.last_disk_check = Some(now);
            let disk_capacity = capacity.get("ephemeral-storage").and_then(|q| parse_bytes(&q.0)).unwrap_or(u64::MAX);
            let disk_used = dir_bytes(&self.opts.workdir.join("pods"));
            self.eviction.disk_met = disk_capacity.saturating_sub(disk_used) < disk_capacity / 100 * NODEFS_THRESHOLD_PERCENT;
        }
        if self.eviction.disk_met {
            self.eviction.disk_met_at = Some(now);
        }
        let transition = scale.wall(PRESSURE_TRANSITION_PERIOD);
        let memory_pressure = self.eviction.memory_met_at.is_some_and(|t| t.elapsed() < transition);
        let disk_pressure = self.eviction.disk_met_at.is_some_and(|t| t.elapsed() < transition);
        self.report_pressure(&node, memory_pressure, disk_pressure).await?;

        let due = self.eviction.last_eviction.is_none_or(|t| t.elapsed() >= scale.wall(MONITORING_INTERVAL));
        if !memory_met || !due || candidates.is_empty() {
            return Ok(());
        }
        self.eviction.last_eviction = Some(now);
        let node_ref = reference("Node", "v1", &node.metadata);
        self.events.record(&node_ref, true, "EvictionThresholdMet", "Attempting to reclaim memory").await;
        rank(&mut candidates);
        let victim = &candidates[0];
        let mut message = format!(
            "The node was low on resource: memory. Threshold quantity: {MEMORY_THRESHOLD_TEXT}, available: {}. ",
            format_bytes(available)
        );
        for (name, usage, request, request_bytes) in &victim.containers {
            if usage > request_bytes {
                message.push_str(&format!(
                    "Container {name} was using {}, request is {request}, has larger consumption of memory. ",
                    format_bytes(*usage)
                ));
            }
        }
        self.evict(&victim.pod, &message).await
    }

    /// Kills the pod's containers now (no grace period for a hard threshold) and reports it
    /// Failed/Evicted.
    async fn evict(&mut self, pod: &Pod, message: &str) -> Result<(), kube::Error> {
        let uid = pod.uid().unwrap_or_default();
        if let Some(rt) = self.pods.get_mut(&uid) {
            for c in rt.containers.iter_mut().chain(rt.init.iter_mut()) {
                c.kill();
            }
        }
        let pod_ref = reference("Pod", "v1", &pod.metadata);
        self.events.record(&pod_ref, true, "Evicted", message).await;
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let cond = |t: &str, s: &str, reason: Option<&str>, message: Option<&str>| json!({"type": t, "status": s, "reason": reason, "message": message, "lastTransitionTime": now});
        let status = json!({"status": {"phase": "Failed", "reason": "Evicted", "message": message, "conditions": [
            cond("DisruptionTarget", "True", Some("TerminationByKubelet"), Some(message)),
            cond("PodScheduled", "True", None, None),
            cond("Initialized", "True", None, None),
            cond("ContainersReady", "False", Some("ContainersNotReady"), None),
            cond("Ready", "False", Some("ContainersNotReady"), None),
        ]}});
        Api::<Pod>::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default())
            .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(status))
            .await?;
        Ok(())
    }

    /// The MemoryPressure and DiskPressure conditions, their events and their taints.
    async fn report_pressure(&self, node: &Node, memory: bool, disk: bool) -> Result<(), kube::Error> {
        let conditions = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        let is_true = |t: &str| conditions.iter().any(|c| c.type_ == t && c.status == "True");
        let was_memory = is_true("MemoryPressure");
        let was_disk = is_true("DiskPressure");
        let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let has_taint = |k: &str| taints.iter().any(|t| t.key == k);
        let taints_ok = has_taint(MEMORY_PRESSURE_TAINT) == memory && has_taint(DISK_PRESSURE_TAINT) == disk;
        if was_memory == memory && was_disk == disk && taints_ok {
            return Ok(());
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let node_ref = reference("Node", "v1", &node.metadata);
        if was_memory != memory || was_disk != disk {
            let mut updated: Vec<NodeCondition> = conditions.clone();
            for c in &mut updated {
                let (status, reason, msg) = match (c.type_.as_str(), memory, disk) {
                    ("MemoryPressure", true, _) => ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
                    ("MemoryPressure", false, _) => ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    ("DiskPressure", _, true) => ("True", "KubeletHasDiskPressure", "kubelet has disk pressure"),
                    ("DiskPressure", _, false) => ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    _ => continue,
                };
                if c.status != status {
                    c.last_transition_time = Some(now.clone());
                }
                c.status = status.into();
                c.reason = Some(reason.into());
                c.message = Some(msg.into());
                c.last_heartbeat_time = Some(now.clone());
            }
            api.patch_status(NODE, &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": updated}}))).await?;
            let status_event = |reason: &str| format!("Node {NODE} status is now: {reason}");
            if was_memory != memory {
                let reason = if memory { "NodeHasInsufficientMemory" } else { "NodeHasSufficientMemory" };
                self.events.record(&node_ref, false, reason, &status_event(reason)).await;
            }
            if was_disk != disk {
                let reason = if disk { "NodeHasDiskPressure" } else { "NodeHasNoDiskPressure" };
                self.events.record(&node_ref, false, reason, &status_event(reason)).await;
            }
        }
        if !taints_ok {
            let mut wanted: Vec<Taint> =
                taints.into_iter().filter(|t| t.key != MEMORY_PRESSURE_TAINT && t.key != DISK_PRESSURE_TAINT).collect();
            for (on, key) in [(memory, MEMORY_PRESSURE_TAINT), (disk, DISK_PRESSURE_TAINT)] {
                if on {
                    wanted.push(Taint { key: key.into(), effect: "NoSchedule".into(), time_added: Some(now.clone()), value: None });
                }
            }
            api.patch(NODE, &PatchParams::default(), &Patch::Merge(json!({"spec": {"taints": wanted}}))).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_print_as_resource_quantity_prints_them() {
        assert_eq!(format_bytes(0), "0");
        assert_eq!(format_bytes(100 * 1024 * 1024), "100Mi");
        assert_eq!(format_bytes(51_201 * 1024), "51201Ki");
        assert_eq!(format_bytes(1500), "1500");
        assert_eq!(format_bytes(64_000_000), "62500Ki", "a multiple of 1024 prints in binary units");
        assert_eq!(format_bytes(1_500_000), "1500k");
    }

    fn candidate(name: &str, usage_mib: u64, request_mib: u64, priority: i32) -> Candidate {
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"priority": priority, "containers": []}})).expect("pod");
        Candidate { pod, containers: vec![("c".into(), usage_mib << 20, format!("{request_mib}Mi"), request_mib << 20)] }
    }

    #[test]
    fn pods_over_their_requests_go_first_then_lower_priority_then_the_largest_excess() {
        let mut c = vec![
            candidate("within-requests", 500, 600, 0),
            candidate("small-excess", 60, 50, 0),
            candidate("best-effort-hog", 300, 0, 0),
            candidate("important-hog", 900, 0, 1000),
        ];
        rank(&mut c);
        let order: Vec<String> = c.iter().map(|c| c.pod.name_any()).collect();
        assert_eq!(order, ["best-effort-hog", "small-excess", "important-hog", "within-requests"]);
    }
}
