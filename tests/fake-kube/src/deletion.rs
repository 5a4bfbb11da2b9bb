//! `DeleteOptions`: propagation policy, preconditions and dry run, as the API server reads them
//! (apimachinery/pkg/apis/meta/v1 DeleteOptions; apiserver/pkg/registry/generic/registry/store.go
//! `Delete` and `deletionFinalizersForGarbageCollection`). The garbage collector's part (deleting
//! or orphaning dependents, removing `foregroundDeletion`) is done by the store at once instead
//! of by a controller a moment later.

use serde_json::Value;

use crate::registry::ResourceType;
use crate::store::StoreError;

/// The finalizer an owner carries while its blocking dependents are deleted first.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Owner removed at once, dependents deleted afterwards (the default for every type the
    /// fake serves).
    #[default]
    Background,
    /// Owner kept with `deletionTimestamp` + `foregroundDeletion` until the dependents with
    /// `blockOwnerDeletion: true` are gone.
    Foreground,
    /// Dependents keep living; their ownerReferences to the owner are removed.
    Orphan,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Propagation,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From the request body (kube-rs sends `DeleteOptions` there) and the query string
    /// (kubectl sends `propagationPolicy`, `dryRun` as parameters). Unknown policies are a 422.
    pub fn parse(body: &Value, query_policy: Option<&str>, query_dry_run: bool) -> Result<Self, StoreError> {
        let policy = body.get("propagationPolicy").and_then(Value::as_str).or(query_policy);
        let orphan_flag = body.get("orphanDependents").and_then(Value::as_bool);
        let propagation = match (policy, orphan_flag) {
            (Some("Background"), _) => Propagation::Background,
            (Some("Foreground"), _) => Propagation::Foreground,
            (Some("Orphan"), _) => Propagation::Orphan,
            (Some(other), _) => {
                return Err(StoreError::Invalid(format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                )));
            }
            (None, Some(true)) => Propagation::Orphan,
            (None, _) => Propagation::Background,
        };
        let pre = body.get("preconditions");
        let s = |k: &str| pre.and_then(|p| p.get(k)).and_then(Value::as_str).filter(|v| !v.is_empty()).map(String::from);
        let dry_run = query_dry_run || body.get("dryRun").and_then(Value::as_array).is_some_and(|d| !d.is_empty());
        Ok(Self { propagation, uid: s("uid"), resource_version: s("resourceVersion"), dry_run })
    }
}

/// `Preconditions.Check` of apimachinery: a mismatch is a 409 Conflict.
pub fn check_preconditions(rt: &ResourceType, name: &str, obj: &Value, opts: &DeleteOptions) -> Result<(), StoreError> {
    let meta = |k: &str| obj.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or_default().to_string();
    let resource = if rt.group.is_empty() { rt.plural.clone() } else { format!("{}.{}", rt.plural, rt.group) };
    let fail = |what: &str, want: &str, have: &str| {
        StoreError::Conflict(format!(
            "Operation cannot be fulfilled on {resource} \"{name}\": Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"
        ))
    };
    if let Some(uid) = &opts.uid
        && *uid != meta("uid")
    {
        return Err(fail("UID", uid, &meta("uid")));
    }
    if let Some(rv) = &opts.resource_version
        && *rv != meta("resourceVersion")
    {
        return Err(fail("ResourceVersion", rv, &meta("resourceVersion")));
    }
    Ok(())
}

/// The ownerReference of `obj` that points at `uid`, if any.
pub fn owner_ref<'a>(obj: &'a Value, uid: &str) -> Option<&'a Value> {
    obj.pointer("/metadata/ownerReferences").and_then(Value::as_array)?.iter().find(|r| r["uid"].as_str() == Some(uid))
}

pub fn blocks_owner_deletion(owner_ref: &Value) -> bool {
    owner_ref.get("blockOwnerDeletion").and_then(Value::as_bool).unwrap_or(false)
}
