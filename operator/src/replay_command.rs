//! `operator replay --file postmortem.json`: re-runs a post-mortem's diagnosis offline with the
//! rule-based diagnoser and prints the replayed diagnosis next to the recorded one as JSON.
//!
//! Exit codes: 0 the file was read and replayed (a mismatch is reported in the JSON, not in the
//! exit code, because a model's answer may legitimately differ from the rules'); 1 with
//! `--fail-on-mismatch` when category or proposed action differ; 2 when the file cannot be read
//! or is not a post-mortem.

use std::path::PathBuf;

use crate::domain::replay::{ReplayError, parse_post_mortem, replay_offline};

#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The post-mortem JSON: from the ConfigMap `<incident>-postmortem`, the S3 object, or
    /// `kubectl get incident <name> -o jsonpath='{.status.postMortem}'` (a whole ConfigMap or
    /// Incident as JSON works too). `-` reads standard input.
    #[arg(long, env = "SALVE_REPLAY_FILE")]
    pub file: PathBuf,
    /// Exit 1 when the replayed category or proposed action differ from the recorded ones.
    #[arg(long, env = "SALVE_REPLAY_FAIL_ON_MISMATCH", default_value_t = false)]
    pub fail_on_mismatch: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayCommandError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Invalid { path: String, source: ReplayError },
}

pub const EXIT_MISMATCH: i32 = 1;
pub const EXIT_INVALID: i32 = 2;

/// Runs the command, printing the report to stdout and errors to stderr; returns the exit code.
pub fn run(args: &ReplayArgs) -> i32 {
    match replay_file(args) {
        Ok((json, matches)) => {
            println!("{json}");
            if args.fail_on_mismatch && !matches { EXIT_MISMATCH } else { 0 }
        }
        Err(e) => {
            eprintln!("operator replay: {e}");
            EXIT_INVALID
        }
    }
}

fn replay_file(args: &ReplayArgs) -> Result<(String, bool), ReplayCommandError> {
    let path = args.file.display().to_string();
    let text = if path == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(&args.file) }
        .map_err(|source| ReplayCommandError::Read { path: path.clone(), source })?;
    let invalid = |source| ReplayCommandError::Invalid { path: path.clone(), source };
    let pm = parse_post_mortem(&text).map_err(invalid)?;
    let report = replay_offline(&pm).map_err(invalid)?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    Ok((json, report.matches))
}
