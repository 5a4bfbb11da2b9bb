//! Notifications against a local receiver: an approval waiting and the resolution are each
//! delivered once, signed; a receiver failing with 5xx is retried; a restart of the operator
//! does not notify again; a receiver that keeps failing shows as the Incident's
//! `NotificationDelivered=False` condition and in `salve_notifications_total`, until a delivery
//! succeeds.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use operator::crd::{Condition, ConditionStatus, condition_type, reason};
use operator::notify::signing;
use serde_json::{Value, json};

use crate::support::*;

#[derive(Clone, Default)]
struct Receiver {
    /// (signature header, body) of every request, including refused ones.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    /// Answer 503 to this many requests first.
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let sig = headers.get(signing::HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert!(signing::verify(b"hook-secret", &sig, body.as_bytes()), "every delivery is signed with the shared secret: {sig:?} {body}");
    r.seen.lock().expect("lock").push((sig, value));
    let mut fail = r.fail_first.lock().expect("lock");
    if *fail > 0 {
        *fail -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::OK
}

async fn receiver(fail_first: u32) -> (Receiver, String) {
    let r = Receiver { fail_first: Arc::new(Mutex::new(fail_first)), ..Default::default() };
    let app = Router::new().route("/hook", post(receive)).with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    (r, url)
}

fn kinds(r: &Receiver) -> Vec<String> {
    r.seen.lock().expect("lock").iter().map(|(_, v)| v["notification"]["kind"].as_str().unwrap_or_default().to_string()).collect()
}

/// Every action waits for a person; notifications go to the signed webhook at `url` (its URL
/// and secret in files under `dir`, as mounted from a Secret).
fn webhook_args(url: &str, dir: &std::path::Path) -> operator::config::RunArgs {
    std::fs::write(dir.join("url"), url).expect("url");
    std::fs::write(dir.join("secret"), "hook-secret\n").expect("secret");
    let mut a = args("replica-a");
    a.max_auto_approve_risk = "None".into();
    a.notify.notify_webhook_url_file = Some(dir.join("url"));
    a.notify.notify_webhook_secret_file = Some(dir.join("secret"));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_and_outcomes_are_notified_once_signed_and_retried() {
    let (rx, url) = receiver(2).await;
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = webhook_args(&url, dir.path());
    a.notify.notify_initial_backoff_ms = 50;
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let op = start_operator(&env, a.clone()).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    wait_remediation_phase(&env, "oms-5xx-r1", "AwaitingApproval").await;
    let approval = eventually("approval notified", || async {
        let seen = rx.seen.lock().expect("lock").clone();
        // The third attempt is the one the receiver accepts.
        (seen.len() >= 3)
            .then(|| seen.into_iter().rev().find(|(_, v)| v["notification"]["kind"] == "approval_needed").map(|(_, v)| v))
            .flatten()
    })
    .await;
    let n = &approval["notification"];
    assert_eq!(n["incident"], "oms-5xx");
    assert!(n["next_step"].as_str().is_some_and(|s| s.starts_with("kubectl salve approve oms-5xx-r1 -n shop")), "{n}");
    assert!(n["action"].as_str().is_some_and(|s| s.contains("POOL_SIZE")), "{n}");
    assert_eq!(rx.seen.lock().expect("lock").len(), 3, "two 503s were retried, then delivered");

    // A restart does not notify again.
    op.stop().await;
    let op = start_operator(&env, a).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(kinds(&rx).iter().filter(|k| *k == "approval_needed").count(), 3, "no new approval notification after a restart");

    decide(&env, "oms-5xx-r1", json!({"state": "Approved", "by": "alice"})).await;
    eventually("previous value restored", || async { (config_value(&env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(()) })
        .await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    eventually("resolution notified", || async { kinds(&rx).contains(&"resolved".to_string()).then_some(()) }).await;
    // The record follows the delivery (the receiver has the message a moment before the
    // annotation is written): wait for it, then check that it holds each transition once.
    let notified = eventually("resolution recorded", || async {
        let inc = incident(&env, "oms-5xx").await;
        let notified = inc.metadata.annotations.unwrap_or_default().get(operator::notify::NOTIFIED_ANNOTATION).cloned().unwrap_or_default();
        notified.contains("resolved").then_some(notified)
    })
    .await;
    assert_eq!(notified, "approval:oms-5xx-r1,resolved");
    assert_eq!(kinds(&rx).iter().filter(|k| *k == "resolved").count(), 1, "resolved once");
    op.stop().await;
}

fn delivery_condition(inc: &operator::crd::Incident) -> Option<Condition> {
    inc.status.as_ref()?.conditions.iter().find(|c| c.type_ == condition_type::NOTIFICATION_DELIVERED).cloned()
}

/// The value of one sample line of `/metrics` (0 when the series is not exported yet).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_keeps_failing_shows_as_a_condition_and_a_metric_until_a_delivery_succeeds() {
    let (rx, url) = receiver(u32::MAX).await;
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = webhook_args(&url, dir.path());
    a.notify.notify_max_attempts = 2;
    a.notify.notify_initial_backoff_ms = 50;
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let op = start_operator_with(&env, a, Some(listener)).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    wait_remediation_phase(&env, "oms-5xx-r1", "AwaitingApproval").await;

    // Every attempt answered 503: the Incident says so, with the error and never the URL.
    let failed = eventually("NotificationDelivered=False", || async {
        delivery_condition(&incident(&env, "oms-5xx").await).filter(|c| c.status == ConditionStatus::False)
    })
    .await;
    assert_eq!(failed.reason, reason::DELIVERY_FAILED);
    assert!(failed.message.contains("approval_needed notification not delivered") && failed.message.contains("HTTP 503"), "{failed:?}");
    for secret in [url.as_str(), "/hook", "hook-secret"] {
        assert!(!failed.message.contains(secret), "the condition must not quote {secret:?}: {failed:?}");
    }
    assert!(rx.seen.lock().expect("lock").len() >= 2, "both attempts reached the receiver");
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(sample(&metrics, r#"salve_notifications_total{channel="webhook",outcome="failed"}"#) >= 1.0, "{metrics}");
    assert_eq!(sample(&metrics, r#"salve_notifications_total{channel="webhook",outcome="delivered"}"#), 0.0, "{metrics}");

    // The receiver is back; the next notification owed (the resolution) gets through.
    *rx.fail_first.lock().expect("lock") = 0;
    decide(&env, "oms-5xx-r1", json!({"state": "Approved", "by": "alice"})).await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    let delivered = eventually("NotificationDelivered=True", || async {
        delivery_condition(&incident(&env, "oms-5xx").await).filter(|c| c.status == ConditionStatus::True && c.message.contains("resolved"))
    })
    .await;
    assert_eq!(delivered.reason, reason::DELIVERED);
    assert!(kinds(&rx).contains(&"resolved".to_string()));
    let inc = incident(&env, "oms-5xx").await;
    assert!(!inc.metadata.annotations.unwrap_or_default().contains_key(operator::notify::ERROR_ANNOTATION), "the error is cleared");

    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(sample(&metrics, r#"salve_notifications_total{channel="webhook",outcome="delivered"}"#) >= 1.0, "{metrics}");
    // The remediation ended once, and is counted once however often it is reconciled after.
    let action = remediation(&env, "oms-5xx-r1").await.expect("remediation").spec.action.kind.as_str();
    let series = format!(r#"salve_remediations_total{{action="{action}",outcome="succeeded"}}"#);
    assert_eq!(sample(&metrics, &series), 1.0, "{metrics}");
    op.stop().await;
    env.stop().await;
}
