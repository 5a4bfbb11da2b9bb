//! Carries an `Intent` out against the API server. Safe to repeat and to run on every replica:
//! an Incident's name is its identity (a second create answers 409 and is a success), and
//! recording OK is a merge patch that sets the same value again.

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::identity::ALARM_LABEL;
use super::intent::Intent;
use crate::crd::{Incident, SignalState};

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

pub async fn apply(client: &Client, intent: &Intent) -> Result<Outcome, kube::Error> {
    match intent {
        Intent::Ignore(_) => Ok(Outcome::Ignored),
        Intent::Open(incident) => {
            let ns = incident.namespace().unwrap_or_default();
            let api: Api<Incident> = Api::namespaced(client.clone(), &ns);
            match api.create(&PostParams::default(), incident).await {
                Ok(_) => Ok(Outcome::Created),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Outcome::Duplicate),
                Err(e) => Err(e),
            }
        }
        Intent::RecordOk { alarm_key } => record_ok(client, alarm_key).await,
    }
}

/// Sets `spec.signal: OK` on every open Incident of the alarm, in any namespace (the OK
/// transition need not map to a workload to be recorded).
async fn record_ok(client: &Client, alarm_key: &str) -> Result<Outcome, kube::Error> {
    let all: Api<Incident> = Api::all(client.clone());
    let open: Vec<Incident> = all
        .list(&ListParams::default().labels(&format!("{ALARM_LABEL}={alarm_key}")))
        .await?
        .items
        .into_iter()
        .filter(|i| !i.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
        .collect();
    if open.is_empty() {
        return Ok(Outcome::OkWithoutIncident);
    }
    let patch = json!({"spec": {"signal": SignalState::Ok}});
    for inc in &open {
        let api: Api<Incident> = Api::namespaced(client.clone(), &inc.namespace().unwrap_or_default());
        match api.patch(&inc.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            // Deleted between list and patch: nothing left to record on.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Outcome::OkRecorded(open.len()))
}
