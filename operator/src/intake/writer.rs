//! Carries an `Intent` out against the API server. Safe to repeat and to run on every replica:
//! an Incident's name is its identity (a second create answers 409 and is a success), and
//! recording OK is a merge patch that sets the same value again.
//!
//! Every failure says whether a retry can help (`WriteError`): a rejection is final for this
//! alert, and never for the others received with it.

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::identity::ALARM_LABEL;
use super::intent::{Intent, ok_applies_to};
use super::rejection::{Reason, Rejection, permanent};
use crate::crd::{Incident, SignalState};
use crate::domain::policy::Policy;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// The Incident already existed (a redelivery, a duplicate, or another replica was first).
    Duplicate,
    /// OK recorded on this many open Incidents.
    OkRecorded(usize),
    OkWithoutIncident,
    Ignored,
}

impl Outcome {
    /// The `outcome` label of `salve_intake_messages_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Duplicate => "duplicate",
            Self::OkRecorded(_) => "ok_recorded",
            Self::OkWithoutIncident => "ok_without_incident",
            Self::Ignored => "ignored",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The same write can never succeed: count it, log it, and move on.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The API server was unreachable, overloaded, or answered a conflict: try again later.
    #[error("Kubernetes API: {0}")]
    Transient(kube::Error),
}

/// A failed API call as a `WriteError`: final for the status codes a retry cannot change.
fn classify(e: kube::Error, what: &str) -> WriteError {
    match &e {
        kube::Error::Api(status) => match permanent(status.code) {
            Some(reason) => Rejection::new(reason, format!("{what}: {} ({})", status.message, status.code)).into(),
            None => WriteError::Transient(e),
        },
        _ => WriteError::Transient(e),
    }
}

pub async fn apply(client: &Client, policy: &Policy, intent: &Intent) -> Result<Outcome, WriteError> {
    match intent {
        Intent::Ignore(_) => Ok(Outcome::Ignored),
        Intent::Open(incident) => {
            let ns = incident.namespace().unwrap_or_default();
            // The chart grants intake writes only in these namespaces; an Incident elsewhere
            // could never be worked on either.
            if !policy.allows_namespace(&ns) {
                return Err(Rejection::new(
                    Reason::NamespaceNotAllowed,
                    format!("namespace {ns} is not in the allowed namespaces (--allowed-namespaces / SALVE_ALLOWED_NAMESPACES)"),
                )
                .into());
            }
            let api: Api<Incident> = Api::namespaced(client.clone(), &ns);
            match api.create(&PostParams::default(), incident).await {
                Ok(_) => Ok(Outcome::Created),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Outcome::Duplicate),
                Err(e) => Err(classify(e, &format!("creating incident {ns}/{}", incident.name_any()))),
            }
        }
        Intent::RecordOk { alarm_key, at } => record_ok(client, alarm_key, at.as_deref()).await,
    }
}

/// Sets `spec.signal: OK` on every open Incident of the alarm that fired no later than the OK,
/// in any namespace (the OK transition need not map to a workload to be recorded). An OK that
/// is older than every open Incident is rejected as `StaleOk`.
async fn record_ok(client: &Client, alarm_key: &str, at: Option<&str>) -> Result<Outcome, WriteError> {
    let all: Api<Incident> = Api::all(client.clone());
    let open: Vec<Incident> = all
        .list(&ListParams::default().labels(&format!("{ALARM_LABEL}={alarm_key}")))
        .await
        .map_err(|e| classify(e, "listing the alarm's incidents"))?
        .items
        .into_iter()
        .filter(|i| !i.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
        .collect();
    if open.is_empty() {
        return Ok(Outcome::OkWithoutIncident);
    }
    let (current, stale): (Vec<&Incident>, Vec<&Incident>) = open.iter().partition(|i| ok_applies_to(at, i));
    for inc in &stale {
        tracing::warn!(
            incident = %inc.name_any(),
            namespace = %inc.namespace().unwrap_or_default(),
            ok_at = at.unwrap_or_default(),
            "OK is older than the incident's alarm; not recorded on it"
        );
    }
    if current.is_empty() {
        let names: Vec<String> = stale.iter().map(|i| i.name_any()).collect();
        return Err(Rejection::new(
            Reason::StaleOk,
            format!("OK at {} is older than the open incident(s) {}", at.unwrap_or("?"), names.join(", ")),
        )
        .into());
    }
    let patch = json!({"spec": {"signal": SignalState::Ok}});
    let mut recorded = 0;
    let mut rejected = None;
    for inc in current {
        let ns = inc.namespace().unwrap_or_default();
        let api: Api<Incident> = Api::namespaced(client.clone(), &ns);
        match api.patch(&inc.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => recorded += 1,
            // Deleted between list and patch: nothing left to record on.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            // One Incident the operator may not write (403) does not keep the OK from the others.
            Err(e) => match classify(e, &format!("recording OK on {ns}/{}", inc.name_any())) {
                WriteError::Rejected(r) => rejected = Some(r),
                transient => return Err(transient),
            },
        }
    }
    match rejected {
        Some(r) if recorded == 0 => Err(r.into()),
        _ => Ok(Outcome::OkRecorded(recorded)),
    }
}
