//! `salve-sandbox bench`: what the operator costs, measured on the simulated cluster against a
//! baseline measured in the same run (a bare kube-rs controller watching the same CRDs):
//!
//! - steady-state memory (RSS) after reconciling N Incidents with their Remediations, at 1,000
//!   and at N, and how it grows
//! - reconciles per second while catching up with them (for the operator: changes handled,
//!   reconciled or answered from its cache as finished)
//! - alarm -> Incident latency through the Alertmanager webhook, in a burst and at a steady rate
//!   (baseline: creating the Incident directly through the API)
//! - the diagnosis stage (evidence + offline diagnosis + policy), Investigating -> decided
//!   (baseline: one API round trip)
//! - the policy's decision over every Remediation in the cluster (compared with counting by
//!   decoding each cached Remediation)
//! - what the API server pays: requests per Incident, watch streams, list page sizes
//!
//! Build it in release mode for figures worth comparing, with the controllers' own binaries:
//! `cargo build --release -p salve-sandbox && target/release/salve-sandbox bench`.

pub mod processes;
mod sqs_alarms;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use operator::crd::{Incident, Remediation};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use self::processes::Measured;
use crate::clock::TimeScale;
use crate::cluster::{Cluster, ClusterOptions, client_as, ensure_namespace};

const NS: &str = "bench";

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Incidents (each with one Remediation) in the cluster for the memory figures.
    #[arg(long, env = "SANDBOX_BENCH_INCIDENTS", default_value_t = 10_000)]
    pub incidents: usize,
    /// One JSON line instead of the table.
    #[arg(long, env = "SANDBOX_JSON", default_value_t = false)]
    pub json: bool,
    #[arg(long, env = "SANDBOX_WORKDIR")]
    pub workdir: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct Figures {
    pub rss_mib_at_1k: f64,
    pub rss_mib: f64,
    pub reconciles_per_second: f64,
    pub alarm_to_incident_p50_ms: f64,
    pub alarm_to_incident_p99_ms: f64,
    pub alarm_to_incident_steady_p99_ms: f64,
    /// Through SNS and SQS (baseline: a bare consumer of the same notifications).
    pub alarm_to_incident_sqs_p50_ms: f64,
    pub alarm_to_incident_sqs_p99_ms: f64,
    pub alarm_to_incident_sqs_steady_p99_ms: f64,
    pub diagnose_p50_ms: f64,
    pub diagnose_p99_ms: f64,
    /// How many of the diagnosis stage's Incidents ended with a proposed action, so the stage
    /// included the policy's decision (the OOM-killed workload's), and how many were measured.
    pub diagnose_with_policy: usize,
    pub diagnose_measured: usize,
    /// The policy's decision over every Remediation in the cluster, µs (see `policy_decisions`).
    pub policy_p50_us: f64,
    pub policy_p99_us: f64,
    pub api_requests_per_incident: f64,
    pub watch_streams: usize,
    pub largest_list_page: String,
}

/// NaN (printed `n/a`, `null` in JSON) when nothing was measured: never a made-up 0.
fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    (v[i] * 10.0).round() / 10.0
}

/// Evidence like the operator collects for a crash-looping `web` (two pods, their log tails,
/// Events, a ConfigMap change): what a resolved Incident carries in status.
fn seed_evidence(i: usize) -> Result<operator::domain::evidence::Evidence, kube::Error> {
    let t = "2026-11-29T09:59:00Z";
    let pods: Vec<serde_json::Value> = (0..2)
        .map(|p| {
            json!({"name": format!("web-7f9c{i:05}-{p}"), "phase": "Running", "ready": false, "restarts": 4 + p,
            "waitingReason": "CrashLoopBackOff", "lastTerminationReason": "Error", "lastExitCode": 1})
        })
        .collect();
    let logs: Vec<serde_json::Value> = (0..2)
        .map(|p| json!({"pod": format!("web-7f9c{i:05}-{p}"), "container": "web", "previous": true,
            "lines": (0..20).map(|l| format!("2026-11-29T09:58:{l:02}Z ERROR pool: cannot open connection {l}: POOL_SIZE=0, need at least 1 (request {i}-{p}-{l})")).collect::<Vec<_>>()}))
        .collect();
    let events: Vec<serde_json::Value> = (0..4)
        .map(|e| {
            json!({"reason": "BackOff", "object": format!("Pod/web-7f9c{i:05}-{}", e % 2), "type": "Warning", "count": 5 + e,
            "message": "Back-off restarting failed container web in pod web (restarts 4)", "firstSeen": t, "lastSeen": t})
        })
        .collect();
    serde_json::from_value(json!({"workload": "Deployment/web", "desiredReplicas": 2, "readyReplicas": 0, "unavailableReplicas": 2,
        "pods": pods, "events": events, "logs": logs, "signal": "BenchAlert: 5xx above 5%", "collectedAt": t,
        "configChanges": [{"configMap": "web-config", "key": "POOL_SIZE", "previous": "10", "current": "0", "observedAt": t, "redacted": false}]}))
    .map_err(kube::Error::SerdeError)
}

/// Writes `n` Incidents, each resolved by one Remediation, numbered from `from`, as the operator
/// leaves them: the Incident's status with evidence, diagnosis, timeline and the post-mortem
/// (bounded copy, digest, and the full record in its ConfigMap, assembled by the operator's own
/// code), the Remediation's with its snapshot, patch and verification. An operator catching up
/// with them has nothing left to write.
/// A client that writes the seeded objects as the operator wrote them: as its ServiceAccount
/// (the approval policy lets only it sign as `salve-operator/policy`), here with every
/// permission, since the bench measures speed, not access.
async fn seeder(cluster: &Cluster) -> Result<kube::Client, String> {
    let operator = format!("system:serviceaccount:{}:{}", crate::access::OPERATOR_NAMESPACE, crate::access::OPERATOR_SERVICE_ACCOUNT);
    cluster.fake.add_user("bench-seeder", &operator, &["system:masters"]);
    client_as(&cluster.fake, NS, "bench-seeder").await.map_err(|e| e.to_string())
}

async fn seed(client: &kube::Client, from: usize, n: usize) -> Result<(), kube::Error> {
    use operator::controllers::post_mortem::assemble;
    use operator::crd::IncidentStatus;
    use operator::domain::post_mortem::{POST_MORTEM_LABEL, STATUS_COPY_LIMIT};
    let incidents: Api<Incident> = Api::namespaced(client.clone(), NS);
    let remediations: Api<Remediation> = Api::namespaced(client.clone(), NS);
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), NS);
    futures::stream::iter(from..from + n)
        .map(|i| {
            let (incidents, remediations, config_maps) = (incidents.clone(), remediations.clone(), config_maps.clone());
            async move {
                let name = format!("inc-{i:05}");
                let rname = format!("{name}-r1");
                let inc: Incident = serde_json::from_value(json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "metadata": {"name": name},
                    "spec": {"service": "web", "severity": "High", "source": {"kind": "Alertmanager", "alertName": format!("Bench{i}"), "reason": "5xx above 5%"},
                        "target": {"kind": "Deployment", "name": "web"}}}))
                .map_err(kube::Error::SerdeError)?;
                let inc = incidents.create(&PostParams::default(), &inc).await?;
                let t = "2026-11-29T10:00:00Z";
                let rem: Remediation = serde_json::from_value(json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
                    "metadata": {"name": rname, "labels": {"salve.dev/incident": name},
                        "ownerReferences": [{"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "name": name, "uid": inc.metadata.uid, "controller": true, "blockOwnerDeletion": true}]},
                    "spec": {"incidentRef": name, "risk": "Low", "rationale": "POOL_SIZE=0 makes the pool fail at start",
                        "action": {"kind": "SetConfigMapKey", "targetName": "web-config", "key": "POOL_SIZE", "value": "10"},
                        "approval": {"state": "Approved", "by": "salve-operator/policy"}}}))
                .map_err(kube::Error::SerdeError)?;
                let rstatus = json!({"status": {"phase": "Succeeded", "observedGeneration": 1, "appliedAt": t, "appliedPatch": "{\"data\":{\"POOL_SIZE\":\"10\"}}",
                    "snapshot": {"target": "ConfigMap/web-config", "resourceVersion": "7", "undoPatch": "{\"data\":{\"POOL_SIZE\":\"0\"}}", "restarts": 4, "takenAt": t, "healthyBefore": false},
                    "verification": {"deadline": t, "passed": true, "message": "the alarm returned to OK"},
                    "conditions": [{"type": "PolicyAllowed", "status": "True", "reason": "Allowed", "message": "set ConfigMap web-config key POOL_SIZE", "lastTransitionTime": t},
                        {"type": "SnapshotSaved", "status": "True", "reason": "SnapshotSaved", "message": "pre-change state saved", "lastTransitionTime": t},
                        {"type": "Ready", "status": "True", "reason": "Verified", "message": "verified", "lastTransitionTime": t}]}});
                let mut rem = rem;
                rem.status = serde_json::from_value(rstatus["status"].clone()).map_err(kube::Error::SerdeError)?;
                let evidence = seed_evidence(i)?;
                let input = operator::domain::diagnoser::DiagnosisInput { evidence: evidence.clone(), ..Default::default() };
                let diagnosis = operator::domain::diagnosis::diagnose_with_rules(&input);
                let category = diagnosis.root_cause_category.map(|c| c.as_str()).unwrap_or("Unknown");
                let signature = operator::domain::signature::incident_signature(&evidence.workload, category, &["CrashLoopBackOff".into(), "Error".into(), "cm:web-config/POOL_SIZE".into()]);
                let mut st: IncidentStatus = serde_json::from_value(json!({"phase": "Resolved", "attempts": 1, "remediations": [rname], "observedGeneration": 1,
                    "signature": signature, "evidence": evidence, "diagnosis": diagnosis,
                    "diagnosisInputs": operator::domain::simulation::PromptInputs::from(&input),
                    "timeline": [{"time": t, "phase": "Investigating", "message": "collecting evidence"}, {"time": t, "phase": "Diagnosed", "message": "Config_Error: POOL_SIZE=0"},
                        {"time": t, "phase": "Remediating", "message": format!("{rname}: set ConfigMap web-config key POOL_SIZE (auto-approved by policy)")},
                        {"time": t, "phase": "Verifying", "message": "applied"}, {"time": t, "phase": "Resolved", "message": "verified"}],
                    "conditions": [{"type": "PolicyAllowed", "status": "True", "reason": "Allowed", "message": "set ConfigMap web-config key POOL_SIZE", "lastTransitionTime": t},
                        {"type": "Ready", "status": "True", "reason": "Resolved", "message": "verified", "lastTransitionTime": t}]}))
                .map_err(kube::Error::SerdeError)?;
                let pm = assemble(&inc, &st, std::slice::from_ref(&rem), None);
                let full = pm.to_json();
                let cm_name = operator::domain::names::derived_name(&name, "-postmortem");
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": cm_name, "labels": {POST_MORTEM_LABEL: "true"}, "ownerReferences": [{"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "name": name, "uid": inc.metadata.uid}]},
                    "data": {"postmortem.json": full}});
                st.post_mortem_ref = Some(cm_name.clone());
                st.post_mortem_digest = Some(operator::domain::signature::content_hash(&full));
                st.post_mortem = Some(Box::new(pm.bounded(STATUS_COPY_LIMIT)));
                // The Incident's status right after its creation (as before: an operator that
                // catches an Incident in between investigates it), then its Remediation.
                incidents.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": st}))).await?;
                let mut bare = rem.clone();
                bare.status = None;
                remediations.create(&PostParams::default(), &bare).await?;
                remediations.patch_status(&rname, &PatchParams::default(), &Patch::Merge(rstatus)).await?;
                config_maps.patch(&cm_name, &PatchParams::apply(operator::crd::FIELD_MANAGER).force(), &Patch::Apply(&cm)).await?;
                Ok::<(), kube::Error>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

struct Child {
    child: tokio::process::Child,
    addr: String,
}

/// The controller's binary, next to this one: `cargo build -p salve-sandbox` builds all three,
/// `cargo run` only the one it runs.
fn controller_binary(which: Measured) -> Result<PathBuf, String> {
    let this = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe = this.with_file_name(which.binary());
    if !exe.exists() {
        return Err(format!("{} not found: build it with this one, cargo build --release -p salve-sandbox", exe.display()));
    }
    Ok(exe)
}

async fn spawn(cluster: &Cluster, which: Measured, user: &str, sqs_queue: Option<&str>) -> Result<Child, String> {
    // The bench measures speed, not access: each measured controller may do everything.
    cluster.fake.add_user(user, user, &["system:masters"]);
    let kubeconfig = cluster.workdir().join(format!("kubeconfig-{user}"));
    std::fs::write(&kubeconfig, cluster.fake.kubeconfig_yaml_as(NS, user)).map_err(|e| e.to_string())?;
    let exe = controller_binary(which)?;
    // SANDBOX_BENCH_WRAP=heaptrack (or valgrind, perf record …): the controller runs under it.
    let mut command = match std::env::var("SANDBOX_BENCH_WRAP") {
        Ok(wrap) if !wrap.trim().is_empty() => {
            let mut words = wrap.split_whitespace();
            let mut c = tokio::process::Command::new(words.next().unwrap_or_default());
            c.args(words).arg(exe);
            c
        }
        _ => tokio::process::Command::new(exe),
    };
    if let Some(queue) = sqs_queue {
        command.env("SALVE_INTAKE_SQS_QUEUE", queue);
    }
    let mut child = command
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", NS])
        .stdout(Stdio::piped())
        // SANDBOX_BENCH_LOG=1: the controllers' own logs on this stderr (RUST_LOG filters them).
        .stderr(if std::env::var_os("SANDBOX_BENCH_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next_line().await {
            Ok(Some(l)) if l.starts_with("listening ") => break l.trim_start_matches("listening ").to_string(),
            Ok(Some(_)) => continue,
            _ => return Err(format!("{} did not start", which.binary())),
        }
    };
    // Its logs (tracing writes to stdout) follow on this stderr when asked for.
    if std::env::var_os("SANDBOX_BENCH_LOG").is_some() {
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
            }
        });
    }
    Ok(Child { child, addr })
}

fn rss_mib(pid: Option<u32>) -> f64 {
    let bytes = pid.and_then(crate::kubelet::container::resident_bytes).unwrap_or(0);
    (bytes as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0
}

/// The sum of the counters named `metrics` (over their labels) on the controller's `/metrics`.
async fn reconciles(http: &reqwest::Client, addr: &str, metrics: &[&str]) -> f64 {
    let text = http.get(format!("http://{addr}/metrics")).send().await.ok().map(|r| r.text());
    let text = match text {
        Some(t) => t.await.unwrap_or_default(),
        None => String::new(),
    };
    text.lines().filter(|l| metrics.iter().any(|m| l.starts_with(m))).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Waits until the `counters` (the controller's reconciles, and for the operator its settled
/// changes) reach at least `at_least` (each seeded Incident and Remediation once: the whole list
/// is in) and then stop moving (3 s without change); returns
/// (reconciles, seconds) from the first time the counter was seen above 0 to its last move (the
/// reconciles already counted at that first look are left out). Waiting for the Lease before
/// that is leader election, not reconciling, so it is not counted. A quiet moment before the end
/// (a slow page of the initial list) is not the end.
async fn settle(http: &reqwest::Client, addr: &str, counters: &[&str], started: Instant, at_least: f64) -> (f64, f64) {
    let deadline = started + Duration::from_secs(900);
    let (mut last, mut last_change) = (-1.0, Instant::now());
    let (mut first_counted, mut moving_until) = (None, started);
    loop {
        let n = reconciles(http, addr, counters).await;
        if n != last {
            last = n;
            last_change = Instant::now();
            moving_until = last_change;
        }
        if n > 0.0 && first_counted.is_none() {
            first_counted = Some((Instant::now(), n));
        }
        let done = n >= at_least || Instant::now() > deadline;
        if done && last_change.elapsed() > Duration::from_secs(3) && n > 0.0 {
            // All of them at the first look: too quick to time apart from starting up.
            let (from, before) = first_counted.filter(|(_, before)| *before < n).unwrap_or((started, 0.0));
            return (n - before, moving_until.duration_since(from).as_secs_f64().max(0.1));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operator's work on a change: a reconcile, or a change with nothing left to do answered
/// from its cache before it reaches a controller's queue (`operator::controllers::settled`).
const OPERATOR_WORK: &[&str] = &["salve_reconciles_total", "salve_settled_total"];

async fn measure_controller(
    cluster: &Cluster,
    which: Measured,
    user: &str,
    counters: &[&str],
    n: usize,
    sqs_queue: Option<&str>,
) -> Result<(Figures, Child), String> {
    let http = reqwest::Client::new();
    let mut f = Figures::default();
    // Each figure is taken from a process started on a cluster that already holds the objects
    // (as after a restart or a failover), so catching up is only catching up: seeding while a
    // controller runs would let it find half-written objects and do real work on them.
    let seeder = seeder(cluster).await?;
    seed(&seeder, 0, n.min(1000)).await.map_err(|e| e.to_string())?;
    let mut started = Instant::now();
    let mut child = spawn(cluster, which, user, sqs_queue).await?;
    let objects = |incidents: usize| (2 * incidents) as f64;
    settle(&http, &child.addr, counters, started, objects(n.min(1000))).await;
    f.rss_mib_at_1k = rss_mib(child.child.id());
    let mut first_request = 0;
    if n > 1000 {
        // SIGTERM: a graceful stop releases the Lease, so the next process leads at once.
        if let Some(pid) = child.child.id() {
            let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), child.child.wait()).await;
        seed(&seeder, 1000, n - 1000).await.map_err(|e| e.to_string())?;
        first_request = cluster.fake.requests().len();
        started = Instant::now();
        child = spawn(cluster, which, user, sqs_queue).await?;
    }
    let (count, secs) = settle(&http, &child.addr, counters, started, objects(n)).await;
    f.reconciles_per_second = (count / secs).round();
    f.rss_mib = rss_mib(child.child.id());
    let reqs: Vec<_> = cluster.fake.requests().into_iter().skip(first_request).filter(|r| r.user == user).collect();
    if std::env::var_os("SANDBOX_BENCH_REQUESTS").is_some() {
        // Where the requests go: RBAC verb and resource (the API server's own view).
        let mut by: std::collections::BTreeMap<String, usize> = Default::default();
        for r in &reqs {
            *by.entry(format!("{} {}", r.verb, r.resource)).or_default() += 1;
        }
        eprintln!("{user}: {} requests: {by:?}", reqs.len());
    }
    f.api_requests_per_incident = ((reqs.len() as f64 / n as f64) * 100.0).round() / 100.0;
    f.watch_streams = reqs.iter().filter(|r| r.query.contains("watch=true")).count();
    let pages: Vec<String> = reqs
        .iter()
        .filter(|r| r.method == "GET" && !r.query.contains("watch=true") && r.path.ends_with('s'))
        .map(|r| r.query.split('&').find(|p| p.starts_with("limit=")).unwrap_or("limit=none").to_string())
        .collect();
    f.largest_list_page =
        pages.iter().max_by_key(|p| p.trim_start_matches("limit=").parse::<u64>().unwrap_or(u64::MAX)).cloned().unwrap_or_default();
    Ok((f, child))
}

/// Alerts through the operator's webhook: a burst of 100 at once, then 10/s for 5 s.
async fn alarm_latency(webhook: &str) -> (Vec<f64>, Vec<f64>) {
    let http = reqwest::Client::new();
    let post = |i: usize, tag: &'static str| {
        let http = http.clone();
        let webhook = webhook.to_string();
        async move {
            let body = json!({"version": "4", "status": "firing", "receiver": "salve", "groupKey": format!("{tag}{i}"), "alerts": [{"status": "firing",
                "labels": {"alertname": format!("{tag}{i}"), "namespace": NS, "deployment": "web", "severity": "critical"},
                "annotations": {"summary": "bench"}, "startsAt": operator::domain::time::now_rfc3339(), "fingerprint": format!("{tag}{i}")}]});
            let t = Instant::now();
            let ok = http
                .post(&webhook)
                .bearer_auth(crate::demo::operator::WEBHOOK_TOKEN)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            ok.then(|| t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let burst: Vec<f64> = futures::future::join_all((0..100).map(|i| post(i, "Burst"))).await.into_iter().flatten().collect();
    let mut steady = Vec::new();
    for i in 0..50 {
        if let Some(ms) = post(i, "Steady").await {
            steady.push(ms);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (burst, steady)
}

/// Investigating -> decided (Diagnosed, Escalated or Remediating) as seen on a watch, for `n`
/// Incidents, alternately about `web` (healthy: nothing to propose, Escalated) and `ledger`
/// (OOM-killed: the rules propose more memory, so the policy decides on it — with the default
/// policy a person approves that; the Incidents after the first find the target busy). Returns
/// the stage's times and how many ended with a proposed action.
async fn diagnose_latency(client: &kube::Client, n: usize) -> (Vec<f64>, usize) {
    let api: Api<Incident> = Api::namespaced(client.clone(), NS);
    let stream = watcher(api.clone(), watcher::Config::default().labels("bench=diagnose")).applied_objects();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(inc)) = stream.next().await {
            let _ = tx.send((Instant::now(), inc));
        }
    });
    for i in 0..n {
        let workload = if i % 2 == 0 { "web" } else { "ledger" };
        let inc: Result<Incident, _> = serde_json::from_value(json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": format!("diag-{i:03}"), "labels": {"bench": "diagnose"}},
            "spec": {"service": workload, "severity": "High", "source": {"kind": "Manual", "reason": "errors"},
                     "target": {"kind": "Deployment", "name": workload}}}));
        if let Ok(inc) = inc {
            let _ = api.create(&PostParams::default(), &inc).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut investigating: HashMap<String, Instant> = HashMap::new();
    let (mut out, mut proposed) = (Vec::new(), 0);
    // The operator may still be busy with the alarms' Incidents: wait for it (bounded), never
    // stop early on a quiet moment, which would leave the figure unmeasured.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while out.len() < n {
        let Ok(Some((at, inc))) = tokio::time::timeout_at(deadline, rx.recv()).await else { break };
        let name = inc.metadata.name.clone().unwrap_or_default();
        let phase = inc.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("Detected");
        match phase {
            "Investigating" => {
                investigating.entry(name).or_insert(at);
            }
            "Diagnosed" | "Escalated" | "Remediating" => {
                if let Some(start) = investigating.remove(&name) {
                    out.push(at.duration_since(start).as_secs_f64() * 1000.0);
                    let diagnosis = inc.status.as_ref().and_then(|s| s.diagnosis.as_ref());
                    proposed += usize::from(diagnosis.is_some_and(|d| d.proposed_action.is_some()));
                }
            }
            _ => {}
        }
    }
    watch.abort();
    (out, proposed)
}

/// The policy's decision over every Remediation in the cluster, `n` times (µs), as the Incident
/// controller makes it: `policy_context::gather` reading a Remediation cache filled as the
/// operator fills its own, then `Policy::evaluate`. The operator's code, run in this process,
/// so the decision is timed apart from the rest of the diagnosis stage. The action is a pull request, whose target needs no request: what is timed is the counting.
/// Second: the same count decoding every cached Remediation (how the operator counted before
/// it kept their summaries), for comparison in the same run.
async fn policy_decisions(client: &kube::Client, n: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    use operator::controllers::cache::{CachedRemediation, PAGE_SIZE};
    let (store, mut writer) = kube::runtime::reflector::store::<CachedRemediation>();
    let api: Api<CachedRemediation> = Api::all(client.clone());
    let mut lp = kube::api::ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = api.list(&lp).await.map_err(|e| format!("listing Remediations: {e}"))?;
        for c in page.items {
            writer.apply_watcher_event(&watcher::Event::Apply(c));
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    let action: operator::domain::action::ProposedAction =
        serde_json::from_value(json!({"kind": "PullRequest", "targetName": "shop-gitops", "repository": "acme/shop"}))
            .map_err(|e| e.to_string())?;
    let policy = operator::domain::policy::Policy::default();
    let (mut summaries, mut decoding) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let history = operator::kube::config_history::ConfigHistory::default();
        let ctx = operator::kube::policy_context::gather(client, Some(&store), &history, NS, &action, None, None)
            .await
            .map_err(|e| e.to_string())?;
        std::hint::black_box(policy.evaluate(&action, &ctx));
        summaries.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let in_flight = store
            .state()
            .iter()
            .filter_map(|c| c.object().ok())
            .filter(|r| r.status.as_ref().is_some_and(|s| s.phase.is_in_flight()))
            .count();
        std::hint::black_box(in_flight);
        decoding.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok((summaries, decoding))
}

/// One API round trip (GET the workload), for comparison with the diagnosis stage.
async fn round_trips(client: &kube::Client, n: usize) -> Vec<f64> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), NS);
    let mut out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        if api.get("web").await.is_ok() {
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    out
}

/// Creating an Incident directly through the API (what intake does at best).
async fn direct_creates(client: &kube::Client, n: usize) -> Vec<f64> {
    let api: Api<Incident> = Api::namespaced(client.clone(), NS);
    let mut out = Vec::new();
    for i in 0..n {
        let inc: Result<Incident, _> = serde_json::from_value(
            json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "metadata": {"name": format!("direct-{i:03}")},
            "spec": {"service": "web", "severity": "High", "source": {"kind": "Manual"}, "target": {"kind": "Deployment", "name": "web"}}}),
        );
        let Ok(inc) = inc else { continue };
        let t = Instant::now();
        if api.create(&PostParams::default(), &inc).await.is_ok() {
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    out
}

async fn fresh_cluster(workdir: PathBuf) -> Result<Cluster, String> {
    let c = Cluster::start(ClusterOptions { workdir, scale: TimeScale::default(), sync_frequency: Duration::from_secs(10), exe: None })
        .await
        .map_err(|e| e.to_string())?;
    ensure_namespace(&c.client, NS).await.map_err(|e| e.to_string())?;
    let docs = crate::demo::apply::parse_yaml_stream(WORKLOADS).map_err(|e| e.to_string())?;
    crate::demo::apply::create_all(&c.client, NS, &docs).await.map_err(|e| e.to_string())?;
    Ok(c)
}

/// The workloads the diagnosis Incidents are about.
const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: sandbox.salve.dev/scripted:v1
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 2}
          resources: {limits: {memory: 128Mi}}
---
# Holds more memory than its limit allows: OOMKilled, restarted in place, backing off. The
# offline rules propose more memory for it, so its Incidents reach the policy.
apiVersion: apps/v1
kind: Deployment
metadata: {name: ledger}
spec:
  replicas: 1
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec:
      containers:
        - name: ledger
          image: sandbox.salve.dev/scripted:v1
          env:
            - {name: SANDBOX_SCRIPT, value: '{"port": 8080, "grow_memory_mib_per_s": 60, "grow_memory_to_mib": 80}'}
          ports: [{name: http, containerPort: 8080}]
          resources: {requests: {memory: 32Mi}, limits: {memory: 64Mi}}
"#;

pub async fn main(args: BenchArgs) -> i32 {
    match run(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("salve-sandbox bench: {e}");
            1
        }
    }
}

async fn run(args: BenchArgs) -> Result<(), String> {
    let n = args.incidents.max(1);
    let base = args.workdir.clone().unwrap_or_else(|| crate::scenario::default_workdir("bench"));
    if !args.json {
        println!("salve-sandbox bench: {n} Incidents with their Remediations (simulated cluster; numbers are this machine's)");
    }
    // The operator, in its own cluster.
    let cluster = fresh_cluster(base.join("operator")).await?;
    let alarm_queues = match sqs_alarms::emulator() {
        Some(_) => Some(sqs_alarms::create().await?),
        None => None,
    };
    let sqs_queue = alarm_queues.as_ref().map(|q| q.operator_queue_url.as_str());
    let (mut op, mut child) = measure_controller(&cluster, Measured::Operator, "bench-operator", OPERATOR_WORK, n, sqs_queue).await?;
    let webhook = format!("http://{}/intake/alertmanager", child.addr);
    let (mut burst, mut steady) = alarm_latency(&webhook).await;
    op.alarm_to_incident_p50_ms = percentile(&mut burst, 0.5);
    op.alarm_to_incident_p99_ms = percentile(&mut burst, 0.99);
    op.alarm_to_incident_steady_p99_ms = percentile(&mut steady, 0.99);
    let (mut through_sqs, mut transport) = match &alarm_queues {
        Some(q) => q.latency(&cluster.client).await,
        None => Default::default(),
    };
    op.alarm_to_incident_sqs_p50_ms = percentile(&mut through_sqs.burst, 0.5);
    op.alarm_to_incident_sqs_p99_ms = percentile(&mut through_sqs.burst, 0.99);
    op.alarm_to_incident_sqs_steady_p99_ms = percentile(&mut through_sqs.steady, 0.99);
    // The bare consumer's figures, for the baseline's column.
    let sqs_transport =
        (percentile(&mut transport.burst, 0.5), percentile(&mut transport.burst, 0.99), percentile(&mut transport.steady, 0.99));
    if let Some(q) = alarm_queues {
        q.delete().await;
    }
    let (mut diag, proposed) = diagnose_latency(&cluster.client, 100).await;
    (op.diagnose_with_policy, op.diagnose_measured) = (proposed, diag.len());
    op.diagnose_p50_ms = percentile(&mut diag, 0.5);
    op.diagnose_p99_ms = percentile(&mut diag, 0.99);
    let (mut policy, mut decoding) = policy_decisions(&cluster.client, 100).await?;
    op.policy_p50_us = percentile(&mut policy, 0.5);
    op.policy_p99_us = percentile(&mut policy, 0.99);
    // Not the baseline controller's: the operator's count as it was, for the comparison row.
    let decoding_each = (percentile(&mut decoding, 0.5), percentile(&mut decoding, 0.99));
    let _ = child.child.kill().await;
    cluster.stop().await;
    // The baseline, in a cluster of its own with the same objects.
    let cluster = fresh_cluster(base.join("baseline")).await?;
    let (mut bl, mut child) =
        measure_controller(&cluster, Measured::Baseline, "bench-baseline", &["baseline_reconciles_total"], n, None).await?;
    (bl.alarm_to_incident_sqs_p50_ms, bl.alarm_to_incident_sqs_p99_ms, bl.alarm_to_incident_sqs_steady_p99_ms) = sqs_transport;
    let mut creates = direct_creates(&cluster.client, 100).await;
    bl.alarm_to_incident_p50_ms = percentile(&mut creates, 0.5);
    bl.alarm_to_incident_p99_ms = percentile(&mut creates, 0.99);
    bl.alarm_to_incident_steady_p99_ms = bl.alarm_to_incident_p99_ms;
    let mut trips = round_trips(&cluster.client, 100).await;
    bl.diagnose_p50_ms = percentile(&mut trips, 0.5);
    bl.diagnose_p99_ms = percentile(&mut trips, 0.99);
    let _ = child.child.kill().await;
    cluster.stop().await;
    report(&op, &bl, decoding_each, n, args.json);
    Ok(())
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { (a / b * 100.0).round() / 100.0 }
}

fn report(op: &Figures, bl: &Figures, decoding_each: (f64, f64), n: usize, json: bool) {
    if json {
        let line = json!({
            "incidents": n,
            "operator_rss_mib": op.rss_mib, "operator_rss_mib_at_1k": op.rss_mib_at_1k,
            "alarm_to_incident_p50_ms": op.alarm_to_incident_p50_ms, "alarm_to_incident_p99_ms": op.alarm_to_incident_p99_ms,
            "alarm_to_incident_steady_p99_ms": op.alarm_to_incident_steady_p99_ms,
            "alarm_to_incident_sqs_p50_ms": op.alarm_to_incident_sqs_p50_ms, "alarm_to_incident_sqs_p99_ms": op.alarm_to_incident_sqs_p99_ms,
            "alarm_to_incident_sqs_steady_p99_ms": op.alarm_to_incident_sqs_steady_p99_ms,
            "diagnose_p50_ms": op.diagnose_p50_ms, "diagnose_p99_ms": op.diagnose_p99_ms,
            "diagnose_measured": op.diagnose_measured, "diagnose_with_policy": op.diagnose_with_policy,
            "policy_decision_p50_us": op.policy_p50_us, "policy_decision_p99_us": op.policy_p99_us,
            "policy_decision_decoding_each_p50_us": decoding_each.0, "policy_decision_decoding_each_p99_us": decoding_each.1,
            "reconciles_per_second": op.reconciles_per_second,
            "api_requests_per_incident": op.api_requests_per_incident, "watch_streams": op.watch_streams, "largest_list_page": op.largest_list_page,
            "baseline": {"rss_mib": bl.rss_mib, "rss_mib_at_1k": bl.rss_mib_at_1k, "alarm_to_incident_p50_ms": bl.alarm_to_incident_p50_ms,
                "alarm_to_incident_p99_ms": bl.alarm_to_incident_p99_ms,
                "alarm_to_incident_sqs_p50_ms": bl.alarm_to_incident_sqs_p50_ms, "alarm_to_incident_sqs_p99_ms": bl.alarm_to_incident_sqs_p99_ms,
                "alarm_to_incident_sqs_steady_p99_ms": bl.alarm_to_incident_sqs_steady_p99_ms, "diagnose_p50_ms": bl.diagnose_p50_ms, "diagnose_p99_ms": bl.diagnose_p99_ms,
                "reconciles_per_second": bl.reconciles_per_second, "api_requests_per_incident": bl.api_requests_per_incident, "watch_streams": bl.watch_streams},
            "ratios": {"rss": ratio(op.rss_mib, bl.rss_mib), "alarm_to_incident_p99": ratio(op.alarm_to_incident_p99_ms, bl.alarm_to_incident_p99_ms),
                "alarm_to_incident_sqs_p99": ratio(op.alarm_to_incident_sqs_p99_ms, bl.alarm_to_incident_sqs_p99_ms),
                "diagnose_p99": ratio(op.diagnose_p99_ms, bl.diagnose_p99_ms), "reconciles_per_second": ratio(op.reconciles_per_second, bl.reconciles_per_second)}
        });
        println!("{line}");
        return;
    }
    println!("{:<34} {:>12} {:>12} {:>8}", "figure", "operator", "baseline", "ratio");
    let rows: [(&str, f64, f64); 12] = [
        ("RSS at 1,000 incidents (MiB)", op.rss_mib_at_1k, bl.rss_mib_at_1k),
        ("RSS at N incidents (MiB)", op.rss_mib, bl.rss_mib),
        ("reconciles per second", op.reconciles_per_second, bl.reconciles_per_second),
        ("alarm -> Incident p50 (ms)", op.alarm_to_incident_p50_ms, bl.alarm_to_incident_p50_ms),
        ("alarm -> Incident p99 burst (ms)", op.alarm_to_incident_p99_ms, bl.alarm_to_incident_p99_ms),
        ("alarm -> Incident p99 10/s (ms)", op.alarm_to_incident_steady_p99_ms, bl.alarm_to_incident_steady_p99_ms),
        ("alarm via SQS p50 (ms)", op.alarm_to_incident_sqs_p50_ms, bl.alarm_to_incident_sqs_p50_ms),
        ("alarm via SQS p99 burst (ms)", op.alarm_to_incident_sqs_p99_ms, bl.alarm_to_incident_sqs_p99_ms),
        ("alarm via SQS p99 10/s (ms)", op.alarm_to_incident_sqs_steady_p99_ms, bl.alarm_to_incident_sqs_steady_p99_ms),
        ("diagnosis stage p50 (ms)", op.diagnose_p50_ms, bl.diagnose_p50_ms),
        ("diagnosis stage p99 (ms)", op.diagnose_p99_ms, bl.diagnose_p99_ms),
        ("API requests per Incident", op.api_requests_per_incident, bl.api_requests_per_incident),
    ];
    let shown = |x: f64| if x.is_nan() { "n/a".to_string() } else { x.to_string() };
    for (name, a, b) in rows {
        println!("{name:<34} {:>12} {:>12} {:>8}", shown(a), shown(b), shown(ratio(a, b)));
    }
    println!(
        "diagnosis stage: {} Incidents measured, {} of them with a proposed action decided by the policy",
        op.diagnose_measured, op.diagnose_with_policy
    );
    println!("{:<34} {:>12} {:>12}", "watch streams", op.watch_streams, bl.watch_streams);
    println!("{:<34} {:>12} {:>12}", "largest list page asked (limit=)", op.largest_list_page, bl.largest_list_page);
    println!(
        "policy decision over {n} Remediations p50 / p99: {} / {} µs (counting by decoding each, as before: {} / {} µs; ratio p50 {})",
        shown(op.policy_p50_us),
        shown(op.policy_p99_us),
        shown(decoding_each.0),
        shown(decoding_each.1),
        shown(ratio(op.policy_p50_us, decoding_each.0))
    );
    println!(
        "baseline: a bare kube-rs controller on the same CRDs; alarm baseline = creating the Incident through the API; via SQS = a bare consumer of the same SNS notifications (n/a: no AWS_ENDPOINT_URL; tests/bench-operator.sh starts moto); diagnosis baseline = one API round trip"
    );
}
