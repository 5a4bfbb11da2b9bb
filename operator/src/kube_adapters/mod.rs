//! Adapters between the pure domain and the Kubernetes API: controllers, evidence collection,
//! applying and undoing actions, leader election, events.

pub mod actions;
pub mod bedrock;
pub mod config_history;
pub mod context;
pub mod events;
pub mod evidence;
pub mod github;
pub mod github_settings;
pub mod health;
pub mod incident_controller;
pub mod leader;
pub mod policy_context;
pub mod post_mortem_s3;
pub mod pull_request_steps;
pub mod remediation_controller;
pub mod status;

/// RFC 3339 "now", the one format used in statuses, timelines and snapshots.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().round(k8s_openapi::jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

/// Parses an RFC 3339 time written by `now_rfc3339`.
pub fn parse_time(s: &str) -> Option<k8s_openapi::jiff::Timestamp> {
    s.parse().ok()
}
