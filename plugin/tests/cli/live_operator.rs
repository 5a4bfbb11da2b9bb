//! The plugin end to end: the real `kubectl-salve` binary against the simulated cluster of
//! `tests/sandbox` (a TEST STAND-IN: the API server of `tests/fake-kube`, Deployment and
//! ReplicaSet controllers, a kubelet running every container as a real child process of the
//! `salve-sandbox` binary) with the real operator running in this process, as the demo starts it.
//!
//! Two workloads read `DB_POOL` from their ConfigMap through env; a person sets it to 0 and the
//! pods really crash. The policy leaves every action to a person. On-call (a kubeconfig whose
//! token names `alice@example.com`) lists and reads the incidents, approves one fix (the operator
//! applies it, the workload really recovers, the incident resolves, the post-mortem is written)
//! and rejects the other with feedback (the operator records it and diagnoses again). Outcomes
//! are asserted, never timings: every wait polls with a generous deadline.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use operator::config::RunArgs;
use operator::crd::incident::{Incident, IncidentPhase};
use operator::crd::remediation::{ApprovalState, Remediation, RemediationPhase};
use salve_sandbox::access;
use salve_sandbox::clock::TimeScale;
use salve_sandbox::cluster::{Cluster, ClusterOptions, client_as, ensure_namespace};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{Run, run_with_kubeconfig};

const NS: &str = "shop";
const ONCALL: &str = "alice@example.com";
/// Refuses to start when `DB_POOL` is 0 (the sandbox's scripted image, behaviour spec v1).
const SCRIPT: &str = r#"{"port": 8080, "start_log": ["listening on :8080"], "crash": {"env": "DB_POOL", "equals": "0", "log": ["FATAL: invalid configuration: DB_POOL must be > 0 (got 0)"], "exit_code": 1}}"#;
/// Generous: a safety net for a slow machine, not an expectation.
const DEADLINE: Duration = Duration::from_secs(240);

/// The `salve-sandbox` binary next to this test binary (built if it is missing): containers are
/// its child processes (`salve-sandbox container IMAGE`).
fn sandbox_exe() -> PathBuf {
    salve_sandbox::executable::sandbox_executable()
        .unwrap_or_else(|e| panic!("the salve-sandbox binary is needed to run containers: {e} (run `cargo build -p salve-sandbox`)"))
}

struct Live {
    cluster: Cluster,
    client: Client,
    operator: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
    /// On-call's kubeconfig and HOME.
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Live {
    async fn salve(&self, args: &[&str]) -> Run {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["-n", NS]);
        run_with_kubeconfig(&self.kubeconfig, self.dir.path(), &full).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.operator).await;
        self.cluster.stop().await;
    }
}

async fn start() -> Live {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(ClusterOptions {
        workdir: dir.path().join("cluster"),
        scale: TimeScale::default(),
        sync_frequency: Duration::from_secs(2),
        exe: Some(sandbox_exe()),
    })
    .await
    .expect("simulated cluster");
    ensure_namespace(&cluster.client, NS).await.expect("namespace");
    let client = client_as(&cluster.fake, NS, "sandbox-admin").await.expect("client");

    // The operator as demo/operator.rs starts it (its ServiceAccount, with the example RBAC),
    // with a policy that leaves the action to a person.
    let op_token = access::install_operator(&cluster.fake, &cluster.client, NS).await.expect("operator RBAC");
    let op_client = client_as(&cluster.fake, NS, &op_token).await.expect("operator client");
    let mut args = RunArgs::defaults();
    args.identity = "salve-operator-0".into();
    args.lease_namespace = access::OPERATOR_NAMESPACE.into();
    args.allowed_namespaces = vec![NS.into()];
    args.dry_run = Some(false);
    args.max_auto_approve_risk = "None".into();
    args.verify_window_seconds = 120;
    args.verify_poll_ms = 500;
    args.verify_stability_seconds = 3;
    args.log_format = "text".into();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let operator = tokio::spawn(async move {
        if let Err(e) = operator::runtime::run(op_client, args, None, token).await {
            panic!("operator stopped: {e}");
        }
    });

    // On-call's kubeconfig: a bearer token (a JWT, as OIDC issues them) whose subject names the
    // person, known to the API server as that user in the group the sandbox lets read Salve's
    // resources and patch Remediations. The approval policy then accepts approvals signed with
    // this name only.
    let claims = URL_SAFE_NO_PAD.encode(json!({"sub": ONCALL}).to_string());
    let oncall_token = format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2lnbmF0dXJl");
    cluster.fake.add_user(&oncall_token, ONCALL, &["sre"]);
    let kubeconfig = dir.path().join("oncall-kubeconfig");
    std::fs::write(&kubeconfig, cluster.fake.kubeconfig_yaml_as(NS, &oncall_token)).expect("kubeconfig");
    Live { cluster, client, operator, shutdown, kubeconfig, dir }
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `app` with one replica reading `DB_POOL` from ConfigMap `<app>-config` through env.
async fn create_workload(client: &Client, app: &str) {
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": format!("{app}-config")}, "data": {"DB_POOL": "10"}})).expect("cm");
    Api::<ConfigMap>::namespaced(client.clone(), NS).create(&PostParams::default(), &cm).await.expect("create ConfigMap");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": app, "labels": {"app": app}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{
                "name": app, "image": "sandbox.salve.dev/scripted:v1-1.0.0",
                "env": [{"name": "SANDBOX_SCRIPT", "value": SCRIPT},
                        {"name": "DB_POOL", "valueFrom": {"configMapKeyRef": {"name": format!("{app}-config"), "key": "DB_POOL"}}}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}}]}}}
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(client.clone(), NS).create(&PostParams::default(), &d).await.expect("create Deployment");
}

/// Every desired replica of the current template is ready (the Deployment controller's word).
async fn available(client: &Client, app: &str) -> bool {
    let Ok(d) = Api::<Deployment>::namespaced(client.clone(), NS).get(app).await else { return false };
    let desired = d.spec.replicas.unwrap_or(1);
    let Some(st) = d.status else { return false };
    st.observed_generation == d.metadata.generation && st.updated_replicas == Some(desired) && st.ready_replicas == Some(desired)
}

/// A person sets `DB_POOL=0`; env is read at start, so it bites when the pods are replaced.
async fn break_config(client: &Client, app: &str) {
    let p = json!({"data": {"DB_POOL": "0"}});
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .patch(&format!("{app}-config"), &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("patch ConfigMap");
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for p in pods.list(&ListParams::default().labels(&format!("app={app}"))).await.expect("pods").items {
        let _ = pods.delete(&p.name_any(), &Default::default()).await;
    }
}

/// A container of `app` exited with the script's error and restarted in place.
async fn crashed(client: &Client, app: &str) -> bool {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let Ok(list) = pods.list(&ListParams::default().labels(&format!("app={app}"))).await else { return false };
    list.items.iter().flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten())).any(|c| {
        let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        c.restart_count >= 1 && last.is_some_and(|t| t.exit_code == 1)
    })
}

async fn create_incident(client: &Client, name: &str, app: &str) {
    let inc: Incident = serde_json::from_value(json!({
        "apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": name},
        "spec": {"service": app, "severity": "High",
            "source": {"kind": "Manual", "reason": format!("{app} pods are crash-looping")},
            "target": {"kind": "Deployment", "name": app}}
    }))
    .expect("incident");
    Api::<Incident>::namespaced(client.clone(), NS).create(&PostParams::default(), &inc).await.expect("create incident");
}

async fn incident(client: &Client, name: &str) -> Incident {
    Api::<Incident>::namespaced(client.clone(), NS).get(name).await.expect("incident")
}

async fn remediation(client: &Client, name: &str) -> Option<Remediation> {
    Api::<Remediation>::namespaced(client.clone(), NS).get_opt(name).await.expect("remediation")
}

async fn remediation_in(client: &Client, name: &str, phase: RemediationPhase) -> Remediation {
    eventually(&format!("remediation {name} in phase {}", phase.as_str()), || async {
        remediation(client, name).await.filter(|r| r.status.as_ref().is_some_and(|s| s.phase == phase))
    })
    .await
}

fn phase(inc: &Incident) -> IncidentPhase {
    inc.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

fn assert_contains(out: &str, wants: &[&str]) {
    for want in wants {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_lists_reads_approves_and_rejects_live_incidents_and_reads_the_post_mortem() {
    let live = start().await;
    let client = live.client.clone();
    for app in ["ledger", "billing"] {
        create_workload(&client, app).await;
    }
    for app in ["ledger", "billing"] {
        eventually(&format!("{app} available"), || async { available(&client, app).await.then_some(()) }).await;
    }
    for app in ["ledger", "billing"] {
        break_config(&client, app).await;
    }
    for app in ["ledger", "billing"] {
        eventually(&format!("{app} crashing"), || async { crashed(&client, app).await.then_some(()) }).await;
    }
    create_incident(&client, "ledger-down", "ledger").await;
    create_incident(&client, "billing-down", "billing").await;
    let ledger_fix = remediation_in(&client, "ledger-down-r1", RemediationPhase::AwaitingApproval).await;
    let billing_fix = remediation_in(&client, "billing-down-r1", RemediationPhase::AwaitingApproval).await;

    // `list`: both incidents, waiting on a person, with what the operator found.
    let list = live.salve(&["list"]).await.ok().stdout;
    for (name, fix) in [("ledger-down", &ledger_fix), ("billing-down", &billing_fix)] {
        let line = list.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing in\n{list}"));
        assert_contains(line, &["High", "Remediating", "Config_Error", &fix.spec.action.describe()]);
    }

    // `describe`: the story so far, and what on-call can do about it.
    let story = live.salve(&["describe", "ledger-down"]).await.ok().stdout;
    assert_contains(
        &story,
        &[
            "Name:             ledger-down",
            "Service:          ledger (Deployment/ledger)",
            "Phase:            Remediating",
            "created by hand (kubectl)",
            "Evidence (Deployment/ledger",
            "Root cause:     Config_Error",
            "ledger-down-r1:",
            &ledger_fix.spec.action.describe(),
            "Phase:        AwaitingApproval",
            "kubectl salve approve ledger-down-r1 -n shop",
            "kubectl salve reject ledger-down-r1 -n shop --feedback '...'",
            "<written when the incident is Resolved or Escalated>",
        ],
    );

    // `approve`: recorded with the kubeconfig's identity; the operator applies it.
    let approved = live.salve(&["approve", "ledger-down-r1"]).await.ok().stdout;
    assert_contains(&approved, &[&format!("remediation.salve.dev/ledger-down-r1 approved by {ONCALL}")]);
    let a = remediation(&client, "ledger-down-r1").await.and_then(|r| r.spec.approval).expect("approval");
    assert_eq!((a.state, a.by.as_deref()), (ApprovalState::Approved, Some(ONCALL)));

    // `reject --feedback`: recorded; the operator ends the remediation and keeps the feedback.
    let feedback = "the pool size was changed on purpose; look at the database instead";
    let rejected = live.salve(&["reject", "billing-down-r1", "--feedback", feedback]).await.ok().stdout;
    assert_contains(&rejected, &[&format!("remediation.salve.dev/billing-down-r1 rejected by {ONCALL}")]);
    let r = remediation_in(&client, "billing-down-r1", RemediationPhase::Rejected).await;
    let a = r.spec.approval.expect("approval");
    assert_eq!((a.state, a.by.as_deref(), a.feedback.as_deref()), (ApprovalState::Rejected, Some(ONCALL), Some(feedback)));
    eventually("the rejection's feedback recorded on the incident", || async {
        incident(&client, "billing-down").await.status.is_some_and(|s| s.feedback.iter().any(|f| f == feedback)).then_some(())
    })
    .await;
    // Decided once: approving what is no longer awaiting approval is refused, nothing changes.
    let again = live.salve(&["approve", "billing-down-r1"]).await;
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert_contains(&again.stderr, &["remediation \"billing-down-r1\" is not awaiting approval: its phase is Rejected"]);
    let a = remediation(&client, "billing-down-r1").await.and_then(|r| r.spec.approval).expect("approval");
    assert_eq!(a.state, ApprovalState::Rejected, "the refused approve wrote nothing");

    // The approved fix: the workload really recovers on the simulated kubelet and the incident resolves.
    let resolved = eventually("ledger-down resolved", || async {
        let inc = incident(&client, "ledger-down").await;
        (phase(&inc) == IncidentPhase::Resolved && inc.status.as_ref().is_some_and(|s| s.post_mortem_ref.is_some())).then_some(inc)
    })
    .await;
    assert!(available(&client, "ledger").await, "ledger runs again");
    let cm = Api::<ConfigMap>::namespaced(client.clone(), NS).get("ledger-config").await.expect("ConfigMap");
    assert_eq!(cm.data.unwrap_or_default().get("DB_POOL").map(String::as_str), Some("10"), "the previous value is back");
    assert_eq!(remediation(&client, "ledger-down-r1").await.and_then(|r| r.status).map(|s| s.phase), Some(RemediationPhase::Succeeded));

    let late = live.salve(&["approve", "ledger-down-r1"]).await;
    assert_eq!(late.code, 1, "{}", late.stderr);
    assert_contains(&late.stderr, &["remediation \"ledger-down-r1\" is not awaiting approval: its phase is Succeeded"]);

    let list = live.salve(&["list"]).await.ok().stdout;
    assert!(list.lines().any(|l| l.starts_with("ledger-down") && l.contains("Resolved")), "{list}");
    let story = live.salve(&["describe", "ledger-down"]).await.ok().stdout;
    assert_contains(
        &story,
        &[
            "Phase:            Resolved",
            &format!("Approval:     Approved by {ONCALL}"),
            "Phase:        Succeeded",
            "Verification:",
            "passed",
            "Post-mortem:      ConfigMap shop/ledger-down-postmortem (key postmortem.json): kubectl salve postmortem ledger-down -n shop",
        ],
    );
    assert!(!story.contains("kubectl salve approve"), "nothing waits for approval any more:\n{story}");

    // `postmortem -o markdown`: the record of what happened, who approved and how it ended.
    let pm = live.salve(&["postmortem", "ledger-down", "-o", "markdown"]).await.ok().stdout;
    assert_contains(
        &pm,
        &[
            "# Post-mortem: shop/ledger-down",
            "| Root cause | Config_Error |",
            "| Outcome | Resolved |",
            "### ledger-down-r1",
            &format!("- Approval: Approved by {ONCALL}"),
        ],
    );
    let record = resolved.status.and_then(|s| s.post_mortem_ref).expect("post-mortem ConfigMap");
    assert_eq!(record, "ledger-down-postmortem");

    // The operator ran as its ServiceAccount with exactly operator/examples/rbac.yaml (= the
    // chart's RBAC): the whole story needed nothing that RBAC refused, and on-call as well.
    let operator = format!("system:serviceaccount:{}:{}", access::OPERATOR_NAMESPACE, access::OPERATOR_SERVICE_ACCOUNT);
    let requests = live.cluster.fake.requests();
    assert!(requests.iter().any(|r| r.user == operator), "the operator made its requests as its ServiceAccount");
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| (r.user == operator || r.user == ONCALL) && matches!(r.status, 401 | 403))
        .map(|r| format!("{} {} {} {}/{} -> {}", r.user, r.verb, r.path, r.group, r.resource, r.status))
        .collect();
    assert!(refused.is_empty(), "requests the example RBAC refused:\n{}", refused.join("\n"));
    live.stop().await;
}
