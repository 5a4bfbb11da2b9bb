//! Gathers the facts the pure policy needs: target labels, the hourly count, in-flight work.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::controllers::cache::{PAGE_SIZE, RemediationStore};
use crate::crd::Remediation;
use crate::domain::action::{ActionKind, ProposedAction};
use crate::domain::policy::PolicyContext;

/// `remediations`: the controllers' Remediation cache when they run; without it, every
/// Remediation is listed (paged).
pub async fn gather(
    client: &Client,
    remediations: Option<&RemediationStore>,
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
    let hour_ago = Timestamp::now() - SignedDuration::from_hours(1);
    let mut started = 0;
    let mut busy = false;
    let mut count = |r: &Remediation| {
        if Some(r.name_any().as_str()) == this_remediation && r.namespace().as_deref() == Some(ns) {
            return;
        }
        let st = r.status.as_ref();
        let phase = st.map(|s| s.phase).unwrap_or_default();
        let applied_at = st.and_then(|s| s.applied_at.as_deref());
        if applied_at.and_then(crate::domain::time::parse_time).is_some_and(|t| t > hour_ago) || phase.is_in_flight() {
            started += 1;
        }
        if r.namespace().as_deref() == Some(ns) && r.spec.action.target() == action.target() && phase.is_in_flight() {
            busy = true;
        }
    };
    // Unparseable Remediations are skipped here; their own reconcile reports them.
    match remediations {
        // The controllers' cache (as fresh as their watch): no request.
        Some(store) => store.state().iter().filter_map(|c| c.object().ok()).for_each(|r| count(&r)),
        // No controller running (a single reconcile, a tool): every Remediation, page by page.
        None => {
            let api = Api::<kube::core::DeserializeGuard<Remediation>>::all(client.clone());
            let mut lp = ListParams::default().limit(PAGE_SIZE);
            loop {
                let page = api.list(&lp).await?;
                page.items.iter().filter_map(|g| g.0.as_ref().ok()).for_each(&mut count);
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => lp = lp.continue_token(&token),
                    None => break,
                }
            }
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
