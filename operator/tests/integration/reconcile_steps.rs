//! Request-level tests of single reconcile steps with `tower-test` (the kube-rs controller
//! pattern): the reconciler talks to a mock service, and each test states exactly which API
//! requests one step makes — and, as important, which it does not.

use std::sync::Arc;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kube::core::DeserializeGuard;
use operator::controllers::incident as incident_controller;
use operator::controllers::remediation as remediation_controller;
use operator::crd::{Incident, Remediation};
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

type MockHandle = Handle<Request<Body>, Response<Body>>;

fn context() -> (Arc<operator::controllers::context::Context>, MockHandle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "shop");
    let metrics = operator::metrics::Metrics::new().expect("metrics");
    let ctx = operator::runtime::context(client, &crate::support::args("replica-a"), metrics).expect("context");
    (ctx, handle)
}

struct Seen {
    method: String,
    uri: String,
    content_type: String,
    body: Value,
}

async fn next(handle: &mut MockHandle) -> (Seen, SendResponse<Response<Body>>) {
    let (req, send) = handle.next_request().await.expect("a request");
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = req.into_body().collect_bytes().await.expect("body");
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("json body") };
    (Seen { method, uri, content_type, body }, send)
}

/// True when no further request arrives (the client may also have been dropped).
async fn no_more_requests(handle: &mut MockHandle) -> bool {
    !matches!(tokio::time::timeout(std::time::Duration::from_millis(200), handle.next_request()).await, Ok(Some(_)))
}

fn respond(send: SendResponse<Response<Body>>, v: &Value) {
    send.send_response(Response::builder().body(Body::from(serde_json::to_vec(v).expect("json"))).expect("response"));
}

fn remediation(action: Value, approval: Value, phase: &str) -> Remediation {
    serde_json::from_value(json!({
        "apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
        "metadata": {"name": "inc-r1", "namespace": "shop", "uid": "u1", "generation": 1},
        "spec": {"incidentRef": "inc", "risk": "Medium", "action": action, "approval": approval},
        "status": {"phase": phase}
    }))
    .expect("remediation")
}

#[tokio::test]
async fn approval_by_a_person_moves_to_approved_with_one_status_apply_and_an_event() {
    let (ctx, mut handle) = context();
    let rem = remediation(
        json!({"kind": "SetDeploymentResources", "targetName": "oms", "memoryLimit": "512Mi"}),
        json!({"state": "Approved", "by": "alice"}),
        "AwaitingApproval",
    );
    let echo = serde_json::to_value(&rem).expect("json");
    let server = tokio::spawn(async move {
        let (status, send) = next(&mut handle).await;
        assert_eq!(status.method, "PATCH");
        assert!(status.uri.starts_with("/apis/salve.dev/v1alpha1/namespaces/shop/remediations/inc-r1/status?"), "{}", status.uri);
        assert!(status.uri.contains("fieldManager=salve-operator") && status.uri.contains("force=true"));
        assert_eq!(status.content_type, "application/apply-patch+yaml");
        assert_eq!(status.body["status"]["phase"], "Approved");
        let approved = status.body["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .any(|c| c["type"] == "Approved" && c["status"] == "True");
        assert!(approved);
        respond(send, &echo);
        let (event, send) = next(&mut handle).await;
        assert_eq!(event.method, "POST");
        assert!(event.uri.starts_with("/apis/events.k8s.io/v1/namespaces/shop/events"));
        assert_eq!(event.body["reason"], "Approved");
        respond(send, &event.body);
        // Nothing else: approving does not touch the Deployment.
        assert!(no_more_requests(&mut handle).await);
    });
    remediation_controller::reconcile(Arc::new(DeserializeGuard(Ok(rem))), ctx).await.expect("reconcile");
    server.await.expect("scenario");
}

#[tokio::test]
async fn pending_approval_makes_no_request_at_all() {
    let (ctx, mut handle) = context();
    let rem = remediation(json!({"kind": "Scale", "targetName": "oms", "replicas": 3}), json!({"state": "Pending"}), "AwaitingApproval");
    remediation_controller::reconcile(Arc::new(DeserializeGuard(Ok(rem))), ctx).await.expect("reconcile");
    assert!(no_more_requests(&mut handle).await);
}

#[tokio::test]
async fn forbidden_action_is_refused_with_a_condition_and_a_warning_event() {
    let (ctx, mut handle) = context();
    let rem = remediation(json!({"kind": "PullRequest", "targetName": "gitops"}), json!({"state": "Approved", "by": "bob"}), "Pending");
    let echo = serde_json::to_value(&rem).expect("json");
    let server = tokio::spawn(async move {
        let (list, send) = next(&mut handle).await;
        assert_eq!(list.method, "GET");
        assert!(list.uri.starts_with("/apis/salve.dev/v1alpha1/remediations"), "policy counts remediations: {}", list.uri);
        respond(send, &json!({"apiVersion": "salve.dev/v1alpha1", "kind": "RemediationList", "metadata": {}, "items": []}));
        let (status, send) = next(&mut handle).await;
        assert!(status.uri.contains("/remediations/inc-r1/status"));
        assert_eq!(status.body["status"]["phase"], "Refused");
        let c = status.body["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .find(|c| c["type"] == "PolicyAllowed")
            .cloned()
            .expect("condition");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "ActionKindNotAllowed");
        respond(send, &echo);
        let (event, send) = next(&mut handle).await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "PolicyRefused");
        respond(send, &event.body);
    });
    remediation_controller::reconcile(Arc::new(DeserializeGuard(Ok(rem))), ctx).await.expect("reconcile");
    server.await.expect("scenario");
}

#[tokio::test]
async fn new_incident_starts_investigating() {
    let (ctx, mut handle) = context();
    let inc: Incident = serde_json::from_value(json!({
        "apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": "inc", "namespace": "shop", "uid": "u0", "generation": 1},
        "spec": {"service": "oms", "severity": "High", "source": {"kind": "Manual"}, "target": {"kind": "Deployment", "name": "oms"}}
    }))
    .expect("incident");
    let echo = serde_json::to_value(&inc).expect("json");
    let server = tokio::spawn(async move {
        let (status, send) = next(&mut handle).await;
        assert!(status.uri.starts_with("/apis/salve.dev/v1alpha1/namespaces/shop/incidents/inc/status?"));
        assert_eq!(status.body["status"]["phase"], "Investigating");
        assert_eq!(status.body["status"]["timeline"][0]["phase"], "Investigating");
        respond(send, &echo);
        let (event, send) = next(&mut handle).await;
        assert_eq!(event.body["reason"], "Investigating");
        assert_eq!(event.body["regarding"]["kind"], "Incident");
        respond(send, &event.body);
    });
    incident_controller::reconcile(Arc::new(DeserializeGuard(Ok(inc))), ctx).await.expect("reconcile");
    server.await.expect("scenario");
}

#[tokio::test]
async fn malformed_incident_is_reported_not_retried() {
    let (ctx, mut handle) = context();
    let guard: DeserializeGuard<Incident> = serde_json::from_value(json!({
        "apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": "garbled", "namespace": "shop", "uid": "u9"},
        "spec": {"severity": "Apocalyptic"}
    }))
    .expect("guard parses metadata");
    assert!(guard.0.is_err());
    let server = tokio::spawn(async move {
        let (event, send) = next(&mut handle).await;
        assert_eq!(event.body["reason"], "InvalidObject");
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["regarding"]["name"], "garbled");
        respond(send, &event.body);
    });
    let action = incident_controller::reconcile(Arc::new(guard), ctx).await.expect("reconcile");
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    server.await.expect("scenario");
}

#[tokio::test]
async fn resuming_in_applying_reapplies_without_a_new_snapshot() {
    let (ctx, mut handle) = context();
    let mut rem = remediation(
        json!({"kind": "SetConfigMapKey", "targetName": "oms-config", "key": "POOL_SIZE", "value": "10"}),
        json!({"state": "Approved", "by": "salve-operator/policy"}),
        "Applying",
    );
    let snapshot =
        json!({"target": "ConfigMap/oms-config", "undoPatch": "{\"data\":{\"POOL_SIZE\":\"0\"}}", "restarts": 4, "takenAt": "t0"});
    rem.status = Some(serde_json::from_value(json!({"phase": "Applying", "snapshot": snapshot})).expect("status"));
    let echo = serde_json::to_value(&rem).expect("json");
    let server = tokio::spawn(async move {
        // First request: the apply itself. No GET of the target: the snapshot is not retaken.
        let (apply, send) = next(&mut handle).await;
        assert_eq!(apply.method, "PATCH");
        assert!(apply.uri.starts_with("/api/v1/namespaces/shop/configmaps/oms-config?"), "{}", apply.uri);
        assert!(apply.uri.contains("fieldManager=salve-operator"));
        assert_eq!(apply.content_type, "application/apply-patch+yaml");
        assert_eq!(
            apply.body,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "oms-config"}, "data": {"POOL_SIZE": "10"}})
        );
        respond(send, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "oms-config"}, "data": {"POOL_SIZE": "10"}}));
        let (status, send) = next(&mut handle).await;
        assert_eq!(status.body["status"]["phase"], "Verifying");
        assert_eq!(status.body["status"]["snapshot"]["takenAt"], "t0", "snapshot kept as saved");
        assert!(status.body["status"]["verification"]["deadline"].is_string());
        respond(send, &echo);
        let (event, send) = next(&mut handle).await;
        assert_eq!(event.body["reason"], "Applied");
        respond(send, &event.body);
    });
    remediation_controller::reconcile(Arc::new(DeserializeGuard(Ok(rem))), ctx).await.expect("reconcile");
    server.await.expect("scenario");
}
