//! The command line: kubectl's connection flags (`--context`, `-n`, `-A`) and one subcommand per
//! task. Every flag has an environment variable (`SALVE_*`), as in the operator.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-salve",
    bin_name = "kubectl salve",
    version,
    about = "Salve incidents from kubectl: list, describe, approve or reject remediations, score, post-mortems, replay",
    after_help = "Uses your kubeconfig (KUBECONFIG or ~/.kube/config) and its current context, like kubectl."
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true, env = "SALVE_CONTEXT")]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, env = "SALVE_NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Incidents with service, severity, phase, root cause, proposed action and age.
    #[command(visible_alias = "ls", visible_alias = "get")]
    List(ListArgs),
    /// The story of one incident: source, timeline, evidence, diagnosis, remediations, post-mortem.
    Describe(DescribeArgs),
    /// Approve a remediation that is awaiting approval (records who approved it).
    Approve(ApproveArgs),
    /// Reject a remediation that is awaiting approval; the feedback goes into the next diagnosis.
    Reject(RejectArgs),
    /// Take over a remediation's change yourself: Salve leaves it in place (no undo) and escalates.
    Abandon(AbandonArgs),
    /// Score the incident's handling from 1 (useless) to 5 (perfect); recorded in the post-mortem.
    Score(ScoreArgs),
    /// Print the incident's post-mortem (the full record from its ConfigMap).
    Postmortem(PostmortemArgs),
    /// Replay the incident's diagnosis offline with the rules and compare it with the recorded one.
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// List incidents in every namespace.
    #[arg(short = 'A', long, env = "SALVE_ALL_NAMESPACES")]
    pub all_namespaces: bool,
    /// After listing, watch for changes and print each changed incident.
    #[arg(short = 'w', long, env = "SALVE_WATCH")]
    pub watch: bool,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, env = "SALVE_OUTPUT")]
    pub output: Format,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    pub incident: String,
    /// `text` (the story), or the Incident and its Remediations as `json` / `yaml`.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, env = "SALVE_OUTPUT")]
    pub output: Format,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    pub remediation: String,
}

#[derive(Args, Debug)]
pub struct AbandonArgs {
    pub remediation: String,
}

#[derive(Args, Debug)]
pub struct RejectArgs {
    pub remediation: String,
    /// Why: what was wrong with the proposal. Required; the next diagnosis reads it.
    #[arg(long, env = "SALVE_FEEDBACK")]
    pub feedback: String,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    pub incident: String,
    /// 1 (useless) to 5 (perfect).
    #[arg(value_parser = clap::value_parser!(u8).range(1..=5))]
    pub score: u8,
}

#[derive(Args, Debug)]
pub struct PostmortemArgs {
    pub incident: String,
    #[arg(short = 'o', long, value_enum, default_value_t = PostmortemFormat::Markdown, env = "SALVE_OUTPUT")]
    pub output: PostmortemFormat,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    pub incident: String,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, env = "SALVE_OUTPUT")]
    pub output: Format,
    /// Exit 1 when the replayed root cause or action differ from the recorded ones.
    #[arg(long, env = "SALVE_REPLAY_FAIL_ON_MISMATCH")]
    pub fail_on_mismatch: bool,
}

/// kubectl's `-o`: a human table (`table`, also accepted as `wide` / `text`), or the objects.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    #[value(alias = "wide", alias = "text")]
    Table,
    Json,
    Yaml,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostmortemFormat {
    #[value(alias = "md")]
    Markdown,
    Json,
}
