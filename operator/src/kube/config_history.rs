//! Remembers ConfigMap values the operator has seen, so evidence can say "key X changed from A
//! to B" and a diagnosis can propose restoring A. Kubernetes keeps no history of ConfigMaps.
//!
//! In memory: after a restart only changes seen since then are known (documented limitation).
//! Every replica runs the watcher, leader or not, so a new leader has the history too.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::domain::blast_radius::is_shown_form_of;
use crate::domain::evidence::ConfigChange;

const MAX_CHANGES_PER_MAP: usize = 20;

#[derive(Default)]
struct Entry {
    current: BTreeMap<String, String>,
    changes: Vec<ConfigChange>,
}

#[derive(Clone, Default)]
pub struct ConfigHistory {
    inner: Arc<Mutex<HashMap<(String, String), Entry>>>,
}

impl ConfigHistory {
    /// Records the ConfigMap's data; when it differs from what was seen before, each changed
    /// key becomes a `ConfigChange` with the previous value.
    pub fn observe(&self, namespace: &str, name: &str, data: &BTreeMap<String, String>, at: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.to_string(), name.to_string());
        let Some(entry) = map.get_mut(&key) else {
            map.insert(key, Entry { current: data.clone(), changes: vec![] });
            return;
        };
        if &entry.current == data {
            return;
        }
        let keys: std::collections::BTreeSet<&String> = entry.current.keys().chain(data.keys()).collect();
        let mut new_changes = Vec::new();
        for k in keys {
            let (prev, cur) = (entry.current.get(k), data.get(k));
            if prev != cur {
                new_changes.push(ConfigChange {
                    config_map: name.to_string(),
                    key: k.clone(),
                    previous: prev.cloned(),
                    current: cur.cloned(),
                    observed_at: at.to_string(),
                    redacted: false,
                });
            }
        }
        entry.changes.extend(new_changes);
        let len = entry.changes.len();
        if len > MAX_CHANGES_PER_MAP {
            entry.changes.drain(..len - MAX_CHANGES_PER_MAP);
        }
        entry.current = data.clone();
    }

    /// Changes seen for one ConfigMap, oldest first.
    pub fn changes(&self, namespace: &str, name: &str) -> Vec<ConfigChange> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(namespace.to_string(), name.to_string())).map(|e| e.changes.clone()).unwrap_or_default()
    }

    /// The full value `key` of ConfigMap `name` held before a recorded change, whose shown form
    /// (bounded, redacted evidence) or full form is `shown`; the newest such change wins. `None`
    /// when no recorded value matches: then the value is not known in full and is not written.
    pub fn recorded_previous(&self, namespace: &str, name: &str, key: &str, shown: &str) -> Option<String> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(&(namespace.to_string(), name.to_string()))?;
        entry
            .changes
            .iter()
            .rev()
            .filter(|c| c.key == key)
            .filter_map(|c| c.previous.as_deref())
            .find(|full| is_shown_form_of(shown, full))
            .map(str::to_string)
    }

    /// Watches all ConfigMaps until the stream ends; errors are retried with backoff.
    /// `initialized` becomes true once the first full list has been seen.
    pub async fn run(self, client: Client, initialized: tokio::sync::watch::Sender<bool>) {
        use kube::runtime::WatchStreamExt;
        use kube::runtime::watcher::Event;
        let api: Api<ConfigMap> = Api::all(client);
        // Post-mortems are records the operator writes, not configuration: keeping their JSON
        // in the history would double the memory every resolved Incident costs.
        let not_records = format!("!{}", crate::domain::post_mortem::POST_MORTEM_LABEL);
        let stream = watcher(api, watcher::Config::default().labels(&not_records)).default_backoff();
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(Event::Apply(cm) | Event::InitApply(cm)) => {
                    let data = cm.data.clone().unwrap_or_default();
                    self.observe(&cm.namespace().unwrap_or_default(), &cm.name_any(), &data, &crate::domain::time::now_rfc3339());
                }
                Ok(Event::InitDone) => {
                    initialized.send_replace(true);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "configmap watch error"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn records_previous_values_per_key() {
        let h = ConfigHistory::default();
        h.observe("ns", "cfg", &data(&[("a", "1"), ("b", "2")]), "t0");
        assert!(h.changes("ns", "cfg").is_empty(), "first sight is not a change");
        h.observe("ns", "cfg", &data(&[("a", "1"), ("b", "3"), ("c", "4")]), "t1");
        let c = h.changes("ns", "cfg");
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].key.as_str(), c[0].previous.as_deref(), c[0].current.as_deref()), ("b", Some("2"), Some("3")));
        assert_eq!((c[1].key.as_str(), c[1].previous.as_deref()), ("c", None));
        h.observe("ns", "cfg", &data(&[("a", "1"), ("b", "3"), ("c", "4")]), "t2");
        assert_eq!(h.changes("ns", "cfg").len(), 2, "same data is not a change");
    }
}
