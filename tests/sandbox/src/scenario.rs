//! Scenarios: a workload, a fault, how the alarm is raised, and what Salve is expected to do.
//! `salve-sandbox run PATH...` runs scenario files (YAML) end to end with the real operator,
//! one cluster each, and prints a scorecard; `demo` runs one of the built-in ones.
//!
//! ```yaml
//! name: config-typo                 # unique, [a-z0-9-]
//! description: a typo in the OMS settings makes every order time out
//! shop: true                        # deploy OMS and IMS (the chart's manifests) with traffic
//! manifests: []                     # more objects for namespace `shop` (Deployments, ConfigMaps...)
//! workload: salve-oms               # the Deployment the alarm is about
//! alert: {kind: error_ratio, service: salve-oms, port: 8080, metric_prefix: oms}   # or {kind: workload_unhealthy}
//! fault:                            # one of:
//!   replace_in_config_map: {name: salve-oms-settings, key: settings.toml, find: "request_timeout_ms = 10000", replace: "request_timeout_ms = 1"}
//!   # set_config_map_key: {name, key, value}
//!   # set_image: {deployment, container, image}
//!   # set_env: {deployment, container, name, value}
//! expect: {category: Config_Error, action: SetConfigMapKey, phase: Resolved}   # action: null = escalate
//! timeout_seconds: 150
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use operator::crd::{Incident, Remediation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::TimeScale;
use crate::cluster::{Cluster, ClusterOptions, client_as, ensure_namespace};
use crate::demo::alerts::{self, AlertContext, AlertEvent, AlertRule};
use crate::demo::operator::{RunningOperator, WEBHOOK_TOKEN};
use crate::demo::{apply, traffic};

pub const NAMESPACE: &str = "shop";
const SHOP: &str = include_str!("demo/shop.yaml");
const API_KEY: &str = "sandbox-key";

/// The built-in scenarios (the files of `tests/scenarios/` the demo offers by name).
pub const BUILT_IN: [(&str, &str); 5] = [
    ("config-typo", include_str!("../../scenarios/config-typo.yaml")),
    ("oom", include_str!("../../scenarios/oom.yaml")),
    ("bad-rollout", include_str!("../../scenarios/bad-rollout.yaml")),
    ("dependency-down", include_str!("../../scenarios/dependency-down.yaml")),
    ("permission-denied", include_str!("../../scenarios/permission-denied.yaml")),
];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub shop: bool,
    #[serde(default)]
    pub manifests: Vec<Value>,
    pub workload: String,
    pub alert: AlertRule,
    pub fault: Fault,
    pub expect: Expectation,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// An on-call person approves what the policy leaves to a person (Medium/High risk), as
    /// `kubectl salve approve` would; `false`: nobody does.
    #[serde(default = "yes")]
    pub approve: bool,
}

fn default_timeout() -> u64 {
    150
}

fn yes() -> bool {
    true
}

/// Who approves in the sandbox.
pub const ON_CALL: &str = "sandbox-oncall";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    ReplaceInConfigMap {
        name: String,
        key: String,
        find: String,
        replace: String,
    },
    SetConfigMapKey {
        name: String,
        key: String,
        value: String,
    },
    SetImage {
        deployment: String,
        container: String,
        image: String,
    },
    SetEnv {
        deployment: String,
        container: String,
        name: String,
        value: String,
    },
    /// A strategic merge patch on a Deployment (probes, volumes, env sources...).
    PatchDeployment {
        name: String,
        patch: Value,
    },
    /// Deletes the pods matching `selector` (a node drain, an eviction): they come back fresh.
    DeletePods {
        selector: String,
    },
    /// Several faults, in order.
    Sequence(Vec<Fault>),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub category: Option<String>,
    /// The action kind, or `null` when escalating without an action is right.
    pub action: Option<String>,
    pub phase: String,
}

/// The result, as `--json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub scenario: String,
    pub phase: String,
    pub root_cause: Option<String>,
    pub action: Option<String>,
    pub verified: bool,
    pub mttr_seconds: Option<f64>,
    pub post_mortem: Option<String>,
}

impl Outcome {
    /// What differs from the expectation (empty: as expected).
    pub fn mismatches(&self, e: &Expectation) -> Vec<String> {
        let mut out = Vec::new();
        if self.phase != e.phase {
            out.push(format!("phase {} (expected {})", self.phase, e.phase));
        }
        if e.category.is_some() && self.root_cause != e.category {
            out.push(format!("root cause {:?} (expected {:?})", self.root_cause, e.category));
        }
        if self.action != e.action {
            out.push(format!("action {:?} (expected {:?})", self.action, e.action));
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("{0}")]
    Apply(#[from] apply::ApplyError),
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("{0}")]
    Timeout(String),
}

/// Parses and checks a scenario; errors name the file and the field.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let invalid = |message: String| ScenarioError::Invalid { file: file.into(), message };
    // Through JSON: enums are written as one-key maps (`fault: {set_image: {...}}`), which
    // serde_yaml 0.9 would want as YAML tags.
    let value: Value = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let s: Scenario = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    if s.name.is_empty() || !s.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(invalid(format!("name: {:?} must be lowercase letters, digits and '-'", s.name)));
    }
    if !["Resolved", "Escalated"].contains(&s.expect.phase.as_str()) {
        return Err(invalid(format!("expect.phase: {:?} must be Resolved or Escalated", s.expect.phase)));
    }
    if s.expect.phase == "Resolved" && s.expect.action.is_none() {
        return Err(invalid("expect.action: a resolved incident needs the action that resolved it".into()));
    }
    for (i, m) in s.manifests.iter().enumerate() {
        if m.get("kind").and_then(Value::as_str).is_none() {
            return Err(invalid(format!("manifests[{i}].kind is missing")));
        }
    }
    Ok(s)
}

/// Progress of a run, for the narration.
#[derive(Debug, Clone)]
pub enum Progress {
    Cluster { kubeconfig: PathBuf },
    Ready,
    FaultInjected(String),
    Alert(AlertEvent),
    Incident { name: String, phase: String, message: String },
    Remediation { name: String, phase: String, message: String },
    Approved { name: String, by: String },
}

pub struct RunOptions {
    pub workdir: PathBuf,
    pub scale: TimeScale,
    pub sync_frequency: Duration,
    /// After the outcome, keep the cluster up until Ctrl-C.
    pub keep: bool,
    /// The binary containers run from (default: this process's own).
    pub exe: Option<PathBuf>,
}

/// Runs one scenario in a fresh cluster. `progress` hears every step with its time.
pub async fn run_one(
    s: &Scenario,
    opts: &RunOptions,
    progress: mpsc::UnboundedSender<(Instant, Progress)>,
) -> Result<Outcome, ScenarioError> {
    let say = |p: Progress| {
        let _ = progress.send((Instant::now(), p));
    };
    let cluster = Cluster::start(ClusterOptions {
        workdir: opts.workdir.clone(),
        scale: opts.scale,
        sync_frequency: opts.sync_frequency,
        exe: opts.exe.clone(),
    })
    .await?;
    say(Progress::Cluster { kubeconfig: cluster.kubeconfig.clone() });
    let result = drive(s, opts, &cluster, &say).await;
    if opts.keep {
        let _ = tokio::signal::ctrl_c().await;
    }
    cluster.stop().await;
    result
}

async fn drive(s: &Scenario, opts: &RunOptions, cluster: &Cluster, say: &impl Fn(Progress)) -> Result<Outcome, ScenarioError> {
    let client = cluster.client.clone();
    ensure_namespace(&client, NAMESPACE).await?;
    if s.shop {
        let docs =
            apply::parse_yaml_stream(SHOP).map_err(|e| ScenarioError::Invalid { file: "shop.yaml".into(), message: e.to_string() })?;
        apply::create_all(&client, NAMESPACE, &docs).await?;
    }
    apply::create_all(&client, NAMESPACE, &s.manifests).await?;
    let operator = RunningOperator::start(cluster, NAMESPACE, 120).await?;
    let stop = CancellationToken::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    wait_available(&client, &s.workload, deadline).await?;
    if s.shop {
        tokio::spawn(traffic::run(client.clone(), NAMESPACE.into(), API_KEY.into(), 5, stop.clone()));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    say(Progress::Ready);
    let (alert_tx, mut alert_rx) = mpsc::unbounded_channel();
    let ctx = AlertContext {
        client: client.clone(),
        namespace: NAMESPACE.into(),
        workload: s.workload.clone(),
        webhook: operator.webhook.clone(),
        token: WEBHOOK_TOKEN.into(),
    };
    tokio::spawn(alerts::run(s.alert.clone(), ctx, alert_tx, stop.clone()));
    let injected = Instant::now();
    let what = inject(&client, &s.fault).await?;
    say(Progress::FaultInjected(what));
    // The on-call person approves with their own credentials: the approval policy accepts an
    // approval only in the name of the user who writes it.
    let on_call = client_as(&cluster.fake, NAMESPACE, ON_CALL).await?;
    let outcome = follow(s, &client, &on_call, say, &mut alert_rx, injected).await;
    // The verification is judged by the operator; the alert's own resolution is reported too.
    while let Ok(ev) = alert_rx.try_recv() {
        say(Progress::Alert(ev));
    }
    stop.cancel();
    operator.stop().await;
    let mut outcome = outcome?;
    if let Some(name) = &outcome.post_mortem {
        let file = opts.workdir.join(format!("{name}.json"));
        if let Ok(Some(cm)) = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE).get_opt(name).await
            && let Some(json) = cm.data.and_then(|d| d.get("postmortem.json").cloned())
            && std::fs::write(&file, json).is_ok()
        {
            outcome.post_mortem = Some(format!("configmap {NAMESPACE}/{name} (copy: {})", file.display()));
        }
    }
    Ok(outcome)
}

async fn wait_available(client: &kube::Client, name: &str, deadline: Instant) -> Result<(), ScenarioError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    loop {
        if let Ok(Some(d)) = api.get_opt(name).await {
            let desired = d.spec.replicas.unwrap_or(1);
            let st = d.status.clone().unwrap_or_default();
            let rolled_out = st.observed_generation == d.metadata.generation
                && st.updated_replicas == Some(desired)
                && st.available_replicas == Some(desired)
                && st.replicas == Some(desired);
            if rolled_out {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(ScenarioError::Timeout(format!("Deployment {name} did not become available before the fault")));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn inject(client: &kube::Client, fault: &Fault) -> Result<String, ScenarioError> {
    if let Fault::Sequence(faults) = fault {
        let mut done = Vec::new();
        for f in faults {
            done.push(Box::pin(inject(client, f)).await?);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        return Ok(done.join("; "));
    }
    let kube_err = |what: String| move |source| ScenarioError::Kube { what, source };
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let pp = PatchParams::default();
    Ok(match fault {
        Fault::ReplaceInConfigMap { name, key, find, replace } => {
            let cm = cms.get(name).await.map_err(kube_err(format!("reading ConfigMap {name}")))?;
            let old = cm.data.and_then(|d| d.get(key).cloned()).unwrap_or_default();
            let new = old.replace(find.as_str(), replace);
            cms.patch(name, &pp, &Patch::Merge(json!({"data": {key: new}})))
                .await
                .map_err(kube_err(format!("patching ConfigMap {name}")))?;
            format!("ConfigMap {name}: {key}: `{find}` -> `{replace}`")
        }
        Fault::SetConfigMapKey { name, key, value } => {
            cms.patch(name, &pp, &Patch::Merge(json!({"data": {key: value}})))
                .await
                .map_err(kube_err(format!("patching ConfigMap {name}")))?;
            format!("ConfigMap {name}: {key}={value}")
        }
        Fault::SetImage { deployment, container, image } => {
            let body = json!({"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}});
            deployments
                .patch(deployment, &pp, &Patch::Strategic(body))
                .await
                .map_err(kube_err(format!("patching Deployment {deployment}")))?;
            format!("Deployment {deployment}: image {image}")
        }
        Fault::SetEnv { deployment, container, name, value } => {
            let body =
                json!({"spec": {"template": {"spec": {"containers": [{"name": container, "env": [{"name": name, "value": value}]}]}}}});
            deployments
                .patch(deployment, &pp, &Patch::Strategic(body))
                .await
                .map_err(kube_err(format!("patching Deployment {deployment}")))?;
            format!("Deployment {deployment}: env {name}={value}")
        }
        Fault::PatchDeployment { name, patch } => {
            deployments
                .patch(name, &pp, &Patch::Strategic(patch.clone()))
                .await
                .map_err(kube_err(format!("patching Deployment {name}")))?;
            format!("Deployment {name}: {patch}")
        }
        Fault::DeletePods { selector } => {
            let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), NAMESPACE);
            let lp = ListParams::default().labels(selector);
            for p in pods.list(&lp).await.map_err(kube_err(format!("listing pods {selector}")))?.items {
                let name = p.metadata.name.unwrap_or_default();
                pods.delete(&name, &Default::default()).await.map_err(kube_err(format!("deleting pod {name}")))?;
            }
            format!("pods {selector} deleted")
        }
        Fault::Sequence(_) => String::new(),
    })
}

/// Follows the Incident the alarm opened until it ends, reporting every phase it passes.
async fn follow(
    s: &Scenario,
    client: &kube::Client,
    on_call: &kube::Client,
    say: &impl Fn(Progress),
    alert_rx: &mut mpsc::UnboundedReceiver<AlertEvent>,
    injected: Instant,
) -> Result<Outcome, ScenarioError> {
    let incidents: Api<Incident> = Api::namespaced(client.clone(), NAMESPACE);
    let remediations: Api<Remediation> = Api::namespaced(client.clone(), NAMESPACE);
    let approver: Api<Remediation> = Api::namespaced(on_call.clone(), NAMESPACE);
    let deadline = injected + Duration::from_secs(s.timeout_seconds);
    let mut seen: std::collections::BTreeSet<String> = Default::default();
    loop {
        while let Ok(ev) = alert_rx.try_recv() {
            say(Progress::Alert(ev));
        }
        let list = incidents
            .list(&ListParams::default())
            .await
            .map_err(|source| ScenarioError::Kube { what: "listing Incidents".into(), source })?;
        let rems = remediations
            .list(&ListParams::default())
            .await
            .map_err(|source| ScenarioError::Kube { what: "listing Remediations".into(), source })?;
        if let Some(inc) = list.items.first() {
            let st = inc.status.clone().unwrap_or_default();
            for t in &st.timeline {
                if seen.insert(format!("i/{}/{}", t.phase.as_str(), t.time)) {
                    say(Progress::Incident {
                        name: inc.metadata.name.clone().unwrap_or_default(),
                        phase: t.phase.as_str().into(),
                        message: t.message.clone(),
                    });
                }
            }
            narrate_remediations(&rems.items, s, &approver, &mut seen, say).await;
            if st.phase.is_terminal() {
                let name = inc.metadata.name.clone().unwrap_or_default();
                let last = st.remediations.last().and_then(|n| rems.items.iter().find(|r| r.metadata.name.as_deref() == Some(n.as_str())));
                let verified = last.and_then(|r| r.status.as_ref()).is_some_and(|rs| rs.phase.as_str() == "Succeeded");
                let resolved = st.phase.as_str() == "Resolved";
                return Ok(Outcome {
                    scenario: s.name.clone(),
                    phase: st.phase.as_str().into(),
                    root_cause: st.diagnosis.as_ref().and_then(|d| d.root_cause_category).map(|c| c.as_str().to_string()),
                    action: if resolved || verified {
                        last.map(|r| format!("{:?}", r.spec.action.kind))
                    } else {
                        st.diagnosis.as_ref().and_then(|d| d.proposed_action.as_ref()).map(|a| format!("{:?}", a.kind))
                    },
                    verified,
                    mttr_seconds: resolved.then(|| (injected.elapsed().as_secs_f64() * 10.0).round() / 10.0),
                    post_mortem: st.post_mortem_ref.clone().or_else(|| Some(format!("{name}-postmortem"))),
                });
            }
        }
        if Instant::now() > deadline {
            return Err(ScenarioError::Timeout(format!("scenario {} did not end within {}s", s.name, s.timeout_seconds)));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reports each Remediation phase once and approves, as the on-call person (`approver` is
/// authenticated as them), what waits for one.
async fn narrate_remediations(
    items: &[Remediation],
    s: &Scenario,
    approver: &Api<Remediation>,
    seen: &mut std::collections::BTreeSet<String>,
    say: &impl Fn(Progress),
) {
    for r in items {
        let st = r.status.clone().unwrap_or_default();
        let key = format!("r/{}/{}", r.metadata.name.clone().unwrap_or_default(), st.phase.as_str());
        if seen.insert(key) {
            let message =
                st.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.message.clone()).unwrap_or_else(|| r.spec.action.describe());
            say(Progress::Remediation { name: r.metadata.name.clone().unwrap_or_default(), phase: st.phase.as_str().into(), message });
        }
        let waiting = st.phase.as_str() == "AwaitingApproval"
            && r.spec.approval.as_ref().is_none_or(|a| a.state == operator::crd::ApprovalState::Pending);
        if waiting && s.approve {
            let name = r.metadata.name.clone().unwrap_or_default();
            let body = json!({"spec": {"approval": {"state": "Approved", "by": ON_CALL}}});
            if approver.patch(&name, &PatchParams::default(), &Patch::Merge(body)).await.is_ok() {
                say(Progress::Approved { name, by: ON_CALL.into() });
            }
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Scenario files (YAML), or directories of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Where clusters keep their files (a temporary directory by default).
    #[arg(long, env = "SANDBOX_WORKDIR")]
    pub workdir: Option<PathBuf>,
    /// Scenarios run at the same time (each in its own cluster).
    #[arg(long, env = "SANDBOX_PARALLEL", default_value_t = 2)]
    pub parallel: usize,
    /// One JSON line per scenario instead of the table.
    #[arg(long, env = "SANDBOX_JSON", default_value_t = false)]
    pub json: bool,
}

pub fn default_workdir(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!("salve-sandbox-{}-{label}", std::process::id()))
}

fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| ScenarioError::Invalid { file: p.display().to_string(), message: e.to_string() })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            inner.sort();
            out.extend(inner);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ScenarioError::Invalid { file: path.display().to_string(), message: e.to_string() })?;
    parse(&path.display().to_string(), &text)
}

/// `salve-sandbox run`: every scenario, a scorecard, `N passed, M failed`; exit 1 on a failure.
pub async fn main(args: RunArgs) -> i32 {
    let scenarios = match files(&args.paths).and_then(|fs| fs.iter().map(|f| load(f)).collect::<Result<Vec<_>, _>>()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("salve-sandbox: {e}");
            return 2;
        }
    };
    let base = args.workdir.clone().unwrap_or_else(|| default_workdir("run"));
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(args.parallel.max(1)));
    let mut tasks = Vec::new();
    for s in scenarios {
        let sem = sem.clone();
        let opts = RunOptions {
            workdir: base.join(&s.name),
            scale: TimeScale::default(),
            sync_frequency: Duration::from_secs(10),
            keep: false,
            exe: None,
        };
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let (tx, _rx) = mpsc::unbounded_channel();
            let r = run_one(&s, &opts, tx).await;
            (s, r)
        }));
    }
    let (mut passed, mut failed) = (0, 0);
    if !args.json {
        println!("{:<24} {:<10} {:<22} {:<24} {:>6}  result", "SCENARIO", "PHASE", "ROOT CAUSE", "ACTION", "MTTR");
    }
    for t in tasks {
        let Ok((s, r)) = t.await else { continue };
        let (line, ok) = match &r {
            Ok(o) => {
                let miss = o.mismatches(&s.expect);
                let mttr = o.mttr_seconds.map(|m| format!("{m:.1}s")).unwrap_or_else(|| "-".into());
                if args.json {
                    (serde_json::to_string(o).unwrap_or_default(), miss.is_empty())
                } else {
                    let result = if miss.is_empty() { "ok".to_string() } else { format!("FAILED: {}", miss.join("; ")) };
                    (
                        format!(
                            "{:<24} {:<10} {:<22} {:<24} {:>6}  {result}",
                            s.name,
                            o.phase,
                            o.root_cause.clone().unwrap_or("-".into()),
                            o.action.clone().unwrap_or("escalate".into()),
                            mttr
                        ),
                        miss.is_empty(),
                    )
                }
            }
            Err(e) => (format!("{:<24} FAILED: {e}", s.name), false),
        };
        println!("{line}");
        if ok { passed += 1 } else { failed += 1 }
    }
    println!("{passed} passed, {failed} failed");
    i32::from(failed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_parses() {
        for (name, text) in BUILT_IN {
            let s = parse(name, text).expect(name);
            assert_eq!(s.name, name);
        }
    }

    #[test]
    fn invalid_files_name_the_file_and_the_field() {
        let e = parse("bad.yaml", "name: x\nworkload: w\nalert: {kind: workload_unhealthy}\nfault: {set_image: {deployment: d, container: c, image: i}}\nexpect: {category: null, action: null, phase: Fixed}\n").expect_err("invalid");
        let msg = e.to_string();
        assert!(msg.contains("bad.yaml") && msg.contains("expect.phase"), "{msg}");
        let e = parse(
            "typo.yaml",
            "name: x\nworkload: w\nalert: {kind: workload_unhealthy}\nfault: {set_imag: {}}\nexpect: {phase: Escalated}\n",
        )
        .expect_err("invalid");
        assert!(e.to_string().contains("typo.yaml") && e.to_string().contains("set_imag"), "{e}");
    }
}
