//! Notifications: a person hears when an approval is waiting and when an incident resolves or
//! escalates, in Slack (incoming webhook) and/or a generic JSON webhook signed with HMAC-SHA256.
//!
//! The notifier is its own loop next to the controllers (leader only): it reads the controllers'
//! caches of Incidents and Remediations (no watch or list of its own, so its cost follows what
//! changed, not how many Incidents exist), decides what to say as data (`message`), delivers
//! to each channel on its own, with retries and back-off (`delivery`), and records each
//! delivered transition per channel in an annotation on the Incident, so a restart never
//! notifies twice and a channel that failed never makes the others post again
//! (`salve.dev/notified`). A channel that gave up is tried again later, after its back-off or
//! the `Retry-After` it answered, whichever is longer. It never blocks a reconcile. Failures are
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::kube::recorder::Recorder;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::delivery::{Channel, Channels};
use self::message::{Notification, pending_notifications};
use crate::controllers::cache::{IncidentStore, RemediationStore, cached_remediation};
use crate::crd::{Condition, ConditionStatus, Incident, condition_type, reason};
use crate::kube::events::{self, PendingEvent};
use crate::metrics::Metrics;

/// Transitions already notified, comma-separated: `<key>` once every channel has it (see
/// `Notification::key`), `<key>@<channel>` for a channel that has it while another is still owed.
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
    let sent: Vec<&str> = annotations.get(NOTIFIED_ANNOTATION)?.split(',').filter(|k| !k.is_empty() && !k.contains('@')).collect();
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
/// The longest back-off between two tries of a channel that keeps failing.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// The entries of the `salve.dev/notified` annotation.
fn notified(annotations: &BTreeMap<String, String>) -> BTreeSet<String> {
    annotations.get(NOTIFIED_ANNOTATION).map(|v| v.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

/// The channels of `configured` that `key` is still owed to.
fn owed_channels(entries: &BTreeSet<String>, key: &str, configured: &[Channel]) -> Vec<Channel> {
    if entries.contains(key) {
        return Vec::new();
    }
    configured.iter().copied().filter(|c| !entries.contains(&format!("{key}@{}", c.as_str()))).collect()
}

/// Records that `key` reached `delivered`; once every configured channel has it, its
/// per-channel entries become the one `key`.
fn record_delivered(entries: &mut BTreeSet<String>, key: &str, delivered: &[Channel], configured: &[Channel]) {
    for c in delivered {
        entries.insert(format!("{key}@{}", c.as_str()));
    }
    if owed_channels(entries, key, configured).is_empty() {
        for c in configured {
            entries.remove(&format!("{key}@{}", c.as_str()));
        }
        entries.insert(key.to_string());
    }
}

/// When an Incident with a failed channel is looked at again.
struct Retry {
    due: Instant,
    failures: u32,
}

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
    let mut retries: HashMap<ObjectRef<Incident>, Retry> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SCAN_EVERY) => {}
        }
        // A retry that is due: forget the Incident, so this look checks it again.
        let now = Instant::now();
        for (key, r) in &retries {
            if r.due <= now {
                seen.remove(key);
            }
        }
        for inc in changed(&incidents, &remediations, &mut seen) {
            let key = ObjectRef::from_obj(&inc);
            if retries.get(&key).is_some_and(|r| r.due > now) {
                // Changed, but a channel asked us to wait: looked at when the retry is due.
                continue;
            }
            match check(&client, &channels, &recorder, &metrics, &inc, &remediations).await {
                Ok(None) => {
                    retries.remove(&key);
                }
                Ok(Some(asked)) => {
                    let failures = retries.get(&key).map_or(0, |r| r.failures).saturating_add(1);
                    let backoff = channels.initial_backoff.saturating_mul(1 << failures.min(16)).min(MAX_RETRY_DELAY);
                    retries.insert(key, Retry { due: Instant::now() + backoff.max(asked), failures });
                }
                Err(e) => {
                    tracing::debug!(error = %e, incident = %inc.name_any(), "notification check failed; retried on the next look");
                    // Forget it, so the next look checks it again.
                    seen.remove(&key);
                }
            }
        }
        // Deleted Incidents owe nothing.
        retries.retain(|k, _| incidents.get(&ObjectRef::new(&k.name).within(k.namespace.as_deref().unwrap_or_default())).is_some());
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

/// Delivers what `cached` owes, to the channels that do not have it yet. The cache lacks the
/// diagnosis the message quotes, so the Incident is read in full only when something is owed.
/// `Some(wait)` when a channel failed and should be tried again, not before `wait`.
async fn check(
    client: &Client,
    channels: &Channels,
    recorder: &Recorder,
    metrics: &Metrics,
    cached: &Incident,
    remediations: &RemediationStore,
) -> Result<Option<Duration>, kube::Error> {
    let ns = cached.namespace().unwrap_or_default();
    let configured = channels.configured();
    let owed = |inc: &Incident| {
        let done = notified(inc.annotations());
        let rems: Vec<_> =
            inc.status.iter().flat_map(|s| &s.remediations).filter_map(|name| cached_remediation(remediations, &ns, name)).collect();
        let own: Vec<_> = rems.iter().collect();
        pending_notifications(inc, &own)
            .into_iter()
            .map(|n| {
                let to = owed_channels(&done, &n.key, &configured);
                (n, to)
            })
            .filter(|(_, to)| !to.is_empty())
            .collect::<Vec<_>>()
    };
    if owed(cached).is_empty() {
        return Ok(None);
    }
    let Some(inc) = Api::<Incident>::namespaced(client.clone(), &ns).get_opt(&cached.name_any()).await? else { return Ok(None) };
    let mut retry: Option<Duration> = None;
    for (n, to) in owed(&inc) {
        if let Some(wait) = deliver_and_record(client, channels, recorder, metrics, &inc, &n, &to).await? {
            retry = Some(retry.map_or(wait, |r| r.max(wait)));
        }
    }
    Ok(retry)
}

/// Sends `n` to the channels `to` and records, per channel, what got through. `Some(wait)`
/// when a channel gave up on a failure that may pass (5xx, 429, no answer): the receiver's
/// `Retry-After`, or zero. A channel that refused outright (another 4xx) is not retried until
/// the Incident changes.
async fn deliver_and_record(
    client: &Client,
    channels: &Channels,
    recorder: &Recorder,
    metrics: &Metrics,
    inc: &Incident,
    n: &Notification,
    to: &[Channel],
) -> Result<Option<Duration>, kube::Error> {
    let api: Api<Incident> = Api::namespaced(client.clone(), &inc.namespace().unwrap_or_default());
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let results = channels.deliver(n, to, metrics).await;
    let delivered: Vec<Channel> = results.iter().filter(|(_, r)| r.is_ok()).map(|(c, _)| *c).collect();
    let failed: Vec<&delivery::DeliveryError> = results.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    let retry =
        failed.iter().filter(|e| matches!(e, delivery::DeliveryError::GaveUp { .. })).map(|e| e.retry_after().unwrap_or_default()).max();
    let error = (!failed.is_empty()).then(|| {
        let why: Vec<String> = failed.iter().map(|e| e.to_string()).collect();
        format!("{} notification not delivered: {}", n.kind.as_str(), why.join("; "))
    });
    let already = error.as_ref().is_some_and(|msg| inc.annotations().get(ERROR_ANNOTATION) == Some(msg));
    if delivered.is_empty() && already {
        return Ok(retry);
    }
    let mut annotations = serde_json::Map::new();
    if !delivered.is_empty() {
        // Re-read: another transition may have been recorded since the list.
        let current = api.get(&inc.name_any()).await?;
        let mut entries = notified(current.annotations());
        record_delivered(&mut entries, &n.key, &delivered, &channels.configured());
        annotations.insert(NOTIFIED_ANNOTATION.into(), entries.into_iter().collect::<Vec<_>>().join(",").into());
    }
    annotations.insert(ERROR_ANNOTATION.into(), error.clone().map_or(serde_json::Value::Null, Into::into));
    api.patch(&inc.name_any(), &pp, &Patch::Merge(json!({"metadata": {"annotations": annotations}}))).await?;
    if let Some(msg) = error.filter(|_| !already) {
        events::publish(recorder, &inc.object_ref(&()), PendingEvent::warning("NotificationFailed", "Notify", msg)).await;
    }
    Ok(retry)
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

    #[test]
    fn each_channel_keeps_its_own_record_until_all_have_the_notification() {
        let both = [Channel::Slack, Channel::Webhook];
        let mut entries = BTreeSet::new();
        assert_eq!(owed_channels(&entries, "resolved", &both), both);
        // The webhook got it, Slack failed: only Slack is still owed.
        record_delivered(&mut entries, "resolved", &[Channel::Webhook], &both);
        assert_eq!(entries.iter().map(String::as_str).collect::<Vec<_>>(), ["resolved@webhook"]);
        assert_eq!(owed_channels(&entries, "resolved", &both), [Channel::Slack]);
        // The condition does not call a half-delivered notification delivered.
        let partial = annotations(&[(NOTIFIED_ANNOTATION, "resolved@webhook")]);
        assert_eq!(delivery_condition(&partial, "t"), None);
        // Slack got it too: one entry for the transition.
        record_delivered(&mut entries, "resolved", &[Channel::Slack], &both);
        assert_eq!(entries.iter().map(String::as_str).collect::<Vec<_>>(), ["resolved"]);
        assert!(owed_channels(&entries, "resolved", &both).is_empty());
        // Records written before channels were tracked (a bare key) stay complete.
        let old = notified(&annotations(&[(NOTIFIED_ANNOTATION, "approval:x-r1,resolved")]));
        assert!(owed_channels(&old, "approval:x-r1", &both).is_empty());
    }
}
