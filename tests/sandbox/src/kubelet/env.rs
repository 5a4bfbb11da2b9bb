//! A container's environment, resolved once when it starts (never updated afterwards, which is
//! why a fixed ConfigMap value read through `env` needs a restart to take effect):
//!
//! - `value`, with `$(VAR)` expanded from variables defined before it (kubelet's
//!   `expansion.Expand`); `valueFrom` ConfigMap/Secret keys and `fieldRef`; `envFrom`
//! - a missing ConfigMap, Secret or key is `CreateContainerConfigError` with the kubelet's
//!   message (`configmap "x" not found`, `couldn't find key K in ConfigMap ns/x`)
//! - `<SERVICE>_SERVICE_HOST` / `_PORT` for the namespace's Services (docker-links variables)
//!
//! Then the sandbox translates what only makes sense inside a container's own network and file
//! system (see `Translation`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {ns}/{name}")]
    ConfigMapKey { key: String, ns: String, name: String },
    #[error("couldn't find key {key} in Secret {ns}/{name}")]
    SecretKey { key: String, ns: String, name: String },
    #[error("reading the API: {0}")]
    Api(String),
}

/// Expands `$(NAME)` references (`$$` escapes), leaving unknown ones as they are.
pub fn expand(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(stripped) = tail.strip_prefix("$$") {
            out.push('$');
            rest = stripped;
        } else if let (Some(inner), true) = (tail.strip_prefix("$("), tail.contains(')')) {
            let end = inner.find(')').unwrap_or(0);
            let name = &inner[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&tail[..end + 3]),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// How container-local names map to the sandbox: `0.0.0.0` and `localhost`-style binds become
/// the pod's address; Service host names become their cluster IPs (no cluster DNS here); absolute
/// paths under a volume mount become that volume's directory, other absolute paths fall under the
/// container's own directory.
pub struct Translation {
    pub pod_ip: String,
    pub mounts: Vec<(String, PathBuf)>,
    pub rootfs: PathBuf,
    /// Service name (and `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local`) -> cluster IP.
    pub services: BTreeMap<String, String>,
}

impl Translation {
    pub fn apply(&self, value: &str) -> String {
        let mut v = value.replace("0.0.0.0:", &format!("{}:", self.pod_ip));
        for (host, ip) in &self.services {
            for scheme in ["http://", "https://"] {
                v = v
                    .replace(&format!("{scheme}{host}:"), &format!("{scheme}{ip}:"))
                    .replace(&format!("{scheme}{host}/"), &format!("{scheme}{ip}/"));
                if v == format!("{scheme}{host}") {
                    v = format!("{scheme}{ip}");
                }
            }
        }
        if v.starts_with('/') && !v.contains(' ') {
            return self.path(&v).display().to_string();
        }
        v
    }

    pub fn path(&self, p: &str) -> PathBuf {
        let best = self
            .mounts
            .iter()
            .filter(|(m, _)| p == m || p.starts_with(&format!("{}/", m.trim_end_matches('/'))))
            .max_by_key(|(m, _)| m.len());
        match best {
            Some((m, dir)) => match p[m.len()..].trim_start_matches('/') {
                // A file mounted on its own (subPath): the path is the file itself.
                "" => dir.clone(),
                rest => dir.join(rest),
            },
            None => self.rootfs.join(p.trim_start_matches('/')),
        }
    }
}

/// Every Service in the namespace, as the names a pod could use for it.
pub async fn service_names(client: &Client, ns: &str) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>), kube::Error> {
    let mut hosts = BTreeMap::new();
    let mut vars = BTreeMap::new();
    for s in Api::<Service>::namespaced(client.clone(), ns).list(&ListParams::default()).await?.items {
        let Some(ip) = s.spec.as_ref().and_then(|sp| sp.cluster_ip.clone()).filter(|ip| ip.starts_with("127.")) else { continue };
        let name = s.name_any();
        for h in [name.clone(), format!("{name}.{ns}"), format!("{name}.{ns}.svc"), format!("{name}.{ns}.svc.cluster.local")] {
            hosts.insert(h, ip.clone());
        }
        let prefix = name.to_uppercase().replace('-', "_");
        vars.insert(format!("{prefix}_SERVICE_HOST"), ip);
        if let Some(port) = s.spec.as_ref().and_then(|sp| sp.ports.as_ref()).and_then(|p| p.first()) {
            vars.insert(format!("{prefix}_SERVICE_PORT"), port.port.to_string());
        }
    }
    Ok((hosts, vars))
}

/// Resolves the container's environment from the API (at start only).
pub async fn resolve(
    client: &Client,
    pod: &Pod,
    c: &Container,
    service_vars: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EnvError> {
    let ns = pod.namespace().unwrap_or_default();
    let api = |e: kube::Error| EnvError::Api(e.to_string());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut vars: BTreeMap<String, String> = service_vars.clone();
    for ef in c.env_from.iter().flatten() {
        let prefix = ef.prefix.clone().unwrap_or_default();
        if let Some(r) = &ef.config_map_ref {
            match cms.get_opt(&r.name).await.map_err(api)? {
                Some(cm) => vars.extend(cm.data.unwrap_or_default().into_iter().map(|(k, v)| (format!("{prefix}{k}"), v))),
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &ef.secret_ref {
            match secrets.get_opt(&r.name).await.map_err(api)? {
                Some(s) => vars.extend(
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (format!("{prefix}{k}"), String::from_utf8_lossy(&v.0).into_owned())),
                ),
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            expand(v, &vars)
        } else if let Some(from) = &e.value_from {
            if let Some(r) = &from.config_map_key_ref {
                let cm = cms.get_opt(&r.name).await.map_err(api)?;
                match (cm, r.optional == Some(true)) {
                    (None, true) => continue,
                    (None, false) => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
                    (Some(cm), optional) => match cm.data.and_then(|d| d.get(&r.key).cloned()) {
                        Some(v) => v,
                        None if optional => continue,
                        None => return Err(EnvError::ConfigMapKey { key: r.key.clone(), ns: ns.clone(), name: r.name.clone() }),
                    },
                }
            } else if let Some(r) = &from.secret_key_ref {
                let s = secrets.get_opt(&r.name).await.map_err(api)?;
                match (s, r.optional == Some(true)) {
                    (None, true) => continue,
                    (None, false) => return Err(EnvError::SecretNotFound(r.name.clone())),
                    (Some(s), optional) => {
                        // `data` arrives base64-decoded (ByteString); `stringData` is never stored.
                        let raw = s.data.and_then(|d| d.get(&r.key).map(|b| b.0.clone()));
                        match raw {
                            Some(b) => String::from_utf8_lossy(&b).into_owned(),
                            None if optional => continue,
                            None => return Err(EnvError::SecretKey { key: r.key.clone(), ns: ns.clone(), name: r.name.clone() }),
                        }
                    }
                }
            } else if let Some(f) = &from.field_ref {
                match f.field_path.as_str() {
                    "metadata.name" => pod.name_any(),
                    "metadata.namespace" => ns.clone(),
                    "status.podIP" => pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
                    "spec.nodeName" => "sandbox-node".into(),
                    other => {
                        pod.labels().get(other.trim_start_matches("metadata.labels['").trim_end_matches("']")).cloned().unwrap_or_default()
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        vars.insert(e.name.clone(), value);
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependent_variables_expand_as_the_kubelet_does() {
        let vars = BTreeMap::from([("HOST".to_string(), "db".to_string())]);
        assert_eq!(expand("postgres://$(HOST):5432", &vars), "postgres://db:5432");
        assert_eq!(expand("$(MISSING)/x", &vars), "$(MISSING)/x");
        assert_eq!(expand("cost $$5", &vars), "cost $5");
    }

    #[test]
    fn binds_services_and_paths_are_translated_into_the_sandbox() {
        let t = Translation {
            pod_ip: "127.1.0.5".into(),
            mounts: vec![("/etc/salve/oms".into(), PathBuf::from("/w/pod/vol/settings"))],
            rootfs: PathBuf::from("/w/pod/rootfs/oms"),
            services: BTreeMap::from([("salve-ims".to_string(), "127.2.0.3".to_string())]),
        };
        assert_eq!(t.apply("0.0.0.0:8080"), "127.1.0.5:8080");
        assert_eq!(t.apply("http://salve-ims:8081"), "http://127.2.0.3:8081");
        assert_eq!(t.apply("/etc/salve/oms/settings.toml"), "/w/pod/vol/settings/settings.toml");
        assert_eq!(t.apply("/data"), "/w/pod/rootfs/oms/data");
        assert_eq!(t.path("/etc/salve/oms"), PathBuf::from("/w/pod/vol/settings"), "a mount point itself (subPath files)");
        assert_eq!(t.apply("json"), "json");
    }
}
