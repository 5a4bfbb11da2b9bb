//! `kubectl salve describe INCIDENT`: the story (see `output::story`), or the Incident and its
//! Remediations as a `List` with `-o json|yaml`.

use chrono::Utc;

use super::print;
use crate::cli::{DescribeArgs, Format};
use crate::cluster::Cluster;
use crate::error::PluginError;
use crate::output::{objects, story};
use crate::resources;

pub async fn run(cluster: &Cluster, args: &DescribeArgs) -> Result<i32, PluginError> {
    let incident = resources::incident(cluster, &args.incident).await?;
    let remediations = resources::remediations_of(cluster, &incident).await?;
    match args.output {
        Format::Table => print(&story::render(&incident, &remediations, Utc::now())),
        format => {
            let mut items = vec![serde_json::to_value(&incident).map_err(|e| PluginError::Output(e.to_string()))?];
            for r in &remediations {
                items.push(serde_json::to_value(r).map_err(|e| PluginError::Output(e.to_string()))?);
            }
            print(&objects::render(&objects::list(&items), format)?);
        }
    }
    Ok(0)
}
