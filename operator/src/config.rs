//! Operator configuration: every flag also reads an environment variable (12-factor, Helm).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::action::{ActionKind, Risk};
use crate::domain::policy::Policy;

#[derive(Parser, Debug)]
#[command(name = "operator", version, about = "Salve: turns alarms into verified, undoable fixes")]
pub struct Cli {
    /// Without a subcommand the operator runs, configured from the environment only.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The subcommand to run: `run` (from the environment) when none was given.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or_else(|| Command::Run(Box::new(RunArgs::defaults())))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator (the default). Outside a cluster it only dry-runs unless told otherwise.
    Run(Box<RunArgs>),
    /// Write the CRD YAML files into `crds/` and the chart's `charts/salve/crds/` (or --out).
    Crdgen(CrdgenArgs),
    /// Re-run a post-mortem's diagnosis offline with the rule-based diagnoser and compare it
    /// with the recorded one (prints JSON). Exit 0 when the file was read, whether or not the
    /// diagnoses match (unless --fail-on-mismatch); 2 when the file is unreadable or invalid.
    Replay(crate::replay_command::ReplayArgs),
    /// Score the offline diagnoser over a directory of evidence bundles with expectations
    /// (category, acceptable actions, or escalate). Exit 0 when every case passes, 1 when one
    /// fails, 2 when a case file is invalid.
    Eval(crate::eval_command::EvalArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CrdgenArgs {
    /// Directories to write into (repeat the flag, or comma-separate); run from the repository root.
    #[arg(long, env = "SALVE_CRD_DIRS", value_delimiter = ',', default_value = "crds,charts/salve/crds")]
    pub out: Vec<std::path::PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "SALVE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Identity in the leader Lease and in Events (the pod name in Kubernetes).
    #[arg(long, env = "POD_NAME", default_value = "salve-operator")]
    pub identity: String,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "SALVE_LEASE_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    #[arg(long, env = "SALVE_LEASE_NAME", default_value = "salve-operator-leader")]
    pub lease_name: String,
    /// Seconds a leader's lease is valid without renewal.
    #[arg(long, env = "SALVE_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,
    /// Log format: `json` (production) or `text`.
    #[arg(long, env = "SALVE_LOG_FORMAT", default_value = "json")]
    pub log_format: String,
    /// OTLP/HTTP traces endpoint (e.g. `http://otel-collector:4318/v1/traces`); unset = no traces.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Action kinds the policy allows (comma-separated).
    #[arg(
        long,
        env = "SALVE_ALLOWED_ACTIONS",
        value_delimiter = ',',
        default_value = "SetConfigMapKey,SetDeploymentEnv,SetDeploymentResources,Scale,RolloutRestart,Rollback"
    )]
    pub allowed_actions: Vec<String>,
    /// Namespaces where actions may run (comma-separated, `*` for all). None by default:
    /// nothing is changed in a namespace you did not name.
    #[arg(long, env = "SALVE_ALLOWED_NAMESPACES", value_delimiter = ',')]
    pub allowed_namespaces: Vec<String>,
    /// Label that opts a resource out (`<label>=true`).
    #[arg(long, env = "SALVE_PROTECTED_LABEL", default_value = "salve.dev/protected")]
    pub protected_label: String,
    /// Highest risk approved without a person: Low, Medium, High or None.
    #[arg(long, env = "SALVE_MAX_AUTO_APPROVE_RISK", default_value = "Low")]
    pub max_auto_approve_risk: String,
    /// Remediations that may start per hour.
    #[arg(long, env = "SALVE_MAX_REMEDIATIONS_PER_HOUR", default_value_t = 10)]
    pub max_per_hour: u32,
    /// Record the server-side dry-run result instead of applying. Default: off inside a
    /// cluster, ON outside one (a laptop's kubeconfig may point anywhere); `--dry-run=false`
    /// to really change things from outside.
    #[arg(long, env = "SALVE_DRY_RUN", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub dry_run: Option<bool>,
    #[arg(long, env = "SALVE_MAX_MEMORY", default_value = "2Gi")]
    pub max_memory: String,
    #[arg(long, env = "SALVE_MAX_REPLICAS", default_value_t = 10)]
    pub max_replicas: i32,
    /// Upper bound for CPU limits the operator may set (cores, e.g. `4` or `3500m`).
    #[arg(long, env = "SALVE_MAX_CPU", default_value = "4")]
    pub max_cpu: String,
    /// Upper bound for ephemeral-storage limits the operator may set.
    #[arg(long, env = "SALVE_MAX_EPHEMERAL_STORAGE", default_value = "10Gi")]
    pub max_ephemeral_storage: String,
    /// Verification window for new remediations, seconds.
    #[arg(long, env = "SALVE_VERIFY_WINDOW_SECONDS", default_value_t = 300)]
    pub verify_window_seconds: u32,
    /// Failed or rejected remediations before an incident escalates.
    #[arg(long, env = "SALVE_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Reconciles each controller runs at once (never two for the same object). Bounded so that
    /// catching up with thousands of objects after a restart does not hold them all in flight.
    #[arg(long, env = "SALVE_MAX_CONCURRENT_RECONCILES", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// How long a workload must stay settled (all replicas ready, no container restarted)
    /// after a change before its health counts as the fix, seconds.
    #[arg(long, env = "SALVE_VERIFY_STABILITY_SECONDS", default_value_t = 60)]
    pub verify_stability_seconds: u64,
    /// How often a verifying remediation re-checks its signal, milliseconds.
    #[arg(long, env = "SALVE_VERIFY_POLL_MS", default_value_t = 2000)]
    pub verify_poll_ms: u64,
    /// Bedrock model id for diagnosis (e.g. `anthropic.claude-3-5-sonnet-20240620-v1:0`); unset = offline rules only.
    #[arg(long, env = "SALVE_BEDROCK_MODEL_ID")]
    pub bedrock_model_id: Option<String>,
    /// Endpoint override for Bedrock Runtime (a local stand-in in tests); `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` also works.
    #[arg(long, env = "SALVE_BEDROCK_ENDPOINT_URL")]
    pub bedrock_endpoint_url: Option<String>,
    /// Timeout for one diagnosis (the whole investigation, retries included), milliseconds.
    #[arg(long, env = "SALVE_BEDROCK_TIMEOUT_MS", default_value_t = 30000)]
    pub bedrock_timeout_ms: u64,
    /// Model calls per diagnosis: 1 asks for the diagnosis at once; more let the model call
    /// read-only investigation tools first (the last call always forces the diagnosis).
    #[arg(long, env = "SALVE_BEDROCK_MAX_TURNS", default_value_t = 4)]
    pub bedrock_max_turns: u32,
    /// Input plus output tokens per investigation; once spent, the next call must diagnose.
    #[arg(long, env = "SALVE_BEDROCK_MAX_TOKENS", default_value_t = 60000)]
    pub bedrock_max_tokens: u64,
    /// Attempts per call (throttling and transient errors are retried with backoff).
    #[arg(long, env = "SALVE_BEDROCK_MAX_ATTEMPTS", default_value_t = 4)]
    pub bedrock_max_attempts: u32,
    #[arg(long, env = "SALVE_BEDROCK_INITIAL_BACKOFF_MS", default_value_t = 500)]
    pub bedrock_initial_backoff_ms: u64,
    /// Price per 1000 input tokens, USD, for the cost estimate in status.
    #[arg(long, env = "SALVE_BEDROCK_USD_PER_1K_INPUT", default_value_t = 0.003)]
    pub bedrock_usd_per_1k_input: f64,
    /// Price per 1000 output tokens, USD.
    #[arg(long, env = "SALVE_BEDROCK_USD_PER_1K_OUTPUT", default_value_t = 0.015)]
    pub bedrock_usd_per_1k_output: f64,
    #[command(flatten)]
    pub post_mortem_archive: crate::aws::post_mortem_s3::PostMortemArchiveArgs,
    #[command(flatten)]
    pub intake: crate::intake::config::IntakeArgs,
    #[command(flatten)]
    pub aws_evidence: crate::aws::settings::AwsEvidenceArgs,
    /// Pull-request remediation through GitHub.
    #[command(flatten)]
    pub github: crate::github::settings::GithubArgs,
    /// Notifications (Slack, signed webhook).
    #[command(flatten)]
    pub notify: crate::notify::settings::NotifyArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown action kind {0:?}")]
    UnknownAction(String),
    #[error("unknown risk {0:?} (Low, Medium, High or None)")]
    UnknownRisk(String),
}

impl RunArgs {
    /// `operator run` without flags: the defaults, and whatever the environment sets.
    pub fn defaults() -> Self {
        match Cli::parse_from(["operator", "run"]).command {
            Some(Command::Run(args)) => *args,
            _ => unreachable!("`operator run` parses as the run subcommand"),
        }
    }

    /// Dry-run unless told otherwise, when not running inside a cluster.
    pub fn dry_run(&self) -> bool {
        self.dry_run.unwrap_or_else(|| !running_in_cluster())
    }

    /// What the controllers read (not the whole command line).
    pub fn controller_settings(&self) -> crate::controllers::context::ControllerSettings {
        crate::controllers::context::ControllerSettings {
            max_attempts: self.max_attempts,
            max_concurrent_reconciles: self.max_concurrent_reconciles,
            verify_window_seconds: self.verify_window_seconds,
            verify_poll: self.verify_poll(),
            verify_stability: Duration::from_secs(self.verify_stability_seconds),
            model_id: self.bedrock_model_id.clone(),
            github_poll: self.github.poll(),
            github_retry: self.github.retry(),
            rollout_timeout_seconds: self.github.rollout_timeout_seconds,
        }
    }

    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let mut kinds = BTreeSet::new();
        for k in self.allowed_actions.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let kind: ActionKind =
                serde_json::from_value(serde_json::Value::String(k.to_string())).map_err(|_| ConfigError::UnknownAction(k.to_string()))?;
            kinds.insert(kind);
        }
        let max_auto_approve_risk = match self.max_auto_approve_risk.as_str() {
            "None" | "none" => None,
            "Low" => Some(Risk::Low),
            "Medium" => Some(Risk::Medium),
            "High" => Some(Risk::High),
            other => return Err(ConfigError::UnknownRisk(other.to_string())),
        };
        Ok(Policy {
            allowed_kinds: kinds,
            allowed_namespaces: self.allowed_namespaces.iter().map(|s| s.trim().to_string()).collect(),
            protected_label: self.protected_label.clone(),
            max_auto_approve_risk,
            max_per_hour: self.max_per_hour,
            dry_run: self.dry_run(),
            max_memory: self.max_memory.clone(),
            max_replicas: self.max_replicas,
            max_cpu: self.max_cpu.clone(),
            max_ephemeral_storage: self.max_ephemeral_storage.clone(),
            pull_requests: self.github.pull_request_policy(),
        })
    }

    pub fn bedrock_settings(&self) -> Option<crate::aws::bedrock::BedrockSettings> {
        let model_id = self.bedrock_model_id.as_deref().map(str::trim).filter(|m| !m.is_empty())?;
        Some(crate::aws::bedrock::BedrockSettings {
            model_id: model_id.to_string(),
            timeout: Duration::from_millis(self.bedrock_timeout_ms),
            usd_per_1k_input: self.bedrock_usd_per_1k_input,
            usd_per_1k_output: self.bedrock_usd_per_1k_output,
            budget: crate::domain::investigation::Budget { max_turns: self.bedrock_max_turns.max(1), max_tokens: self.bedrock_max_tokens },
        })
    }

    pub fn verify_poll(&self) -> Duration {
        Duration::from_millis(self.verify_poll_ms)
    }
}

/// Kubernetes sets this variable in every container it starts.
fn running_in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build_a_policy() {
        let p = RunArgs::defaults().policy().expect("policy");
        assert_eq!(p.max_auto_approve_risk, Some(Risk::Low));
        assert!(p.allowed_kinds.contains(&ActionKind::Rollback));
        assert!(!p.allowed_kinds.contains(&ActionKind::PullRequest));
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let subcommands: Vec<&clap::Command> = cmd.get_subcommands().collect();
        for c in std::iter::once(&cmd).chain(subcommands) {
            for a in c.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
                assert!(a.get_env().is_some(), "--{} has no env var", a.get_id());
            }
        }
    }

    #[test]
    fn run_takes_its_flags_after_the_subcommand_and_lists_them_in_help() {
        let cli = Cli::try_parse_from(["operator", "run", "--dry-run", "--allowed-namespaces", "shop,payments"]).expect("parses");
        let Some(Command::Run(args)) = cli.command else { panic!("run") };
        assert_eq!(args.dry_run, Some(true));
        assert_eq!(args.allowed_namespaces, ["shop", "payments"]);
        let cli = Cli::try_parse_from(["operator", "run", "--dry-run=false"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::Run(a)) if a.dry_run == Some(false)));
        use clap::CommandFactory;
        let help = Cli::command().find_subcommand_mut("run").expect("run").render_long_help().to_string();
        assert!(help.contains("--allowed-namespaces") && help.contains("--dry-run"), "{help}");
    }

    #[test]
    fn defaults_change_nothing_anywhere() {
        let p = RunArgs::defaults().policy().expect("policy");
        assert!(p.allowed_namespaces.is_empty(), "no namespace is allowed until one is named");
    }

    #[test]
    fn bad_values_are_reported() {
        let mut a = RunArgs::defaults();
        a.allowed_actions = vec!["DeleteEverything".into()];
        assert!(matches!(a.policy(), Err(ConfigError::UnknownAction(_))));
        let mut a = RunArgs::defaults();
        a.max_auto_approve_risk = "Extreme".into();
        assert!(matches!(a.policy(), Err(ConfigError::UnknownRisk(_))));
    }
}
