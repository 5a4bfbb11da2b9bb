//! `kubectl salve replay INCIDENT`: `operator replay` on the incident's post-mortem, read from
//! the cluster: the offline rules diagnose the recorded evidence again and the result is
//! compared with the recorded diagnosis. Exit 1 on a mismatch with `--fail-on-mismatch`.

use operator::domain::replay::replay_offline;

use super::print;
use crate::cli::{Format, ReplayArgs};
use crate::cluster::Cluster;
use crate::error::PluginError;
use crate::output::{objects, replay_report};
use crate::resources;

pub async fn run(cluster: &Cluster, args: &ReplayArgs) -> Result<i32, PluginError> {
    let incident = resources::incident(cluster, &args.incident).await?;
    let found = resources::post_mortem(cluster, &incident).await?;
    if let Some(why) = &found.fallback_reason {
        eprintln!("note: {why}; replaying the bounded copy from the Incident's status");
    }
    let report = replay_offline(&found.record).map_err(|source| PluginError::Replay { name: args.incident.clone(), source })?;
    match args.output {
        Format::Table => print(&replay_report::render(&report, &found.location)),
        format => print(&objects::render(&report, format)?),
    }
    Ok(if args.fail_on_mismatch && !report.matches { 1 } else { 0 })
}
