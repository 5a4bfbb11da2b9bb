//! The connection kubectl would use: the kubeconfig (`KUBECONFIG` or `~/.kube/config`), the
//! current or `--context` context, and its namespace unless `-n` names one. Also turns the API
//! server's answers into `PluginError`s that say which object, which verb and who.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::cli::Connection;
use crate::error::PluginError;
use crate::identity;

pub struct Cluster {
    pub client: Client,
    /// The namespace to work in (`-n`, else the context's, else `default`).
    pub namespace: String,
    pub context: String,
    pub server: String,
    /// Who the kubeconfig says we are (see `identity`), for messages and approvals.
    pub user: String,
}

impl Cluster {
    pub async fn connect(conn: &Connection) -> Result<Cluster, PluginError> {
        let kubeconfig = Kubeconfig::read().map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
        let context = conn.context.clone().or_else(|| kubeconfig.current_context.clone()).unwrap_or_default();
        let options = KubeConfigOptions { context: conn.context.clone(), cluster: None, user: None };
        let config =
            Config::from_custom_kubeconfig(kubeconfig.clone(), &options).await.map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
        let server = config.cluster_url.to_string();
        let namespace = conn.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
        let user = identity::from_kubeconfig(&kubeconfig, &context);
        Ok(Cluster { client, namespace, context, server, user })
    }

    /// What went wrong, with the object and verb it happened to.
    pub fn error(&self, e: kube::Error, op: Op<'_>) -> PluginError {
        let resource = match op.name {
            Some(name) => format!("{} {name:?}", op.kind),
            None => op.plural.to_string(),
        };
        let scope = match op.namespace {
            Some(ns) => format!("namespace {ns:?}"),
            None => "any namespace (-A)".to_string(),
        };
        match e {
            kube::Error::Api(status) => match status.code {
                404 if status.message.contains("could not find the requested resource") => {
                    PluginError::CrdsMissing { resource: format!("{}.salve.dev", op.plural) }
                }
                404 => PluginError::NotFound {
                    kind: op.kind,
                    name: op.name.unwrap_or_default().to_string(),
                    namespace: op.namespace.unwrap_or_default().to_string(),
                },
                401 => PluginError::Kubeconfig(format!(
                    "the API server did not accept the credentials of context {:?}: {}",
                    self.context, status.message
                )),
                403 => PluginError::Forbidden {
                    user: self.user.clone(),
                    verb: op.verb,
                    resource: format!("{}.salve.dev", op.plural),
                    scope,
                    message: status.message,
                },
                409 => PluginError::Conflict { name: op.name.unwrap_or_default().to_string() },
                400 | 422 => PluginError::Rejected { verb: op.verb, resource, message: status.message },
                code => PluginError::Server { verb: op.verb, resource, code, message: status.message },
            },
            other => PluginError::Unreachable { server: self.server.clone(), context: self.context.clone(), detail: root_cause(&other) },
        }
    }
}

/// One API request, for error messages.
#[derive(Clone, Copy)]
pub struct Op<'a> {
    pub verb: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
}

/// The innermost error message: "Connection refused" rather than "ServiceError: client error".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        last = s.to_string();
        cur = s.source();
    }
    last
}
