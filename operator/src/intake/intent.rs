//! What an incoming signal asks for, decided before any I/O: open an Incident, record the OK
//! signal on the Incidents an alarm opened, or nothing; and which open Incidents an OK is for.
//! Pure.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;

use super::alarm::{AlarmState, AlarmTransition};
use super::identity::{ALARM_LABEL, alarm_key, incident_name};
use super::workload::WorkloadResolver;
use crate::crd::{Incident, IncidentSource, IncidentSpec, SourceKind, WorkloadRef};

/// Annotations carrying context the Incident spec has no field for (shown to people and to the
/// diagnoser through the object; they never hold secrets: alarm text only).
pub const DESCRIPTION_ANNOTATION: &str = "salve.dev/alarm-description";

#[derive(Clone, Debug)]
pub enum Intent {
    Open(Box<Incident>),
    /// Set `spec.signal: OK` on the open Incidents labelled with this alarm key that are not
    /// newer than the OK (see `ok_applies_to`).
    RecordOk {
        alarm_key: String,
        /// When the alarm returned to OK (RFC 3339): CloudWatch's `StateChangeTime`,
        /// Alertmanager's `endsAt` (else `startsAt`). `None` when the signal has no usable time.
        at: Option<String>,
    },
    /// Nothing to do (e.g. INSUFFICIENT_DATA); the reason is for logs.
    Ignore(&'static str),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no workload for {0:?}: not in the workload map, no usable dimensions/labels, and no default namespace")]
pub struct Unmappable(pub String);

/// The Incident for a signal, named and labelled for idempotency.
pub fn new_incident(
    readable: &str,
    identity: &str,
    started: &str,
    workload: &super::workload::Workload,
    source: IncidentSource,
    annotations: BTreeMap<String, String>,
) -> Incident {
    let metadata = ObjectMeta {
        name: Some(incident_name(readable, identity, started)),
        namespace: Some(workload.namespace.clone()),
        labels: Some(BTreeMap::from([
            (ALARM_LABEL.to_string(), alarm_key(identity)),
            ("app.kubernetes.io/managed-by".to_string(), "salve-intake".to_string()),
        ])),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    };
    let spec = IncidentSpec {
        service: workload.service.clone(),
        severity: workload.severity,
        source,
        target: WorkloadRef { kind: "Deployment".into(), name: workload.deployment.clone() },
        signal: None,
    };
    Incident { metadata, spec, status: None }
}

/// ALARM opens an Incident (the alarm must map to a workload); OK is recorded on the open ones;
/// INSUFFICIENT_DATA says nothing about the workload and is ignored.
pub fn from_alarm(t: &AlarmTransition, resolver: &WorkloadResolver) -> Result<Intent, Unmappable> {
    match t.state {
        AlarmState::InsufficientData => return Ok(Intent::Ignore("INSUFFICIENT_DATA")),
        AlarmState::Ok => {
            return Ok(Intent::RecordOk { alarm_key: alarm_key(t.identity()), at: Some(t.state_change_time.clone()) });
        }
        AlarmState::Alarm => {}
    }
    let workload = resolver.resolve(&t.name, &t.dimensions, None).ok_or_else(|| Unmappable(t.name.clone()))?;
    let source = IncidentSource {
        kind: SourceKind::CloudWatchAlarm,
        alarm_name: Some(t.name.clone()),
        alarm_arn: t.arn.clone(),
        region: t.region.clone(),
        state_change_time: Some(t.state_change_time.clone()),
        reason: Some(t.reason.clone()).filter(|r| !r.is_empty()),
        alert_name: None,
        fingerprint: None,
        metric: t.metric.clone(),
    };
    let mut annotations = BTreeMap::new();
    if let Some(d) = &t.description {
        annotations.insert(DESCRIPTION_ANNOTATION.to_string(), d.clone());
    }
    Ok(Intent::Open(Box::new(new_incident(&t.name, t.identity(), &t.state_change_time, &workload, source, annotations))))
}

/// Whether an OK that happened at `ok_at` clears `incident`: not when the Incident's alarm
/// fired after it (its `spec.source.stateChangeTime`, else its creation). A late or redelivered
/// OK from an earlier firing must not resolve a newer Incident of the same alarm; SQS delivers
/// at least once and in no guaranteed order, and Alertmanager re-sends resolved alerts. An OK
/// at the same instant applies (one transition cannot be both), and so does an OK or an
/// Incident without a readable time (nothing to compare: recording OK is the safe default
/// only when nothing says it is stale).
pub fn ok_applies_to(ok_at: Option<&str>, incident: &Incident) -> bool {
    use k8s_openapi::jiff::Timestamp;
    let Some(ok) = ok_at.and_then(|t| t.parse::<Timestamp>().ok()) else { return true };
    let fired = incident
        .spec
        .source
        .state_change_time
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .or_else(|| incident.metadata.creation_timestamp.as_ref().map(|t| t.0));
    fired.is_none_or(|fired| ok >= fired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AlarmMetric, Severity};

    fn transition(state: AlarmState) -> AlarmTransition {
        AlarmTransition {
            name: "oms-5xx".into(),
            arn: Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:oms-5xx".into()),
            region: Some("eu-west-1".into()),
            state_change_time: "2026-11-21T19:56:10.708Z".into(),
            reason: "Threshold Crossed".into(),
            description: Some("OMS answers 5xx".into()),
            state,
            dimensions: BTreeMap::new(),
            metric: Some(AlarmMetric {
                namespace: "AWS/ApplicationELB".into(),
                name: "HTTPCode_Target_5XX_Count".into(),
                dimensions: BTreeMap::new(),
                statistic: Some("Sum".into()),
            }),
        }
    }

    #[test]
    fn alarm_opens_a_labelled_incident() {
        let r = WorkloadResolver::new("oms-*=shop/oms:Critical", None, Severity::High).expect("map");
        let Ok(Intent::Open(inc)) = from_alarm(&transition(AlarmState::Alarm), &r) else { panic!("expected an incident") };
        assert_eq!(inc.metadata.namespace.as_deref(), Some("shop"));
        assert!(inc.metadata.name.as_deref().is_some_and(|n| n.starts_with("oms-5xx-")));
        assert_eq!(inc.spec.target.name, "oms");
        assert_eq!(inc.spec.severity, Severity::Critical);
        assert_eq!(inc.spec.source.kind, SourceKind::CloudWatchAlarm);
        assert_eq!(inc.spec.source.state_change_time.as_deref(), Some("2026-11-21T19:56:10.708Z"));
        let key = alarm_key("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:oms-5xx");
        assert_eq!(inc.metadata.labels.as_ref().and_then(|l| l.get(ALARM_LABEL)), Some(&key));
        assert_eq!(
            inc.metadata.annotations.as_ref().and_then(|a| a.get(DESCRIPTION_ANNOTATION)).map(String::as_str),
            Some("OMS answers 5xx")
        );
        assert!(matches!(from_alarm(&transition(AlarmState::Ok), &r),
            Ok(Intent::RecordOk { alarm_key, at: Some(at) }) if alarm_key == key && at == "2026-11-21T19:56:10.708Z"));
    }

    #[test]
    fn insufficient_data_is_ignored_and_unmapped_alarms_are_errors() {
        let r = WorkloadResolver::new("", None, Severity::High).expect("map");
        assert!(matches!(from_alarm(&transition(AlarmState::InsufficientData), &r), Ok(Intent::Ignore(_))));
        assert!(matches!(from_alarm(&transition(AlarmState::Alarm), &r), Err(Unmappable(n)) if n == "oms-5xx"));
    }

    #[test]
    fn an_ok_clears_only_incidents_that_fired_before_it() {
        let r = WorkloadResolver::new("oms-*=shop/oms", None, Severity::High).expect("map");
        let Ok(Intent::Open(inc)) = from_alarm(&transition(AlarmState::Alarm), &r) else { panic!("expected an incident") };
        // The incident fired at 19:56:10.708Z.
        assert!(ok_applies_to(Some("2026-11-21T20:06:00.000Z"), &inc), "a later OK clears it");
        assert!(ok_applies_to(Some("2026-11-21T19:56:10.708Z"), &inc), "the same instant clears it");
        assert!(!ok_applies_to(Some("2026-11-21T19:50:00.000Z"), &inc), "an OK from before it fired is stale");
        assert!(ok_applies_to(None, &inc), "an OK without a time cannot be judged stale");
        // Without a source time, the creation time counts.
        let mut manual = (*inc).clone();
        manual.spec.source.state_change_time = None;
        assert!(ok_applies_to(Some("2026-11-21T19:50:00.000Z"), &manual), "nothing to compare with");
        manual.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2026-11-21T20:00:00Z".parse().expect("time")));
        assert!(!ok_applies_to(Some("2026-11-21T19:59:59.000Z"), &manual));
        assert!(ok_applies_to(Some("2026-11-21T20:00:01.000Z"), &manual));
    }
}
