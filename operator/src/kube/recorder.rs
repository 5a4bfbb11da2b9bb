//! Publishes Kubernetes Events (events.k8s.io/v1) the way kube-runtime's `Recorder` and
//! client-go's event recorder do: the first Event is created, and the same Event again (same
//! type, reason and action, about the same object, from the same reporter) within six minutes
//! becomes a series on it (`series.count`, `series.lastObservedTime`) instead of a new object.
//! See https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/ and
//! kube-runtime 5.0.0, `src/events.rs`.
//!
//! Why not kube-runtime's `Recorder`: it remembers every Event it published, as the full object,
//! in a `HashMap` that it filters with `retain` on every publish and never shrinks. An incident
//! storm's Events (about 1.6 KiB of table space each; 1.5 MB after 150 incidents in
//! `salve-sandbox bench`) stayed allocated for the life of the process, and every publish scanned
//! them all under a write lock. This one remembers, per recent Event, only where it lives and
//! how often it was seen, at most [`MAX_REMEMBERED`] of them, and gives the table back when it
//! empties.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// How long a repeat joins the earlier Event's series (as kube-runtime and client-go).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// Most recent Events remembered. Beyond it (a storm of distinct Events within the window) the
/// oldest are forgotten first; a repeat of a forgotten Event is published as a new Event.
pub const MAX_REMEMBERED: usize = 4096;

/// Where a recently published Event lives, and how often it was seen.
struct Remembered {
    namespace: String,
    name: String,
    count: i32,
    last_seen: Timestamp,
}

/// The recently published Events, by [`Recorder::key`].
#[derive(Default)]
struct Recent {
    events: HashMap<u64, Remembered>,
    /// When to next forget what is out of the window, so that a table grown by a storm shrinks
    /// back once it is over.
    next_sweep: Option<Timestamp>,
}

impl Recent {
    fn forget_expired(&mut self, now: Timestamp) {
        self.events.retain(|_, r| r.last_seen + SERIES_WINDOW > now);
        self.events.shrink_to(2 * self.events.len());
        self.next_sweep = Some(now + SERIES_WINDOW);
    }
}

#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    reporter: Reporter,
    recent: Arc<Mutex<Recent>>,
}

impl Recorder {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self { client, reporter, recent: Arc::default() }
    }

    pub async fn publish(&self, ev: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = self.key(ev, regarding);
        let repeat = self.remembered(key, now);
        if let Some((namespace, name, count)) = repeat {
            let series = serde_json::json!({ "series": EventSeries { count, last_observed_time: MicroTime(now) } });
            let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&series)).await {
                Ok(_) => {
                    self.remember(key, Remembered { namespace, name, count, last_seen: now });
                    return Ok(());
                }
                // Events expire on the server (an hour by default), or someone deleted it.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.new_event(ev, regarding, now);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        let created = api.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.remember(key, Remembered { namespace, name, count: 1, last_seen: now });
        Ok(())
    }

    /// The earlier Event this one repeats, with the count it reaches now; `None` when there is
    /// none, or it was last seen longer than the window ago (the next sweep forgets it).
    fn remembered(&self, key: u64, now: Timestamp) -> Option<(String, String, i32)> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let seen = recent.events.get(&key).filter(|r| r.last_seen + SERIES_WINDOW > now)?;
        Some((seen.namespace.clone(), seen.name.clone(), seen.count.saturating_add(1)))
    }

    fn remember(&self, key: u64, event: Remembered) {
        let now = event.last_seen;
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let full = recent.events.len() >= MAX_REMEMBERED && !recent.events.contains_key(&key);
        if full || recent.next_sweep.is_none_or(|at| now >= at) {
            recent.forget_expired(now);
        }
        while recent.events.len() >= MAX_REMEMBERED && !recent.events.contains_key(&key) {
            let Some(oldest) = recent.events.iter().min_by_key(|(_, r)| r.last_seen).map(|(k, _)| *k) else { break };
            recent.events.remove(&oldest);
        }
        recent.events.insert(key, event);
    }

    /// How many Events are remembered now (for tests).
    pub fn remembered_count(&self) -> usize {
        self.recent.lock().unwrap_or_else(|p| p.into_inner()).events.len()
    }

    /// What makes two Events the same one (kube-runtime's `EventKey`), hashed: the table keeps
    /// eight bytes per Event instead of the reference's strings.
    fn key(&self, ev: &Event, regarding: &ObjectReference) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        matches!(ev.type_, EventType::Warning).hash(&mut h);
        (&ev.action, &ev.reason, &self.reporter.controller, &self.reporter.instance).hash(&mut h);
        for r in std::iter::once(regarding).chain(ev.secondary.as_ref()) {
            (&r.api_version, &r.kind, &r.namespace, &r.name, &r.uid).hash(&mut h);
        }
        h.finish()
    }

    fn new_event(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let controller = &self.reporter.controller;
        K8sEvent {
            metadata: ObjectMeta {
                // Cluster-scoped objects' Events go to "default", as kubectl looks for them there.
                namespace: Some(regarding.namespace.clone().unwrap_or_else(|| "default".into())),
                name: Some(format!("{}.{:x}", regarding.name.as_deref().unwrap_or(controller), now.as_nanosecond())),
                ..Default::default()
            },
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.clone(),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone().unwrap_or_else(|| controller.clone())),
            type_: Some(match ev.type_ {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            ..Default::default()
        }
    }
}
