//! Collects the evidence bundle for one workload (Deployment, StatefulSet, DaemonSet, Job,
//! CronJob or a bare Pod): its pod template per container, its pods with per-container state
//! and last termination, events with counts and times, ReplicaSet revisions with what each
//! changed, the ConfigMaps it reads (current values and observed changes; never Secrets, whose
//! absence is known only from the kubelet's messages), the objects around it
//! (`kube::surroundings`) and log tails of failing and ready pods, current and previous.
//! Redaction and bounding happen in `domain::redact` before the bundle is stored or used.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, ContainerStatus, Event as CoreEvent, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

use super::config_history::ConfigHistory;
use super::workload::{self, Workload, WorkloadError};
use crate::domain::evidence::*;
use crate::domain::pod_template::{containers, references, template_changes};

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const LOG_TAIL_PODS: usize = 3;
const LOG_TAIL_LINES: i64 = 40;
const MAX_CONFIG_MAPS: usize = 5;
/// Events per page when reading a namespace's Events.
const EVENTS_PAGE_SIZE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("workload {0} not found")]
    NotFound(String),
    #[error("unsupported workload kind {0}")]
    Unsupported(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

impl From<WorkloadError> for EvidenceError {
    fn from(e: WorkloadError) -> Self {
        match e {
            WorkloadError::NotFound(w) => Self::NotFound(w),
            e @ WorkloadError::Unsupported(_) => Self::Unsupported(e.to_string()),
            WorkloadError::Kube(k) => Self::Kube(k),
        }
    }
}

/// `matchLabels` as a label selector string (verification reads a Deployment's pods with it).
pub fn selector_string(d: &Deployment) -> String {
    crate::domain::pod_template::selector_query(&d.spec.selector)
}

fn revision_of(rs: &ReplicaSet) -> Option<i64> {
    rs.annotations().get(REVISION_ANNOTATION).and_then(|r| r.parse().ok())
}

/// ReplicaSets owned by the Deployment, oldest revision first. Found as the deployment
/// controller finds them: those matching the Deployment's selector (its ReplicaSets carry the
/// template's labels), then owned by it; not every ReplicaSet of the namespace.
pub async fn owned_replica_sets(client: &Client, ns: &str, d: &Deployment) -> Result<Vec<ReplicaSet>, kube::Error> {
    let uid = d.uid().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&selector_string(d));
    let mut v: Vec<ReplicaSet> =
        api.list(&lp).await?.items.into_iter().filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid)).collect();
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
    let w = workload::resolve(client, ns, kind, name).await?;
    let mut ev = Evidence {
        workload: format!("{}/{name}", w.kind),
        desired_replicas: w.desired,
        ready_replicas: w.ready,
        unavailable_replicas: w.unavailable,
        signal: signal.to_string(),
        collected_at: crate::domain::time::now_rfc3339(),
        ..Default::default()
    };
    if let Some(spec) = &w.template.spec {
        ev.containers = containers(spec);
    }

    // The ReplicaSets and the pods are read together: neither needs the other.
    let replica_sets = async {
        match &w.deployment {
            Some(d) => owned_replica_sets(client, ns, d).await,
            None => Ok(Vec::new()),
        }
    };
    let (replica_sets, pod_list) = tokio::try_join!(replica_sets, workload::pods(client, ns, &w))?;
    let mut related: BTreeSet<String> = [name.to_string()].into();
    let mut rs_revision = BTreeMap::new();
    let mut previous: Option<&ReplicaSet> = None;
    for rs in &replica_sets {
        related.insert(rs.name_any());
        if let Some(r) = revision_of(rs) {
            rs_revision.insert(rs.name_any(), r);
        }
        let template = rs.spec.template.clone().unwrap_or_default();
        let changes = previous.and_then(|p| p.spec.template.as_ref()).map(|old| template_changes(old, &template)).unwrap_or_default();
        ev.rollouts.push(RolloutEvidence {
            revision: revision_of(rs).unwrap_or_default(),
            replica_set: rs.name_any(),
            images: template.spec.as_ref().map(|s| s.containers.iter().filter_map(|c| c.image.clone()).collect()).unwrap_or_default(),
            created: rs.creation_timestamp().map(|t| t.0.to_string()).unwrap_or_default(),
            changes,
        });
        previous = Some(rs);
    }

    let mut nodes = BTreeSet::new();
    for p in &pod_list {
        related.insert(p.name_any());
        let pe = pod_evidence(p, &rs_revision);
        if let Some(n) = &pe.node {
            nodes.insert(n.clone());
        }
        ev.pods.push(pe);
    }
    ev.missing_refs.extend(missing_secrets_from_kubelet(&ev.pods));

    // The ConfigMaps, the surroundings and the log tails do not depend on each other: read
    // together, an investigation costs a few round trips' time instead of one per request.
    let (configs, around, log_tails) = tokio::join!(
        config_maps(client, history, ns, &w),
        super::surroundings::collect(client, ns, &w, &nodes),
        logs(client, ns, &ev.pods, &ev.containers),
    );
    configs?.add_to(&mut ev);
    around.add_to(&mut ev);
    ev.logs = log_tails;
    related.extend(ev.pvcs.iter().map(|p| p.name.clone()));
    related.extend(ev.hpa.iter().map(|h| h.name.clone()));
    events(client, ns, &related, &mut ev).await?;
    Ok(ev)
}

fn container_status(c: &ContainerStatus, init: bool) -> ContainerStatusEvidence {
    let s = c.state.clone().unwrap_or_default();
    let (state, reason, message, exit_code) = if let Some(w) = s.waiting {
        ("waiting", w.reason, w.message, None)
    } else if let Some(t) = s.terminated {
        ("terminated", t.reason, t.message, Some(t.exit_code))
    } else {
        ("running", None, None, None)
    };
    ContainerStatusEvidence {
        name: c.name.clone(),
        init,
        ready: c.ready,
        restarts: c.restart_count,
        state: state.to_string(),
        reason,
        message,
        exit_code,
        last_termination: c.last_state.as_ref().and_then(|l| l.terminated.as_ref()).map(|t| TerminationEvidence {
            reason: t.reason.clone().unwrap_or_default(),
            exit_code: t.exit_code,
            message: t.message.clone(),
            finished_at: t.finished_at.as_ref().map(|f| f.0.to_string()).unwrap_or_default(),
        }),
    }
}

fn pod_evidence(p: &Pod, rs_revision: &BTreeMap<String, i64>) -> PodEvidence {
    let st = p.status.clone().unwrap_or_default();
    let statuses: Vec<ContainerStatusEvidence> = st
        .init_container_statuses
        .iter()
        .flatten()
        .map(|c| container_status(c, true))
        .chain(st.container_statuses.iter().flatten().map(|c| container_status(c, false)))
        .collect();
    let main: Vec<&ContainerStatusEvidence> = statuses.iter().filter(|c| !c.init).collect();
    // The summary fields older readers know: the first waiting reason and last termination.
    let waiting = statuses.iter().find(|c| c.state == "waiting").and_then(|c| c.reason.clone());
    let last_term = statuses.iter().find_map(|c| c.last_termination.as_ref());
    PodEvidence {
        name: p.name_any(),
        phase: st.phase.clone().unwrap_or_else(|| "Unknown".into()),
        ready: !main.is_empty() && main.iter().all(|c| c.ready),
        restarts: statuses.iter().map(|c| c.restarts).sum(),
        waiting_reason: waiting,
        last_termination_reason: last_term.map(|t| t.reason.clone()),
        last_exit_code: last_term.map(|t| t.exit_code),
        revision: p.owner_references().iter().find_map(|o| rs_revision.get(&o.name).copied()),
        conditions: st
            .conditions
            .iter()
            .flatten()
            .map(|c| PodConditionEvidence {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        reason: st.reason.clone(),
        message: st.message.clone(),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        qos_class: st.qos_class.clone(),
        containers: statuses,
    }
}

/// Secrets are never read, so a missing one is known only from the kubelet's waiting message
/// (`secret "db" not found`, `couldn't find key password in Secret shop/db`).
fn missing_secrets_from_kubelet(pods: &[PodEvidence]) -> Vec<MissingRef> {
    let mut out: Vec<MissingRef> = Vec::new();
    for c in pods.iter().flat_map(|p| p.containers.iter()) {
        let Some(m) = c.message.as_deref() else { continue };
        let found = if let Some(rest) = m.split("secret \"").nth(1) {
            rest.split('"').next().map(|n| (n.to_string(), None))
        } else if let Some((key, rest)) = m.strip_prefix("couldn't find key ").and_then(|r| r.split_once(" in Secret ")) {
            Some((rest.rsplit('/').next().unwrap_or(rest).to_string(), Some(key.to_string())))
        } else {
            None
        };
        if let Some((name, key)) = found {
            let r = MissingRef { kind: "Secret".into(), name, key, container: c.name.clone(), optional: false };
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// What the ConfigMaps a workload reads say, before it joins the bundle.
#[derive(Default)]
struct ConfigFindings {
    config_maps: Vec<ConfigMapEvidence>,
    missing_refs: Vec<MissingRef>,
    changes: Vec<ConfigChange>,
}

impl ConfigFindings {
    fn add_to(self, ev: &mut Evidence) {
        ev.config_maps = self.config_maps;
        for m in self.missing_refs {
            if !ev.missing_refs.contains(&m) {
                ev.missing_refs.push(m);
            }
        }
        ev.config_changes.extend(self.changes);
    }
}

/// Current values of the ConfigMaps the template reads (read together), the changes the
/// history observed, and referenced ConfigMaps or keys that do not exist.
async fn config_maps(client: &Client, history: &ConfigHistory, ns: &str, w: &Workload) -> Result<ConfigFindings, kube::Error> {
    let mut found = ConfigFindings::default();
    let Some(spec) = &w.template.spec else { return Ok(found) };
    let refs = references(spec);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let names: BTreeSet<&str> = refs.iter().filter(|r| r.kind == "ConfigMap").map(|r| r.name.as_str()).collect();
    let read = futures::future::try_join_all(names.iter().map(|name| cms.get_opt(name))).await?;
    for (cm_name, cm) in names.into_iter().zip(read) {
        if let Some(cm) = &cm {
            // Read now, so a change the watch has not delivered yet is not missed.
            history.observe(ns, cm_name, &cm.data.clone().unwrap_or_default(), &crate::domain::time::now_rfc3339());
            if found.config_maps.len() < MAX_CONFIG_MAPS {
                let used_as: BTreeSet<String> =
                    refs.iter().filter(|r| r.kind == "ConfigMap" && r.name == cm_name).map(|r| r.used_as.to_string()).collect();
                found.config_maps.push(ConfigMapEvidence {
                    name: cm_name.to_string(),
                    data: cm.data.clone().unwrap_or_default(),
                    used_as: used_as.into_iter().collect(),
                });
            }
        }
        for r in refs.iter().filter(|r| r.kind == "ConfigMap" && r.name == cm_name) {
            let missing = match (&cm, &r.key) {
                (None, _) => true,
                (Some(cm), Some(k)) => !cm.data.as_ref().is_some_and(|d| d.contains_key(k)),
                (Some(_), None) => false,
            };
            if missing {
                let m = MissingRef {
                    kind: "ConfigMap".into(),
                    name: r.name.clone(),
                    key: if cm.is_some() { r.key.clone() } else { None },
                    container: r.container.clone(),
                    optional: r.optional,
                };
                if !found.missing_refs.contains(&m) {
                    found.missing_refs.push(m);
                }
            }
        }
        found.changes.extend(history.changes(ns, cm_name));
    }
    Ok(found)
}

async fn events(client: &Client, ns: &str, related: &BTreeSet<String>, ev: &mut Evidence) -> Result<(), kube::Error> {
    // A busy namespace holds thousands of Events (the API server keeps them an hour), most about
    // other objects: read them a page at a time, keeping only the related ones, so an incident
    // never holds the whole list at once. (A field selector takes one name per request, and
    // `related` names every pod of the workload.)
    let api: Api<CoreEvent> = Api::namespaced(client.clone(), ns);
    let mut evs: Vec<CoreEvent> = Vec::new();
    let mut lp = ListParams::default().limit(EVENTS_PAGE_SIZE);
    loop {
        let page = api.list(&lp).await?;
        evs.extend(page.items.into_iter().filter(|e| e.involved_object.name.as_ref().is_some_and(|n| related.contains(n))));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    evs.sort_by_key(|e| e.metadata.resource_version.as_ref().and_then(|r| r.parse::<u64>().ok()).unwrap_or_default());
    for e in evs {
        let first = e.first_timestamp.as_ref().map(|t| t.0.to_string()).or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()));
        let last = e
            .series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0.to_string()))
            .or_else(|| e.last_timestamp.as_ref().map(|t| t.0.to_string()))
            .or_else(|| first.clone());
        ev.events.push(EventEvidence {
            reason: e.reason.unwrap_or_default(),
            object: format!("{}/{}", e.involved_object.kind.unwrap_or_default(), e.involved_object.name.unwrap_or_default()),
            message: e.message.unwrap_or_default(),
            type_: e.type_.unwrap_or_default(),
            count: e.count.or_else(|| e.series.as_ref().and_then(|s| s.count)),
            first_seen: first.unwrap_or_default(),
            last_seen: last.unwrap_or_default(),
        });
    }
    Ok(())
}

/// Log tails: the failing container of up to three unready pods (current and, after a restart,
/// previous), and one ready pod, because errors in healthy pods right after a rollout or from a
/// failing dependency are evidence too. Read together; a pod without logs is skipped.
async fn logs(client: &Client, ns: &str, pods: &[PodEvidence], containers: &[ContainerEvidence]) -> Vec<LogTail> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let first_main = containers.iter().find(|c| !c.init).map(|c| c.name.clone());
    let unready = pods.iter().filter(|p| !p.ready).take(LOG_TAIL_PODS);
    let ready = pods.iter().filter(|p| p.ready).take(1);
    let mut wanted = Vec::new();
    for p in unready.chain(ready) {
        // The container that is failing (restarting, waiting), else the first main container.
        let failing = p.containers.iter().find(|c| c.restarts > 0 || c.state == "waiting" || c.state == "terminated");
        let container = failing.map(|c| c.name.clone()).or_else(|| first_main.clone());
        let restarted = failing.is_some_and(|c| c.restarts > 0) || (p.containers.is_empty() && p.restarts > 0);
        wanted.push((p.name.clone(), container.clone(), false, p.ready));
        if restarted {
            wanted.push((p.name.clone(), container, true, p.ready));
        }
    }
    let reads = futures::future::join_all(wanted.iter().map(|(pod, container, previous, _)| {
        let lp = LogParams { tail_lines: Some(LOG_TAIL_LINES), container: container.clone(), previous: *previous, ..Default::default() };
        let api = api.clone();
        async move { api.logs(pod, &lp).await }
    }))
    .await;
    let mut tails = Vec::new();
    for ((pod, container, previous, ready), read) in wanted.into_iter().zip(reads) {
        match read {
            Ok(text) if !text.is_empty() => tails.push(LogTail {
                pod,
                container: container.unwrap_or_default(),
                lines: text.lines().map(String::from).collect(),
                previous,
                pod_ready: Some(ready),
            }),
            Ok(_) => {}
            Err(e) => tracing::debug!(pod = %pod, previous, error = %e, "no logs"),
        }
    }
    tails
}
