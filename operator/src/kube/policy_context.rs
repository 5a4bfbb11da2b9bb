//! Gathers the facts the pure policy needs: target labels, the Incident's blast radius, whether
//! a ConfigMap value is a recorded one, the hourly count, in-flight work.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};

use super::config_history::ConfigHistory;
use super::workload::{self, WorkloadError};
use crate::controllers::cache::{PAGE_SIZE, RemediationStore};
use crate::crd::{Remediation, RemediationStatus};
use crate::domain::action::{ActionKind, ProposedAction};
use crate::domain::blast_radius::BlastRadius;
use crate::domain::phase::RemediationPhase;
use crate::domain::pod_template::references;
use crate::domain::policy::PolicyContext;

/// The Incident a decision is made for: its workload, and the replicas its evidence recorded
/// before any remediation.
#[derive(Clone, Copy, Debug)]
pub struct IncidentScope<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub replicas_before: Option<i32>,
}

/// What the Incident's workload reaches now (its pod template's ConfigMaps, the autoscalers
/// that scale it). A workload that is gone reaches nothing.
async fn blast_radius(client: &Client, ns: &str, scope: IncidentScope<'_>) -> Result<BlastRadius, kube::Error> {
    let mut radius = BlastRadius {
        workload_kind: scope.kind.to_string(),
        workload_name: scope.name.to_string(),
        replicas_before: scope.replicas_before,
        ..Default::default()
    };
    let w = match workload::resolve(client, ns, scope.kind, scope.name).await {
        Ok(w) => w,
        Err(WorkloadError::Kube(e)) => return Err(e),
        Err(_) => return Ok(radius),
    };
    radius.workload_labels = w.labels.clone();
    radius.replicas_now = w.desired;
    radius.config_maps = w
        .template
        .spec
        .as_ref()
        .map(references)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.kind == "ConfigMap")
        .map(|r| r.name)
        .collect();
    let hpas = Api::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    radius.autoscalers = hpas
        .items
        .iter()
        .filter(|h| h.spec.scale_target_ref.kind == scope.kind && h.spec.scale_target_ref.name == scope.name)
        .map(|h| h.name_any())
        .collect();
    Ok(radius)
}

/// `remediations`: the controllers' Remediation cache when they run; without it, every
/// Remediation is listed (paged). `scope`: the Incident; `None` when it cannot be found, and
/// then nothing but a pull request is inside any blast radius.
pub async fn gather(
    client: &Client,
    remediations: Option<&RemediationStore>,
    history: &ConfigHistory,
    ns: &str,
    action: &ProposedAction,
    this_remediation: Option<&str>,
    scope: Option<IncidentScope<'_>>,
) -> Result<PolicyContext, kube::Error> {
    let radius = match scope {
        Some(scope) if action.kind != ActionKind::PullRequest => Some(blast_radius(client, ns, scope).await?),
        _ => None,
    };
    let value_recorded = match (action.kind, action.key.as_deref(), action.value.as_deref()) {
        (ActionKind::SetConfigMapKey, Some(key), Some(value)) => {
            history.recorded_previous(ns, &action.target_name, key, value).as_deref() == Some(value)
        }
        _ => false,
    };
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
    // `target` is asked only of an in-flight Remediation in this namespace (rare): from the
    // cache, those are the only Remediations a decision decodes.
    let mut count = |meta: &ObjectMeta, phase: RemediationPhase, applied_at: Option<Timestamp>, target: &dyn Fn() -> Option<String>| {
        let same_ns = meta.namespace.as_deref() == Some(ns);
        if same_ns && this_remediation.is_some_and(|n| meta.name.as_deref() == Some(n)) {
            return;
        }
        if applied_at.is_some_and(|t| t > hour_ago) || phase.is_in_flight() {
            started += 1;
        }
        if same_ns && phase.is_in_flight() && !busy && target().is_some_and(|t| t == action.target()) {
            busy = true;
        }
    };
    // Unparseable Remediations are skipped here; their own reconcile reports them.
    match remediations {
        // The controllers' cache (as fresh as their watch): no request, and no decode but the
        // rare one above (a decision reads every Remediation in the cluster).
        Some(store) => {
            for c in store.state() {
                if let Some(s) = c.summary() {
                    count(c.meta(), s.phase, s.applied_at, &|| c.object().ok().map(|r| r.spec.action.target()));
                }
            }
        }
        // No controller running (a single reconcile, a tool): every Remediation, page by page.
        None => {
            let api = Api::<kube::core::DeserializeGuard<Remediation>>::all(client.clone());
            let mut lp = ListParams::default().limit(PAGE_SIZE);
            loop {
                let page = api.list(&lp).await?;
                for r in page.items.iter().filter_map(|g| g.0.as_ref().ok()) {
                    let st = r.status.as_ref();
                    let applied_at = st.and_then(RemediationStatus::applied_time);
                    count(&r.metadata, st.map(|s| s.phase).unwrap_or_default(), applied_at, &|| Some(r.spec.action.target()));
                }
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
        radius,
        value_recorded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::cache::CachedRemediation;
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    fn cached(name: &str, ns: &str, repository: &str, phase: &str, applied_at: Option<String>) -> CachedRemediation {
        serde_json::from_value(json!({
            "apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"incidentRef": "inc", "risk": "Low",
                "action": {"kind": "PullRequest", "targetName": "shop-gitops", "repository": repository}},
            "status": {"phase": phase, "appliedAt": applied_at}
        }))
        .expect("remediation")
    }

    /// The policy's counts from the controllers' cache, read from each Remediation's summary:
    /// recent and in-flight ones count toward the hourly limit, an in-flight one for the same
    /// target (in this namespace) makes the target busy, the one being decided and unparseable
    /// ones are left out.
    #[tokio::test]
    async fn counts_from_the_cache_without_requests() {
        let now = Timestamp::now();
        let ago = |mins: i64| Some((now - SignedDuration::from_mins(mins)).to_string());
        let (store, mut writer) = reflector::store::<CachedRemediation>();
        let invalid: CachedRemediation = serde_json::from_value(json!({
            "apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
            "metadata": {"name": "garbled", "namespace": "shop"}, "spec": {"risk": 7}
        }))
        .expect("kept as invalid");
        for c in [
            cached("recent", "shop", "acme/other", "Succeeded", ago(10)),
            cached("old", "shop", "acme/shop", "Succeeded", ago(120)),
            cached("verifying-elsewhere", "payments", "acme/shop", "Verifying", ago(5)),
            cached("this-one", "shop", "acme/shop", "Approved", None),
            invalid,
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(c));
        }
        // Any request would fail: the handle that would answer it is gone.
        let (service, _) = tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        let client = Client::new(service, "shop");
        let action: ProposedAction =
            serde_json::from_value(json!({"kind": "PullRequest", "targetName": "shop-gitops", "repository": "acme/shop"})).expect("action");

        let ctx = gather(&client, Some(&store), &ConfigHistory::default(), "shop", &action, Some("this-one"), None)
            .await
            .expect("no request needed");
        assert_eq!(ctx.started_last_hour, 2, "recent + in flight elsewhere; not the old one, this one or the garbled one");
        assert!(!ctx.other_in_flight_for_target, "the only other in-flight one is in another namespace");

        writer.apply_watcher_event(&watcher::Event::Apply(cached("rolling-out", "shop", "acme/shop", "RollingOut", ago(1))));
        let ctx = gather(&client, Some(&store), &ConfigHistory::default(), "shop", &action, Some("this-one"), None)
            .await
            .expect("no request needed");
        assert_eq!(ctx.started_last_hour, 3);
        assert!(ctx.other_in_flight_for_target, "another Remediation is changing the same repository");
    }
}
