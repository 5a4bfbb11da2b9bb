//! Reads a Deployment's health for verification: ready replicas, crash loops, restarts, and when
//! a container last started or stopped.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};

use super::evidence::selector_string;
use crate::domain::verify::WorkloadHealth;

pub async fn observe(client: &Client, ns: &str, deployment: &str) -> Result<WorkloadHealth, kube::Error> {
    let d = Api::<Deployment>::namespaced(client.clone(), ns).get(deployment).await?;
    let mut h = WorkloadHealth {
        desired: d.spec.replicas.unwrap_or(1),
        ready: d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0),
        ..Default::default()
    };
    let selector = selector_string(&d);
    if selector.is_empty() {
        return Ok(h);
    }
    for p in Api::<Pod>::namespaced(client.clone(), ns).list(&ListParams::default().labels(&selector)).await?.items {
        let cs = p.status.and_then(|s| s.container_statuses).unwrap_or_default();
        h.restarts += cs.iter().map(|c| c.restart_count).sum::<i32>();
        // When a container last started or stopped: a restart in place shows as a new
        // `running.startedAt` and the previous instance's `lastState.terminated.finishedAt`.
        let changes = cs.iter().flat_map(|c| {
            let running = c.state.as_ref().and_then(|s| s.running.as_ref()).and_then(|r| r.started_at.clone());
            let finished = c.state.as_ref().and_then(|s| s.terminated.as_ref()).and_then(|t| t.finished_at.clone());
            let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()).and_then(|t| t.finished_at.clone());
            [running, finished, last].into_iter().flatten().map(|t| t.0)
        });
        h.last_container_change = h.last_container_change.into_iter().chain(changes).max();
        let crashing = cs
            .iter()
            .any(|c| c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()) == Some("CrashLoopBackOff"));
        if crashing {
            h.crash_looping += 1;
        }
    }
    Ok(h)
}
