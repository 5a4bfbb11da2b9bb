//! Notifications: a person hears when an approval is waiting and when an incident resolves or
//! escalates, in Slack (incoming webhook) and/or a generic JSON webhook signed with HMAC-SHA256.
//!
//! The notifier is its own loop next to the controllers (leader only): it reads the controllers'
//! caches of Incidents and Remediations (no watch or list of its own, so its cost follows what
//! changed, not how many Incidents exist), decides what to say as data (`message`), delivers
//! with retries and back-off (`delivery`), and records each delivered transition in an
//! annotation on the Incident, so a restart never notifies twice (`salve.dev/notified`). It
//! never blocks a reconcile. Failures are
//! a Warning Event (`NotificationFailed`), the `salve.dev/notification-error` annotation, the
//! `salve_notifications_total{channel,outcome}` metric and the Incident's
//! `NotificationDelivered` condition.
//!
//! The condition is not written here: status has ONE field manager (the Incident controller's
//! server-side apply), and an apply of a partial status under that manager would remove every
//! field it omits. The notifier writes only its annotations; the Incident controller derives
//! the condition from them (`delivery_condition`) whenever it computes status, and a change of
//! the annotations is a change of the Incident, so it is reconciled.

pub mod delivery;
pub mod message;
pub mod settings;
pub mod signing;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::kube::recorder::Recorder;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::delivery::Channels;
use self::message::{Notification, pending_notifications};
use crate::controllers::cache::{IncidentStore, RemediationStore, cached_remediation};
use crate::crd::{Condition, ConditionStatus, Incident, condition_type, reason};
use crate::kube::events::{self, PendingEvent};
use crate::metrics::Metrics;

/// Transitions already notified, comma-separated keys (see `Notification::key`).
pub const NOTIFIED_ANNOTATION: &str = "salve.dev/notified";
/// The last delivery failure, for `kubectl describe`.
pub const ERROR_ANNOTATION: &str = "salve.dev/notification-error";
const FIELD_MANAGER: &str = "salve-operator-notifier";

/// The `NotificationDelivered` condition the notifier's annotations call for: `False`
/// (`DeliveryFailed`, with the error, which never holds a URL or secret) while the last attempt
/// failed, `True` (`Delivered`) once a notification went out, `None` before any was owed.
pub fn delivery_condition(annotations: &std::collections::BTreeMap<String, String>, now: &str) -> Option<Condition> {
    if let Some(error) = annotations.get(ERROR_ANNOTATION).filter(|e| !e.is_empty()) {
        return Some(Condition::new(
            condition_type::NOTIFICATION_DELIVERED,
            ConditionStatus::False,
            reason::DELIVERY_FAILED,
            error.clone(),
            now,
        ));
    }
    let sent: Vec<&str> = annotations.get(NOTIFIED_ANNOTATION)?.split(',').filter(|k| !k.is_empty()).collect();
    if sent.is_empty() {
        return None;
    }
    Some(Condition::new(
        condition_type::NOTIFICATION_DELIVERED,
        ConditionStatus::True,
        reason::DELIVERED,
        format!("delivered: {}", sent.join(", ")),
        now,
    ))
}

/// How often the caches are looked at for changed Incidents and Remediations.
const SCAN_EVERY: Duration = Duration::from_millis(500);

/// Runs until `shutdown`. Every `SCAN_EVERY` it finds the Incidents whose cached copy, or one
/// of whose Remediations, changed since the last look (by resourceVersion), and checks only
/// those for what is owed; the first look checks each once.
pub async fn run(
    client: Client,
    channels: Arc<Channels>,
    recorder: Recorder,
    metrics: Metrics,
    caches: (IncidentStore, RemediationStore),
    shutdown: CancellationToken,
) {
    let (incidents, remediations) = caches;
    let mut seen: HashMap<ObjectRef<Incident>, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SCAN_EVERY) => {}
        }
        for inc in changed(&incidents, &remediations, &mut seen) {
            if let Err(e) = check(&client, &channels, &recorder, &metrics, &inc, &remediations).await {
                tracing::debug!(error = %e, incident = %inc.name_any(), "notification check failed; retried on the next look");
                // Forget it, so the next look checks it again.
                seen.remove(&ObjectRef::from_obj(&inc));
            }
        }
    }
}

/// The cached Incidents whose own resourceVersion, or one of their Remediations', moved since
/// `seen`. Only metadata is compared; only what changed is decoded.
fn changed(incidents: &IncidentStore, remediations: &RemediationStore, seen: &mut HashMap<ObjectRef<Incident>, String>) -> Vec<Incident> {
    // Each Incident's Remediations (by owner reference: the operator owns every one it creates)
    // with their versions: a Remediation awaiting approval changes without its Incident changing.
    let mut owned: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
    for rem in remediations.state() {
        let meta = rem.meta();
        for owner in meta.owner_references.iter().flatten().filter(|o| o.kind == Incident::kind(&())) {
            let key = (meta.namespace.clone().unwrap_or_default(), owner.name.clone());
            owned.entry(key).or_default().push((rem.name_any(), meta.resource_version.clone().unwrap_or_default()));
        }
    }
    let mut out = Vec::new();
    let mut present = std::collections::HashSet::new();
    for cached in incidents.state() {
        let ns = cached.namespace().unwrap_or_default();
        let key = ObjectRef::<Incident>::new(&cached.name_any()).within(&ns);
        let mut version = cached.resource_version().unwrap_or_default();
        if let Some(rems) = owned.get_mut(&(ns, cached.name_any())) {
            rems.sort();
            for (name, rv) in rems.iter() {
                version.push_str(&format!("/{name}={rv}"));
            }
        }
        if seen.get(&key) == Some(&version) {
            present.insert(key);
            continue;
        }
        // One that does not parse is left to its own reconcile, which reports it.
        let Ok(inc) = cached.object() else { continue };
        present.insert(key.clone());
        seen.insert(key, version);
        out.push(inc);
    }
    seen.retain(|k, _| present.contains(k));
    out
}

/// Delivers what `cached` owes. The cache lacks the diagnosis the message quotes, so the
/// Incident is read in full only when something is owed.
async fn check(
    client: &Client,
    channels: &Channels,
    recorder: &Recorder,
    metrics: &Metrics,
    cached: &Incident,
    remediations: &RemediationStore,
) -> Result<(), kube::Error> {
    let ns = cached.namespace().unwrap_or_default();
    let owed = |inc: &Incident| {
        let done: BTreeSet<String> =
            inc.annotations().get(NOTIFIED_ANNOTATION).map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default();
        let rems: Vec<_> =
            inc.status.iter().flat_map(|s| &s.remediations).filter_map(|name| cached_remediation(remediations, &ns, name)).collect();
        let own: Vec<_> = rems.iter().collect();
        pending_notifications(inc, &own).into_iter().filter(|n| !done.contains(&n.key)).collect::<Vec<_>>()
    };
    if owed(cached).is_empty() {
        return Ok(());
    }
    let Some(inc) = Api::<Incident>::namespaced(client.clone(), &ns).get_opt(&cached.name_any()).await? else { return Ok(()) };
    for n in owed(&inc) {
        deliver_and_record(client, channels, recorder, metrics, &inc, &n).await?;
    }
    Ok(())
}

async fn deliver_and_record(
    client: &Client,
    channels: &Channels,
    recorder: &Recorder,
    metrics: &Metrics,
    inc: &Incident,
    n: &Notification,
) -> Result<(), kube::Error> {
    let api: Api<Incident> = Api::namespaced(client.clone(), &inc.namespace().unwrap_or_default());
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match channels.deliver(n, metrics).await {
        Ok(()) => {
            // Re-read: another transition may have been recorded since the list.
            let current = api.get(&inc.name_any()).await?;
            let mut keys: BTreeSet<String> =
                current.annotations().get(NOTIFIED_ANNOTATION).map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default();
            keys.insert(n.key.clone());
            let joined = keys.into_iter().filter(|k| !k.is_empty()).collect::<Vec<_>>().join(",");
            let body = json!({"metadata": {"annotations": {NOTIFIED_ANNOTATION: joined, ERROR_ANNOTATION: null}}});
            api.patch(&inc.name_any(), &pp, &Patch::Merge(body)).await?;
        }
        Err(e) => {
            let msg = format!("{} notification not delivered: {e}", n.kind.as_str());
            let already = inc.annotations().get(ERROR_ANNOTATION) == Some(&msg);
            if !already {
                api.patch(&inc.name_any(), &pp, &Patch::Merge(json!({"metadata": {"annotations": {ERROR_ANNOTATION: msg.clone()}}})))
                    .await?;
                events::publish(recorder, &inc.object_ref(&()), PendingEvent::warning("NotificationFailed", "Notify", msg)).await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_condition_follows_the_notifiers_annotations() {
        assert_eq!(delivery_condition(&annotations(&[]), "t"), None, "nothing owed yet: no condition");
        let failed = annotations(&[
            (NOTIFIED_ANNOTATION, "approval:x-r1"),
            (ERROR_ANNOTATION, "resolved notification not delivered: webhook failed after 5 attempt(s): HTTP 503"),
        ]);
        let c = delivery_condition(&failed, "t").expect("condition");
        assert_eq!((c.type_.as_str(), c.status, c.reason.as_str()), ("NotificationDelivered", ConditionStatus::False, "DeliveryFailed"));
        assert!(c.message.contains("HTTP 503"), "{}", c.message);
        let ok = delivery_condition(&annotations(&[(NOTIFIED_ANNOTATION, "approval:x-r1,resolved")]), "t").expect("condition");
        assert_eq!((ok.status, ok.reason.as_str()), (ConditionStatus::True, "Delivered"));
        assert_eq!(ok.message, "delivered: approval:x-r1, resolved");
        assert_eq!(delivery_condition(&annotations(&[(NOTIFIED_ANNOTATION, "")]), "t"), None);
    }
}
