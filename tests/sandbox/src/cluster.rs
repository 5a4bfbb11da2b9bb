//! Starts the simulated cluster: the API server stand-in on a free loopback port, the Salve CRDs
//! (the files in `crds/`), the controllers, the proxy and the kubelet, each looping on a short
//! resync period until the cluster is stopped. The API server enforces authentication, RBAC and
//! admission (`access`). Writes a kubeconfig for kubectl and kube-rs (the administrator's), and
//! one per person (`kubeconfig-<name>`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fake_kube::FakeKube;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio_util::sync::CancellationToken;

use crate::access;
use crate::clock::TimeScale;
use crate::controllers::{daemon_set, deployment, job, replica_set, stateful_set};
use crate::events::Recorder;
use crate::kubelet::{Kubelet, KubeletOptions};
use crate::network::{endpoints, proxy::Proxy};

/// The CRDs exactly as committed in `crds/` (generated from the operator's types).
const CRDS: [&str; 2] = [include_str!("../../../crds/incidents.salve.dev.yaml"), include_str!("../../../crds/remediations.salve.dev.yaml")];
/// How often the controllers and the kubelet resync.
const RESYNC: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("starting the API server: {0}")]
    Start(std::io::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("installing {0}: {1}")]
    Install(String, String),
    #[error("writing {0}: {1}")]
    Write(String, std::io::Error),
}

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub workdir: PathBuf,
    pub scale: TimeScale,
    /// The kubelet's `syncFrequency` (how late mounted ConfigMaps are refreshed).
    pub sync_frequency: Duration,
    /// The `salve-sandbox` binary containers run from (default: this process's own).
    pub exe: Option<PathBuf>,
}

/// The simulated node's capacity (= allocatable: nothing is reserved for the system). The
/// default is what the sandbox has always had; a scenario or test lowers `memory` to put the
/// node under memory pressure, or `ephemeral_storage` for disk pressure.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub cpu: String,
    pub memory: String,
    pub ephemeral_storage: String,
    pub pods: String,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self { cpu: "4".into(), memory: "8Gi".into(), ephemeral_storage: "50Gi".into(), pods: "110".into() }
    }
}

pub struct Cluster {
    pub fake: Arc<FakeKube>,
    /// A cluster-admin client (`sandbox-admin`, in `system:masters`).
    pub client: Client,
    pub kubeconfig: PathBuf,
    shutdown: CancellationToken,
    loops: Vec<tokio::task::JoinHandle<()>>,
    workdir: PathBuf,
}

/// A client that authenticates with `token` (see `access` for who is who).
pub async fn client_as(fake: &FakeKube, namespace: &str, token: &str) -> Result<Client, ClusterError> {
    let kc = Kubeconfig::from_yaml(&fake.kubeconfig_yaml_as(namespace, token)).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
    let cfg =
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
    Client::try_from(cfg).map_err(|e| ClusterError::Kubeconfig(e.to_string()))
}

/// The kubeconfig file of one of `access::PEOPLE` in a cluster's work directory.
pub fn person_kubeconfig(workdir: &Path, person: &str) -> PathBuf {
    workdir.join(format!("kubeconfig-{person}"))
}

impl Cluster {
    /// A cluster whose node has the default capacity (4 CPUs, 8 GiB).
    pub async fn start(opts: ClusterOptions) -> Result<Self, ClusterError> {
        Self::start_with(opts, NodeOptions::default()).await
    }

    /// A cluster whose node has `node`'s capacity.
    pub async fn start_with(opts: ClusterOptions, node: NodeOptions) -> Result<Self, ClusterError> {
        Self::start_inner(opts, node, true).await
    }

    /// A cluster whose API server does not enforce access (`FakeKube::start`: the bearer token
    /// is taken as the user name and only recorded) and has no approval policy: for the
    /// operator's integration tests, which check the operator's requests against
    /// `operator/examples/rbac.yaml` themselves and write approvals in any name.
    pub async fn start_open(opts: ClusterOptions) -> Result<Self, ClusterError> {
        Self::start_inner(opts, NodeOptions::default(), false).await
    }

    async fn start_inner(opts: ClusterOptions, node: NodeOptions, enforce: bool) -> Result<Self, ClusterError> {
        std::fs::create_dir_all(&opts.workdir).map_err(|e| ClusterError::Write(opts.workdir.display().to_string(), e))?;
        let fake = if enforce { FakeKube::start_enforcing().await } else { FakeKube::start().await };
        let fake = Arc::new(fake.map_err(ClusterError::Start)?);
        access::register_users(&fake);
        let kubeconfig = opts.workdir.join("kubeconfig");
        std::fs::write(&kubeconfig, fake.kubeconfig_yaml_as("default", access::ADMIN))
            .map_err(|e| ClusterError::Write(kubeconfig.display().to_string(), e))?;
        for (person, _) in access::PEOPLE {
            let path = person_kubeconfig(&opts.workdir, person);
            std::fs::write(&path, fake.kubeconfig_yaml_as("default", person))
                .map_err(|e| ClusterError::Write(path.display().to_string(), e))?;
        }
        let client = client_as(&fake, "default", access::ADMIN).await?;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for text in CRDS {
            let crd: CustomResourceDefinition =
                serde_yaml::from_str(text).map_err(|e| ClusterError::Install("CRD".into(), e.to_string()))?;
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.create(&PostParams::default(), &crd).await.map_err(|e| ClusterError::Install(name, e.to_string()))?;
        }
        ensure_namespace(&client, "default").await?;
        create_node(&client, &node).await?;
        let shutdown = CancellationToken::new();
        let mut loops = Vec::new();
        // The control plane: Deployment, ReplicaSet, StatefulSet, DaemonSet and Job controllers,
        // Endpoints, kube-proxy.
        {
            let client = client_as(&fake, "kube-system", access::CONTROL_PLANE).await?;
            let events = Recorder::new(client.clone(), "deployment-controller");
            let rs_events = Recorder::new(client.clone(), "replicaset-controller");
            let sts_events = Recorder::new(client.clone(), "statefulset-controller");
            let ds_events = Recorder::new(client.clone(), "daemonset-controller");
            let job_events = Recorder::new(client.clone(), "job-controller");
            let proxy = Proxy::default();
            let stop = shutdown.clone();
            let scale = opts.scale;
            loops.push(tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let results = [
                        deployment::sync_all(&client, &events, scale).await,
                        replica_set::sync_all(&client, &rs_events).await,
                        stateful_set::sync_all(&client, &sts_events).await,
                        daemon_set::sync_all(&client, &ds_events).await,
                        job::sync_all(&client, &job_events, scale).await,
                        endpoints::sync_all(&client).await,
                        proxy.sync(&client, &stop).await,
                    ];
                    for r in results {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "control-plane resync failed; retried");
                        }
                    }
                    tokio::select! { _ = tokio::time::sleep(RESYNC) => {}, _ = stop.cancelled() => {} }
                }
            }));
        }
        // The node.
        {
            let client = client_as(&fake, "kube-system", access::NODE_USER).await?;
            let exe = match &opts.exe {
                Some(exe) => exe.clone(),
                None => std::env::current_exe().map_err(ClusterError::Start)?,
            };
            let mut kubelet = Kubelet::new(
                client,
                fake.clone(),
                KubeletOptions { workdir: opts.workdir.clone(), exe, scale: opts.scale, sync_frequency: opts.sync_frequency },
            );
            let stop = shutdown.clone();
            loops.push(tokio::spawn(async move {
                while !stop.is_cancelled() {
                    if let Err(e) = kubelet.sync().await {
                        tracing::debug!(error = %e, "kubelet sync failed; retried");
                    }
                    tokio::select! { _ = tokio::time::sleep(RESYNC) => {}, _ = stop.cancelled() => {} }
                }
                kubelet.stop_all();
            }));
        }
        // What an administrator installs once the control plane runs: the people's RBAC and the
        // approval policy.
        if enforce {
            access::install(&client).await?;
        }
        Ok(Self { fake, client, kubeconfig, shutdown, loops, workdir: opts.workdir })
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Stops every loop and every container process.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for l in self.loops {
            let _ = tokio::time::timeout(Duration::from_secs(5), l).await;
        }
    }
}

/// The one node: by default 4 CPUs, 8 GiB, Ready, no pressure (what `kubectl describe node`
/// shows); the kubelet reports pressure later.
async fn create_node(client: &Client, opts: &NodeOptions) -> Result<(), ClusterError> {
    let now = k8s_openapi::jiff::Timestamp::now().round(k8s_openapi::jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default();
    let cond = |t: &str, s: &str, r: &str, m: &str| serde_json::json!({"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": now, "lastTransitionTime": now});
    let resources =
        serde_json::json!({"cpu": opts.cpu, "memory": opts.memory, "ephemeral-storage": opts.ephemeral_storage, "pods": opts.pods});
    let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": crate::kubelet::NODE, "labels": {"kubernetes.io/hostname": crate::kubelet::NODE, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "sandbox"}},
        "status": {"capacity": resources, "allocatable": resources, "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")],
            "nodeInfo": {"kubeletVersion": "v1.35.0-sandbox", "osImage": "salve-sandbox", "containerRuntimeVersion": "sandbox://processes", "architecture": "amd64", "operatingSystem": "linux",
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "kubeProxyVersion": ""}}
    }))
    .map_err(|e| ClusterError::Install("node".into(), e.to_string()))?;
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let created = api.create(&PostParams::default(), &node).await.map_err(|e| ClusterError::Install("node".into(), e.to_string()))?;
    // The status is the kubelet's to report (a separate subresource).
    let status = serde_json::json!({"status": node.status});
    let name = created.metadata.name.unwrap_or_default();
    api.patch_status(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(status))
        .await
        .map_err(|e| ClusterError::Install("node status".into(), e.to_string()))?;
    Ok(())
}

pub async fn ensure_namespace(client: &Client, name: &str) -> Result<(), ClusterError> {
    let ns = Namespace { metadata: ObjectMeta { name: Some(name.into()), ..Default::default() }, ..Default::default() };
    match Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(ClusterError::Install(format!("namespace {name}"), e.to_string())),
    }
}
