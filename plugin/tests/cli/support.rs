//! A fake API server with the Salve CRDs, a kubeconfig for it, and the plugin binary run
//! against that kubeconfig (nothing from the developer's own ~/.kube is read).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fake_kube::FakeKube;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client, Config, CustomResourceExt};
use operator::crd::{Incident, Remediation};

pub const NS: &str = "shop";

pub struct Env {
    pub fake: FakeKube,
    pub client: Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "exit {}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr);
        self
    }
}

pub async fn start() -> Env {
    start_with_crds(true).await
}

pub async fn start_with_crds(install: bool) -> Env {
    start_on(FakeKube::start().await.expect("fake API server"), install).await
}

/// A fake API server that authenticates and authorizes as a real one, with what the simulated
/// cluster installs: the approval policy Salve ships and the people's RBAC (read Salve's
/// resources, patch Remediations; `salve_sandbox::access`). The default kubeconfig is the
/// administrator's.
pub async fn start_enforcing() -> Env {
    let env = start_on(FakeKube::start_enforcing().await.expect("fake API server"), true).await;
    salve_sandbox::access::install(&env.client).await.expect("approval policy and RBAC");
    env
}

async fn start_on(fake: FakeKube, install: bool) -> Env {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig_yaml(NS)).expect("kubeconfig");
    let kc = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml(NS)).expect("kubeconfig yaml");
    let config = Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    let client = Client::try_from(config).expect("client");
    if install {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in [Incident::crd(), Remediation::crd()] {
            crds.create(&PostParams::default(), &crd).await.expect("install crd");
        }
    }
    Env { fake, client, dir, kubeconfig }
}

impl Env {
    /// `kubectl salve ARGS` with KUBECONFIG = the fake's.
    pub async fn salve(&self, args: &[&str]) -> Run {
        run_with_kubeconfig(&self.kubeconfig, self.dir.path(), args).await
    }

    /// A kubeconfig file next to the default one, e.g. with another user.
    pub fn write_kubeconfig(&self, file: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, yaml).expect("write kubeconfig");
        path
    }

    pub fn patches(&self) -> usize {
        self.fake.requests().iter().filter(|r| r.verb == "patch").count()
    }
}

pub async fn run_with_kubeconfig(kubeconfig: &Path, home: &Path, args: &[&str]) -> Run {
    let out = command(kubeconfig, home, args).output().await.expect("run kubectl-salve");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn command(kubeconfig: &Path, home: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-salve"));
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .env_remove("SALVE_NAMESPACE")
        .env_remove("SALVE_CONTEXT")
        .env_remove("SALVE_OUTPUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}
