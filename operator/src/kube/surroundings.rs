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

fn note<T>(notes: &mut Vec<String>, what: &str, r: Result<T, kube::Error>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            notes.push(format!("{what}: not collected ({e})"));
            None
        }
    }
}

pub async fn collect(client: &Client, ns: &str, w: &Workload, pod_nodes: &BTreeSet<String>, ev: &mut Evidence) {
    let labels = w.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let mut notes = Vec::new();
    services(client, ns, &labels, ev, &mut notes).await;
    if let Some(list) = note(
        &mut notes,
        "HorizontalPodAutoscalers",
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns).list(&ListParams::default()).await,
    ) {
        ev.hpa = list.items.into_iter().find(|h| h.spec.scale_target_ref.kind == w.kind && h.spec.scale_target_ref.name == w.name).map(hpa);
    }
    pvcs(client, ns, w, ev, &mut notes).await;
    if let Some(list) =
        note(&mut notes, "ResourceQuotas", Api::<ResourceQuota>::namespaced(client.clone(), ns).list(&ListParams::default()).await)
    {
        ev.quotas = list.items.iter().take(MAX_QUOTAS).map(quota).collect();
    }
    let sa_name = w.template.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
    if let Some(sa) = note(&mut notes, "ServiceAccount", Api::<ServiceAccount>::namespaced(client.clone(), ns).get_opt(&sa_name).await) {
        ev.service_account = Some(ServiceAccountEvidence {
            name: sa_name.clone(),
            exists: sa.is_some(),
            role_arn: sa.as_ref().and_then(|s| s.annotations().get(IRSA_ANNOTATION).cloned()),
        });
    }
    if let Some(list) =
        note(&mut notes, "NetworkPolicies", Api::<NetworkPolicy>::namespaced(client.clone(), ns).list(&ListParams::default()).await)
    {
        ev.network_policies = list
            .items
            .iter()
            .filter(|p| p.spec.as_ref().is_some_and(|s| selects(&s.pod_selector.clone().unwrap_or_default(), &labels)))
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
            .collect();
    }
    let nodes: Api<Node> = Api::all(client.clone());
    for n in pod_nodes.iter().take(MAX_NODES) {
        if let Some(Some(node)) = note(&mut notes, "Nodes", nodes.get_opt(n).await) {
            ev.nodes.push(node_evidence(&node));
        }
    }
    ev.notes.extend(notes);
}

async fn services(client: &Client, ns: &str, labels: &BTreeMap<String, String>, ev: &mut Evidence, notes: &mut Vec<String>) {
    let Some(list) = note(notes, "Services", Api::<Service>::namespaced(client.clone(), ns).list(&ListParams::default()).await) else {
        return;
    };
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    for svc in list.items.iter().take(50) {
        // A Service selects the workload when its (non-empty) selector matches the pod labels.
        let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()).filter(|s| !s.is_empty()) else { continue };
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            continue;
        }
        let mut s = ServiceEvidence { name: svc.name_any(), ..Default::default() };
        let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={}", s.name));
        if let Some(found) = note(notes, "EndpointSlices", slices.list(&lp).await) {
            for e in found.items.iter().flat_map(|sl| sl.endpoints.iter().flatten()) {
                if e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                    s.ready_endpoints += 1;
                } else {
                    s.not_ready_endpoints += 1;
                }
            }
        }
        ev.services.push(s);
        if ev.services.len() >= MAX_SERVICES {
            break;
        }
    }
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

async fn pvcs(client: &Client, ns: &str, w: &Workload, ev: &mut Evidence, notes: &mut Vec<String>) {
    let claims: BTreeSet<String> = w
        .template
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|p| p.claim_name.clone()))
        .collect();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let want_sts = w.kind == "StatefulSet";
    if claims.is_empty() && !want_sts {
        return;
    }
    let Some(list) = note(notes, "PersistentVolumeClaims", api.list(&ListParams::default()).await) else { return };
    // A StatefulSet's claims are named `<template>-<statefulset>-<ordinal>`.
    let sts_infix = format!("-{}-", w.name);
    for p in list.items.iter().filter(|p| claims.contains(&p.name_any()) || (want_sts && p.name_any().contains(&sts_infix))).take(10) {
        ev.pvcs.push(PvcEvidence {
            name: p.name_any(),
            phase: p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default(),
            storage_class: p.spec.as_ref().and_then(|s| s.storage_class_name.clone()),
            capacity: p.status.as_ref().and_then(|s| s.capacity.as_ref()).and_then(|c| c.get("storage")).map(|q| q.0.clone()),
        });
    }
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
