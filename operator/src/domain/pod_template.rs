//! What a pod template says, as evidence: per container (init containers included) the image,
//! requests and limits, probes, env var names with their sources, mounts; the ConfigMaps it
//! reads and how; and what changed between two templates. Pure functions of the Kubernetes
//! types, so the collector stays thin and this is tested on fixtures. Secret values are never
//! read: a Secret appears by name only.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::evidence::{ContainerEvidence, EnvEvidence, MountEvidence, ProbeEvidence, TemplateChange};
use super::redact::{Kind, is_secret_key};

fn quantities(m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>) -> BTreeMap<String, String> {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()).unwrap_or_default()
}

fn probe(kind: &str, p: &Probe) -> ProbeEvidence {
    let port = |p: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString| match p {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    };
    let handler = if let Some(h) = &p.http_get {
        format!("httpGet :{}{}", port(&h.port), h.path.as_deref().unwrap_or("/"))
    } else if let Some(t) = &p.tcp_socket {
        format!("tcpSocket :{}", port(&t.port))
    } else if let Some(g) = &p.grpc {
        format!("grpc :{}", g.port)
    } else if p.exec.is_some() {
        "exec".to_string()
    } else {
        String::new()
    };
    // Kubernetes' defaults when a field is unset, so a reader sees the effective values.
    ProbeEvidence {
        kind: kind.to_string(),
        handler,
        initial_delay_seconds: p.initial_delay_seconds.unwrap_or(0),
        timeout_seconds: p.timeout_seconds.unwrap_or(1),
        period_seconds: p.period_seconds.unwrap_or(10),
        failure_threshold: p.failure_threshold.unwrap_or(3),
    }
}

/// Volume name -> its source, `ConfigMap/name` and so on.
fn volume_sources(spec: &PodSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for v in spec.volumes.iter().flatten() {
        let src = if let Some(cm) = &v.config_map {
            format!("ConfigMap/{}", cm.name)
        } else if let Some(s) = &v.secret {
            format!("Secret/{}", s.secret_name.as_deref().unwrap_or_default())
        } else if let Some(p) = &v.persistent_volume_claim {
            format!("PersistentVolumeClaim/{}", p.claim_name)
        } else if v.empty_dir.is_some() {
            "emptyDir".to_string()
        } else if v.projected.is_some() {
            "projected".to_string()
        } else if v.host_path.is_some() {
            "hostPath".to_string()
        } else {
            "other".to_string()
        };
        out.insert(v.name.clone(), src);
    }
    out
}

fn container(c: &Container, init: bool, volumes: &BTreeMap<String, String>) -> ContainerEvidence {
    let r = c.resources.as_ref();
    let limits = quantities(r.and_then(|r| r.limits.as_ref()));
    let probes = [("liveness", &c.liveness_probe), ("readiness", &c.readiness_probe), ("startup", &c.startup_probe)]
        .into_iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| probe(k, p)))
        .collect();
    let env = c
        .env
        .iter()
        .flatten()
        .map(|e| {
            let vf = e.value_from.as_ref();
            let source = if let Some(r) = vf.and_then(|v| v.config_map_key_ref.as_ref()) {
                format!("ConfigMap/{}:{}", r.name, r.key)
            } else if let Some(r) = vf.and_then(|v| v.secret_key_ref.as_ref()) {
                format!("Secret/{}:{}", r.name, r.key)
            } else if vf.and_then(|v| v.field_ref.as_ref()).is_some() {
                "field".to_string()
            } else if vf.and_then(|v| v.resource_field_ref.as_ref()).is_some() {
                "resource".to_string()
            } else {
                "value".to_string()
            };
            EnvEvidence { name: e.name.clone(), source }
        })
        .collect();
    let env_from = c
        .env_from
        .iter()
        .flatten()
        .filter_map(|ef| {
            ef.config_map_ref
                .as_ref()
                .map(|r| format!("ConfigMap/{}", r.name))
                .or_else(|| ef.secret_ref.as_ref().map(|r| format!("Secret/{}", r.name)))
        })
        .collect();
    let mounts = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| MountEvidence {
            volume: m.name.clone(),
            mount_path: m.mount_path.clone(),
            sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
            source: volumes.get(&m.name).cloned().unwrap_or_default(),
        })
        .collect();
    ContainerEvidence {
        name: c.name.clone(),
        memory_limit: limits.get("memory").cloned(),
        image: c.image.clone(),
        init,
        requests: quantities(r.and_then(|r| r.requests.as_ref())),
        limits,
        probes,
        env,
        env_from,
        mounts,
    }
}

/// Init containers first (they run first), then the others.
pub fn containers(spec: &PodSpec) -> Vec<ContainerEvidence> {
    let volumes = volume_sources(spec);
    spec.init_containers
        .iter()
        .flatten()
        .map(|c| container(c, true, &volumes))
        .chain(spec.containers.iter().map(|c| container(c, false, &volumes)))
        .collect()
}

/// A reference from the template to one ConfigMap or Secret (and key).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// `ConfigMap` or `Secret`.
    pub kind: &'static str,
    pub name: String,
    pub key: Option<String>,
    pub container: String,
    pub optional: bool,
    /// `env`, `volume` or `subPath`.
    pub used_as: &'static str,
}

/// Every ConfigMap and Secret the template reads, with the key and how it is used.
pub fn references(spec: &PodSpec) -> Vec<Reference> {
    let mut out = BTreeSet::new();
    for c in spec.init_containers.iter().flatten().chain(spec.containers.iter()) {
        for ef in c.env_from.iter().flatten() {
            if let Some(r) = &ef.config_map_ref {
                out.insert(reference("ConfigMap", &r.name, None, c, r.optional, "env"));
            }
            if let Some(r) = &ef.secret_ref {
                out.insert(reference("Secret", &r.name, None, c, r.optional, "env"));
            }
        }
        for e in c.env.iter().flatten() {
            let vf = e.value_from.as_ref();
            if let Some(r) = vf.and_then(|v| v.config_map_key_ref.as_ref()) {
                out.insert(reference("ConfigMap", &r.name, Some(&r.key), c, r.optional, "env"));
            }
            if let Some(r) = vf.and_then(|v| v.secret_key_ref.as_ref()) {
                out.insert(reference("Secret", &r.name, Some(&r.key), c, r.optional, "env"));
            }
        }
        for m in c.volume_mounts.iter().flatten() {
            let Some(v) = spec.volumes.iter().flatten().find(|v| v.name == m.name) else { continue };
            let used_as = if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) { "subPath" } else { "volume" };
            if let Some(cm) = &v.config_map {
                out.insert(reference("ConfigMap", &cm.name, None, c, cm.optional, used_as));
            }
            // A projected volume mounts several sources in one directory, ConfigMaps among them.
            for cm in v.projected.iter().flat_map(|p| p.sources.iter().flatten()).filter_map(|s| s.config_map.as_ref()) {
                out.insert(reference("ConfigMap", &cm.name, None, c, cm.optional, used_as));
            }
            if let Some(s) = &v.secret {
                out.insert(reference("Secret", s.secret_name.as_deref().unwrap_or_default(), None, c, s.optional, used_as));
            }
        }
    }
    out.into_iter().collect()
}

fn reference(kind: &'static str, name: &str, key: Option<&str>, c: &Container, optional: Option<bool>, used_as: &'static str) -> Reference {
    Reference {
        kind,
        name: name.to_string(),
        key: key.map(String::from),
        container: c.name.clone(),
        optional: optional.unwrap_or(false),
        used_as,
    }
}

/// Whether `selector` selects an object with `labels` (an empty selector selects everything,
/// as for NetworkPolicies).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// A label selector as a list-request string (`a=b,c in (d,e),!f`).
pub fn selector_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// Annotations that change on every rollout or are set by tools, not by people.
const NOISY_ANNOTATIONS: [&str; 2] = ["kubectl.kubernetes.io/restartedAt", "salve.dev/restartedBy"];

/// What `new` changed compared with `old`: image, env (names; values only for keys that do not
/// look secret), resources, command/args, probes, volumes, annotations.
pub fn template_changes(old: &PodTemplateSpec, new: &PodTemplateSpec) -> Vec<TemplateChange> {
    let mut out = Vec::new();
    let empty = PodSpec::default();
    let (os, ns) = (old.spec.as_ref().unwrap_or(&empty), new.spec.as_ref().unwrap_or(&empty));
    let all = |s: &PodSpec| -> Vec<(Container, bool)> {
        s.init_containers.iter().flatten().map(|c| (c.clone(), true)).chain(s.containers.iter().map(|c| (c.clone(), false))).collect()
    };
    let (oc, nc) = (all(os), all(ns));
    let change = |field: &str, container: Option<&str>, detail: String| TemplateChange {
        field: field.to_string(),
        container: container.map(String::from),
        detail,
    };
    for (n, _) in &nc {
        let Some((o, _)) = oc.iter().find(|(o, _)| o.name == n.name) else {
            out.push(change("containers", Some(&n.name), format!("+container {}", n.name)));
            continue;
        };
        let name = Some(n.name.as_str());
        if o.image != n.image {
            out.push(change("image", name, format!("{} -> {}", o.image.as_deref().unwrap_or("?"), n.image.as_deref().unwrap_or("?"))));
        }
        let env = |c: &Container| -> BTreeMap<String, String> {
            c.env
                .iter()
                .flatten()
                .map(|e| {
                    let v = match (&e.value, &e.value_from) {
                        (Some(v), _) => v.clone(),
                        (None, Some(vf)) => serde_json::to_string(vf).unwrap_or_default(),
                        _ => String::new(),
                    };
                    (e.name.clone(), v)
                })
                .collect()
        };
        let (oe, ne) = (env(o), env(n));
        let keys: BTreeSet<&String> = oe.keys().chain(ne.keys()).collect();
        for k in keys {
            let show = |v: Option<&String>| match v {
                None => "(unset)".to_string(),
                Some(_) if is_secret_key(k) => Kind::SecretValue.marker().to_string(),
                Some(v) => v.clone(),
            };
            if oe.get(k) != ne.get(k) {
                out.push(change("env", name, format!("{k}: {} -> {}", show(oe.get(k)), show(ne.get(k)))));
            }
        }
        if o.env_from != n.env_from {
            out.push(change("env", name, "envFrom changed".into()));
        }
        let res = |c: &Container| {
            let r = c.resources.as_ref();
            let mut m = BTreeMap::new();
            for (prefix, q) in [("requests", r.and_then(|r| r.requests.as_ref())), ("limits", r.and_then(|r| r.limits.as_ref()))] {
                for (k, v) in quantities(q) {
                    m.insert(format!("{prefix}.{k}"), v);
                }
            }
            m
        };
        let (or, nr) = (res(o), res(n));
        for k in or.keys().chain(nr.keys()).collect::<BTreeSet<_>>() {
            if or.get(k) != nr.get(k) {
                let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
                out.push(change("resources", name, format!("{k} {} -> {}", show(or.get(k)), show(nr.get(k)))));
            }
        }
        if o.command != n.command || o.args != n.args {
            out.push(change("command", name, "command/args changed".into()));
        }
        if o.liveness_probe != n.liveness_probe || o.readiness_probe != n.readiness_probe || o.startup_probe != n.startup_probe {
            out.push(change("probes", name, "probes changed".into()));
        }
        if o.volume_mounts != n.volume_mounts {
            out.push(change("volumes", name, "volumeMounts changed".into()));
        }
    }
    for (o, _) in &oc {
        if !nc.iter().any(|(n, _)| n.name == o.name) {
            out.push(change("containers", Some(&o.name), format!("-container {}", o.name)));
        }
    }
    if os.volumes != ns.volumes {
        out.push(change("volumes", None, "volumes changed".into()));
    }
    if os.service_account_name != ns.service_account_name {
        out.push(change(
            "serviceAccount",
            None,
            format!(
                "{} -> {}",
                os.service_account_name.as_deref().unwrap_or("default"),
                ns.service_account_name.as_deref().unwrap_or("default")
            ),
        ));
    }
    let ann = |t: &PodTemplateSpec| -> BTreeMap<String, String> {
        t.metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !NOISY_ANNOTATIONS.contains(&k.as_str()))
            .collect()
    };
    let (oa, na) = (ann(old), ann(new));
    for k in oa.keys().chain(na.keys()).collect::<BTreeSet<_>>() {
        if oa.get(k) != na.get(k) {
            out.push(change("annotations", None, k.clone()));
        }
    }
    let only_restart = out.is_empty() && (old.metadata.as_ref().map(|m| &m.annotations) != new.metadata.as_ref().map(|m| &m.annotations));
    if only_restart {
        out.push(change("annotations", None, "restart annotation only".into()));
    }
    if out.is_empty() && os != ns {
        out.push(change("other", None, "pod spec changed".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(v: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(v).expect("template")
    }

    #[test]
    fn containers_name_sources_never_secret_values() {
        let t = template(json!({"spec": {
            "initContainers": [{"name": "migrate", "image": "m:1"}],
            "containers": [{"name": "app", "image": "a:1",
                "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"ephemeral-storage": "1Gi"}},
                "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                        {"name": "POOL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "pool"}}}],
                "volumeMounts": [{"name": "conf", "mountPath": "/etc/app/app.toml", "subPath": "app.toml"}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "timeoutSeconds": 1}}],
            "volumes": [{"name": "conf", "configMap": {"name": "cfg"}}]}}));
        let spec = t.spec.as_ref().expect("spec");
        let c = containers(spec);
        assert_eq!((c[0].name.as_str(), c[0].init), ("migrate", true));
        let app = &c[1];
        assert_eq!(app.memory_limit.as_deref(), Some("256Mi"));
        assert_eq!(app.limits.get("cpu").map(String::as_str), Some("500m"));
        assert_eq!(app.env[0].source, "Secret/db:password");
        assert_eq!(app.mounts[0].sub_path.as_deref(), Some("app.toml"));
        assert_eq!(app.mounts[0].source, "ConfigMap/cfg");
        assert_eq!(app.probes[0].handler, "httpGet :8080/readyz");
        let refs = references(spec);
        assert!(refs.iter().any(|r| r.kind == "ConfigMap" && r.used_as == "subPath"));
        assert!(refs.iter().any(|r| r.kind == "Secret" && r.key.as_deref() == Some("password")));
    }

    /// A ConfigMap mounted through a projected volume is read by the template too (and so
    /// inside the incident's blast radius).
    #[test]
    fn projected_volumes_reference_their_config_maps() {
        let t = template(json!({"spec": {
            "containers": [{"name": "app", "image": "a:1", "volumeMounts": [{"name": "all", "mountPath": "/etc/app"}]}],
            "volumes": [{"name": "all", "projected": {"sources": [{"configMap": {"name": "flags"}}, {"secret": {"name": "tls"}}]}}]}}));
        let refs = references(t.spec.as_ref().expect("spec"));
        assert!(refs.iter().any(|r| r.kind == "ConfigMap" && r.name == "flags" && r.used_as == "volume"), "{refs:?}");
    }

    #[test]
    fn template_changes_name_what_changed() {
        let old = template(json!({"metadata": {"annotations": {"a": "1"}}, "spec": {"containers": [{"name": "app", "image": "a:1",
            "env": [{"name": "MODE", "value": "fast"}, {"name": "API_TOKEN", "value": "x"}]}]}}));
        let new = template(json!({"metadata": {"annotations": {"a": "2"}}, "spec": {"containers": [{"name": "app", "image": "a:2",
            "env": [{"name": "MODE", "value": "slow"}, {"name": "API_TOKEN", "value": "y"}],
            "resources": {"limits": {"memory": "128Mi"}}}]}}));
        let c = template_changes(&old, &new);
        let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["image", "env", "env", "resources", "annotations"]);
        assert!(c.iter().any(|c| c.detail == "MODE: fast -> slow"));
        assert!(c.iter().any(|c| c.detail == "API_TOKEN: [REDACTED:secret-value] -> [REDACTED:secret-value]"));
        let restart = template(
            json!({"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}, "spec": {"containers": [{"name": "app", "image": "a:1",
            "env": [{"name": "MODE", "value": "fast"}, {"name": "API_TOKEN", "value": "x"}]}]}}),
        );
        let old_plain = template(json!({"spec": {"containers": [{"name": "app", "image": "a:1",
            "env": [{"name": "MODE", "value": "fast"}, {"name": "API_TOKEN", "value": "x"}]}]}}));
        assert_eq!(template_changes(&old_plain, &restart)[0].detail, "restart annotation only");
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let s: LabelSelector = serde_json::from_value(
            json!({"matchLabels": {"app": "oms"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}),
        )
        .expect("selector");
        let l = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(selects(&s, &l(&[("app", "oms"), ("tier", "web")])));
        assert!(!selects(&s, &l(&[("app", "oms")])));
        assert!(selects(&LabelSelector::default(), &l(&[])));
        assert_eq!(selector_query(&s), "app=oms,tier in (web)");
    }
}
