//! The simulated node's kubelet: runs every Pod bound to it (all Pods: one node, no scheduler
//! constraints) as real processes and reports their status and Events as the kubelet does.
//!
//! - volumes (`volumes`), environment at start (`env`), probes (`probes`), container life and
//!   back-off (`container`)
//! - memory limits: a container whose resident memory exceeds its limit is SIGKILLed and reported
//!   `OOMKilled`, exit code 137
//! - pod phase (`restartPolicy` Never/OnFailure: Succeeded once every container exited 0, Failed
//!   once every container has terminated and one failed), the PodScheduled/Initialized/
//!   ContainersReady/Ready conditions, QoS class; a pod that has terminated is never run again
//! - node pressure and eviction (`eviction`)
//! - logs of the current and the previous instance of each container (`kubectl logs --previous`)

pub mod container;
pub mod env;
pub mod eviction;
pub mod probes;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Node, Pod, PodCondition,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use self::container::{ContainerRuntime, State, Terminated};
use crate::clock::TimeScale;
use crate::events::{Recorder, reference};
use crate::images::Image;
use crate::network::{POD_ADDRESSES, POD_IP_ENV};

pub const NODE: &str = "sandbox-node";

#[derive(Clone, Debug)]
pub struct KubeletOptions {
    /// Where pods' volumes and container directories live.
    pub workdir: PathBuf,
    /// The binary containers are started from (`salve-sandbox container ...`).
    pub exe: PathBuf,
    pub scale: TimeScale,
    /// How often mounted ConfigMaps and Secrets are refreshed (the kubelet's `syncFrequency`).
    pub sync_frequency: Duration,
}

struct PodRuntime {
    ip: String,
    dir: PathBuf,
    containers: Vec<ContainerRuntime>,
    init: Vec<ContainerRuntime>,
    last_volume_sync: Option<Instant>,
    /// A volume that could not be set up (the pod waits in ContainerCreating).
    mount_error: Option<String>,
}

impl PodRuntime {
    /// The `i`-th init container or container.
    fn container(&self, init: bool, i: usize) -> &ContainerRuntime {
        if init { &self.init[i] } else { &self.containers[i] }
    }

    fn container_mut(&mut self, init: bool, i: usize) -> &mut ContainerRuntime {
        if init { &mut self.init[i] } else { &mut self.containers[i] }
    }
}

pub struct Kubelet {
    client: Client,
    fake: Arc<fake_kube::FakeKube>,
    events: Recorder,
    opts: KubeletOptions,
    pods: HashMap<String, PodRuntime>,
    http: reqwest::Client,
    scheduler_events: Recorder,
    eviction: eviction::EvictionState,
}

impl Kubelet {
    pub fn new(client: Client, fake: Arc<fake_kube::FakeKube>, opts: KubeletOptions) -> Self {
        Self {
            events: Recorder::new(client.clone(), "kubelet"),
            scheduler_events: Recorder::new(client.clone(), "default-scheduler"),
            client,
            fake,
            opts,
            pods: HashMap::new(),
            http: reqwest::Client::new(),
            eviction: eviction::EvictionState::default(),
        }
    }

    /// One pass over every pod.
    pub async fn sync(&mut self) -> Result<(), kube::Error> {
        let pods = Api::<Pod>::all(self.client.clone()).list(&ListParams::default()).await?.items;
        let live: Vec<String> = pods.iter().filter_map(|p| p.uid()).collect();
        // Deleted pods: their processes end (SIGKILL; the grace period is not simulated).
        let gone: Vec<String> = self.pods.keys().filter(|uid| !live.contains(uid)).cloned().collect();
        for uid in gone {
            if let Some(mut rt) = self.pods.remove(&uid) {
                for c in rt.containers.iter_mut().chain(rt.init.iter_mut()) {
                    c.kill();
                }
                let _ = std::fs::remove_dir_all(&rt.dir);
            }
        }
        let node = Api::<Node>::all(self.client.clone()).get_opt(NODE).await?;
        for pod in &pods {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE);
            if !bound {
                let on_node: Vec<Pod> = pods
                    .iter()
                    .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE))
                    .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
                    .cloned()
                    .collect();
                let verdict =
                    node.as_ref().map(|n| crate::scheduler::schedule(pod, n, &on_node)).unwrap_or(Err("0/0 nodes are available".into()));
                if let Err(message) = verdict {
                    self.unschedulable(pod, &message).await?;
                    continue;
                }
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
                api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(json!({"spec": {"nodeName": NODE}}))).await?;
            }
        }
        for pod in &pods {
            let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE);
            if pod.metadata.deletion_timestamp.is_some() || (!bound && !self.pods.contains_key(&pod.uid().unwrap_or_default())) {
                continue;
            }
            // Succeeded or Failed (completed, or evicted): never started again; whatever still
            // runs of it is stopped.
            if crate::controllers::terminal(pod) {
                if let Some(rt) = self.pods.get_mut(&pod.uid().unwrap_or_default()) {
                    for c in rt.containers.iter_mut().chain(rt.init.iter_mut()) {
                        c.kill();
                    }
                }
                continue;
            }
            if let Err(e) = self.sync_pod(pod).await {
                tracing::debug!(pod = %pod.name_any(), error = %e, "pod sync failed; retried next pass");
            }
        }
        self.manage_pressure(&pods).await
    }

    /// Pending: `PodScheduled=False/Unschedulable` and a FailedScheduling event from the scheduler.
    async fn unschedulable(&self, pod: &Pod, message: &str) -> Result<(), kube::Error> {
        let pod_ref = reference("Pod", "v1", &pod.metadata);
        self.scheduler_events.record(&pod_ref, true, "FailedScheduling", message).await;
        let status = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().round(k8s_openapi::jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()}]}});
        let already = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "PodScheduled" && c.message.as_deref() == Some(message)));
        if !already {
            Api::<Pod>::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default())
                .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(status))
                .await?;
        }
        Ok(())
    }

    /// Stops every container (the sandbox is shutting down).
    pub fn stop_all(&mut self) {
        for rt in self.pods.values_mut() {
            for c in rt.containers.iter_mut().chain(rt.init.iter_mut()) {
                c.kill();
            }
        }
    }

    async fn sync_pod(&mut self, pod: &Pod) -> Result<(), kube::Error> {
        let uid = pod.uid().unwrap_or_default();
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let pod_ref = reference("Pod", "v1", &pod.metadata);
        if !self.pods.contains_key(&uid) {
            let spec = pod.spec.clone().unwrap_or_default();
            let rt = PodRuntime {
                ip: POD_ADDRESSES.allocate(),
                dir: self.opts.workdir.join("pods").join(&uid),
                containers: spec.containers.iter().cloned().map(ContainerRuntime::new).collect(),
                init: spec.init_containers.iter().flatten().cloned().map(ContainerRuntime::new).collect(),
                last_volume_sync: None,
                mount_error: None,
            };
            self.scheduler_events.record(&pod_ref, false, "Scheduled", &format!("Successfully assigned {ns}/{name} to {NODE}")).await;
            self.pods.insert(uid.clone(), rt);
        }
        self.sync_volumes(pod, &uid, &pod_ref).await?;
        let restart_policy = pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into());
        let mount_error = self.pods.get(&uid).and_then(|r| r.mount_error.clone());
        if mount_error.is_none() {
            // Init containers run one at a time, each to completion, before the others.
            let init_done = self.run_init(pod, &uid, &pod_ref).await?;
            if init_done {
                let n = self.pods.get(&uid).map(|r| r.containers.len()).unwrap_or(0);
                for i in 0..n {
                    self.sync_container(pod, &uid, &pod_ref, false, i, &restart_policy).await?;
                }
            }
        }
        self.push_logs(&ns, &name, &uid);
        self.write_status(pod, &uid).await
    }

    async fn sync_volumes(
        &mut self,
        pod: &Pod,
        uid: &str,
        pod_ref: &k8s_openapi::api::core::v1::ObjectReference,
    ) -> Result<(), kube::Error> {
        let Some(rt) = self.pods.get_mut(uid) else { return Ok(()) };
        let due =
            rt.last_volume_sync.is_none_or(|t| t.elapsed() >= self.opts.scale.wall(self.opts.sync_frequency)) || rt.mount_error.is_some();
        if !due {
            return Ok(());
        }
        rt.last_volume_sync = Some(Instant::now());
        let ns = pod.namespace().unwrap_or_default();
        let mut error = None;
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let dir = rt.dir.join("volumes").join(&v.name);
            match volumes::contents(&self.client, &ns, v).await {
                Ok(Some(files)) => {
                    if let Err(e) = volumes::write_atomic(&dir, &files) {
                        error = Some(e.to_string());
                    }
                }
                Ok(None) => {
                    let _ = std::fs::create_dir_all(&dir);
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        if let Some(msg) = &error {
            self.events.record(pod_ref, true, "FailedMount", msg).await;
        }
        if let Some(rt) = self.pods.get_mut(uid) {
            rt.mount_error = error;
        }
        Ok(())
    }

    async fn run_init(&mut self, pod: &Pod, uid: &str, pod_ref: &k8s_openapi::api::core::v1::ObjectReference) -> Result<bool, kube::Error> {
        let n = self.pods.get(uid).map(|r| r.init.len()).unwrap_or(0);
        for i in 0..n {
            let done = self.pods.get(uid).is_some_and(|r| matches!(&r.init[i].state, State::Terminated(t) if t.exit_code == 0));
            if done {
                continue;
            }
            self.sync_container(pod, uid, pod_ref, true, i, "OnFailure").await?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn sync_container(
        &mut self,
        pod: &Pod,
        uid: &str,
        pod_ref: &k8s_openapi::api::core::v1::ObjectReference,
        init: bool,
        i: usize,
        restart_policy: &str,
    ) -> Result<(), kube::Error> {
        let name = pod.name_any();
        let scale = self.opts.scale;
        // 1. Has it exited?
        let (terminated, cname) = {
            let Some(rt) = self.pods.get_mut(uid) else { return Ok(()) };
            let c = rt.container_mut(init, i);
            (c.reap(), c.spec.name.clone())
        };
        if let Some(t) = terminated {
            let restart = match restart_policy {
                "Always" => true,
                "OnFailure" => t.exit_code != 0,
                _ => false,
            };
            if restart {
                let delay = {
                    let Some(rt) = self.pods.get_mut(uid) else { return Ok(()) };
                    let c = rt.container_mut(init, i);
                    c.back_off(&name, scale)
                };
                let ns = pod.namespace().unwrap_or_default();
                self.events
                    .record(pod_ref, true, "BackOff", &format!("Back-off restarting failed container {cname} in pod {name}_{ns}({uid})"))
                    .await;
                tracing::debug!(pod = %name, container = %cname, ?delay, "back-off");
            }
            return Ok(());
        }
        // 2. Running: memory and probes.
        let running = self.pods.get(uid).is_some_and(|rt| rt.container(init, i).is_running());
        if running {
            self.check_memory(uid, init, i);
            if !init {
                self.probe(pod, uid, pod_ref, i).await;
            }
            return Ok(());
        }
        // 3. Waiting, not backing off, not finished for good: start (again).
        let startable = self.pods.get(uid).is_some_and(|rt| {
            let c = rt.container(init, i);
            !c.in_backoff() && !matches!(c.state, State::Terminated(_))
        });
        if startable {
            self.start_container(pod, uid, pod_ref, init, i).await?;
        }
        Ok(())
    }

    fn check_memory(&mut self, uid: &str, init: bool, i: usize) {
        let Some(rt) = self.pods.get_mut(uid) else { return };
        let c = rt.container_mut(init, i);
        let limit = c
            .spec
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"))
            .and_then(|q| operator::domain::quantity::parse_bytes(&q.0));
        if let (Some(limit), Some(pid)) = (limit, c.pid())
            && container::resident_bytes(pid).is_some_and(|rss| rss > limit)
        {
            c.oom_killed = true;
            c.kill();
        }
    }

    async fn probe(&mut self, pod: &Pod, uid: &str, pod_ref: &k8s_openapi::api::core::v1::ObjectReference, i: usize) {
        let (spec, ip, since, last) = {
            let Some(rt) = self.pods.get(uid) else { return };
            let c = &rt.containers[i];
            let State::Running { since, .. } = &c.state else { return };
            (c.spec.clone(), rt.ip.clone(), *since, c.last_probe)
        };
        let period =
            |p: &k8s_openapi::api::core::v1::Probe| Duration::from_secs(p.period_seconds.unwrap_or(10).max(1).unsigned_abs().into());
        let initial =
            |p: &k8s_openapi::api::core::v1::Probe| Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0).unsigned_abs().into());
        // Readiness: no probe = ready once running; otherwise every period after the delay.
        let probe_period = spec.readiness_probe.as_ref().or(spec.liveness_probe.as_ref()).map(period).unwrap_or(Duration::from_secs(10));
        let due = last.is_none_or(|t| t.elapsed() >= self.opts.scale.wall(probe_period).min(probe_period));
        let fast_first = last.is_none();
        if !due && !fast_first {
            return;
        }
        let readiness = match &spec.readiness_probe {
            None => Ok(()),
            Some(p) if since.elapsed() < initial(p) => Err(String::new()),
            Some(p) => probes::http_probe(&self.http, &ip, &spec, p).await,
        };
        let liveness = match &spec.liveness_probe {
            Some(p) if since.elapsed() >= initial(p) => probes::http_probe(&self.http, &ip, &spec, p).await,
            _ => Ok(()),
        };
        let mut kill = None;
        {
            let Some(rt) = self.pods.get_mut(uid) else { return };
            let c = &mut rt.containers[i];
            c.last_probe = Some(Instant::now());
            match &readiness {
                Ok(()) => {
                    c.readiness_failures = 0;
                    c.ready = true;
                }
                Err(_) => {
                    c.readiness_failures += 1;
                    let threshold = spec.readiness_probe.as_ref().and_then(|p| p.failure_threshold).unwrap_or(3);
                    if c.readiness_failures >= threshold || !c.ready {
                        c.ready = false;
                    }
                }
            }
            match &liveness {
                Ok(()) => c.liveness_failures = 0,
                Err(_) => {
                    c.liveness_failures += 1;
                    if c.liveness_failures >= spec.liveness_probe.as_ref().and_then(|p| p.failure_threshold).unwrap_or(3) {
                        kill = Some(spec.name.clone());
                        c.kill();
                    }
                }
            }
        }
        if let Err(msg) = &readiness
            && !msg.is_empty()
        {
            self.events.record(pod_ref, true, "Unhealthy", &format!("Readiness probe failed: {msg}")).await;
        }
        if let Err(msg) = &liveness {
            self.events.record(pod_ref, true, "Unhealthy", &format!("Liveness probe failed: {msg}")).await;
        }
        if let Some(c) = kill {
            self.events.record(pod_ref, false, "Killing", &format!("Container {c} failed liveness probe, will be restarted")).await;
        }
        let _ = pod;
    }

    async fn start_container(
        &mut self,
        pod: &Pod,
        uid: &str,
        pod_ref: &k8s_openapi::api::core::v1::ObjectReference,
        init: bool,
        i: usize,
    ) -> Result<(), kube::Error> {
        let ns = pod.namespace().unwrap_or_default();
        let (spec, ip, dir, first) = {
            let Some(rt) = self.pods.get(uid) else { return Ok(()) };
            let c = rt.container(init, i);
            (c.spec.clone(), rt.ip.clone(), rt.dir.clone(), !c.ever_started)
        };
        let image = spec.image.clone().unwrap_or_default();
        let set_waiting = |this: &mut Self, reason: &str, message: String, backoff: Option<Duration>| {
            if let Some(rt) = this.pods.get_mut(uid) {
                let c = rt.container_mut(init, i);
                c.state = State::Waiting { reason: reason.into(), message: Some(message) };
                if let Some(d) = backoff {
                    c.not_before = Some(Instant::now() + this.opts.scale.wall(d));
                }
            }
        };
        if Image::resolve(&image).is_none() {
            let already = self.pods.get(uid).is_some_and(|rt| {
                let c = rt.container(init, i);
                matches!(&c.state, State::Waiting { reason, .. } if reason == "ErrImagePull" || reason == "ImagePullBackOff")
            });
            let msg = format!("failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": not found");
            self.events.record(pod_ref, false, "Pulling", &format!("Pulling image \"{image}\"")).await;
            self.events.record(pod_ref, true, "Failed", &format!("Failed to pull image \"{image}\": {msg}")).await;
            if already {
                self.events.record(pod_ref, false, "BackOff", &format!("Back-off pulling image \"{image}\"")).await;
                set_waiting(
                    self,
                    "ImagePullBackOff",
                    format!("Back-off pulling image \"{image}\": ErrImagePull: {msg}"),
                    Some(Duration::from_secs(10)),
                );
            } else {
                set_waiting(self, "ErrImagePull", msg, Some(Duration::from_secs(5)));
            }
            return Ok(());
        }
        // Environment and mounts, resolved now and never again for this instance.
        let (service_hosts, service_vars) = env::service_names(&self.client, &ns).await?;
        let vars = match env::resolve(&self.client, pod, &spec, &service_vars).await {
            Ok(v) => v,
            Err(e) => {
                self.events.record(pod_ref, true, "Failed", &format!("Error: {e}")).await;
                set_waiting(self, "CreateContainerConfigError", e.to_string(), Some(Duration::from_secs(2)));
                return Ok(());
            }
        };
        let rootfs = dir.join("rootfs").join(&spec.name);
        let mut mounts = Vec::new();
        for m in spec.volume_mounts.iter().flatten() {
            let vol = dir.join("volumes").join(&m.name);
            match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                // subPath: a copy taken now, never updated (what "will not receive updates" means).
                Some(sub) => {
                    let copy = dir.join("subpath").join(&spec.name).join(m.mount_path.trim_start_matches('/'));
                    if let Some(parent) = copy.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    let _ = std::fs::remove_file(&copy);
                    let _ = std::fs::copy(vol.join(sub), &copy);
                    mounts.push((m.mount_path.clone(), copy));
                }
                None => mounts.push((m.mount_path.clone(), vol)),
            }
        }
        let t = env::Translation { pod_ip: ip.clone(), mounts, rootfs: rootfs.clone(), services: service_hosts };
        let mut envs: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.clone(), t.apply(v))).collect();
        envs.push((POD_IP_ENV.into(), ip.clone()));
        // Where this container's mounts and root are on the node, for scripted images that
        // read a file by its in-container path.
        envs.push((crate::network::MOUNTS_ENV.into(), serde_json::to_string(&t.mounts).unwrap_or_default()));
        envs.push((crate::network::ROOTFS_ENV.into(), rootfs.display().to_string()));
        let args: Vec<String> =
            spec.command.iter().flatten().skip(1).chain(spec.args.iter().flatten()).map(|a| t.apply(&env::expand(a, &vars))).collect();
        if first {
            self.events.record(pod_ref, false, "Pulled", &format!("Container image \"{image}\" already present on machine")).await;
        }
        let started = {
            let Some(rt) = self.pods.get_mut(uid) else { return Ok(()) };
            let c = rt.container_mut(init, i);
            c.start(&self.opts.exe, &image, args, envs, &rootfs)
        };
        match started {
            Ok(()) => {
                self.events.record(pod_ref, false, "Created", &format!("Created container {}", spec.name)).await;
                self.events.record(pod_ref, false, "Started", &format!("Started container {}", spec.name)).await;
            }
            Err(e) => {
                self.events.record(pod_ref, true, "Failed", &format!("Error: failed to start container \"{}\": {e}", spec.name)).await;
                set_waiting(self, "RunContainerError", e.to_string(), Some(Duration::from_secs(10)));
            }
        }
        Ok(())
    }

    fn push_logs(&self, ns: &str, name: &str, uid: &str) {
        let Some(rt) = self.pods.get(uid) else { return };
        for c in rt.containers.iter().chain(rt.init.iter()) {
            if c.ever_started {
                self.fake.set_container_log(ns, name, &c.spec.name, false, &c.log_text());
            }
            if let Some(prev) = &c.previous_log {
                self.fake.set_container_log(ns, name, &c.spec.name, true, prev);
            }
        }
    }

    async fn write_status(&self, pod: &Pod, uid: &str) -> Result<(), kube::Error> {
        let Some(rt) = self.pods.get(uid) else { return Ok(()) };
        let restart_policy = pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into());
        let statuses: Vec<ContainerStatus> = rt.containers.iter().map(container_status).collect();
        let init_statuses: Vec<ContainerStatus> = rt.init.iter().map(container_status).collect();
        let initialized = rt.init.iter().all(|c| matches!(&c.state, State::Terminated(t) if t.exit_code == 0));
        let all_ready = !rt.containers.is_empty() && rt.containers.iter().all(|c| c.ready && c.is_running());
        let terminated: Vec<&Terminated> =
            rt.containers.iter().filter_map(|c| if let State::Terminated(t) = &c.state { Some(t) } else { None }).collect();
        let phase = if terminated.len() == rt.containers.len() && !rt.containers.is_empty() && restart_policy != "Always" {
            if terminated.iter().all(|t| t.exit_code == 0) { "Succeeded" } else { "Failed" }
        } else if rt.containers.iter().any(|c| c.ever_started) && initialized {
            "Running"
        } else {
            "Pending"
        };
        let old = pod.status.clone().unwrap_or_default();
        let cond = |type_: &str, ok: bool, reason: Option<&str>| {
            let status = if ok { "True" } else { "False" };
            let previous = old.conditions.iter().flatten().find(|c| c.type_ == type_);
            PodCondition {
                type_: type_.into(),
                status: status.into(),
                reason: reason.map(String::from),
                last_transition_time: match previous {
                    Some(p) if p.status == status => p.last_transition_time.clone(),
                    _ => Some(Time(k8s_openapi::jiff::Timestamp::now())),
                },
                ..Default::default()
            }
        };
        let status = PodStatus {
            phase: Some(phase.into()),
            host_ip: Some("127.0.0.1".into()),
            pod_ip: Some(rt.ip.clone()),
            pod_ips: Some(vec![k8s_openapi::api::core::v1::PodIP { ip: rt.ip.clone() }]),
            qos_class: Some(qos_class(pod).into()),
            start_time: old.start_time.clone().or(Some(Time(k8s_openapi::jiff::Timestamp::now()))),
            conditions: Some(vec![
                cond("PodScheduled", true, None),
                cond("Initialized", initialized, (!initialized).then_some("ContainersNotInitialized")),
                cond("ContainersReady", all_ready, (!all_ready).then_some("ContainersNotReady")),
                cond("Ready", all_ready, (!all_ready).then_some("ContainersNotReady")),
            ]),
            container_statuses: Some(statuses),
            init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
            ..Default::default()
        };
        let needs_binding = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(NODE);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        if needs_binding {
            api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(json!({"spec": {"nodeName": NODE}}))).await?;
        }
        if !same_pod_status(&old, &status) {
            api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
        }
        Ok(())
    }
}

fn same_pod_status(a: &PodStatus, b: &PodStatus) -> bool {
    let strip = |s: &PodStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_transition_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

fn terminated_state(t: &Terminated) -> ContainerStateTerminated {
    let time = |s: &str| s.parse().ok().map(Time);
    ContainerStateTerminated {
        exit_code: t.exit_code,
        reason: Some(t.reason.clone()),
        message: t.message.clone(),
        started_at: time(&t.started_at),
        finished_at: time(&t.finished_at),
        ..Default::default()
    }
}

fn container_status(c: &ContainerRuntime) -> ContainerStatus {
    let state = match &c.state {
        State::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some(reason.clone()), message: message.clone() }),
            ..Default::default()
        },
        State::Running { started_at, .. } => {
            ContainerState { running: Some(ContainerStateRunning { started_at: started_at.parse().ok().map(Time) }), ..Default::default() }
        }
        State::Terminated(t) => ContainerState { terminated: Some(terminated_state(t)), ..Default::default() },
    };
    let last_state = c.last_termination.as_ref().map(|t| ContainerState { terminated: Some(terminated_state(t)), ..Default::default() });
    let image = c.spec.image.clone().unwrap_or_default();
    ContainerStatus {
        name: c.spec.name.clone(),
        image: image.clone(),
        image_id: format!("sandbox://{image}"),
        container_id: c.pid().map(|p| format!("sandbox://{p}")),
        ready: c.ready && c.is_running(),
        started: Some(c.is_running()),
        restart_count: c.restart_count,
        state: Some(state),
        last_state,
        ..Default::default()
    }
}

/// Guaranteed: every container has equal cpu and memory requests and limits; BestEffort: none
/// has any; Burstable otherwise (pkg/apis/core/v1/helper/qos).
fn qos_class(pod: &Pod) -> &'static str {
    let containers: Vec<_> = pod.spec.iter().flat_map(|s| s.containers.iter()).collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let r = c.resources.clone().unwrap_or_default();
        let (req, lim): (BTreeMap<_, _>, BTreeMap<_, _>) = (r.requests.unwrap_or_default(), r.limits.unwrap_or_default());
        any |= !req.is_empty() || !lim.is_empty();
        for k in ["cpu", "memory"] {
            let l = lim.get(k);
            let q = req.get(k).or(l);
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}
