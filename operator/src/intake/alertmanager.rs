//! Alertmanager webhook payloads (version 4): `status`, `alerts[]` with `status`
//! (firing | resolved), `labels`, `annotations`, `startsAt`, `endsAt`, `fingerprint`, plus group
//! fields we do not need. Firing alerts open Incidents, resolved ones record the OK signal. Pure.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::alarm::rfc3339;
use super::identity::alarm_key;
use super::intent::{DESCRIPTION_ANNOTATION, Intent, Unmappable, new_incident};
use super::rejection::Reason;
use super::workload::WorkloadResolver;
use crate::crd::{IncidentSource, Severity, SourceKind};

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    #[serde(default)]
    pub version: Option<String>,
    pub alerts: Vec<Alert>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    /// When a resolved alert stopped firing; firing alerts carry Go's zero time
    /// (`0001-01-01T00:00:00Z`) or a time in the future.
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alert has no alertname label")]
    NoAlertName,
    #[error("alert status {0:?} is neither firing nor resolved")]
    UnknownStatus(String),
    #[error("alert startsAt {0:?} is not an RFC 3339 time")]
    BadStartsAt(String),
    #[error(transparent)]
    Unmappable(#[from] Unmappable),
}

impl AlertError {
    /// The metrics outcome for an alert that cannot be used.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Unmappable(_) => "unmappable",
            _ => "malformed",
        }
    }

    /// The `reason` of `salve_intake_rejected_total`: an unusable alert never becomes usable.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Unmappable(_) => Reason::Unmappable,
            _ => Reason::Malformed,
        }
    }
}

impl Alert {
    pub fn name(&self) -> Option<&str> {
        self.labels.get("alertname").map(String::as_str).filter(|n| !n.trim().is_empty())
    }

    /// The alert's identity across firing and resolved: Alertmanager's fingerprint (a hash of
    /// the label set); payloads without one get the same from the sorted labels.
    fn identity(&self, name: &str) -> String {
        let fingerprint = self.fingerprint.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| {
            let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            alarm_key(&labels.join(","))
        });
        format!("alertmanager/{name}/{fingerprint}")
    }

    /// When the alert resolved: `endsAt`, else `startsAt` (the firing it belongs to), as RFC 3339.
    /// Go's zero time (year 1) is Alertmanager's "unset".
    fn resolved_at(&self) -> Option<String> {
        let usable = |t: &Option<String>| t.as_deref().and_then(|t| rfc3339(t).ok()).filter(|t| !t.starts_with("0001-"));
        usable(&self.ends_at).or_else(|| usable(&self.starts_at))
    }
}

/// `severity` label: critical -> Critical, warning -> Medium, info -> Low.
fn severity_of(labels: &BTreeMap<String, String>) -> Option<Severity> {
    match labels.get("severity").map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("critical") => Some(Severity::Critical),
        Some("warning") => Some(Severity::Medium),
        Some("info") => Some(Severity::Low),
        _ => None,
    }
}

pub fn from_alert(alert: &Alert, resolver: &WorkloadResolver) -> Result<Intent, AlertError> {
    let name = alert.name().ok_or(AlertError::NoAlertName)?;
    let identity = alert.identity(name);
    match alert.status.as_str() {
        "resolved" => return Ok(Intent::RecordOk { alarm_key: alarm_key(&identity), at: alert.resolved_at() }),
        "firing" => {}
        other => return Err(AlertError::UnknownStatus(other.to_string())),
    }
    let starts_at = alert.starts_at.as_deref().unwrap_or_default();
    let started = rfc3339(starts_at).map_err(|_| AlertError::BadStartsAt(starts_at.to_string()))?;
    let workload = resolver.resolve(name, &alert.labels, severity_of(&alert.labels)).ok_or_else(|| Unmappable(name.to_string()))?;
    let reason = alert.annotations.get("summary").or_else(|| alert.annotations.get("description")).cloned();
    let source = IncidentSource {
        kind: SourceKind::Alertmanager,
        alarm_name: None,
        alarm_arn: None,
        region: None,
        state_change_time: Some(started.clone()),
        reason,
        alert_name: Some(name.to_string()),
        fingerprint: alert.fingerprint.clone().filter(|f| !f.is_empty()),
        metric: None,
    };
    let annotations: BTreeMap<String, String> =
        alert.annotations.get("description").map(|d| (DESCRIPTION_ANNOTATION.to_string(), d.clone())).into_iter().collect();
    Ok(Intent::Open(Box::new(new_incident(name, &identity, &started, &workload, source, annotations))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(status: &str, severity: &str) -> WebhookPayload {
        serde_json::from_value(json!({
            "receiver": "salve", "status": status, "version": "4", "groupKey": "{}:{alertname=\"OmsErrors\"}", "truncatedAlerts": 0,
            "externalURL": "http://alertmanager:9093", "groupLabels": {"alertname": "OmsErrors"}, "commonLabels": {}, "commonAnnotations": {},
            "alerts": [{"status": status,
                "labels": {"alertname": "OmsErrors", "namespace": "shop", "deployment": "oms", "severity": severity},
                "annotations": {"summary": "OMS error rate above 5%", "description": "5xx ratio 0.12"},
                "startsAt": "2026-11-21T19:50:03.157076+02:00",
                "endsAt": if status == "resolved" { "2026-11-21T20:05:00+02:00" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus/graph", "fingerprint": "c6eadffa33fcdf37"}]
        }))
        .expect("payload")
    }

    #[test]
    fn firing_opens_and_resolved_records_ok_for_the_same_alert() {
        let r = WorkloadResolver::new("", None, Severity::High).expect("map");
        let firing = payload("firing", "critical");
        let Ok(Intent::Open(inc)) = from_alert(&firing.alerts[0], &r) else { panic!("expected an incident") };
        assert_eq!(inc.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(inc.spec.target.name, "oms");
        assert_eq!(inc.spec.severity, Severity::Critical);
        assert_eq!(inc.spec.source.kind, SourceKind::Alertmanager);
        assert_eq!(inc.spec.source.fingerprint.as_deref(), Some("c6eadffa33fcdf37"));
        assert_eq!(inc.spec.source.state_change_time.as_deref(), Some("2026-11-21T17:50:03.157Z"));
        assert!(inc.metadata.name.as_deref().is_some_and(|n| n.starts_with("omserrors-")));
        let key = inc.metadata.labels.as_ref().and_then(|l| l.get(super::super::identity::ALARM_LABEL)).cloned().expect("label");
        let resolved = payload("resolved", "critical");
        assert!(matches!(from_alert(&resolved.alerts[0], &r),
            Ok(Intent::RecordOk { alarm_key, at: Some(at) }) if alarm_key == key && at == "2026-11-21T18:05:00.000Z"));
        // Without a usable endsAt, the firing it belongs to (startsAt) dates the OK.
        let mut zero = resolved.alerts[0].clone();
        zero.ends_at = Some("0001-01-01T00:00:00Z".into());
        assert!(matches!(from_alert(&zero, &r), Ok(Intent::RecordOk { at: Some(at), .. }) if at == "2026-11-21T17:50:03.157Z"));
    }

    #[test]
    fn severity_label_maps_and_unknown_falls_back() {
        let r = WorkloadResolver::new("", None, Severity::High).expect("map");
        for (label, want) in [("warning", Severity::Medium), ("info", Severity::Low), ("page-everyone", Severity::High)] {
            let Ok(Intent::Open(inc)) = from_alert(&payload("firing", label).alerts[0], &r) else { panic!("incident") };
            assert_eq!(inc.spec.severity, want, "{label}");
        }
    }

    #[test]
    fn unusable_alerts_are_typed_errors() {
        let r = WorkloadResolver::new("", None, Severity::High).expect("map");
        let mut a = payload("firing", "critical").alerts[0].clone();
        a.labels.remove("namespace");
        assert!(matches!(from_alert(&a, &r), Err(e) if e.outcome() == "unmappable"));
        a.labels.remove("alertname");
        assert!(matches!(from_alert(&a, &r), Err(AlertError::NoAlertName)));
        let mut b = payload("firing", "critical").alerts[0].clone();
        b.status = "pending".into();
        assert!(matches!(from_alert(&b, &r), Err(AlertError::UnknownStatus(_))));
        b.status = "firing".into();
        b.starts_at = Some("soon".into());
        assert!(matches!(from_alert(&b, &r), Err(AlertError::BadStartsAt(_))));
    }
}
