//! Nothing secret leaves the cluster. Unique canaries (new each run) are planted where secrets
//! live in a real namespace: literal env values, a ConfigMap (a URL with a password, a
//! properties file with `db.password=…`, a secret-named key), a Secret, lines the app prints
//! (`sk_live_…`, `Authorization: Bearer …`) and an Event. The real operator then resolves a bad
//! setting in that ConfigMap with everything outbound switched on: Bedrock (the TEST STAND-IN of
//! support/bedrock_stand_in), the S3 archive (moto, started by tests/run.sh), Slack and a
//! webhook (local receivers), Events and its own logs. No canary may reach any of them, nor the
//! Incident's status or the post-mortem ConfigMap; the ConfigMap the operator restored keeps
//! every original value in full.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Secret};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

use crate::support::bedrock_stand_in::{MODEL, Reply, stand_in};
use crate::support::moto::{bucket, require_moto, s3};
use crate::support::*;

/// A fresh random token: hex, so every pattern that should catch it can.
fn random_token() -> String {
    let a = RandomState::new().hash_one(std::time::SystemTime::now());
    let b = RandomState::new().hash_one(std::process::id());
    format!("{a:016x}{b:08x}")
}

/// Where each canary was planted, and the canary.
struct Canaries(Vec<(&'static str, String)>);

impl Canaries {
    fn new() -> Self {
        let places =
            ["env value", "Secret", "ConfigMap URL", "ConfigMap properties", "ConfigMap secret key", "log sk_live", "log Bearer", "Event"];
        Canaries(places.into_iter().map(|p| (p, random_token())).collect())
    }

    fn get(&self, place: &str) -> &str {
        self.0.iter().find(|(p, _)| *p == place).map(|(_, c)| c.as_str()).unwrap_or_default()
    }
}

/// Records every body POSTed to it (Slack at /slack, the generic webhook at /hook).
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<(String, String)>>>,
}

async fn receive(State(r): State<Receiver>, uri: axum::http::Uri, body: String) -> StatusCode {
    r.bodies.lock().expect("lock").push((uri.path().to_string(), body));
    StatusCode::OK
}

async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = Router::new().route("/slack", post(receive)).route("/hook", post(receive)).with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    (r, url)
}

/// The operator's log output, as it would reach stdout: the operator's own writer (which masks)
/// around an in-memory buffer. The test binary is one process per test (nextest), so the
/// global subscriber holds only this test's operator. Only the operator's own targets are kept:
/// the simulated cluster in this process logs too, and its lines are not the operator's.
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let make = move || SharedBuf(sink.clone());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("operator=debug"))
            .with_writer(operator::telemetry::Redacting(make))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test process");
        buf
    })
    .clone()
}

struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config_data(c: &Canaries) -> Value {
    json!({
        "POOL_SIZE": "10",
        "TIMEOUT_MS": "500",
        "DATABASE_URL": format!("postgres://oms:{}@10.0.12.7:5432/orders", c.get("ConfigMap URL")),
        "application.properties": format!("db.user=oms\ndb.password={}\npool.size=10\ncache.ttl=60\n", c.get("ConfigMap properties")),
        "PAYMENT_API_TOKEN": c.get("ConfigMap secret key"),
    })
}

/// `oms` as teams write it: settings from `oms-config` (env and a mounted directory), a database
/// password from a Secret, a literal password in env, and lines that print credentials.
async fn plant(env: &Env, c: &Canaries) {
    create_config_map(env, CM, config_data(c), json!({})).await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "oms-db"}, "stringData": {"password": c.get("Secret")}})).expect("secret");
    Api::<Secret>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &secret).await.expect("create secret");
    let script = json!({"port": 8080,
        "start_log": ["oms listening on :8080", format!("payment client ready with key sk_live_{}", c.get("log sk_live"))],
        "crash": {"env": "POOL_SIZE", "equals": "0", "exit_code": 1, "log": [
            format!("GET http://ims/inventory Authorization: Bearer {} -> connection reset", c.get("log Bearer")),
            "error: POOL_SIZE must be > 0", "panic: invalid configuration"]}});
    let from_cm = |key: &str| json!({"configMapKeyRef": {"name": CM, "key": key}});
    let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": APP, "labels": {"app": APP}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": APP}},
            "template": {"metadata": {"labels": {"app": APP}}, "spec": {
                "containers": [{"name": APP, "image": IMAGE,
                    "env": [
                        {"name": "SANDBOX_SCRIPT", "value": script.to_string()},
                        {"name": "DB_PASSWORD", "value": c.get("env value")},
                        {"name": "DB_SECRET_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "oms-db", "key": "password"}}},
                        {"name": "POOL_SIZE", "valueFrom": from_cm("POOL_SIZE")},
                        {"name": "DATABASE_URL", "valueFrom": from_cm("DATABASE_URL")}],
                    "volumeMounts": [{"name": "settings", "mountPath": "/etc/oms"}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
                    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}}}],
                "volumes": [{"name": "settings", "configMap": {"name": CM}}]}}}
    }))
    .expect("deployment");
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
}

/// What a registry pull failure looks like when the pull secret holds a URL with a password.
async fn plant_event(env: &Env, c: &Canaries) {
    let e: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "oms.pull-failed"},
        "involvedObject": {"kind": "Deployment", "name": APP, "namespace": NS},
        "reason": "FailedToPullSidecar", "type": "Warning", "count": 1,
        "message": format!("pulling https://robot:{}@10.0.12.9:5000/v2/oms-sidecar failed: unauthorized", c.get("Event")),
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
        "source": {"component": "kubelet"}
    }))
    .expect("event");
    Api::<CoreEvent>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &e).await.expect("create event");
}

/// The model restores the setting, as the evidence shows it was.
fn restore_answer() -> Value {
    json!({"root_cause_category": "Config_Error", "summary": "POOL_SIZE was changed from 10 to 0 and oms refuses to start", "confidence": 0.9,
        "cited_evidence": ["error: POOL_SIZE must be > 0"],
        "proposed_action": {"kind": "SetConfigMapKey", "targetName": CM, "key": "POOL_SIZE", "value": "10"}})
}

/// Every S3 object version in the bucket, as text.
async fn s3_objects(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let versions = client.list_object_versions().bucket(bucket).send().await.expect("list versions");
    let mut out = Vec::new();
    for v in versions.versions() {
        let (Some(key), Some(id)) = (v.key(), v.version_id()) else { continue };
        let o = client.get_object().bucket(bucket).key(key).version_id(id).send().await.expect("get object");
        out.push(String::from_utf8_lossy(&o.body.collect().await.expect("body").into_bytes()).into_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_planted_in_the_cluster_never_leave_it() {
    require_moto();
    let logs = capture_logs();
    let c = Canaries::new();
    let s3c = s3().await;
    let b = bucket(&s3c, true).await;
    let (bedrock, bedrock_url) = stand_in(vec![Reply::Tool(restore_answer())]).await;
    let (rx, rx_url) = receiver().await;
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("slack"), format!("{rx_url}/slack")).expect("slack url");
    std::fs::write(dir.path().join("hook"), format!("{rx_url}/hook")).expect("hook url");
    std::fs::write(dir.path().join("secret"), "hook-secret").expect("hook secret");

    let env = env().await;
    plant(&env, &c).await;
    wait_ready(&env, 2).await;
    let mut a = args("replica-a");
    a.bedrock_model_id = Some(MODEL.into());
    a.bedrock_endpoint_url = Some(bedrock_url);
    a.bedrock_max_turns = 1; // the whole evidence in one prompt: the most a model is ever shown
    a.bedrock_max_attempts = 1;
    a.post_mortem_archive.postmortem_bucket = Some(b.clone());
    a.post_mortem_archive.postmortem_s3_force_path_style = true;
    a.notify.notify_slack_url_file = Some(dir.path().join("slack"));
    a.notify.notify_webhook_url_file = Some(dir.path().join("hook"));
    a.notify.notify_webhook_secret_file = Some(dir.path().join("secret"));
    a.notify.notify_initial_backoff_ms = 50;
    let op = start_operator(&env, a).await;
    plant_event(&env, &c).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "Threshold Crossed: 5xx > 5%").await;

    eventually("previous value restored", || async { (config_value(&env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(()) })
        .await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    let inc = eventually("post-mortem archived", || async {
        let inc = incident(&env, "oms-5xx").await;
        inc.status.as_ref().is_some_and(|s| s.post_mortem.is_some() && s.post_mortem_archive.is_some()).then_some(inc)
    })
    .await;
    eventually("resolution notified on both channels", || async {
        let seen = rx.bodies.lock().expect("lock").clone();
        let resolved = |path: &str| seen.iter().any(|(p, b)| p == path && (b.contains("Resolved") || b.contains("resolved")));
        (resolved("/slack") && resolved("/hook")).then_some(())
    })
    .await;
    op.stop().await;

    // The planted secrets really were in front of the operator: it read the ConfigMap, the
    // logs and the Event, and kept what they said with the secrets masked.
    let status = serde_json::to_value(inc.status.as_ref().expect("status")).expect("json");
    let evidence = status["evidence"].to_string();
    for seen in [
        "db.password=[REDACTED:secret-value]",
        "postgres://oms:[REDACTED:url-password]@10.0.12.7",
        "[REDACTED:api-key]",
        "Bearer [REDACTED:authorization]",
    ] {
        assert!(evidence.contains(seen), "the evidence shows {seen} (masked): {evidence}");
    }

    // Everything that went out, or is readable by anyone who can read an Incident or an Event.
    let mut outbound: Vec<(&str, String)> = Vec::new();
    outbound.push(("Bedrock requests", serde_json::to_string(&*bedrock.requests.lock().expect("lock")).expect("json")));
    for o in s3_objects(&s3c, &b).await {
        outbound.push(("S3 objects", o));
    }
    for (path, body) in rx.bodies.lock().expect("lock").iter() {
        outbound.push((if path == "/slack" { "Slack" } else { "webhook" }, body.clone()));
    }
    let by_operator: Vec<String> = events(&env)
        .await
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("salve-operator"))
        .map(|e| serde_json::to_string(&e).expect("json"))
        .collect();
    assert!(!by_operator.is_empty(), "the operator published Events");
    outbound.push(("Events", by_operator.join("\n")));
    outbound.push(("operator logs", String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned()));
    outbound.push(("Incident status", status.to_string()));
    let pm = Api::<ConfigMap>::namespaced(env.client.clone(), NS).get("oms-5xx-postmortem").await.expect("post-mortem ConfigMap");
    outbound.push(("post-mortem ConfigMap", serde_json::to_string(&pm.data).expect("json")));
    outbound.push(("post-mortem copy in status", status["postMortem"].to_string()));
    assert!(status["postMortem"].is_object() && !outbound.iter().any(|(_, t)| t.is_empty()), "every sink holds something to check");

    let mut leaks = Vec::new();
    for (place, canary) in &c.0 {
        let found: Vec<&str> = outbound.iter().filter(|(_, text)| text.contains(canary.as_str())).map(|(sink, _)| *sink).collect();
        if !found.is_empty() {
            leaks.push(format!("{place} -> {}", found.join(", ")));
        }
    }
    println!("canaries leaked: {} of {}", leaks.len(), c.0.len());
    assert!(leaks.is_empty(), "secrets left the cluster:\n{}", leaks.join("\n"));

    // In the cluster, the restored ConfigMap holds every original value in full.
    let mut want = config_data(&c);
    want["POOL_SIZE"] = json!("10");
    let now = Api::<ConfigMap>::namespaced(env.client.clone(), NS).get(CM).await.expect("get cm");
    assert_eq!(serde_json::to_value(now.data).expect("json"), want, "the ConfigMap keeps its full values");
    env.stop().await;
}
