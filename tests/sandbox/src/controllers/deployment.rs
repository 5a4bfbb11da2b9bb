//! Deployment controller, after pkg/controller/deployment (sync.go, rolling.go, recreate.go,
//! progress.go):
//!
//! - one ReplicaSet per pod template, named `<deployment>-<pod-template-hash>`, the hash label
//!   on its selector and pods; a template equal to an old ReplicaSet's (a rollback) reuses it
//! - `deployment.kubernetes.io/revision` on the new ReplicaSet (max + 1) and the Deployment
//! - RollingUpdate: scale the new ReplicaSet up to `replicas + maxSurge` pods in all, scale old
//!   ones down while at least `replicas - maxUnavailable` are available (25% / 25% defaults,
//!   surge rounded up, unavailable down); Recreate: old ones to zero first
//! - old ReplicaSets beyond `revisionHistoryLimit` (10) with no replicas are deleted
//! - status: observedGeneration, replicas, updated/ready/available/unavailable, and the
//!   `Available` and `Progressing` conditions including `ProgressDeadlineExceeded`

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::list_owned;
use crate::clock::TimeScale;
use crate::events::{Recorder, reference};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const HASH_LABEL: &str = "pod-template-hash";

/// The template's hash, in the alphabet Kubernetes uses for it (no vowels, no 0/1/3).
pub fn template_hash(t: &PodTemplateSpec) -> String {
    let mut t = t.clone();
    if let Some(m) = t.metadata.as_mut() {
        if let Some(l) = m.labels.as_mut() {
            l.remove(HASH_LABEL);
        }
        if m.labels.as_ref().is_some_and(|l| l.is_empty()) {
            m.labels = None;
        }
    }
    if t.metadata.as_ref().is_some_and(|m| *m == ObjectMeta::default()) {
        t.metadata = None;
    }
    // Empty objects, lists and nulls are what defaulting and other clients' encoders (Go's
    // `"resources": {}`, `"creationTimestamp": null`) add or drop without changing the template:
    // they do not change the hash (a template copied back by `kubectl rollout undo` matches).
    let value = prune(serde_json::to_value(&t).unwrap_or_default()).unwrap_or_default();
    let digest = Sha256::digest(serde_json::to_vec(&value).unwrap_or_default());
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest.iter().take(10).map(|b| SAFE[*b as usize % SAFE.len()] as char).collect()
}

fn prune(v: serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> = m.into_iter().filter_map(|(k, v)| prune(v).map(|v| (k, v))).collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let a: Vec<Value> = a.into_iter().map(|v| prune(v).unwrap_or(Value::Null)).collect();
            (!a.is_empty()).then_some(Value::Array(a))
        }
        v => Some(v),
    }
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations().get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// An absolute number or a percentage of `total`, rounded up or down.
fn scaled(v: Option<&IntOrString>, total: i32, default_percent: i32, round_up: bool) -> i32 {
    let percent = match v {
        Some(IntOrString::Int(n)) => return *n,
        Some(IntOrString::String(s)) => s.trim_end_matches('%').parse().unwrap_or(default_percent),
        None => default_percent,
    };
    let exact = f64::from(total) * f64::from(percent) / 100.0;
    (if round_up { exact.ceil() } else { exact.floor() }) as i32
}

pub async fn sync_all(client: &Client, events: &Recorder, scale: TimeScale) -> Result<(), kube::Error> {
    let deployments: Api<Deployment> = Api::all(client.clone());
    for d in deployments.list(&ListParams::default()).await?.items {
        sync(client, events, &d, scale).await?;
    }
    Ok(())
}

async fn sync(client: &Client, events: &Recorder, d: &Deployment, scale: TimeScale) -> Result<(), kube::Error> {
    let ns = d.namespace().unwrap_or_default();
    let uid = d.uid().unwrap_or_default();
    let spec = d.spec.clone();
    let desired = spec.replicas.unwrap_or(1);
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let mut sets: Vec<ReplicaSet> = list_owned(&rs_api, &uid).await?;
    sets.sort_by_key(revision);
    let hash = template_hash(&spec.template);
    let max_revision = sets.iter().map(revision).max().unwrap_or(0);
    let dref = reference("Deployment", "apps/v1", &d.metadata);

    // The new ReplicaSet: created, or an old one with the same template (a rollback).
    let new_rs = match sets.iter().find(|r| r.labels().get(HASH_LABEL) == Some(&hash)).cloned() {
        Some(rs) if revision(&rs) == max_revision => rs,
        Some(rs) => {
            let body = json!({"metadata": {"annotations": {REVISION: (max_revision + 1).to_string()}}});
            rs_api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&body)).await?
        }
        None => {
            let mut template = spec.template.clone();
            let meta = template.metadata.get_or_insert_default();
            meta.labels.get_or_insert_default().insert(HASH_LABEL.into(), hash.clone());
            let mut selector: LabelSelector = spec.selector.clone();
            selector.match_labels.get_or_insert_default().insert(HASH_LABEL.into(), hash.clone());
            let initial = if sets.iter().all(|r| replicas(r) == 0) && sets.is_empty() { desired } else { 0 };
            let rs = ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(format!("{}-{hash}", d.name_any())),
                    namespace: Some(ns.clone()),
                    labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                    annotations: Some(BTreeMap::from([(REVISION.to_string(), (max_revision + 1).to_string())])),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "Deployment".into(),
                        name: d.name_any(),
                        uid: uid.clone(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]),
                    ..Default::default()
                },
                spec: ReplicaSetSpec {
                    replicas: Some(initial),
                    selector,
                    template: Some(template),
                    min_ready_seconds: spec.min_ready_seconds,
                },
                status: None,
            };
            let created = rs_api.create(&PostParams::default(), &rs).await?;
            // sync.go getNewReplicaSet: the event only when the new ReplicaSet starts with pods.
            if initial > 0 {
                events
                    .record(&dref, false, "ScalingReplicaSet", &format!("Scaled up replica set {} from 0 to {initial}", created.name_any()))
                    .await;
            }
            sets.push(created.clone());
            created
        }
    };
    let olds: Vec<ReplicaSet> = sets.iter().filter(|r| r.name_any() != new_rs.name_any()).cloned().collect();
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let rolling = spec.strategy.as_ref().and_then(|s| s.rolling_update.clone()).unwrap_or_default();
    let scale_to = |rs: &ReplicaSet, n: i32| {
        let (name, from) = (rs.name_any(), replicas(rs));
        let rs_api = rs_api.clone();
        let events = events.clone();
        let dref = dref.clone();
        async move {
            if from == n {
                return Ok::<(), kube::Error>(());
            }
            rs_api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": n}}))).await?;
            let verb = if n > from { "up" } else { "down" };
            events.record(&dref, false, "ScalingReplicaSet", &format!("Scaled {verb} replica set {name} from {from} to {n}")).await;
            Ok(())
        }
    };
    if recreate {
        let old_pods: i32 = olds.iter().map(|r| r.status.as_ref().map(|s| s.replicas).unwrap_or(0) + replicas(r)).sum();
        for r in &olds {
            scale_to(r, 0).await?;
        }
        if old_pods == 0 {
            scale_to(&new_rs, desired).await?;
        }
    } else {
        let surge = scaled(rolling.max_surge.as_ref(), desired, 25, true);
        let unavailable = scaled(rolling.max_unavailable.as_ref(), desired, 25, false);
        let total: i32 = sets.iter().map(replicas).sum();
        // Scale up (rolling.go reconcileNewReplicaSet / NewRSNewReplicas).
        let up_to = (replicas(&new_rs) + (desired + surge - total).max(0)).min(desired);
        if up_to > replicas(&new_rs) || replicas(&new_rs) > desired {
            scale_to(&new_rs, up_to.min(desired)).await?;
        }
        // Scale down old ones while enough stay available (reconcileOldReplicaSets).
        let all_available: i32 = sets.iter().map(available).sum();
        let mut can_remove = (all_available - (desired - unavailable)).max(0);
        // Old pods that are not available never count toward availability: remove them first.
        for r in &olds {
            let unavailable_old = (replicas(r) - available(r)).max(0);
            let remove = unavailable_old.min(replicas(r));
            if remove > 0 {
                scale_to(r, replicas(r) - remove).await?;
            }
        }
        for r in &olds {
            if can_remove == 0 {
                break;
            }
            let cut = can_remove.min(available(r).min(replicas(r)));
            if cut > 0 {
                scale_to(r, replicas(r) - cut).await?;
                can_remove -= cut;
            }
        }
    }
    // History limit: the oldest empty ReplicaSets beyond the limit go.
    let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    let empty_olds: Vec<&ReplicaSet> = olds.iter().filter(|r| replicas(r) == 0 && available(r) == 0).collect();
    if empty_olds.len() > limit {
        for r in &empty_olds[..empty_olds.len() - limit] {
            let _ = rs_api.delete(&r.name_any(), &DeleteParams::default()).await;
        }
    }
    write_status(client, d, &new_rs, &sets, desired, scale).await
}

async fn write_status(
    client: &Client,
    d: &Deployment,
    new_rs: &ReplicaSet,
    sets: &[ReplicaSet],
    desired: i32,
    scale: TimeScale,
) -> Result<(), kube::Error> {
    let spec = d.spec.clone();
    let st = |r: &ReplicaSet| r.status.clone().unwrap_or_default();
    let replicas_now: i32 = sets.iter().map(|r| st(r).replicas).sum();
    let ready: i32 = sets.iter().map(|r| st(r).ready_replicas.unwrap_or(0)).sum();
    let avail: i32 = sets.iter().map(available).sum();
    let updated = st(new_rs).replicas;
    let unavailable =
        scaled(spec.strategy.as_ref().and_then(|s| s.rolling_update.as_ref()).and_then(|r| r.max_unavailable.as_ref()), desired, 25, false);
    let complete = updated == desired && replicas_now == desired && avail == desired;
    let now = Time(Timestamp::now());
    let old = d.status.clone().unwrap_or_default();
    let old_progress = old.conditions.iter().flatten().find(|c| c.type_.as_deref() == Some("Progressing")).cloned();
    let deadline = std::time::Duration::from_secs(spec.progress_deadline_seconds.unwrap_or(600).max(0).unsigned_abs().into());
    let progressing = if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{}\" has successfully progressed.", new_rs.name_any()),
            &old_progress,
            &now,
        )
    } else {
        // Progress = a change in the counts since the last status; none for the deadline = stuck.
        let moved = old.updated_replicas != Some(updated)
            || old.available_replicas != Some(avail)
            || old.observed_generation != d.metadata.generation;
        let since = old_progress.as_ref().and_then(|c| c.last_update_time.clone()).map(|t| t.0).unwrap_or(Timestamp::now());
        let stuck = !moved && Timestamp::now().duration_since(since).unsigned_abs() > scale.wall(deadline);
        if stuck || old_progress.as_ref().is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded") && !moved) {
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{}\" has timed out progressing.", new_rs.name_any()),
                &old_progress,
                &now,
            )
        } else if moved || old_progress.is_none() {
            let mut c = condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{}\" is progressing.", new_rs.name_any()),
                &old_progress,
                &now,
            );
            c.last_update_time = Some(now.clone());
            c
        } else {
            old_progress.clone().unwrap_or_default()
        }
    };
    let old_available = old.conditions.iter().flatten().find(|c| c.type_.as_deref() == Some("Available")).cloned();
    let available_cond = if avail >= desired - unavailable {
        condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into(), &old_available, &now)
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            &old_available,
            &now,
        )
    };
    let status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(replicas_now),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(avail),
        unavailable_replicas: Some((desired - avail).max(0)),
        conditions: Some(vec![available_cond, progressing]),
        ..Default::default()
    };
    let revision = new_rs.annotations().get(REVISION).cloned().unwrap_or_default();
    let api: Api<Deployment> = Api::namespaced(client.clone(), &d.namespace().unwrap_or_default());
    if d.annotations().get(REVISION) != Some(&revision) {
        api.patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {REVISION: revision}}})))
            .await?;
    }
    if same_status(&old, &status) {
        return Ok(());
    }
    api.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    Ok(())
}

/// Equal but for condition timestamps (rewriting those alone would wake every watcher).
fn same_status(a: &DeploymentStatus, b: &DeploymentStatus) -> bool {
    let strip = |s: &DeploymentStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_update_time = None;
            c.last_transition_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    old: &Option<DeploymentCondition>,
    now: &Time,
) -> DeploymentCondition {
    let same = old.as_ref().is_some_and(|o| o.status.as_deref() == Some(status));
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: if same { old.as_ref().and_then(|o| o.last_transition_time.clone()) } else { Some(now.clone()) },
        last_update_time: if same && old.as_ref().and_then(|o| o.reason.as_deref()) == Some(reason) {
            old.as_ref().and_then(|o| o.last_update_time.clone())
        } else {
            Some(now.clone())
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down_as_documented() {
        assert_eq!(scaled(None, 10, 25, true), 3);
        assert_eq!(scaled(None, 10, 25, false), 2);
        assert_eq!(scaled(Some(&IntOrString::Int(0)), 10, 25, true), 0);
        assert_eq!(scaled(Some(&IntOrString::String("50%".into())), 3, 25, true), 2);
    }

    #[test]
    fn the_hash_ignores_its_own_label_and_follows_the_template() {
        let mut t = PodTemplateSpec::default();
        let h = template_hash(&t);
        t.metadata.get_or_insert_default().labels.get_or_insert_default().insert(HASH_LABEL.into(), h.clone());
        assert_eq!(template_hash(&t), h);
        t.metadata.get_or_insert_default().annotations = Some(BTreeMap::from([("x".to_string(), "1".to_string())]));
        assert_ne!(template_hash(&t), h);
    }
}
