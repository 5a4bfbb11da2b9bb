//! One object as the controllers' caches hold it (see `Cached`).

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Annotations of ours: the only ones anything reads from a cached object.
const OUR_ANNOTATIONS: &str = "salve.dev/";

/// A cached object: its metadata (cut to what is read: no managedFields, labels, foreign
/// annotations or, for an object that parses, uid), the rest of what the kind keeps (see
/// `CachedKind::decode`) as compact JSON, decoded again when read, and the kind's summary.
///
/// Why not the typed object: a typed Incident or Remediation is about 1.2 KiB in place however
/// empty, before any of its strings; its kept parts as JSON are a few hundred bytes. The
/// controllers cache every Incident and every Remediation in the cluster, and read one of them
/// only when it changes, so the cache pays the small form and a read pays a decode of
/// microseconds.
pub struct Cached<K: CachedKind> {
    meta: ObjectMeta,
    /// `{"spec": …, "status": …}` as kept, or why the object does not parse.
    body: Result<Box<str>, String>,
    /// Kept as it is (not in `body`), so reading it decodes nothing.
    summary: Option<K::Summary>,
}

/// A kind the controllers cache.
pub trait CachedKind: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Sized {
    type Spec: Serialize + DeserializeOwned;
    type Status: Serialize + DeserializeOwned;
    /// What the cache keeps in place of a part of the status it drops, and what is read of
    /// every cached object at once (so it must not need a decode).
    type Summary: Clone;
    /// Decodes the API server's JSON into what the cache keeps of it, or keeps why it does not
    /// parse with its metadata (as `DeserializeGuard` does): one bad object never stops a watch.
    fn decode<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Result<Self, InvalidObject>, D::Error>;
    fn into_parts(self) -> Parts<Self>;
    fn from_parts(meta: ObjectMeta, spec: Self::Spec, status: Option<Self::Status>) -> Self;
}

/// An object taken apart for the cache.
pub struct Parts<K: CachedKind> {
    pub meta: ObjectMeta,
    pub spec: K::Spec,
    pub status: Option<K::Status>,
    pub summary: Option<K::Summary>,
}

#[derive(Serialize, Deserialize)]
struct Body<S, T> {
    spec: S,
    // Absent is `None` (serde's rule for an `Option` field).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<T>,
}

impl<K: CachedKind> Cached<K> {
    /// The cached object: what the kind keeps, the rest at its defaults.
    // `DeserializeGuard`'s shape, whose `Ok` side is the larger one anyway.
    #[allow(clippy::result_large_err)]
    pub fn object(&self) -> Result<K, InvalidObject> {
        self.object_and_summary().map(|(obj, _)| obj)
    }

    /// The cached object and what stands for the part of its status the cache dropped.
    #[allow(clippy::result_large_err)]
    pub fn object_and_summary(&self) -> Result<(K, Option<K::Summary>), InvalidObject> {
        let invalid = |error: String| InvalidObject { error, metadata: self.meta.clone() };
        let json = self.body.as_deref().map_err(|e| invalid(e.clone()))?;
        let body: Body<K::Spec, K::Status> = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        Ok((K::from_parts(self.meta.clone(), body.spec, body.status), self.summary.clone()))
    }

    /// The kind's summary of the object, without decoding it (`None` when it does not parse).
    pub fn summary(&self) -> Option<&K::Summary> {
        self.summary.as_ref()
    }

    pub fn guard(&self) -> DeserializeGuard<K> {
        DeserializeGuard(self.object())
    }

    /// The object as the cache keeps it (`Err` with its metadata when it does not parse).
    pub fn keep(decoded: Result<K, InvalidObject>) -> Self {
        match decoded {
            Ok(obj) => {
                let Parts { meta, spec, status, summary } = obj.into_parts();
                let body = serde_json::to_string(&Body { spec, status }).map(String::into_boxed_str).map_err(|e| e.to_string());
                let summary = summary.filter(|_| body.is_ok());
                // A reconcile that acts reads the object in full: its uid is not read from here.
                Cached { meta: ObjectMeta { uid: None, ..kept_meta(meta) }, body, summary }
            }
            // The Warning Event about it names the object by uid (as `kubectl describe` finds it).
            Err(invalid) => Cached { meta: kept_meta(invalid.metadata), body: Err(invalid.error), summary: None },
        }
    }
}

/// What is read of an object's metadata, from a cache: the rest of it is not kept.
fn kept_meta(meta: ObjectMeta) -> ObjectMeta {
    let annotations = meta
        .annotations
        .map(|a| a.into_iter().filter(|(k, _)| k.starts_with(OUR_ANNOTATIONS)).collect::<std::collections::BTreeMap<_, _>>());
    ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        generation: meta.generation,
        creation_timestamp: meta.creation_timestamp,
        deletion_timestamp: meta.deletion_timestamp,
        finalizers: meta.finalizers,
        owner_references: meta.owner_references,
        annotations: annotations.filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    }
}

impl<'de, K: CachedKind> Deserialize<'de> for Cached<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::decode(deserializer).map(Self::keep)
    }
}

impl<K: CachedKind> Clone for Cached<K> {
    fn clone(&self) -> Self {
        Cached { meta: self.meta.clone(), body: self.body.clone(), summary: self.summary.clone() }
    }
}

impl<K: CachedKind> std::fmt::Debug for Cached<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").field("meta", &self.meta).field("body", &self.body).finish()
    }
}

impl<K: CachedKind> Resource for Cached<K> {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}
