//! StatefulSet controller, after pkg/controller/statefulset (stateful_set_control.go
//! `updateStatefulSet` / `processReplica`, stateful_set_utils.go, stateful_pod_control.go):
//!
//! - Pods named `<set>-<ordinal>` for ordinals 0..replicas, with a controller owner reference,
//!   the labels `controller-revision-hash` (the revision's name, `<set>-<hash>`),
//!   `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, `hostname` = the
//!   pod's name and `subdomain` = `serviceName`
//! - `OrderedReady` (default): ordinal N is created only when 0..N-1 are Running and Ready;
//!   surplus Pods are deleted from the highest ordinal, one at a time, and only while all the
//!   others are Running and Ready. `Parallel`: all created / deleted at once
//! - Failed (and Succeeded) Pods are deleted and re-created with the same name
//! - RollingUpdate: once every Pod is Running and Ready, the highest-ordinal Pod not at the
//!   update revision with ordinal >= `partition` is deleted (re-created at the update
//!   revision), one at a time; Pods below the partition are (re)created at the current
//!   revision. OnDelete: Pods take the update revision only when re-created after a deletion
//! - a ControllerRevision per template (`<set>-<hash>`, owner reference, `revision` number,
//!   the template in `data`), so Pods below a partition are re-created from the old template
//! - status: observedGeneration, replicas, readyReplicas, availableReplicas (ready; minReadySeconds
//!   is not simulated), currentReplicas, updatedReplicas, currentRevision, updateRevision;
//!   the current revision becomes the update revision once every Pod is updated and ready
//! - events `SuccessfulCreate` "create Pod x in StatefulSet y successful" and `SuccessfulDelete`
//!   "delete Pod x in StatefulSet y successful" (stateful_pod_control.go `recordPodEvent`)
//!
//! Not simulated: volumeClaimTemplates (no PersistentVolumeClaims are created; the sandbox has no
//! storage), `persistentVolumeClaimRetentionPolicy`, `ordinals.start`, `maxUnavailable` > 1,
//! revisionHistoryLimit (revisions are kept), the revision hash (a SHA-256 of the template
//! instead of the FNV hash of the ControllerRevision's data).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{controller_ref, list_owned, running_and_ready, terminal};
use crate::controllers::deployment::template_hash;
use crate::events::{Recorder, reference};

pub const REVISION_LABEL: &str = "controller-revision-hash";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub async fn sync_all(client: &Client, events: &Recorder) -> Result<(), kube::Error> {
    let sets: Api<StatefulSet> = Api::all(client.clone());
    for set in sets.list(&ListParams::default()).await?.items {
        if let Err(e) = sync(client, events, &set).await {
            tracing::debug!(set = %set.name_any(), error = %e, "statefulset sync failed; retried");
        }
    }
    Ok(())
}

/// The ordinal of `<set>-<n>`, or None for a pod that is not one of the set's names.
pub fn ordinal(set: &str, pod: &str) -> Option<usize> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

fn revision_of(p: &Pod) -> Option<&String> {
    p.metadata.labels.as_ref()?.get(REVISION_LABEL)
}

async fn sync(client: &Client, events: &Recorder, set: &StatefulSet) -> Result<(), kube::Error> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let uid = set.uid().unwrap_or_default();
    let spec = set.spec.clone();
    let desired = spec.replicas.unwrap_or(1).max(0) as usize;
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let on_delete = strategy.type_.as_deref() == Some("OnDelete");
    let partition = strategy.rolling_update.as_ref().and_then(|r| r.partition).unwrap_or(0).max(0) as usize;
    let set_ref = reference("StatefulSet", "apps/v1", &set.metadata);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let revs_api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);

    // Revisions: the update revision is the current template's; the current revision is what
    // status says (or the update revision for a new set).
    let mut revisions: Vec<ControllerRevision> = list_owned(&revs_api, &uid).await?;
    let update_revision = format!("{name}-{}", template_hash(&spec.template));
    if !revisions.iter().any(|r| r.name_any() == update_revision) {
        let next = revisions.iter().filter_map(|r| r.revision).max().unwrap_or(0) + 1;
        let mut labels = spec.selector.match_labels.clone().unwrap_or_default();
        labels.insert(REVISION_LABEL.into(), update_revision.clone());
        let rev = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(update_revision.clone()),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                owner_references: Some(vec![controller_ref("apps/v1", "StatefulSet", &name, &uid)]),
                ..Default::default()
            },
            data: RawExtension(json!({"spec": {"template": spec.template, "$patch": "replace"}})),
            revision: Some(next),
        };
        match revs_api.create(&PostParams::default(), &rev).await {
            Ok(r) => revisions.push(r),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    } else if let Some(r) = revisions.iter().find(|r| r.name_any() == update_revision)
        && r.revision.unwrap_or(0) < revisions.iter().filter_map(|r| r.revision).max().unwrap_or(0)
    {
        // A rollback to an earlier template: that revision becomes the newest again.
        let next = revisions.iter().filter_map(|r| r.revision).max().unwrap_or(0) + 1;
        revs_api.patch(&update_revision, &PatchParams::default(), &Patch::Merge(json!({"revision": next}))).await?;
    }
    let status = set.status.clone().unwrap_or_default();
    let current_revision = status.current_revision.clone().filter(|r| revisions.iter().any(|x| x.name_any() == *r));
    let current_revision = current_revision.unwrap_or_else(|| update_revision.clone());
    let template_of = |rev: &str| -> PodTemplateSpec {
        revisions
            .iter()
            .find(|r| r.name_any() == rev)
            .and_then(|r| r.data.0.pointer("/spec/template").cloned())
            .and_then(|t| serde_json::from_value(t).ok())
            .unwrap_or_else(|| spec.template.clone())
    };

    let all: Vec<Pod> = list_owned(&pods_api, &uid).await?;
    let mut slots: Vec<Option<Pod>> = vec![None; desired];
    let mut condemned: Vec<(usize, Pod)> = Vec::new();
    for p in all {
        match ordinal(&name, &p.name_any()) {
            Some(i) if i < desired => slots[i] = Some(p),
            Some(i) => condemned.push((i, p)),
            None => condemned.push((usize::MAX, p)),
        }
    }
    condemned.sort_by_key(|(i, _)| std::cmp::Reverse(*i));

    // Create missing pods and replace terminated ones, in ordinal order (processReplica).
    let mut waiting = false;
    for (i, slot) in slots.iter_mut().enumerate() {
        if let Some(p) = slot.as_ref() {
            if terminal(p) {
                // "StatefulSet is recreating failed Pod": deleted now, created on a later pass.
                delete_pod(&pods_api, events, &set_ref, &name, &p.name_any()).await;
                *slot = None;
                if !parallel {
                    waiting = true;
                    break;
                }
                continue;
            }
            if !parallel && !running_and_ready(p) {
                // "StatefulSet is waiting for Pod to be Running and Ready".
                waiting = true;
                break;
            }
            continue;
        }
        // A pod below the partition keeps the current revision (newVersionedStatefulSetPod).
        let rev = if !on_delete && i < partition { current_revision.clone() } else { update_revision.clone() };
        let template = template_of(&rev);
        let pod_name = format!("{name}-{i}");
        let mut meta = template.metadata.clone().unwrap_or_default();
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(REVISION_LABEL.into(), rev.clone());
        labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
        labels.insert(POD_INDEX_LABEL.into(), i.to_string());
        meta.name = Some(pod_name.clone());
        meta.namespace = Some(ns.clone());
        meta.owner_references = Some(vec![controller_ref("apps/v1", "StatefulSet", &name, &uid)]);
        let mut pod_spec = template.spec.clone().unwrap_or_default();
        pod_spec.hostname = Some(pod_name.clone());
        if !spec.service_name.clone().unwrap_or_default().is_empty() {
            pod_spec.subdomain = spec.service_name.clone();
        }
        let pod = Pod { metadata: meta, spec: Some(pod_spec), status: None };
        match pods_api.create(&PostParams::default(), &pod).await {
            Ok(p) => {
                events
                    .record(&set_ref, false, "SuccessfulCreate", &format!("create Pod {pod_name} in StatefulSet {name} successful"))
                    .await;
                *slot = Some(p);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => {
                events
                    .record(&set_ref, true, "FailedCreate", &format!("create Pod {pod_name} in StatefulSet {name} failed error: {e}"))
                    .await;
            }
        }
        if !parallel {
            waiting = true;
            break;
        }
    }

    // Scale down: the highest ordinal first; OrderedReady waits until the others are healthy.
    let healthy = slots.iter().all(|s| s.as_ref().is_some_and(running_and_ready));
    if !condemned.is_empty() && (parallel || (!waiting && healthy)) {
        let victims: Vec<&Pod> = if parallel { condemned.iter().map(|(_, p)| p).collect() } else { vec![&condemned[0].1] };
        for p in victims {
            if pods_api.delete(&p.name_any(), &DeleteParams::default()).await.is_ok() {
                events
                    .record(&set_ref, false, "SuccessfulDelete", &format!("delete Pod {} in StatefulSet {name} successful", p.name_any()))
                    .await;
            }
        }
        waiting = true;
    }

    // RollingUpdate: from the highest ordinal down to the partition, one pod at a time, once
    // every pod is Running and Ready.
    if !on_delete && !waiting && healthy {
        for i in (partition..desired).rev() {
            let Some(p) = &slots[i] else { continue };
            if revision_of(p) != Some(&update_revision) {
                delete_pod(&pods_api, events, &set_ref, &name, &p.name_any()).await;
                slots[i] = None;
                break;
            }
        }
    }

    let pods: Vec<&Pod> = slots.iter().flatten().chain(condemned.iter().map(|(_, p)| p)).collect();
    let ready = pods.iter().filter(|p| running_and_ready(p)).count() as i32;
    let current = pods.iter().filter(|p| revision_of(p) == Some(&current_revision)).count() as i32;
    let updated = pods.iter().filter(|p| revision_of(p) == Some(&update_revision)).count() as i32;
    let mut new_status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas: pods.len() as i32,
        ready_replicas: Some(ready),
        available_replicas: Some(ready),
        current_replicas: Some(current),
        updated_replicas: Some(updated),
        current_revision: Some(current_revision.clone()),
        update_revision: Some(update_revision.clone()),
        collision_count: Some(status.collision_count.unwrap_or(0)),
        conditions: status.conditions.clone(),
    };
    // completeRollingUpdate (RollingUpdate only): every pod updated and ready -> the update
    // revision becomes the current one.
    if !on_delete && new_status.replicas == desired as i32 && updated == new_status.replicas && ready == new_status.replicas {
        new_status.current_revision = Some(update_revision.clone());
        new_status.current_replicas = Some(updated);
    }
    if set.status.as_ref() != Some(&new_status) {
        let api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": new_status}))).await?;
    }
    Ok(())
}

/// Deletes one of the set's pods, with the controller's `SuccessfulDelete` event.
async fn delete_pod(pods_api: &Api<Pod>, events: &Recorder, set_ref: &ObjectReference, set: &str, pod: &str) {
    if pods_api.delete(pod, &DeleteParams::default()).await.is_ok() {
        events.record(set_ref, false, "SuccessfulDelete", &format!("delete Pod {pod} in StatefulSet {set} successful")).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_come_from_the_name() {
        assert_eq!(ordinal("web", "web-0"), Some(0));
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "web-x"), None);
        assert_eq!(ordinal("web", "webby-1"), None);
    }
}
