//! Notifications: a person hears when an approval is waiting and when an incident resolves or
//! escalates, in Slack (incoming webhook) and/or a generic JSON webhook signed with HMAC-SHA256.
//!
//! The notifier is its own loop next to the controllers (leader only): it watches Incidents and
//! Remediations, decides what to say as data (`message`), delivers with retries and back-off
//! (`delivery`), and records each delivered transition in an annotation on the Incident, so a
//! restart never notifies twice (`salve.dev/notified`). It never blocks a reconcile. Failures are
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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::Recorder;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::delivery::Channels;
use self::message::{Notification, pending_notifications};
use crate::crd::{Condition, ConditionStatus, Incident, Remediation, condition_type, reason};
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

/// Runs until `shutdown`: every change of an Incident or Remediation re-checks what is owed.
pub async fn run(client: Client, channels: Arc<Channels>, recorder: Recorder, metrics: Metrics, shutdown: CancellationToken) {
    let incidents = watcher(Api::<Incident>::all(client.clone()), watcher::Config::default());
    let remediations = watcher(Api::<Remediation>::all(client.clone()), watcher::Config::default());
    let mut changes = std::pin::pin!(futures::stream::select(incidents.map(|_| ()), remediations.map(|_| ())));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            next = changes.next() => if next.is_none() { return },
        }
        // Coalesce a burst of changes into one pass.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Err(e) = pass(&client, &channels, &recorder, &metrics).await {
            tracing::debug!(error = %e, "notification pass failed; retried on the next change");
        }
    }
}

async fn pass(client: &Client, channels: &Channels, recorder: &Recorder, metrics: &Metrics) -> Result<(), kube::Error> {
    let incidents = Api::<Incident>::all(client.clone()).list(&ListParams::default()).await?.items;
    let remediations = Api::<Remediation>::all(client.clone()).list(&ListParams::default()).await?.items;
    for inc in &incidents {
        let done: BTreeSet<String> =
            inc.annotations().get(NOTIFIED_ANNOTATION).map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default();
        let ns = inc.namespace().unwrap_or_default();
        let own: Vec<&Remediation> =
            remediations.iter().filter(|r| r.namespace().as_deref() == Some(&ns) && r.spec.incident_ref == inc.name_any()).collect();
        for n in pending_notifications(inc, &own).into_iter().filter(|n| !done.contains(&n.key)) {
            deliver_and_record(client, channels, recorder, metrics, inc, &n).await?;
        }
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
