//! The finalizer that keeps an applied, unverified change from outliving its record: a
//! Remediation (and its Incident) being deleted waits until the change is undone — or a person
//! abandoned it with `kubectl salve abandon`, which the post-mortem records. Added and removed
//! with JSON patches that first test the list they change, so another controller's finalizer
//! is never lost (the pattern of kube-runtime's `finalizer` helper).

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::crd::FIELD_MANAGER;

pub const FINALIZER: &str = "salve.dev/undo-before-delete";

/// Who abandoned the object's change (set by `kubectl salve abandon`): on deletion it is left in
/// place instead of undone.
pub const ABANDONED_BY_ANNOTATION: &str = "salve.dev/abandoned-by";

pub fn has<K: Resource>(obj: &K) -> bool {
    obj.finalizers().iter().any(|f| f == FINALIZER)
}

fn json_patch(ops: Value) -> Result<json_patch::Patch, kube::Error> {
    serde_json::from_value(ops).map_err(kube::Error::SerdeError)
}

/// Adds the finalizer (once).
pub async fn add<K>(api: &Api<K>, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    if has(obj) {
        return Ok(());
    }
    let ops = match obj.meta().finalizers.as_ref() {
        None => json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                       {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]),
        Some(list) => json!([{"op": "test", "path": "/metadata/finalizers", "value": list},
                             {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]),
    };
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api.patch(&obj.name_any(), &pp, &Patch::<()>::Json(json_patch(ops)?)).await?;
    Ok(())
}

/// Removes the finalizer, keeping every other.
pub async fn remove<K>(api: &Api<K>, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    if !has(obj) {
        return Ok(());
    }
    let list = obj.finalizers().to_vec();
    let rest: Vec<&String> = list.iter().filter(|f| *f != FINALIZER).collect();
    let ops = json!([{"op": "test", "path": "/metadata/finalizers", "value": list},
                     {"op": "replace", "path": "/metadata/finalizers", "value": rest}]);
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match api.patch(&obj.name_any(), &pp, &Patch::<()>::Json(json_patch(ops)?)).await {
        // Gone already: nothing left to hold.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}
