//! ReplicaSet controller (pkg/controller/replicaset): keeps `spec.replicas` active Pods that carry
//! the template and an owner reference to the ReplicaSet; deletes surplus Pods not-ready first;
//! reports replicas, ready and available counts in status. Pods that have terminated (Failed,
//! e.g. `Evicted`, or Succeeded) do not count (`controller.FilterActivePods`): they are replaced
//! and left for the pod garbage collector, as in a cluster.

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{active, list_owned, random_suffix};
use crate::events::{Recorder, reference};

pub fn pod_ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub async fn sync_all(client: &Client, events: &Recorder) -> Result<(), kube::Error> {
    let sets: Api<ReplicaSet> = Api::all(client.clone());
    for rs in sets.list(&ListParams::default()).await?.items {
        sync(client, events, &rs).await?;
    }
    Ok(())
}

async fn sync(client: &Client, events: &Recorder, rs: &ReplicaSet) -> Result<(), kube::Error> {
    let ns = rs.namespace().unwrap_or_default();
    let uid = rs.uid().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut mine: Vec<Pod> = list_owned(&pods, &uid).await?.into_iter().filter(active).collect();
    let want = rs.spec.replicas.unwrap_or(1).max(0) as usize;
    let rs_ref = reference("ReplicaSet", "apps/v1", &rs.metadata);
    if mine.len() < want {
        let template = rs.spec.template.clone().unwrap_or_default();
        for _ in mine.len()..want {
            let name = format!("{}-{}", rs.name_any(), random_suffix());
            let mut meta = template.metadata.clone().unwrap_or_default();
            meta.name = Some(name.clone());
            meta.namespace = Some(ns.clone());
            meta.owner_references = Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: rs.name_any(),
                uid: uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]);
            let pod = Pod { metadata: ObjectMeta { ..meta }, spec: template.spec.clone(), status: None };
            if let Ok(p) = pods.create(&PostParams::default(), &pod).await {
                events.record(&rs_ref, false, "SuccessfulCreate", &format!("Created pod: {name}")).await;
                mine.push(p);
            }
        }
    } else if mine.len() > want {
        // Not-ready pods go first, then the youngest (controller.ActivePods ordering, simplified).
        mine.sort_by_key(|p| (pod_ready(p), std::cmp::Reverse(p.metadata.creation_timestamp.clone().map(|t| t.0))));
        let surplus: Vec<Pod> = mine.drain(..mine.len() - want).collect();
        for p in surplus {
            if pods.delete(&p.name_any(), &DeleteParams::default()).await.is_ok() {
                events.record(&rs_ref, false, "SuccessfulDelete", &format!("Deleted pod: {}", p.name_any())).await;
            }
        }
    }
    let ready = mine.iter().filter(|p| pod_ready(p)).count() as i32;
    let status = ReplicaSetStatus {
        replicas: mine.len() as i32,
        fully_labeled_replicas: Some(mine.len() as i32),
        ready_replicas: Some(ready),
        available_replicas: Some(ready),
        observed_generation: rs.metadata.generation,
        ..Default::default()
    };
    if rs.status.as_ref() != Some(&status) {
        let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
        api.patch_status(&rs.name_any(), &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    }
    Ok(())
}
