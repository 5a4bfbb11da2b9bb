//! Resolves an Incident's target (Deployment, StatefulSet, DaemonSet, Job, CronJob or a bare
//! Pod) into what evidence collection needs from any kind: its pod template, how to find its
//! pods, and its replica counts.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::domain::pod_template::selector_query;

/// The kinds Salve investigates.
pub const KINDS: [&str; 6] = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"];

/// How the workload's pods are found.
#[derive(Clone, Debug)]
pub enum PodsBy {
    /// A label selector (list request).
    Selector(String),
    /// Pods carrying `job-name` for one of these Jobs (a CronJob's recent runs).
    Jobs(Vec<String>),
    /// Exactly this pod.
    Name(String),
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub template: PodTemplateSpec,
    pub pods_by: PodsBy,
    pub desired: i32,
    pub ready: i32,
    pub unavailable: i32,
    /// The workload object's own labels (the policy's protected label is read from them).
    pub labels: std::collections::BTreeMap<String, String>,
    /// The Deployment itself, for its ReplicaSet revisions.
    pub deployment: Option<Deployment>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("workload {0} not found")]
    NotFound(String),
    #[error("unsupported workload kind {0} (Salve investigates {kinds})", kinds = KINDS.join(", "))]
    Unsupported(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

fn not_found(kind: &str, name: &str) -> WorkloadError {
    WorkloadError::NotFound(format!("{kind}/{name}"))
}

pub async fn resolve(client: &Client, ns: &str, kind: &str, name: &str) -> Result<Workload, WorkloadError> {
    let base = |template: PodTemplateSpec, pods_by: PodsBy, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| Workload {
        kind: kind.to_string(),
        name: name.to_string(),
        uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        template,
        pods_by,
        desired: 0,
        ready: 0,
        unavailable: 0,
        deployment: None,
    };
    Ok(match kind {
        "Deployment" => {
            let d = Api::<Deployment>::namespaced(client.clone(), ns).get_opt(name).await?.ok_or_else(|| not_found(kind, name))?;
            let st = d.status.clone().unwrap_or_default();
            let mut w = base(d.spec.template.clone(), PodsBy::Selector(selector_query(&d.spec.selector)), &d.metadata);
            w.desired = d.spec.replicas.unwrap_or(1);
            w.ready = st.ready_replicas.unwrap_or(0);
            w.unavailable = st.unavailable_replicas.unwrap_or(0);
            w.deployment = Some(d);
            w
        }
        "StatefulSet" => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), ns).get_opt(name).await?.ok_or_else(|| not_found(kind, name))?;
            let st = s.status.clone().unwrap_or_default();
            let spec = s.spec.clone();
            let mut w = base(spec.template.clone(), PodsBy::Selector(selector_query(&spec.selector)), &s.metadata);
            w.desired = spec.replicas.unwrap_or(1);
            w.ready = st.ready_replicas.unwrap_or(0);
            w.unavailable = (w.desired - w.ready).max(0);
            w
        }
        "DaemonSet" => {
            let d = Api::<DaemonSet>::namespaced(client.clone(), ns).get_opt(name).await?.ok_or_else(|| not_found(kind, name))?;
            let st = d.status.clone().unwrap_or_default();
            let spec = d.spec.clone();
            let mut w = base(spec.template.clone(), PodsBy::Selector(selector_query(&spec.selector)), &d.metadata);
            w.desired = st.desired_number_scheduled;
            w.ready = st.number_ready;
            w.unavailable = st.number_unavailable.unwrap_or(0);
            w
        }
        "Job" => {
            let j = Api::<Job>::namespaced(client.clone(), ns).get_opt(name).await?.ok_or_else(|| not_found(kind, name))?;
            let spec = j.spec.clone().unwrap_or_default();
            let st = j.status.clone().unwrap_or_default();
            // Every pod of a Job carries `job-name` (and `batch.kubernetes.io/job-name`).
            let mut w = base(spec.template.clone(), PodsBy::Jobs(vec![name.to_string()]), &j.metadata);
            w.desired = spec.parallelism.unwrap_or(1);
            w.ready = st.ready.unwrap_or(0);
            w.unavailable = st.failed.unwrap_or(0);
            w
        }
        "CronJob" => {
            let c = Api::<CronJob>::namespaced(client.clone(), ns).get_opt(name).await?.ok_or_else(|| not_found(kind, name))?;
            let uid = c.uid().unwrap_or_default();
            let mut jobs: Vec<Job> = Api::<Job>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|j| j.owner_references().iter().any(|o| o.uid == uid))
                .collect();
            jobs.sort_by_key(|j| j.creation_timestamp().map(|t| t.0));
            // The newest runs tell what is failing now.
            let names: Vec<String> = jobs.iter().rev().take(3).map(|j| j.name_any()).collect();
            let failed = jobs.iter().rev().take(3).map(|j| j.status.as_ref().and_then(|s| s.failed).unwrap_or(0)).sum();
            let template = c.spec.job_template.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
            let mut w = base(template, PodsBy::Jobs(names), &c.metadata);
            w.desired = 1;
            w.unavailable = failed;
            w
        }
        "Pod" => {
            let p = Api::<Pod>::namespaced(client.clone(), ns).get_opt(name).await?.ok_or_else(|| not_found(kind, name))?;
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let template = PodTemplateSpec { metadata: Some(p.metadata.clone()), spec: p.spec.clone() };
            let mut w = base(template, PodsBy::Name(name.to_string()), &p.metadata);
            w.desired = 1;
            w.ready = i32::from(ready);
            w.unavailable = 1 - w.ready;
            w
        }
        other => return Err(WorkloadError::Unsupported(other.to_string())),
    })
}

/// The workload's pods (at most what one list returns).
pub async fn pods(client: &Client, ns: &str, w: &Workload) -> Result<Vec<Pod>, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(match &w.pods_by {
        PodsBy::Selector(s) if s.is_empty() => Vec::new(),
        PodsBy::Selector(s) => api.list(&ListParams::default().labels(s)).await?.items,
        PodsBy::Jobs(names) if names.is_empty() => Vec::new(),
        PodsBy::Jobs(names) => api.list(&ListParams::default().labels(&format!("job-name in ({})", names.join(",")))).await?.items,
        PodsBy::Name(n) => api.get_opt(n).await?.into_iter().collect(),
    })
}
