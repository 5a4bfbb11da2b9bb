//! What the controllers keep in memory. Their reflector stores hold every Incident and every
//! Remediation in the cluster, so each is cut down before it enters a store to what deciding
//! "is there anything to do?" needs, and kept compact (see `cached`): no managedFields, none of
//! an Incident's bulky status (see `cached_incident`), none of a Remediation's conditions or
//! rationale (see `cached_remediation`). A reconcile that acts reads the whole object first
//! (see `incident::reconcile_cached`), so what is written is always based on the full object,
//! never on a cached copy.
//!
//! Remediations are watched once: one shared reflector feeds the Remediation controller, the
//! Incident controller's "owned Remediation changed" trigger and the policy's counts.

use std::sync::{Arc, Mutex};

use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{controller, watcher};

pub use super::cached_incident::CachedIncident;
pub use super::cached_remediation::CachedRemediation;
use crate::crd::Remediation;

pub type IncidentStore = Store<CachedIncident>;
pub type RemediationStore = Store<CachedRemediation>;

/// Objects per page of an initial list (and relist): bounds what is decoded at once.
pub const PAGE_SIZE: u32 = 500;

/// Watches with paged initial lists.
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().page_size(PAGE_SIZE)
}

/// Bounded concurrency: kube-rs runs every due reconcile at once unless told otherwise, and a
/// restart makes every object due, so each would hold its task (and requests) at the same time.
pub fn controller_config(max_concurrent_reconciles: u16) -> controller::Config {
    controller::Config::default().concurrency(max_concurrent_reconciles)
}

/// The shared Remediation store, set while the controllers run (and its first list is in).
#[derive(Clone, Default)]
pub struct RemediationCache(Arc<Mutex<Option<RemediationStore>>>);

impl RemediationCache {
    pub fn set(&self, store: Option<RemediationStore>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = store;
    }

    pub fn get(&self) -> Option<RemediationStore> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The cached Remediation `ns/name`, when the store has it and it parses.
pub fn cached_remediation(store: &RemediationStore, ns: &str, name: &str) -> Option<Remediation> {
    store.get(&ObjectRef::new(name).within(ns)).and_then(|c| c.object().ok())
}

/// The hash of the cached Remediation's post-mortem record (see `post_mortem::recorded_in_step`).
pub fn cached_remediation_record(store: &RemediationStore, ns: &str, name: &str) -> Option<u64> {
    store.get(&ObjectRef::new(name).within(ns)).and_then(|c| c.summary().map(|s| s.record))
}
