//! The Endpoints controller (pkg/controller/endpoint): for every Service with a selector, the
//! addresses of the selected pods, ready ones in `addresses` and the others in
//! `notReadyAddresses`, with the target ports resolved by name. It also assigns the Service a
//! cluster IP when it has none (the API server's allocator does that in a cluster).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::SERVICE_ADDRESSES;
use crate::controllers::replica_set::pod_ready;

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.labels().get(k) == Some(v))
}

/// The container port a Service port targets on `pod` (by number or by name).
pub fn target_port(target: Option<&IntOrString>, port: i32, pod: &Pod) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

pub async fn sync_all(client: &Client) -> Result<(), kube::Error> {
    let services: Api<Service> = Api::all(client.clone());
    for svc in services.list(&ListParams::default()).await?.items {
        let ns = svc.namespace().unwrap_or_default();
        let mut spec = svc.spec.clone().unwrap_or_default();
        if spec.cluster_ip.as_deref().is_none_or(str::is_empty) {
            let ip = SERVICE_ADDRESSES.allocate();
            let api: Api<Service> = Api::namespaced(client.clone(), &ns);
            api.patch(&svc.name_any(), &PatchParams::default(), &Patch::Merge(json!({"spec": {"clusterIP": ip, "clusterIPs": [ip]}})))
                .await?;
            spec.cluster_ip = Some(ip);
        }
        let Some(selector) = spec.selector.clone() else { continue };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let mut subsets = Vec::new();
        for port in spec.ports.iter().flatten() {
            let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
            let mut target = None;
            for p in pods
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|p| selects(&selector, p) && p.metadata.deletion_timestamp.is_none())
            {
                let Some(ip) = p.status.as_ref().and_then(|s| s.pod_ip.clone()) else { continue };
                target = target.or(target_port(port.target_port.as_ref(), port.port, p));
                let addr =
                    EndpointAddress { ip, target_ref: Some(crate::events::reference("Pod", "v1", &p.metadata)), ..Default::default() };
                if pod_ready(p) { ready.push(addr) } else { not_ready.push(addr) }
            }
            subsets.push(EndpointSubset {
                addresses: Some(ready),
                not_ready_addresses: Some(not_ready),
                ports: Some(vec![EndpointPort {
                    name: port.name.clone(),
                    port: target.unwrap_or(port.port),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
            });
        }
        let ep = Endpoints {
            metadata: ObjectMeta { name: Some(svc.name_any()), namespace: Some(ns.clone()), ..Default::default() },
            subsets: Some(subsets),
        };
        let api: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
        match api.get_opt(&svc.name_any()).await? {
            None => {
                api.create(&PostParams::default(), &ep).await?;
            }
            Some(old) if old.subsets != ep.subsets => {
                api.patch(&svc.name_any(), &PatchParams::default(), &Patch::Merge(json!({"subsets": ep.subsets}))).await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}
