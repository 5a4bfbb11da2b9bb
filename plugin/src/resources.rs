//! Reading and writing Salve's objects on the user's behalf: Incidents, their Remediations, the
//! post-mortem (the full record in the ConfigMap, else the bounded copy in the Incident's status).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use operator::crd::incident::{Incident, PostMortem};
use operator::crd::remediation::Remediation;
use operator::domain::replay::{ReplayError, parse_post_mortem};

use crate::cluster::{Cluster, Op};
use crate::error::PluginError;

pub const POST_MORTEM_KEY: &str = "postmortem.json";

pub fn incident_op<'a>(verb: &'static str, name: Option<&'a str>, namespace: Option<&'a str>) -> Op<'a> {
    Op { verb, kind: "incident", plural: "incidents", name, namespace }
}

pub fn remediation_op<'a>(verb: &'static str, name: Option<&'a str>, namespace: Option<&'a str>) -> Op<'a> {
    Op { verb, kind: "remediation", plural: "remediations", name, namespace }
}

/// Incidents as the server stores them (a malformed one still lists; its row says so).
pub fn incidents_dynamic(cluster: &Cluster, all_namespaces: bool) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<Incident>(&());
    if all_namespaces {
        Api::all_with(cluster.client.clone(), &ar)
    } else {
        Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &ar)
    }
}

pub async fn incident(cluster: &Cluster, name: &str) -> Result<Incident, PluginError> {
    let api: Api<Incident> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    api.get(name).await.map_err(|e| malformed_or(cluster, e, "incident", name, incident_op("get", Some(name), Some(&cluster.namespace))))
}

pub async fn remediation(cluster: &Cluster, name: &str) -> Result<Remediation, PluginError> {
    let api: Api<Remediation> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    api.get(name)
        .await
        .map_err(|e| malformed_or(cluster, e, "remediation", name, remediation_op("get", Some(name), Some(&cluster.namespace))))
}

/// The Remediations of an Incident, oldest first: those it lists in its status and any other
/// whose `spec.incidentRef` names it.
pub async fn remediations_of(cluster: &Cluster, incident: &Incident) -> Result<Vec<Remediation>, PluginError> {
    let api: Api<Remediation> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let ns = cluster.namespace.as_str();
    let all = api.list(&ListParams::default()).await.map_err(|e| cluster.error(e, remediation_op("list", None, Some(ns))))?;
    let name = incident.name_any();
    let listed = incident.status.as_ref().map(|s| s.remediations.clone()).unwrap_or_default();
    let mut mine: Vec<Remediation> =
        all.items.into_iter().filter(|r| r.spec.incident_ref == name || listed.contains(&r.name_any())).collect();
    mine.sort_by_key(|r| (r.creation_timestamp(), r.name_any()));
    Ok(mine)
}

pub async fn merge_patch<K>(cluster: &Cluster, name: &str, body: serde_json::Value, op: Op<'_>) -> Result<K, PluginError>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    api.patch(name, &PatchParams::default(), &Patch::Merge(body)).await.map_err(|e| cluster.error(e, op))
}

/// Where a post-mortem was read from, for the reader.
pub struct FoundPostMortem {
    pub record: PostMortem,
    pub location: String,
    /// The ConfigMap could not be read (absent or forbidden): this is the bounded status copy.
    pub fallback_reason: Option<String>,
}

pub async fn post_mortem(cluster: &Cluster, incident: &Incident) -> Result<FoundPostMortem, PluginError> {
    let name = incident.name_any();
    let ns = cluster.namespace.clone();
    let status = incident.status.clone().unwrap_or_default();
    let invalid = |source: ReplayError| PluginError::Malformed { what: "post-mortem", name: name.clone(), detail: source.to_string() };
    let cm_name = status.post_mortem_ref.clone().unwrap_or_else(|| format!("{name}-postmortem"));
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let fallback_reason = match cms.get(&cm_name).await {
        Ok(cm) => match cm.data.as_ref().and_then(|d| d.get(POST_MORTEM_KEY)) {
            Some(text) => {
                let record = parse_post_mortem(text).map_err(invalid)?;
                return Ok(FoundPostMortem {
                    record,
                    location: format!("ConfigMap {ns}/{cm_name} key {POST_MORTEM_KEY}"),
                    fallback_reason: None,
                });
            }
            None => format!("ConfigMap {ns}/{cm_name} has no key {POST_MORTEM_KEY}"),
        },
        Err(kube::Error::Api(s)) if s.code == 404 => format!("ConfigMap {ns}/{cm_name} not found"),
        Err(kube::Error::Api(s)) if s.code == 403 => format!("not allowed to read ConfigMap {ns}/{cm_name}: {}", s.message),
        Err(e) => {
            return Err(cluster.error(
                e,
                crate::cluster::Op { verb: "get", kind: "configmap", plural: "configmaps", name: Some(&cm_name), namespace: Some(&ns) },
            ));
        }
    };
    match status.post_mortem {
        Some(record) => Ok(FoundPostMortem {
            record: *record,
            location: format!("incident {ns}/{name} .status.postMortem (bounded copy)"),
            fallback_reason: Some(fallback_reason),
        }),
        None => Err(PluginError::NoPostMortem { name, phase: status.phase.as_str().to_string() }),
    }
}

/// A 200 whose body does not fit the type is a malformed object, not a missing cluster.
fn malformed_or(cluster: &Cluster, e: kube::Error, what: &'static str, name: &str, op: Op<'_>) -> PluginError {
    match e {
        kube::Error::SerdeError(detail) => PluginError::Malformed { what, name: name.to_string(), detail: detail.to_string() },
        other => cluster.error(other, op),
    }
}
