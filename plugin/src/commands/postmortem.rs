//! `kubectl salve postmortem INCIDENT [-o markdown|json]`: the full record from the ConfigMap
//! `<incident>-postmortem`; when that cannot be read, the bounded copy in the Incident's status
//! (said on stderr).

use super::print;
use crate::cli::{PostmortemArgs, PostmortemFormat};
use crate::cluster::Cluster;
use crate::error::PluginError;
use crate::output::post_mortem_markdown;
use crate::resources;

pub async fn run(cluster: &Cluster, args: &PostmortemArgs) -> Result<i32, PluginError> {
    let incident = resources::incident(cluster, &args.incident).await?;
    let found = resources::post_mortem(cluster, &incident).await?;
    if let Some(why) = &found.fallback_reason {
        eprintln!("note: {why}; showing the bounded copy from the Incident's status");
    }
    match args.output {
        PostmortemFormat::Json => {
            print(&(serde_json::to_string_pretty(&found.record).map_err(|e| PluginError::Output(e.to_string()))? + "\n"))
        }
        PostmortemFormat::Markdown => print(&post_mortem_markdown::render(&found.record, &found.location)),
    }
    Ok(0)
}
