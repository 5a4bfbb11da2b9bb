//! One change per target at a time, claimed atomically on the target itself: the annotation
//! `salve.dev/claimed-by` names the Remediation that may change it, written with the
//! resourceVersion that was read as a precondition. Two Remediations (or two replicas) that read
//! the same state cannot both win: the second write is a 409 Conflict. A claim whose Remediation
//! is finished (or gone) is stale and may be taken over. The annotation stays afterwards as a
//! record of who changed the object last; it changes nothing that runs (it is on the object's
//! metadata, not the pod template).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::crd::{FIELD_MANAGER, Remediation};

pub const CLAIM_ANNOTATION: &str = "salve.dev/claimed-by";

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This Remediation holds the target.
    Held,
    /// Another Remediation, still in flight, holds it.
    Busy(String),
    /// The target does not exist (the apply reports it).
    NoTarget,
}

fn resource(kind: &str) -> Option<ApiResource> {
    Some(match kind {
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "HorizontalPodAutoscaler" => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        _ => return None,
    })
}

/// Claims `target` (`Kind/name`) for `remediation`. A lost race is a 409 Conflict error: the
/// next reconcile reads the winner's claim.
pub async fn claim(client: &Client, ns: &str, target: &str, remediation: &str) -> Result<Claim, kube::Error> {
    let Some((kind, name)) = target.split_once('/') else { return Ok(Claim::NoTarget) };
    let Some(ar) = resource(kind) else { return Ok(Claim::Held) };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let Some(obj) = api.get_opt(name).await? else { return Ok(Claim::NoTarget) };
    match obj.annotations().get(CLAIM_ANNOTATION) {
        Some(holder) if holder == remediation => return Ok(Claim::Held),
        Some(holder) => {
            let other = Api::<Remediation>::namespaced(client.clone(), ns).get_opt(holder).await?;
            if other.is_some_and(|r| !r.status.is_some_and(|s| s.phase.is_terminal())) {
                return Ok(Claim::Busy(holder.clone()));
            }
        }
        None => {}
    }
    let body = json!({"metadata": {"resourceVersion": obj.resource_version(), "annotations": {CLAIM_ANNOTATION: remediation}}});
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api.patch(name, &pp, &Patch::Merge(&body)).await?;
    Ok(Claim::Held)
}
