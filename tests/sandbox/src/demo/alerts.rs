//! What raises the alarm in the sandbox, as Prometheus and Alertmanager would: a rule evaluated
//! every second, firing after it held for a while, sending Alertmanager's webhook payload
//! (version 4) to the operator, and the `resolved` notification when it clears.
//!
//! - `ErrorRatio`: the share of 5xx answers in `<service>_http_requests_total` over the last 10 s,
//!   scraped from the workload's `/metrics` through its Service (an SLO burn alert)
//! - `WorkloadUnhealthy`: fewer available replicas than desired, or a container restarting or
//!   waiting in a back-off (kube-state-metrics' KubeDeploymentReplicasMismatch and
//!   KubePodCrashLooping, with short `for:` durations)

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertRule {
    /// 5xx share of `<metric_prefix>_http_requests_total` behind `service` above `threshold`.
    ErrorRatio {
        service: String,
        port: u16,
        metric_prefix: String,
        #[serde(default = "five_percent")]
        threshold: f64,
    },
    /// The workload's Deployment is short of available replicas or its containers restart.
    WorkloadUnhealthy,
    /// A person (or a system the sandbox does not run) raises this alert as soon as the fault
    /// is in; it never resolves by itself.
    Manual { summary: String },
}

fn five_percent() -> f64 {
    0.05
}

/// What the rule reported, for the narration.
#[derive(Debug, Clone)]
pub enum AlertEvent {
    Firing(String),
    Resolved,
}

pub struct AlertContext {
    pub client: Client,
    pub namespace: String,
    pub workload: String,
    pub webhook: String,
    pub token: String,
}

/// Evaluates the rule every second until `stop`; posts firing/resolved notifications.
pub async fn run(rule: AlertRule, ctx: AlertContext, events: mpsc::UnboundedSender<AlertEvent>, stop: CancellationToken) {
    let http = reqwest::Client::new();
    let alertname = match &rule {
        AlertRule::ErrorRatio { .. } => "ErrorBudgetBurn",
        AlertRule::WorkloadUnhealthy => "KubeWorkloadUnhealthy",
        AlertRule::Manual { .. } => "ReportedByAPerson",
    };
    let mut samples: VecDeque<(Instant, f64, f64)> = VecDeque::new();
    let (mut bad_since, mut good_since): (Option<Instant>, Option<Instant>) = (None, None);
    let mut firing: Option<String> = None;
    let mut restarts_seen: Option<i32> = None;
    while !stop.is_cancelled() {
        let verdict = match &rule {
            AlertRule::ErrorRatio { service, port, metric_prefix, threshold } => {
                error_ratio(&http, &ctx, service, *port, metric_prefix, &mut samples)
                    .await
                    .map(|r| (r > *threshold, format!("{:.0}% of requests failed over the last 10s", r * 100.0)))
            }
            AlertRule::WorkloadUnhealthy => workload_unhealthy(&ctx, &mut restarts_seen).await,
            AlertRule::Manual { summary } => Some((true, summary.clone())),
        };
        let now = Instant::now();
        if let Some((bad, summary)) = verdict {
            if bad {
                good_since = None;
                let since = *bad_since.get_or_insert(now);
                if firing.is_none() && now.duration_since(since) >= Duration::from_secs(3) {
                    let starts = operator::domain::time::now_rfc3339();
                    if post(&http, &ctx, alertname, "firing", &summary, &starts).await {
                        let _ = events.send(AlertEvent::Firing(summary.clone()));
                        firing = Some(starts);
                    }
                }
            } else {
                bad_since = None;
                let since = *good_since.get_or_insert(now);
                if let Some(starts) = &firing
                    && now.duration_since(since) >= Duration::from_secs(10)
                    && post(&http, &ctx, alertname, "resolved", &summary, starts).await
                {
                    let _ = events.send(AlertEvent::Resolved);
                    firing = None;
                }
            }
        }
        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => {}, _ = stop.cancelled() => {} }
    }
}

async fn post(http: &reqwest::Client, ctx: &AlertContext, alertname: &str, status: &str, summary: &str, starts_at: &str) -> bool {
    let mut alert = json!({
        "status": status,
        "labels": {"alertname": alertname, "namespace": ctx.namespace, "deployment": ctx.workload, "severity": "critical"},
        "annotations": {"summary": summary},
        "startsAt": starts_at,
        "fingerprint": format!("{alertname}-{}-{}", ctx.namespace, ctx.workload),
    });
    if status == "resolved" {
        alert["endsAt"] = json!(operator::domain::time::now_rfc3339());
    }
    let body = json!({"version": "4", "status": status, "receiver": "salve", "groupKey": alertname, "alerts": [alert],
        "groupLabels": {"alertname": alertname}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://sandbox-alertmanager"});
    http.post(&ctx.webhook).bearer_auth(&ctx.token).json(&body).send().await.is_ok_and(|r| r.status().is_success())
}

/// Sums `(all, 5xx)` of a counter in Prometheus' text format.
pub fn count_requests(text: &str, metric: &str) -> (f64, f64) {
    let (mut all, mut errors) = (0.0, 0.0);
    for line in text.lines().filter(|l| l.starts_with(&format!("{metric}{{"))) {
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        all += value;
        if line.contains("status=\"5") {
            errors += value;
        }
    }
    (all, errors)
}

async fn error_ratio(
    http: &reqwest::Client,
    ctx: &AlertContext,
    service: &str,
    port: u16,
    prefix: &str,
    samples: &mut VecDeque<(Instant, f64, f64)>,
) -> Option<f64> {
    let svc = Api::<Service>::namespaced(ctx.client.clone(), &ctx.namespace).get_opt(service).await.ok().flatten()?;
    let ip = svc.spec.and_then(|s| s.cluster_ip)?;
    // An unreachable Service counts as a failed scrape: every request would fail too.
    let (all, errors) = match http.get(format!("http://{ip}:{port}/metrics")).timeout(Duration::from_secs(2)).send().await {
        Ok(r) => count_requests(&r.text().await.unwrap_or_default(), &format!("{prefix}_http_requests_total")),
        Err(_) => return Some(1.0),
    };
    let now = Instant::now();
    if samples.back().is_some_and(|(_, a, _)| all < *a) {
        samples.clear(); // the process restarted: counters reset
    }
    samples.push_back((now, all, errors));
    while samples.front().is_some_and(|(t, _, _)| now.duration_since(*t) > Duration::from_secs(10)) {
        samples.pop_front();
    }
    let (_, a0, e0) = samples.front()?;
    let (da, de) = (all - a0, errors - e0);
    (da >= 3.0).then(|| de / da)
}

async fn workload_unhealthy(ctx: &AlertContext, restarts_seen: &mut Option<i32>) -> Option<(bool, String)> {
    let d = Api::<Deployment>::namespaced(ctx.client.clone(), &ctx.namespace).get_opt(&ctx.workload).await.ok().flatten()?;
    let desired = d.spec.replicas.unwrap_or(1);
    let available = d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
    let selector = d.spec.selector.match_labels.clone().unwrap_or_default();
    let labels = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ctx.namespace).list(&ListParams::default().labels(&labels)).await.ok()?.items;
    let statuses: Vec<_> = pods.iter().flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten())).collect();
    let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
    let waiting: Vec<String> =
        statuses.iter().filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone()).filter(|r| r != "ContainerCreating").collect();
    let restarted = restarts_seen.is_some_and(|r| restarts > r);
    *restarts_seen = Some(restarts);
    let bad = available < desired || restarted || !waiting.is_empty();
    let summary = format!(
        "{}/{desired} available, {restarts} restarts{}",
        available,
        if waiting.is_empty() { String::new() } else { format!(", waiting: {}", waiting.join(", ")) }
    );
    let _ = pods.first().map(|p| p.name_any());
    Some((bad, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_hundreds_are_counted_from_prometheus_text() {
        let text = "# HELP oms_http_requests_total x\noms_http_requests_total{method=\"POST\",route=\"/orders\",status=\"201\"} 90\noms_http_requests_total{method=\"POST\",route=\"/orders\",status=\"503\"} 10\nother_total 5\n";
        assert_eq!(count_requests(text, "oms_http_requests_total"), (100.0, 10.0));
    }
}
