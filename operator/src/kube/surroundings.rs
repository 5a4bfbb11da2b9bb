//! Evidence about the objects around a workload: the Services that select its pods and their
//! ready endpoints, its HPA, its PVCs, the namespace's quotas, its ServiceAccount (IRSA role),
//! NetworkPolicies selecting its pods, and the conditions of the nodes its pods run on.
//!
//! Each read is optional: a missing permission or an API the cluster does not serve becomes a
//! note in the bundle, never a failed investigation (older installs lack some of these rules).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::workload::Workload;
use crate::domain::evidence::*;
use crate::domain::pod_template::selects;

const MAX_SERVICES: usize = 5;
const MAX_NODES: usize = 5;
const MAX_POLICIES: usize = 5;
const MAX_QUOTAS: usize = 5;
pub const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// One read's result and the notes about what it could not read.
type Found<T> = (T, Vec<String>);

fn note<T>(notes: &mut Vec<String>, what: &str, r: Result<T, kube::Error>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            notes.push(format!("{what}: not collected ({e})"));
            None
        }
    }
}

/// Keeps a read's notes, returns its value.
fn keep<T>(notes: &mut Vec<String>, (value, found): Found<T>) -> T {
    notes.extend(found);
    value
}

/// What was read around a workload, before it joins the bundle.
pub struct Surroundings {
    services: Vec<ServiceEvidence>,
    hpa: Option<HpaEvidence>,
    pvcs: Vec<PvcEvidence>,
    quotas: Vec<QuotaEvidence>,
    service_account: Option<ServiceAccountEvidence>,
    network_policies: Vec<NetworkPolicyEvidence>,
    nodes: Vec<NodeEvidence>,
    notes: Vec<String>,
}

impl Surroundings {
    pub fn add_to(self, ev: &mut Evidence) {
        ev.services = self.services;
        ev.hpa = self.hpa;
        ev.pvcs = self.pvcs;
        ev.quotas = self.quotas;
        ev.service_account = self.service_account;
        ev.network_policies = self.network_policies;
        ev.nodes = self.nodes;
        ev.notes.extend(self.notes);
    }
}

/// Reads the surroundings. The reads do not depend on each other, so they run concurrently:
/// against a real API server each is a round trip of its own. Notes keep a fixed order
/// whatever answers first.
pub async fn collect(client: &Client, ns: &str, w: &Workload, pod_nodes: &BTreeSet<String>) -> Surroundings {
    let labels = w.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let (services, hpa, pvcs, quotas, service_account, network_policies, nodes) = tokio::join!(
        services(client, ns, &labels),
        hpa_of(client, ns, w),
        pvcs(client, ns, w),
        quotas(client, ns),
        service_account(client, ns, w),
        network_policies(client, ns, &labels),
        nodes(client, pod_nodes),
    );
    let mut notes = Vec::new();
    Surroundings {
        services: keep(&mut notes, services),
        hpa: keep(&mut notes, hpa),
        pvcs: keep(&mut notes, pvcs),
        quotas: keep(&mut notes, quotas),
        service_account: keep(&mut notes, service_account),
        network_policies: keep(&mut notes, network_policies),
        nodes: keep(&mut notes, nodes),
        notes,
    }
}

async fn hpa_of(client: &Client, ns: &str, w: &Workload) -> Found<Option<HpaEvidence>> {
    let mut notes = Vec::new();
    let list = note(
        &mut notes,
        "HorizontalPodAutoscalers",
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns).list(&ListParams::default()).await,
    );
    let found =
        list.and_then(|l| l.items.into_iter().find(|h| h.spec.scale_target_ref.kind == w.kind && h.spec.scale_target_ref.name == w.name));
    (found.map(hpa), notes)
}

async fn quotas(client: &Client, ns: &str) -> Found<Vec<QuotaEvidence>> {
    let mut notes = Vec::new();
    let list = note(&mut notes, "ResourceQuotas", Api::<ResourceQuota>::namespaced(client.clone(), ns).list(&ListParams::default()).await);
    (list.map(|l| l.items.iter().take(MAX_QUOTAS).map(quota).collect()).unwrap_or_default(), notes)
}

async fn service_account(client: &Client, ns: &str, w: &Workload) -> Found<Option<ServiceAccountEvidence>> {
    let mut notes = Vec::new();
    let name = w.template.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
    let found = note(&mut notes, "ServiceAccount", Api::<ServiceAccount>::namespaced(client.clone(), ns).get_opt(&name).await);
    let evidence = found.map(|sa| ServiceAccountEvidence {
        exists: sa.is_some(),
        role_arn: sa.as_ref().and_then(|s| s.annotations().get(IRSA_ANNOTATION).cloned()),
        name,
    });
    (evidence, notes)
}

async fn network_policies(client: &Client, ns: &str, labels: &BTreeMap<String, String>) -> Found<Vec<NetworkPolicyEvidence>> {
    let mut notes = Vec::new();
    let list = note(&mut notes, "NetworkPolicies", Api::<NetworkPolicy>::namespaced(client.clone(), ns).list(&ListParams::default()).await);
    let selecting = list.map(|l| {
        l.items
            .iter()
            .filter(|p| p.spec.as_ref().is_some_and(|s| selects(&s.pod_selector.clone().unwrap_or_default(), labels)))
            .take(MAX_POLICIES)
            .map(|p| {
                let s = p.spec.clone().unwrap_or_default();
                NetworkPolicyEvidence {
                    name: p.name_any(),
                    policy_types: s.policy_types.clone().unwrap_or_default(),
                    ingress_rules: s.ingress.as_ref().map_or(0, Vec::len),
                    egress_rules: s.egress.as_ref().map_or(0, Vec::len),
                }
            })
            .collect()
    });
    (selecting.unwrap_or_default(), notes)
}

/// The nodes the pods run on, read together.
async fn nodes(client: &Client, pod_nodes: &BTreeSet<String>) -> Found<Vec<NodeEvidence>> {
    let api: Api<Node> = Api::all(client.clone());
    let reads = futures::future::join_all(pod_nodes.iter().take(MAX_NODES).map(|n| api.get_opt(n))).await;
    let mut notes = Vec::new();
    let nodes = reads.into_iter().filter_map(|r| note(&mut notes, "Nodes", r).flatten()).map(|n| node_evidence(&n)).collect();
    (nodes, notes)
}

/// The Services selecting the workload's pods, with their endpoints' readiness (the
/// EndpointSlices of the matching Services read together).
async fn services(client: &Client, ns: &str, labels: &BTreeMap<String, String>) -> Found<Vec<ServiceEvidence>> {
    let mut notes = Vec::new();
    let Some(list) = note(&mut notes, "Services", Api::<Service>::namespaced(client.clone(), ns).list(&ListParams::default()).await) else {
        return (Vec::new(), notes);
    };
    // A Service selects the workload when its (non-empty) selector matches the pod labels.
    let matching: Vec<String> = list
        .items
        .iter()
        .take(50)
        .filter(|svc| {
            svc.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
        .take(MAX_SERVICES)
        .map(|svc| svc.name_any())
        .collect();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let reads = futures::future::join_all(matching.iter().map(|name| {
        let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={name}"));
        let slices = slices.clone();
        async move { slices.list(&lp).await }
    }))
    .await;
    let mut services = Vec::new();
    for (name, read) in matching.into_iter().zip(reads) {
        let mut s = ServiceEvidence { name, ..Default::default() };
        if let Some(found) = note(&mut notes, "EndpointSlices", read) {
            for e in found.items.iter().flat_map(|sl| sl.endpoints.iter().flatten()) {
                if e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                    s.ready_endpoints += 1;
                } else {
                    s.not_ready_endpoints += 1;
                }
            }
        }
        services.push(s);
    }
    (services, notes)
}

fn hpa(h: HorizontalPodAutoscaler) -> HpaEvidence {
    let spec = h.spec.clone();
    let st = h.status.clone().unwrap_or_default();
    HpaEvidence {
        name: h.name_any(),
        min_replicas: spec.min_replicas.unwrap_or(1),
        max_replicas: spec.max_replicas,
        current_replicas: st.current_replicas.unwrap_or(0),
        desired_replicas: st.desired_replicas,
        conditions: st
            .conditions
            .iter()
            .flatten()
            .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or("")))
            .collect(),
    }
}

async fn pvcs(client: &Client, ns: &str, w: &Workload) -> Found<Vec<PvcEvidence>> {
    let claims: BTreeSet<String> = w
        .template
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|p| p.claim_name.clone()))
        .collect();
    let want_sts = w.kind == "StatefulSet";
    let mut notes = Vec::new();
    if claims.is_empty() && !want_sts {
        return (Vec::new(), notes);
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let Some(list) = note(&mut notes, "PersistentVolumeClaims", api.list(&ListParams::default()).await) else { return (Vec::new(), notes) };
    // A StatefulSet's claims are named `<template>-<statefulset>-<ordinal>`.
    let sts_infix = format!("-{}-", w.name);
    let found = list
        .items
        .iter()
        .filter(|p| claims.contains(&p.name_any()) || (want_sts && p.name_any().contains(&sts_infix)))
        .take(10)
        .map(|p| PvcEvidence {
            name: p.name_any(),
            phase: p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default(),
            storage_class: p.spec.as_ref().and_then(|s| s.storage_class_name.clone()),
            capacity: p.status.as_ref().and_then(|s| s.capacity.as_ref()).and_then(|c| c.get("storage")).map(|q| q.0.clone()),
        })
        .collect();
    (found, notes)
}

fn quota(q: &ResourceQuota) -> QuotaEvidence {
    let m = |x: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
        x.map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()).unwrap_or_default()
    };
    let st = q.status.clone().unwrap_or_default();
    QuotaEvidence { name: format!("ResourceQuota/{}", q.name_any()), hard: m(st.hard.as_ref()), used: m(st.used.as_ref()) }
}

/// Conditions away from their healthy state: `Ready` not True, pressure conditions True.
fn node_evidence(n: &Node) -> NodeEvidence {
    let st = n.status.clone().unwrap_or_default();
    let spec = n.spec.clone().unwrap_or_default();
    NodeEvidence {
        name: n.name_any(),
        conditions: st
            .conditions
            .iter()
            .flatten()
            .filter(|c| if c.type_ == "Ready" { c.status != "True" } else { c.status == "True" })
            .map(|c| format!("{}={}", c.type_, c.status))
            .collect(),
        unschedulable: spec.unschedulable.unwrap_or(false),
        taints: spec
            .taints
            .iter()
            .flatten()
            .map(|t| format!("{}{}:{}", t.key, t.value.as_deref().map(|v| format!("={v}")).unwrap_or_default(), t.effect))
            .collect(),
    }
}
