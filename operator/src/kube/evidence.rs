//! Collects the evidence bundle for one Deployment. Reads pods, events, ReplicaSets, the
//! ConfigMaps it mounts (never Secrets) and a few log tails. Redaction and bounding happen in
//! `domain::redact` before the bundle is stored or used.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

use super::config_history::ConfigHistory;
use crate::domain::evidence::*;

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const LOG_TAIL_PODS: usize = 3;
const LOG_TAIL_LINES: i64 = 40;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("workload {0} not found")]
    NotFound(String),
    #[error("unsupported workload kind {0} (only Deployment)")]
    Unsupported(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// `matchLabels` as a label selector string (matchExpressions are not used by our targets).
pub fn selector_string(d: &Deployment) -> String {
    d.spec
        .selector
        .match_labels
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

/// ConfigMaps a Deployment's pods read (volumes, envFrom, env valueFrom).
pub fn mounted_config_maps(d: &Deployment) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(spec) = d.spec.template.spec.as_ref() else { return out };
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            out.insert(cm.name.clone());
        }
    }
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        for ef in c.env_from.iter().flatten() {
            if let Some(r) = &ef.config_map_ref {
                out.insert(r.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(r) = e.value_from.as_ref().and_then(|vf| vf.config_map_key_ref.as_ref()) {
                out.insert(r.name.clone());
            }
        }
    }
    out
}

fn revision_of(rs: &ReplicaSet) -> Option<i64> {
    rs.annotations().get(REVISION_ANNOTATION).and_then(|r| r.parse().ok())
}

/// ReplicaSets owned by the Deployment, oldest revision first.
pub async fn owned_replica_sets(client: &Client, ns: &str, d: &Deployment) -> Result<Vec<ReplicaSet>, kube::Error> {
    let uid = d.uid().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let mut v: Vec<ReplicaSet> =
        api.list(&ListParams::default()).await?.items.into_iter().filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid)).collect();
    v.sort_by_key(|rs| revision_of(rs).unwrap_or_default());
    Ok(v)
}

pub async fn collect(
    client: &Client,
    history: &ConfigHistory,
    ns: &str,
    kind: &str,
    name: &str,
    signal: &str,
) -> Result<Evidence, EvidenceError> {
    if kind != "Deployment" {
        return Err(EvidenceError::Unsupported(kind.into()));
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = deployments.get_opt(name).await?.ok_or_else(|| EvidenceError::NotFound(format!("Deployment/{name}")))?;
    let status = d.status.clone().unwrap_or_default();
    let desired = d.spec.replicas.unwrap_or(1);
    let mut ev = Evidence {
        workload: format!("Deployment/{name}"),
        desired_replicas: desired,
        ready_replicas: status.ready_replicas.unwrap_or(0),
        unavailable_replicas: status.unavailable_replicas.unwrap_or(0),
        signal: signal.to_string(),
        ..Default::default()
    };
    for c in d.spec.template.spec.iter().flat_map(|s| s.containers.iter()) {
        ev.containers.push(ContainerEvidence {
            name: c.name.clone(),
            memory_limit: c.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get("memory")).map(|q| q.0.clone()),
            image: c.image.clone(),
        });
    }

    let replica_sets = owned_replica_sets(client, ns, &d).await?;
    let rs_revision: BTreeMap<String, i64> = replica_sets.iter().filter_map(|rs| revision_of(rs).map(|r| (rs.name_any(), r))).collect();
    for rs in &replica_sets {
        ev.rollouts.push(RolloutEvidence {
            revision: revision_of(rs).unwrap_or_default(),
            replica_set: rs.name_any(),
            images: rs
                .spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .map(|s| s.containers.iter().filter_map(|c| c.image.clone()).collect())
                .unwrap_or_default(),
            created: rs.creation_timestamp().map(|t| t.0.to_string()).unwrap_or_default(),
        });
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = selector_string(&d);
    let pod_list = if selector.is_empty() { vec![] } else { pods.list(&ListParams::default().labels(&selector)).await?.items };
    let mut pod_names = BTreeSet::new();
    for p in &pod_list {
        pod_names.insert(p.name_any());
        let st = p.status.clone().unwrap_or_default();
        let cs = st.container_statuses.unwrap_or_default();
        let waiting = cs.iter().find_map(|c| c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.clone()));
        let last_term = cs.iter().find_map(|c| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()));
        let revision = p.owner_references().iter().find_map(|o| rs_revision.get(&o.name).copied());
        ev.pods.push(PodEvidence {
            name: p.name_any(),
            phase: st.phase.unwrap_or_else(|| "Unknown".into()),
            ready: !cs.is_empty() && cs.iter().all(|c| c.ready),
            restarts: cs.iter().map(|c| c.restart_count).sum(),
            waiting_reason: waiting,
            last_termination_reason: last_term.and_then(|t| t.reason.clone()),
            last_exit_code: last_term.map(|t| t.exit_code),
            revision,
        });
    }

    let events: Api<CoreEvent> = Api::namespaced(client.clone(), ns);
    let mut evs: Vec<CoreEvent> = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_ref().is_some_and(|n| n == name || pod_names.contains(n)))
        .collect();
    evs.sort_by_key(|e| e.metadata.resource_version.as_ref().and_then(|r| r.parse::<u64>().ok()).unwrap_or_default());
    for e in evs {
        ev.events.push(EventEvidence {
            reason: e.reason.unwrap_or_default(),
            object: format!("{}/{}", e.involved_object.kind.unwrap_or_default(), e.involved_object.name.unwrap_or_default()),
            message: e.message.unwrap_or_default(),
            type_: e.type_.unwrap_or_default(),
        });
    }

    // ConfigMaps: read the current data now (so a change the watch has not delivered yet is not
    // missed), then report every change the history knows about.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for cm_name in mounted_config_maps(&d) {
        if let Some(cm) = cms.get_opt(&cm_name).await? {
            history.observe(ns, &cm_name, &cm.data.clone().unwrap_or_default(), &crate::domain::time::now_rfc3339());
        }
        ev.config_changes.extend(history.changes(ns, &cm_name));
    }

    for p in ev.pods.iter().filter(|p| !p.ready).take(LOG_TAIL_PODS) {
        let container = ev.containers.first().map(|c| c.name.clone());
        let lp = LogParams { tail_lines: Some(LOG_TAIL_LINES), container: container.clone(), ..Default::default() };
        match pods.logs(&p.name, &lp).await {
            Ok(text) if !text.is_empty() => ev.logs.push(LogTail {
                pod: p.name.clone(),
                container: container.unwrap_or_default(),
                lines: text.lines().map(String::from).collect(),
            }),
            Ok(_) => {}
            Err(e) => tracing::debug!(pod = %p.name, error = %e, "no logs"),
        }
    }
    Ok(ev)
}
