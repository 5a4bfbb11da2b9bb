//! core/v1 Events as the kubelet and controllers write them: the same reason and message
//! repeated becomes one Event whose `count` and `lastTimestamp` grow (the event recorder's
//! aggregation in client-go `tools/record`), so `kubectl get events` reads as on a cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

/// (namespace, object uid, reason, message) -> (event name, count)
type Seen = HashMap<(String, String, String, String), (String, i32)>;

#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    seen: Arc<Mutex<Seen>>,
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Self {
        Self { client, component: component.into(), seen: Arc::default() }
    }

    /// Records `reason`/`message` about `object` (`Warning` when `warning`).
    pub async fn record(&self, object: &ObjectReference, warning: bool, reason: &str, message: &str) {
        let ns = object.namespace.clone().unwrap_or_else(|| "default".into());
        let key = (ns.clone(), object.uid.clone().unwrap_or_default(), reason.to_string(), message.to_string());
        let now = Time(Timestamp::now());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let existing = self.seen.lock().ok().and_then(|s| s.get(&key).cloned());
        if let Some((name, count)) = existing
            && let Ok(mut ev) = api.get(&name).await
        {
            ev.count = Some(count + 1);
            ev.last_timestamp = Some(now);
            if api.replace(&name, &PostParams::default(), &ev).await.is_ok()
                && let Ok(mut s) = self.seen.lock()
            {
                s.insert(key, (name, count + 1));
            }
            return;
        }
        let name = format!("{}.{:x}", object.name.clone().unwrap_or_default(), Timestamp::now().as_nanosecond());
        let ev = Event {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(ns), ..Default::default() },
            involved_object: object.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource { component: Some(self.component.clone()), host: Some("sandbox-node".into()) }),
            reporting_component: Some(self.component.clone()),
            ..Default::default()
        };
        if api.create(&PostParams::default(), &ev).await.is_ok()
            && let Ok(mut s) = self.seen.lock()
        {
            s.insert(key, (name, 1));
        }
    }
}

/// The reference an Event uses for an object.
pub fn reference(kind: &str, api_version: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        kind: Some(kind.into()),
        api_version: Some(api_version.into()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    }
}
