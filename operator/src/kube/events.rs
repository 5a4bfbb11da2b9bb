//! Kubernetes Events through the process's one Recorder (see `recorder`). Failures to publish
//! are logged, never fatal: an Event is a courtesy to the user, not part of the state machine.
//!
//! Reconcilers gather `PendingEvent`s while they decide and publish them only after the status
//! that records the decision is written: if that write fails, the next reconcile decides again
//! and nobody was told about something that did not happen.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use super::recorder::Recorder;
use crate::domain::outbound;

/// An Event decided but not yet published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

impl PendingEvent {
    pub fn normal(reason: &'static str, action: &'static str, note: impl Into<String>) -> Self {
        Self { warning: false, reason, action, note: note.into() }
    }

    pub fn warning(reason: &'static str, action: &'static str, note: impl Into<String>) -> Self {
        Self { warning: true, reason, action, note: note.into() }
    }
}

pub async fn publish(recorder: &Recorder, regarding: &ObjectReference, event: PendingEvent) {
    let ev = Event {
        type_: if event.warning { EventType::Warning } else { EventType::Normal },
        reason: event.reason.into(),
        // Events are read by anyone who may list them and shipped off by event exporters.
        note: Some(outbound::text(&event.note)),
        action: event.action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, regarding).await {
        tracing::warn!(error = %e, reason = event.reason, "could not publish event");
    }
}

/// Publishes in order; call only after the status recording these decisions was written.
pub async fn publish_all(recorder: &Recorder, regarding: &ObjectReference, events: Vec<PendingEvent>) {
    for event in events {
        publish(recorder, regarding, event).await;
    }
}
