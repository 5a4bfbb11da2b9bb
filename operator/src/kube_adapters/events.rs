//! Kubernetes Events through the process's one Recorder. Failures to publish are logged, never
//! fatal: an Event is a courtesy to the user, not part of the state machine.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

pub async fn publish(recorder: &Recorder, regarding: &ObjectReference, warning: bool, reason: &str, action: &str, note: String) {
    let ev = Event {
        type_: if warning { EventType::Warning } else { EventType::Normal },
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, regarding).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}
