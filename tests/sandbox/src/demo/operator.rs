//! The real operator (the same library code as the container in a cluster), started in this
//! process against the simulated API server: offline diagnosis, or Bedrock when
//! `SALVE_BEDROCK_MODEL_ID` is set; the Alertmanager webhook on a loopback port.

use std::net::SocketAddr;

use operator::config::RunArgs;
use tokio_util::sync::CancellationToken;

use crate::access;
use crate::cluster::{Cluster, ClusterError, client_as};

/// The webhook's bearer token inside the sandbox.
pub const WEBHOOK_TOKEN: &str = "sandbox-alertmanager-token";

pub struct RunningOperator {
    pub webhook: String,
    pub metrics: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningOperator {
    pub async fn start(cluster: &Cluster, namespace: &str, verify_window_seconds: u32) -> Result<Self, ClusterError> {
        // As in a cluster: the operator's ServiceAccount, with exactly the example RBAC.
        let token = access::install_operator(&cluster.fake, &cluster.client, namespace).await?;
        let client = client_as(&cluster.fake, namespace, &token).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(ClusterError::Start)?;
        let addr: SocketAddr = listener.local_addr().map_err(ClusterError::Start)?;
        let mut args = RunArgs::defaults();
        args.http_addr = addr;
        args.identity = "salve-operator-0".into();
        // The Lease the example RBAC lets it hold (salve-system/salve-operator-leader).
        args.lease_namespace = access::OPERATOR_NAMESPACE.into();
        args.allowed_namespaces = vec![namespace.into()];
        args.dry_run = Some(false);
        args.verify_window_seconds = verify_window_seconds;
        args.verify_poll_ms = 1000;
        // A workload must stay settled this long after a fix (60 s by default in a cluster).
        args.verify_stability_seconds = 15;
        args.log_format = "text".into();
        args.intake.alertmanager_token = Some(operator::intake::config::SecretToken(WEBHOOK_TOKEN.into()));
        args.intake.default_namespace = Some(namespace.into());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = operator::runtime::run(client, args, Some(listener), token).await {
                eprintln!("operator stopped: {e}");
            }
        });
        Ok(Self { webhook: format!("http://{addr}/intake/alertmanager"), metrics: format!("http://{addr}/metrics"), shutdown, task })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}
