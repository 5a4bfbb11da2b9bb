//! Which workload an alarm or alert is about. Pure.
//!
//! Order: the configured map (`SALVE_ALARM_WORKLOADS`), then hints carried by the signal
//! (CloudWatch metric dimensions, Alertmanager labels), then the default namespace. The hints,
//! matched case-insensitively:
//! - deployment: `Deployment`, `DeploymentName`, `deployment`, then Container Insights'
//!   `PodName` (which holds the workload's name, not a pod's), then `app`, `app_kubernetes_io_name`
//! - service: `Service`, `ServiceName`, `service` (else the deployment's name); a service alone
//!   also names the deployment
//! - namespace: `Namespace`, `KubernetesNamespace`, `namespace` (Container Insights and
//!   kube-state-metrics), else the default namespace
//!
//! Map syntax: comma-separated `<alarm>=<namespace>/<deployment>[:<severity>]`, where `<alarm>`
//! is an exact name or a prefix ending in `*`: `oms-5xx=shop/oms:Critical,ims-*=shop/ims`.
//! The first matching entry wins.

use std::collections::BTreeMap;

use crate::crd::Severity;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub deployment: String,
    pub service: String,
    pub severity: Severity,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    pattern: String,
    prefix: bool,
    namespace: String,
    deployment: String,
    severity: Option<Severity>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkloadMapError {
    #[error("workload map entry {0:?}: expected <alarm>=<namespace>/<deployment>[:<severity>]")]
    BadEntry(String),
    #[error("unknown severity {0:?} (Critical, High, Medium or Low)")]
    BadSeverity(String),
}

/// The configured map plus the defaults used when it has no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadResolver {
    entries: Vec<Entry>,
    default_namespace: Option<String>,
    default_severity: Severity,
}

pub fn parse_severity(s: &str) -> Result<Severity, WorkloadMapError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "critical" => Ok(Severity::Critical),
        "high" => Ok(Severity::High),
        "medium" => Ok(Severity::Medium),
        "low" => Ok(Severity::Low),
        _ => Err(WorkloadMapError::BadSeverity(s.to_string())),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl WorkloadResolver {
    pub fn new(map: &str, default_namespace: Option<String>, default_severity: Severity) -> Result<Self, WorkloadMapError> {
        let mut entries = Vec::new();
        for raw in map.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || WorkloadMapError::BadEntry(raw.to_string());
            let (pattern, target) = raw.split_once('=').ok_or_else(bad)?;
            let (target, severity) = match target.split_once(':') {
                Some((t, s)) => (t, Some(parse_severity(s)?)),
                None => (target, None),
            };
            let (namespace, deployment) = target.trim().split_once('/').ok_or_else(bad)?;
            let (pattern, prefix) = match pattern.trim().strip_suffix('*') {
                Some(p) => (p, true),
                None => (pattern.trim(), false),
            };
            if (pattern.is_empty() && !prefix) || !is_dns_label(namespace) || !is_dns_label(deployment) {
                return Err(bad());
            }
            entries.push(Entry {
                pattern: pattern.to_string(),
                prefix,
                namespace: namespace.to_string(),
                deployment: deployment.to_string(),
                severity,
            });
        }
        let default_namespace = default_namespace.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        Ok(Self { entries, default_namespace, default_severity })
    }

    pub fn default_severity(&self) -> Severity {
        self.default_severity
    }

    /// `name` is the alarm or alert name; `hints` the dimensions or labels; `severity` one the
    /// signal itself carries (Alertmanager's `severity` label), used unless the map sets one.
    pub fn resolve(&self, name: &str, hints: &BTreeMap<String, String>, severity: Option<Severity>) -> Option<Workload> {
        if let Some(e) = self.entries.iter().find(|e| if e.prefix { name.starts_with(&e.pattern) } else { name == e.pattern }) {
            return Some(Workload {
                namespace: e.namespace.clone(),
                deployment: e.deployment.clone(),
                service: hint(hints, &["Service", "ServiceName"]).unwrap_or_else(|| e.deployment.clone()),
                severity: e.severity.or(severity).unwrap_or(self.default_severity),
            });
        }
        let service = hint(hints, &["Service", "ServiceName"]);
        let deployment = hint(hints, &["Deployment", "DeploymentName", "PodName", "app", "app_kubernetes_io_name"]).or(service.clone())?;
        let namespace = hint(hints, &["Namespace", "KubernetesNamespace"]).or(self.default_namespace.clone())?;
        if !is_dns_label(&namespace) || !is_dns_label(&deployment) {
            return None;
        }
        Some(Workload {
            service: service.unwrap_or_else(|| deployment.clone()),
            namespace,
            deployment,
            severity: severity.unwrap_or(self.default_severity),
        })
    }
}

/// First non-empty hint among `keys`, compared case-insensitively.
fn hint(hints: &BTreeMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        hints.iter().find(|(name, v)| name.eq_ignore_ascii_case(k) && !v.trim().is_empty()).map(|(_, v)| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_map_wins_exact_then_prefix() {
        let r = WorkloadResolver::new("oms-5xx=shop/oms:Critical, ims-*=shop/ims", None, Severity::High).expect("map");
        let w = r.resolve("oms-5xx", &dims(&[("Deployment", "other")]), None).expect("mapped");
        assert_eq!(
            (w.namespace.as_str(), w.deployment.as_str(), w.service.as_str(), w.severity),
            ("shop", "oms", "oms", Severity::Critical)
        );
        let w = r.resolve("ims-latency", &BTreeMap::new(), Some(Severity::Low)).expect("prefix");
        assert_eq!((w.deployment.as_str(), w.severity), ("ims", Severity::Low));
        assert_eq!(r.resolve("oms-5xx-2", &BTreeMap::new(), None), None, "exact entries match exactly");
    }

    #[test]
    fn dimensions_then_default_namespace() {
        let r = WorkloadResolver::new("", Some("shop".into()), Severity::High).expect("map");
        let w = r.resolve("x", &dims(&[("ClusterName", "prod"), ("Namespace", "payments"), ("PodName", "api")]), None).expect("insights");
        assert_eq!((w.namespace.as_str(), w.deployment.as_str(), w.service.as_str()), ("payments", "api", "api"));
        let w = r.resolve("x", &dims(&[("ServiceName", "oms")]), None).expect("service only");
        assert_eq!((w.namespace.as_str(), w.deployment.as_str()), ("shop", "oms"));
        assert_eq!(r.resolve("x", &dims(&[("LoadBalancer", "app/shop/1")]), None), None, "nothing names a workload");
        let no_default = WorkloadResolver::new("", None, Severity::High).expect("map");
        assert_eq!(no_default.resolve("x", &dims(&[("deployment", "oms")]), None), None, "no namespace anywhere");
        assert_eq!(r.resolve("x", &dims(&[("deployment", "Not_A_Name")]), None), None, "not a Kubernetes name");
    }

    #[test]
    fn bad_maps_are_reported() {
        for bad in ["oms", "oms=shop", "=shop/oms", "oms=Shop/oms", "oms=shop/oms:urgent"] {
            assert!(WorkloadResolver::new(bad, None, Severity::High).is_err(), "{bad}");
        }
    }
}
