//! `kubectl salve score INCIDENT 1..5`: the annotation `salve.dev/feedback-score`, which the
//! operator copies into the post-mortem (ConfigMap, status copy and archive) whenever it changes.

use kube::ResourceExt;
use operator::crd::incident::Incident;
use serde_json::json;

use super::print;
use crate::cli::ScoreArgs;
use crate::cluster::Cluster;
use crate::error::PluginError;
use crate::resources::{self, incident_op};

pub const SCORE_ANNOTATION: &str = "salve.dev/feedback-score";

pub async fn run(cluster: &Cluster, args: &ScoreArgs) -> Result<i32, PluginError> {
    let ns = cluster.namespace.as_str();
    // A clear "not found" before writing anything (a merge patch on a missing object says less).
    let incident = resources::incident(cluster, &args.incident).await?;
    let body = json!({"metadata": {"annotations": {SCORE_ANNOTATION: args.score.to_string()}}});
    let _: Incident = resources::merge_patch(cluster, &args.incident, body, incident_op("patch", Some(&args.incident), Some(ns))).await?;
    let phase = incident.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let when =
        if phase.is_terminal() { "the post-mortem is rewritten with it" } else { "it goes into the post-mortem when the incident closes" };
    print(&format!("incident.salve.dev/{} scored {}/5; {when}\n", incident.name_any(), args.score));
    Ok(0)
}
