//! The rollout restart that follows a restored ConfigMap value when the running containers
//! cannot see it (read through env or subPath; see `domain::config_visibility`) or sit in a
//! long crash-loop back-off (up to 5 minutes before the kubelet tries again). Planned with the
//! snapshot, applied with the fix, undone with it.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::evidence::selector_string;
use crate::crd::{FIELD_MANAGER, FollowUpRestart};
use crate::domain::action::{ActionKind, ProposedAction};
use crate::domain::config_visibility::restart_needed;
use crate::domain::undo::RESTART_ANNOTATION;

/// A back-off this long or longer is worth cutting short with a restart.
const LONG_BACK_OFF_SECONDS: u64 = 40;

/// Seconds of the kubelet's `back-off 1m20s restarting failed container=...` message (a Go
/// duration: `40s`, `1m20s`, `5m0s`).
fn back_off_seconds(message: &str) -> Option<u64> {
    let duration = message.strip_prefix("back-off ")?.split(' ').next()?;
    let (mut total, mut number) = (0u64, String::new());
    for c in duration.chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' | 's' => {
                let n: u64 = number.parse().ok()?;
                total += n * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                number.clear();
            }
            _ => return None,
        }
    }
    number.is_empty().then_some(total)
}

/// Whether restoring `action` on `workload` should also restart it, and how to undo that.
pub async fn plan(client: &Client, ns: &str, workload: &str, action: &ProposedAction) -> Result<Option<FollowUpRestart>, kube::Error> {
    if action.kind != ActionKind::SetConfigMapKey {
        return Ok(None);
    }
    let Some(d) = Api::<Deployment>::namespaced(client.clone(), ns).get_opt(workload).await? else { return Ok(None) };
    let mut reason = restart_needed(&d, &action.target_name);
    if reason.is_none() {
        let selector = selector_string(&d);
        let pods = Api::<Pod>::namespaced(client.clone(), ns).list(&ListParams::default().labels(&selector)).await?.items;
        let waiting = pods.iter().flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten())).find_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            let secs = back_off_seconds(w.message.as_deref()?)?;
            (w.reason.as_deref() == Some("CrashLoopBackOff") && secs >= LONG_BACK_OFF_SECONDS).then(|| (c.name.clone(), secs))
        });
        reason = waiting.map(|(c, secs)| format!("container {c} waits in a {secs}s crash-loop back-off"));
    }
    let Some(reason) = reason else { return Ok(None) };
    let previous = d.spec.template.metadata.as_ref().and_then(|m| m.annotations.as_ref()).and_then(|a| a.get(RESTART_ANNOTATION)).cloned();
    let undo = json!({"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: previous}}}}});
    Ok(Some(FollowUpRestart { target: format!("Deployment/{workload}"), reason, undo_patch: undo.to_string() }))
}

fn deployment_name(r: &FollowUpRestart) -> &str {
    r.target.strip_prefix("Deployment/").unwrap_or(&r.target)
}

/// Restarts the workload (the pod-template annotation `kubectl rollout restart` also uses); the
/// value is the Remediation's name, so repeating it after a crash changes nothing.
pub async fn apply(client: &Client, ns: &str, r: &FollowUpRestart, remediation: &str) -> Result<(), kube::Error> {
    let body = json!({"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: remediation}}}}});
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    Api::<Deployment>::namespaced(client.clone(), ns).patch(deployment_name(r), &pp, &Patch::Merge(&body)).await?;
    Ok(())
}

pub async fn undo(client: &Client, ns: &str, r: &FollowUpRestart) -> Result<(), kube::Error> {
    let patch: serde_json::Value = serde_json::from_str(&r.undo_patch).unwrap_or_default();
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    Api::<Deployment>::namespaced(client.clone(), ns).patch(deployment_name(r), &pp, &Patch::Merge(&patch)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelets_back_off_message_is_read() {
        assert_eq!(back_off_seconds("back-off 40s restarting failed container=oms pod=oms-1"), Some(40));
        assert_eq!(back_off_seconds("back-off 5m0s restarting failed container=oms pod=oms-1"), Some(300));
        assert_eq!(back_off_seconds("back-off 1m20s restarting failed container=oms pod=oms-1"), Some(80));
        assert_eq!(back_off_seconds("something else"), None);
    }
}
