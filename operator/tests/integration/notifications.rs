//! Notifications against a local receiver: an approval waiting and the resolution are each
//! delivered once, signed; a receiver failing with 5xx is retried; a restart of the operator
//! does not notify again; a receiver that keeps failing shows as the Incident's
//! `NotificationDelivered=False` condition and in `salve_notifications_total`, until a delivery
//! succeeds. Slack (a local receiver answering as Slack's incoming webhooks do: `200 ok`, `429`
//! with `Retry-After` while rate-limited) gets the model's words as text, is retried on its own
//! without the webhook posting again, and is not called before its `Retry-After` has passed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use operator::crd::{Condition, ConditionStatus, condition_type, reason};
use operator::notify::signing;
use serde_json::{Value, json};

use crate::support::bedrock_stand_in::{MODEL, Reply, stand_in};
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

/// A Slack incoming webhook as Slack documents it: `200 ok`; when rate-limited, `429` with
/// `Retry-After` (seconds), and a request before that time has passed is limited again.
#[derive(Clone, Default)]
struct Slack {
    /// The body of every request, including refused ones.
    seen: Arc<Mutex<Vec<Value>>>,
    /// Answer 503 to this many requests first.
    fail_first: Arc<Mutex<u32>>,
    /// Rate-limit the next request for this many seconds.
    limit_next: Arc<Mutex<Option<u64>>>,
    limited_until: Arc<Mutex<Option<Instant>>>,
    /// Requests that came while the rate limit still held.
    early: Arc<Mutex<u32>>,
}

async fn slack_receive(State(s): State<Slack>, body: String) -> Response {
    s.seen.lock().expect("lock").push(serde_json::from_str(&body).unwrap_or(Value::Null));
    let now = Instant::now();
    let mut until = s.limited_until.lock().expect("lock");
    if let Some(left) = until.and_then(|u| u.checked_duration_since(now)) {
        *s.early.lock().expect("lock") += 1;
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", (left.as_secs() + 1).to_string())], "rate_limited").into_response();
    }
    if let Some(secs) = s.limit_next.lock().expect("lock").take() {
        *until = Some(now + Duration::from_secs(secs));
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "rate_limited").into_response();
    }
    let mut fail = s.fail_first.lock().expect("lock");
    if *fail > 0 {
        *fail -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").into_response();
    }
    (StatusCode::OK, "ok").into_response()
}

async fn slack(fail_first: u32, limit_next: Option<u64>) -> (Slack, String) {
    let s = Slack { fail_first: Arc::new(Mutex::new(fail_first)), limit_next: Arc::new(Mutex::new(limit_next)), ..Default::default() };
    let app = Router::new().route("/services/T1/B1/x", post(slack_receive)).with_state(s.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/services/T1/B1/x", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    (s, url)
}

/// The mrkdwn text of the Slack messages that were accepted (the last request of a run of
/// refusals is the accepted one; every request carries the same message).
fn slack_texts(s: &Slack) -> Vec<String> {
    s.seen.lock().expect("lock").iter().filter_map(|v| v["blocks"][0]["text"]["text"].as_str().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_shows_the_models_words_as_text_and_retries_on_its_own_without_the_webhook_posting_again() {
    // The model's summary tries to page everyone and to hide a link.
    let answer = json!({"root_cause_category": "Config_Error",
        "summary": "<!channel> POOL_SIZE=0 crashes the pool; fix: <http://evil.example/x|the runbook> @here <@U123>",
        "confidence": 0.9, "cited_evidence": ["POOL_SIZE must be > 0"],
        "proposed_action": {"kind": "SetConfigMapKey", "targetName": CM, "key": "POOL_SIZE", "value": "10"}});
    let (_bedrock, model_url) = stand_in(vec![Reply::Tool(answer.clone()), Reply::Tool(answer)]).await;
    let (hook, hook_url) = receiver(0).await;
    // Slack answers 503 twice; every delivery makes one attempt per channel.
    let (slack, slack_url) = slack(2, None).await;
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = webhook_args(&hook_url, dir.path());
    std::fs::write(dir.path().join("slack"), &slack_url).expect("slack url");
    a.notify.notify_slack_url_file = Some(dir.path().join("slack"));
    a.notify.notify_max_attempts = 1;
    a.notify.notify_initial_backoff_ms = 50;
    a.bedrock_model_id = Some(MODEL.into());
    a.bedrock_endpoint_url = Some(model_url);
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let op = start_operator(&env, a).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    wait_remediation_phase(&env, "oms-5xx-r1", "AwaitingApproval").await;

    // Slack is tried again on its own until it takes the message.
    let notified = eventually("approval delivered to both channels", || async {
        let inc = incident(&env, "oms-5xx").await;
        let notified = inc.metadata.annotations.unwrap_or_default().get(operator::notify::NOTIFIED_ANNOTATION).cloned().unwrap_or_default();
        (notified == "approval:oms-5xx-r1").then_some(notified)
    })
    .await;
    assert_eq!(notified, "approval:oms-5xx-r1");
    assert_eq!(slack.seen.lock().expect("lock").len(), 3, "two 503s, then accepted");
    assert_eq!(kinds(&hook), ["approval_needed"], "the webhook, which took it at once, got it exactly once");

    let texts = slack_texts(&slack);
    let text = texts.last().expect("a Slack message");
    assert!(text.contains("&lt;!channel&gt; POOL_SIZE=0 crashes the pool"), "{text}");
    assert!(text.contains("&lt;http://evil.example/x|the runbook&gt;"), "{text}");
    assert!(text.contains("&lt;@U123&gt;") && !text.contains("@here"), "{text}");
    for markup in ["<!channel>", "<http", "<@U123>", "<!here>"] {
        assert!(!text.contains(markup), "{markup} must not reach Slack as markup: {text}");
    }
    op.stop().await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_slack_is_called_again_only_after_its_retry_after() {
    let (slack, slack_url) = slack(0, Some(2)).await;
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("slack"), &slack_url).expect("slack url");
    let mut a = args("replica-a");
    a.max_auto_approve_risk = "None".into();
    a.notify.notify_slack_url_file = Some(dir.path().join("slack"));
    // Our own back-off alone would call again after 20 ms, while Slack still limits.
    a.notify.notify_max_attempts = 3;
    a.notify.notify_initial_backoff_ms = 20;
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let op = start_operator(&env, a).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    wait_remediation_phase(&env, "oms-5xx-r1", "AwaitingApproval").await;
    eventually("approval notified", || async {
        let inc = incident(&env, "oms-5xx").await;
        inc.metadata.annotations.unwrap_or_default().get(operator::notify::NOTIFIED_ANNOTATION).filter(|v| v.contains("approval")).cloned()
    })
    .await;
    assert_eq!(*slack.early.lock().expect("lock"), 0, "no request while the rate limit held");
    assert_eq!(slack.seen.lock().expect("lock").len(), 2, "limited once, then accepted on the next attempt");
    op.stop().await;
    env.stop().await;
}
