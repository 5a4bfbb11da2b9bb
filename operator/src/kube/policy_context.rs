//! Gathers the facts the pure policy needs: target labels, the hourly count, in-flight work.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::crd::Remediation;
use crate::domain::action::{ActionKind, ProposedAction};
use crate::domain::policy::PolicyContext;

pub async fn gather(
    client: &Client,
    ns: &str,
    action: &ProposedAction,
    this_remediation: Option<&str>,
) -> Result<PolicyContext, kube::Error> {
    let labels = match action.kind {
        ActionKind::SetConfigMapKey => {
            Api::<ConfigMap>::namespaced(client.clone(), ns).get_opt(&action.target_name).await?.map(|o| o.labels().clone())
        }
        ActionKind::SetHpaMaxReplicas => Api::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
            .get_opt(&action.target_name)
            .await?
            .map(|o| o.labels().clone()),
        ActionKind::PullRequest => Some(Default::default()),
        _ => Api::<Deployment>::namespaced(client.clone(), ns).get_opt(&action.target_name).await?.map(|o| o.labels().clone()),
    };
    // Unparseable Remediations are skipped here; their own reconcile reports them.
    let all = Api::<kube::core::DeserializeGuard<Remediation>>::all(client.clone()).list(&ListParams::default()).await?;
    let hour_ago = Timestamp::now() - SignedDuration::from_hours(1);
    let mut started = 0;
    let mut busy = false;
    for r in all.items.into_iter().filter_map(|g| g.0.ok()) {
        if Some(r.name_any().as_str()) == this_remediation && r.namespace().as_deref() == Some(ns) {
            continue;
        }
        let st = r.status.clone().unwrap_or_default();
        if st.applied_at.as_deref().and_then(crate::domain::time::parse_time).is_some_and(|t| t > hour_ago) || st.phase.is_in_flight() {
            started += 1;
        }
        if r.namespace().as_deref() == Some(ns) && r.spec.action.target() == action.target() && st.phase.is_in_flight() {
            busy = true;
        }
    }
    Ok(PolicyContext {
        namespace: ns.to_string(),
        target_exists: labels.is_some(),
        target_labels: labels.unwrap_or_default(),
        started_last_hour: started,
        other_in_flight_for_target: busy,
    })
}
