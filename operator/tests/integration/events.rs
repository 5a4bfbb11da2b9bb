//! The operator's Event recorder against the simulated API server: repeats become a series on
//! one Event (what `kubectl describe` shows as "x3 over 2m"), and what it remembers is bounded.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, DeleteParams};
use kube::runtime::events::{Event, EventType, Reporter};
use operator::kube::recorder::{MAX_REMEMBERED, Recorder};

use crate::support::*;

fn incident_ref(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("salve.dev/v1alpha1".into()),
        kind: Some("Incident".into()),
        namespace: Some(NS.into()),
        name: Some(name.into()),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

fn warning(reason: &str, note: &str) -> Event {
    Event { type_: EventType::Warning, reason: reason.into(), note: Some(note.into()), action: "Reconcile".into(), secondary: None }
}

fn recorder(env: &Env) -> Recorder {
    Recorder::new(env.client.clone(), Reporter { controller: "salve-operator".into(), instance: Some("test".into()) })
}

#[tokio::test]
async fn a_repeated_event_becomes_a_series_on_the_first_and_a_new_reason_is_its_own_event() {
    let env = env().await;
    let rec = recorder(&env);
    let inc = incident_ref("checkout-latency");
    rec.publish(&warning("PolicyDenied", "first"), &inc).await.expect("create");
    rec.publish(&warning("PolicyDenied", "second"), &inc).await.expect("series");
    rec.publish(&warning("PolicyDenied", "third"), &inc).await.expect("series");
    rec.publish(&warning("VerificationFailed", "other"), &inc).await.expect("create");

    let published = events(&env).await;
    assert_eq!(published.len(), 2, "one Event per reason: {published:?}");
    let denied = published.iter().find(|e| e.reason.as_deref() == Some("PolicyDenied")).expect("PolicyDenied");
    assert_eq!(denied.series.as_ref().map(|s| s.count), Some(3), "three sightings");
    assert_eq!(denied.note.as_deref(), Some("first"), "a series keeps its first Event's note, as client-go's");
    assert_eq!(denied.regarding.as_ref().and_then(|r| r.name.as_deref()), Some("checkout-latency"));
    assert_eq!(denied.reporting_instance.as_deref(), Some("test"));
    let other = published.iter().find(|e| e.reason.as_deref() == Some("VerificationFailed")).expect("VerificationFailed");
    assert!(other.series.is_none());

    // The server expired (or someone deleted) the Event: the next repeat starts a new one.
    let api: Api<K8sEvent> = Api::namespaced(env.client.clone(), NS);
    api.delete(denied.metadata.name.as_deref().expect("name"), &DeleteParams::default()).await.expect("delete");
    rec.publish(&warning("PolicyDenied", "fourth"), &inc).await.expect("created again");
    let again: Vec<_> = events(&env).await.into_iter().filter(|e| e.reason.as_deref() == Some("PolicyDenied")).collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].note.as_deref(), Some("fourth"));
    assert!(again[0].series.is_none());
    env.stop().await;
}

#[tokio::test]
async fn a_storm_of_distinct_events_is_remembered_only_up_to_the_bound() {
    let env = env().await;
    let rec = recorder(&env);
    let storm = MAX_REMEMBERED + 20;
    for i in 0..storm {
        rec.publish(&warning("Stalled", "no progress"), &incident_ref(&format!("storm-{i}"))).await.expect("publish");
    }
    assert!(rec.remembered_count() <= MAX_REMEMBERED, "remembered {} of {storm}", rec.remembered_count());
    assert_eq!(events(&env).await.len(), storm, "every Event was published");
    // The newest are remembered: a repeat of the last one joins its series.
    rec.publish(&warning("Stalled", "no progress"), &incident_ref(&format!("storm-{}", storm - 1))).await.expect("series");
    assert_eq!(events(&env).await.len(), storm);
    env.stop().await;
}
