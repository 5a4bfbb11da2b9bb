//! The built-in controllers Salve's fixes go through: Deployment (ReplicaSets per pod-template
//! hash, revisions, rolling updates) and ReplicaSet (Pods with owner references). Each resyncs
//! every object on a short period instead of watching (a documented difference).

pub mod deployment;
pub mod replica_set;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Objects owned (as controller) by the object with `uid`.
pub fn owned_by(owners: Option<&Vec<OwnerReference>>, uid: &str) -> bool {
    owners.is_some_and(|o| o.iter().any(|r| r.uid == uid && r.controller == Some(true)))
}
