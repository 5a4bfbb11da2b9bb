//! One file per subcommand. Each returns the process exit code on success.

pub mod abandon;
pub mod decide;
pub mod describe;
pub mod list;
pub mod postmortem;
pub mod replay;
pub mod score;

use crate::cli::{Cli, Command};
use crate::cluster::Cluster;
use crate::error::PluginError;

pub async fn run(cli: Cli) -> Result<i32, PluginError> {
    let cluster = Cluster::connect(&cli.connection).await?;
    match cli.command {
        Command::List(a) => list::run(&cluster, &a).await,
        Command::Describe(a) => describe::run(&cluster, &a).await,
        Command::Approve(a) => decide::run(&cluster, &a.remediation, decide::Decision::Approve).await,
        Command::Reject(a) => decide::run(&cluster, &a.remediation, decide::Decision::Reject { feedback: a.feedback }).await,
        Command::Abandon(a) => abandon::run(&cluster, &a.remediation).await,
        Command::Score(a) => score::run(&cluster, &a).await,
        Command::Postmortem(a) => postmortem::run(&cluster, &a).await,
        Command::Replay(a) => replay::run(&cluster, &a).await,
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}
