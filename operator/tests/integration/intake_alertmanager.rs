//! The Alertmanager webhook: requests through the real axum router (`tower::ServiceExt::oneshot`)
//! and the operator's own HTTP server, writes to the fake Kubernetes API server (a TEST STAND-IN;
//! its scripted faults answer with the status codes a real API server sends).

use std::sync::Arc;

use crate::support::*;
use axum::body::Body;
use fake_kube::Fault;
use http::{Request, StatusCode};
use kube::api::ListParams;
use kube::{Api, Client, Config, ResourceExt};
use operator::crd::{Incident, Severity, SignalState, SourceKind};
use operator::domain::policy::Policy;
use operator::intake::config::SecretToken;
use operator::intake::webhook::{PATH, WebhookState, router};
use operator::intake::workload::WorkloadResolver;
use operator::metrics::Metrics;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "am-token-4f1c9e";

async fn operator_client(env: &Env) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(&env.fake.kubeconfig_yaml_as(NS, "salve-operator")).expect("kubeconfig");
    Client::try_from(Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config")).expect("client")
}

fn app(client: Client, token: Option<&str>, metrics: &Metrics) -> axum::Router {
    app_allowing(client, token, metrics, &[NS])
}

/// The webhook with a policy allowing `namespaces`.
fn app_allowing(client: Client, token: Option<&str>, metrics: &Metrics, namespaces: &[&str]) -> axum::Router {
    let resolver = WorkloadResolver::new("", None, Severity::High).expect("resolver");
    let policy = Policy { allowed_namespaces: namespaces.iter().map(|n| n.to_string()).collect(), ..Policy::default() };
    router(Arc::new(WebhookState::new(token, client, resolver, policy, metrics.clone())))
}

/// One alert of a webhook body: `alertname` in `namespace`, firing from `starts_at` (resolved at
/// `ends_at` when given).
fn alert(name: &str, namespace: &str, starts_at: &str, ends_at: Option<&str>) -> Value {
    json!({
        "status": if ends_at.is_some() { "resolved" } else { "firing" },
        "labels": {"alertname": name, "namespace": namespace, "deployment": APP, "severity": "critical"},
        "annotations": {"summary": format!("{name} in {namespace}")},
        "startsAt": starts_at,
        "endsAt": ends_at.unwrap_or("0001-01-01T00:00:00Z"),
        "generatorURL": "http://prometheus.monitoring:9090/graph",
        "fingerprint": format!("{name}-{namespace}")
    })
}

/// A webhook body (version 4) carrying `alerts`.
fn batch(alerts: Vec<Value>) -> String {
    json!({"receiver": "salve", "status": "firing", "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager.monitoring:9093",
        "alerts": alerts})
    .to_string()
}

fn rejected(metrics: &Metrics, reason: &str) -> u64 {
    metrics.intake_rejected.with_label_values(&[reason]).get()
}

/// Alertmanager's webhook body (version 4) for one alert.
fn payload(status: &str) -> Value {
    json!({
        "receiver": "salve", "status": status, "version": "4",
        "groupKey": "{}:{alertname=\"OmsHighErrorRate\"}", "truncatedAlerts": 0,
        "groupLabels": {"alertname": "OmsHighErrorRate"},
        "commonLabels": {"alertname": "OmsHighErrorRate", "namespace": NS, "deployment": APP, "severity": "critical"},
        "commonAnnotations": {"summary": "OMS error rate above 5%"},
        "externalURL": "http://alertmanager.monitoring:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "OmsHighErrorRate", "namespace": NS, "deployment": APP, "severity": "critical"},
            "annotations": {"summary": "OMS error rate above 5%", "description": "5xx ratio is 0.12"},
            "startsAt": "2026-11-21T19:50:03.157Z",
            "endsAt": if status == "resolved" { "2026-11-21T20:05:03.157Z" } else { "0001-01-01T00:00:00Z" },
            "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=oms_errors",
            "fingerprint": "c6eadffa33fcdf37"
        }]
    })
}

async fn post(app: &axum::Router, auth: Option<&str>, body: String) -> (StatusCode, Value) {
    let mut req = Request::post(PATH).header("content-type", "application/json");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = app.clone().oneshot(req.body(Body::from(body)).expect("request")).await.expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn incidents(env: &Env) -> Vec<Incident> {
    Api::<Incident>::all(env.client.clone()).list(&ListParams::default()).await.expect("list").items
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_right_token_are_refused_and_change_nothing() {
    let env = env().await;
    let metrics = Metrics::new().expect("metrics");
    let app = app(operator_client(&env).await, Some(TOKEN), &metrics);
    for auth in [None, Some("Bearer wrong-token"), Some("Basic YWRtaW46YWRtaW4="), Some(TOKEN)] {
        let (status, body) = post(&app, auth, payload("firing").to_string()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["message"].is_string());
    }
    assert!(incidents(&env).await.is_empty());

    // Without a configured token the route is closed, not open.
    let unconfigured = app_without_token(&env, &metrics).await;
    let (status, body) = post(&unconfigured, Some(&bearer()), payload("firing").to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not_configured");
    assert!(incidents(&env).await.is_empty());
}

async fn app_without_token(env: &Env, metrics: &Metrics) -> axum::Router {
    app(operator_client(env).await, None, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_400_with_a_json_error() {
    let env = env().await;
    let metrics = Metrics::new().expect("metrics");
    let app = app(operator_client(&env).await, Some(TOKEN), &metrics);
    for body in ["{not json", r#"{"status":"firing"}"#, r#"{"alerts":"many"}"#] {
        let (status, resp) = post(&app, Some(&bearer()), body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp["error"]["code"], "malformed");
    }
    assert_eq!(metrics.intake_messages.with_label_values(&["alertmanager", "malformed"]).get(), 3);
    assert!(incidents(&env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_opens_one_incident_repeats_change_nothing_and_resolved_records_ok() {
    let env = env().await;
    let metrics = Metrics::new().expect("metrics");
    let app = app(operator_client(&env).await, Some(TOKEN), &metrics);

    let (status, body) = post(&app, Some(&bearer()), payload("firing").to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let created = body["created"][0].as_str().expect("created incident name").to_string();
    let all = incidents(&env).await;
    assert_eq!(all.len(), 1);
    let inc = &all[0];
    assert_eq!(inc.name_any(), created);
    assert_eq!(inc.namespace().as_deref(), Some(NS));
    assert_eq!(inc.spec.target.name, APP);
    assert_eq!(inc.spec.severity, Severity::Critical);
    assert_eq!(inc.spec.source.kind, SourceKind::Alertmanager);
    assert_eq!(inc.spec.source.alert_name.as_deref(), Some("OmsHighErrorRate"));
    assert_eq!(inc.spec.source.fingerprint.as_deref(), Some("c6eadffa33fcdf37"));
    assert_eq!(inc.spec.source.reason.as_deref(), Some("OMS error rate above 5%"));

    // Alertmanager re-sends firing alerts every repeat_interval.
    let (status, body) = post(&app, Some(&bearer()), payload("firing").to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["duplicate"][0], created.as_str());
    assert_eq!(incidents(&env).await.len(), 1);

    let (status, body) = post(&app, Some(&bearer()), payload("resolved").to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["resolved"][0], "OmsHighErrorRate");
    assert_eq!(incident(&env, &created).await.spec.signal, Some(SignalState::Ok));
    let count = |o: &str| metrics.intake_messages.with_label_values(&["alertmanager", o]).get();
    assert_eq!((count("created"), count("duplicate"), count("ok_recorded")), (1, 1, 1));
    assert_rbac_covers_operator_requests(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_without_a_workload_are_skipped_and_reported() {
    let env = env().await;
    let metrics = Metrics::new().expect("metrics");
    let app = app(operator_client(&env).await, Some(TOKEN), &metrics);
    let mut p = payload("firing");
    p["alerts"][0]["labels"] = json!({"alertname": "DiskFull", "instance": "node-1"});
    let (status, body) = post(&app, Some(&bearer()), p.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["rejected"][0]["alert"], "DiskFull");
    assert_eq!(body["rejected"][0]["reason"], "Unmappable");
    assert!(body["rejected"][0]["message"].as_str().is_some_and(|r| r.contains("no workload")));
    assert!(incidents(&env).await.is_empty());
    assert_eq!(metrics.intake_messages.with_label_values(&["alertmanager", "unmappable"]).get(), 1);
    assert_eq!(rejected(&metrics, "Unmappable"), 1);
}

/// Alertmanager retries a notification only on 5xx and drops it on any 4xx, so an alert that
/// can never be written must neither fail the batch (the alerts after it would be retried
/// forever, or lost) nor be retried: it is rejected on its own, and the batch answers 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_that_can_never_be_written_are_rejected_one_by_one_and_the_rest_get_through() {
    let env = env().await;
    let metrics = Metrics::new().expect("metrics");
    // The API server refuses Incidents in `locked` (RBAC: 403) and in `gone` (no such namespace: 404).
    for (ns, status) in [("locked", 403), ("gone", 404), ("strict", 422)] {
        let path_suffix = format!("/namespaces/{ns}/incidents");
        env.fake.fail_requests(Fault { method: "POST".into(), path_suffix, status, skip: 0, times: u32::MAX });
    }
    let app = app_allowing(operator_client(&env).await, Some(TOKEN), &metrics, &[NS, "locked", "gone", "strict"]);
    let t = "2026-11-21T19:50:03.157Z";
    let body = batch(vec![
        alert("PaymentsDown", "payments", t, None),
        alert("LockedDown", "locked", t, None),
        alert("GoneDown", "gone", t, None),
        alert("StrictDown", "strict", t, None),
        alert("OmsDown", NS, t, None),
    ]);
    let (status, resp) = post(&app, Some(&bearer()), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let reasons: Vec<(&str, &str)> =
        resp["rejected"].as_array().expect("rejected").iter().filter_map(|r| Some((r["alert"].as_str()?, r["reason"].as_str()?))).collect();
    assert_eq!(
        reasons,
        [("PaymentsDown", "NamespaceNotAllowed"), ("LockedDown", "Forbidden"), ("GoneDown", "NotFound"), ("StrictDown", "Invalid")]
    );
    let all = incidents(&env).await;
    assert_eq!(all.len(), 1, "the alert after the rejected ones became an incident");
    assert_eq!(all[0].namespace().as_deref(), Some(NS));
    assert_eq!(resp["created"][0], all[0].name_any().as_str());
    for reason in ["NamespaceNotAllowed", "Forbidden", "NotFound", "Invalid"] {
        assert_eq!(rejected(&metrics, reason), 1, "{reason}");
    }
    // Alertmanager re-sends the group: the same answer, nothing written twice.
    let (status, resp) = post(&app, Some(&bearer()), body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["duplicate"][0], all[0].name_any().as_str());
    assert_eq!(incidents(&env).await.len(), 1);
}

/// A failure a retry can help answers 503 (Alertmanager retries the batch), but only after every
/// other alert of the batch was handled: the retry then finds them done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_a_retry_can_help_answers_503_after_the_other_alerts_are_written() {
    let env = env().await;
    let metrics = Metrics::new().expect("metrics");
    // A failing API server answers the first create in `busy` 500, the next one 502 (429, 503
    // and 504 are retried inside kube's client already).
    for status in [500, 502] {
        env.fake.fail_requests(Fault {
            method: "POST".into(),
            path_suffix: "/namespaces/busy/incidents".into(),
            status,
            skip: 0,
            times: 1,
        });
    }
    let app = app_allowing(operator_client(&env).await, Some(TOKEN), &metrics, &[NS, "busy", "locked"]);
    env.fake.fail_requests(Fault {
        method: "POST".into(),
        path_suffix: "/namespaces/locked/incidents".into(),
        status: 403,
        skip: 0,
        times: u32::MAX,
    });
    let t = "2026-11-21T19:50:03.157Z";
    let body = batch(vec![alert("BusyDown", "busy", t, None), alert("LockedDown", "locked", t, None), alert("OmsDown", NS, t, None)]);
    for attempt in ["500", "502"] {
        let (status, resp) = post(&app, Some(&bearer()), body.clone()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "API server answered {attempt}: {resp}");
        assert_eq!(resp["error"]["code"], "kubernetes_unavailable");
        assert_eq!(resp["alerts"]["failed"][0]["alert"], "BusyDown");
        assert_eq!(resp["alerts"]["rejected"][0]["reason"], "Forbidden");
    }
    let names = |all: Vec<Incident>| all.iter().map(|i| i.namespace().unwrap_or_default()).collect::<Vec<_>>();
    assert_eq!(names(incidents(&env).await), [NS], "the alert after the failing one was written");
    // Alertmanager's retry: the API server is back.
    let (status, resp) = post(&app, Some(&bearer()), body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let mut written = names(incidents(&env).await);
    written.sort();
    assert_eq!(written, ["busy", NS]);
    assert_eq!(rejected(&metrics, "Forbidden"), 3, "rejected each time it came, never written");
}

/// A late or redelivered OK must not resolve a newer Incident of the same alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_resolved_alert_does_not_resolve_a_newer_incident_of_the_same_alert() {
    let env = env().await;
    let metrics = Metrics::new().expect("metrics");
    let app = app(operator_client(&env).await, Some(TOKEN), &metrics);
    let (t1, t2, t3, t4) = ("2026-11-21T19:50:00Z", "2026-11-21T20:05:00Z", "2026-11-21T20:30:00Z", "2026-11-21T20:45:00Z");

    // Fires at t1: incident A; resolves at t2: A's signal is OK, and A goes on to Resolved.
    let (_, resp) = post(&app, Some(&bearer()), batch(vec![alert("OmsDown", NS, t1, None)])).await;
    let a = resp["created"][0].as_str().expect("incident A").to_string();
    let (_, resp) = post(&app, Some(&bearer()), batch(vec![alert("OmsDown", NS, t1, Some(t2))])).await;
    assert_eq!(resp["resolved"][0], "OmsDown");
    assert_eq!(incident(&env, &a).await.spec.signal, Some(SignalState::Ok));
    let api: Api<Incident> = Api::namespaced(env.client.clone(), NS);
    api.patch_status(&a, &Default::default(), &kube::api::Patch::Merge(json!({"status": {"phase": "Resolved"}}))).await.expect("resolve A");

    // Fires again at t3: incident B.
    let (_, resp) = post(&app, Some(&bearer()), batch(vec![alert("OmsDown", NS, t3, None)])).await;
    let b = resp["created"][0].as_str().expect("incident B").to_string();
    assert_ne!(a, b);

    // The resolution of t2 arrives again (Alertmanager re-sends resolved alerts).
    let (status, resp) = post(&app, Some(&bearer()), batch(vec![alert("OmsDown", NS, t1, Some(t2))])).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["rejected"][0]["reason"], "StaleOk", "{resp}");
    assert_eq!(incident(&env, &b).await.spec.signal, None, "B is still firing");
    assert_eq!(rejected(&metrics, "StaleOk"), 1);

    // B's own resolution is recorded.
    let (_, resp) = post(&app, Some(&bearer()), batch(vec![alert("OmsDown", NS, t3, Some(t4))])).await;
    assert_eq!(resp["resolved"][0], "OmsDown", "{resp}");
    assert_eq!(incident(&env, &b).await.spec.signal, Some(SignalState::Ok));
}

/// Minimal HTTP/1.0 POST to the operator's own server: (status code, body).
async fn http_post(addr: std::net::SocketAddr, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_serves_the_webhook_on_its_http_port() {
    let env = env().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut a = args("replica-a");
    a.intake.alertmanager_token = Some(SecretToken(TOKEN.into()));
    let op = start_operator_with(&env, a, Some(listener)).await;

    let (code, body) = http_post(addr, PATH, Some("Bearer nope"), &payload("firing").to_string()).await;
    assert_eq!(code, 401, "{body}");
    let (code, body) = http_post(addr, PATH, Some(&bearer()), &payload("firing").to_string()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(incidents(&env).await.len(), 1);
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(metrics.contains(r#"salve_intake_messages_total{outcome="created",source="alertmanager"} 1"#), "{metrics}");
    op.stop().await;
}
