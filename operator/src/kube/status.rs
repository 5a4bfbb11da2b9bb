//! Status writes: server-side apply on the status subresource with the ONE field manager.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::crd::FIELD_MANAGER;

/// Applies `status` to the object's status subresource. `force` because the operator is the
/// only writer of status and must win over stale managers (e.g. after a rename).
pub async fn apply_status<K, S>(api: &Api<K>, obj: &K, status: &S) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    apply(api, obj, status, None).await
}

/// Like `apply_status`, on condition that the object is still at the resourceVersion `obj` was
/// read at: a phase is advanced only from the state it was decided on. Anyone else's write in
/// between (a newer leader's, the intake's OK, a person's approval) makes it a 409 Conflict,
/// and the next reconcile decides again on what is there now. The API server treats a
/// resourceVersion in a patch body as this precondition, for apply patches too
/// (https://kubernetes.io/docs/reference/using-api/server-side-apply/#using-server-side-apply-in-a-controller).
pub async fn advance_status<K, S>(api: &Api<K>, obj: &K, status: &S) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    apply(api, obj, status, obj.resource_version()).await
}

async fn apply<K, S>(api: &Api<K>, obj: &K, status: &S, resource_version: Option<String>) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let mut metadata = json!({"name": obj.name_any()});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = rv.into();
    }
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": metadata,
        "status": status,
    });
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body)).await
}
