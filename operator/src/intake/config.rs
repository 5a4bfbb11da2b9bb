//! Intake settings (flattened into `RunArgs`). Every flag has an environment variable.

use std::fmt;
use std::str::FromStr;

use clap::Args;

use super::workload::{WorkloadMapError, WorkloadResolver, parse_severity};

#[derive(Args, Debug, Clone)]
pub struct IntakeArgs {
    /// SQS queue (URL, or name resolved with GetQueueUrl) receiving CloudWatch alarm
    /// notifications (SNS, raw or enveloped) and EventBridge alarm state changes; unset = no SQS intake.
    #[arg(long = "intake-sqs-queue", env = "SALVE_INTAKE_SQS_QUEUE")]
    pub sqs_queue: Option<String>,
    /// Dead-letter queue URL for malformed or unmappable messages; unset = leave them to the
    /// queue's own redrive policy.
    #[arg(long = "intake-sqs-dlq-url", env = "SALVE_INTAKE_SQS_DLQ_URL")]
    pub sqs_dlq_url: Option<String>,
    /// Long-poll wait, seconds (0-20).
    #[arg(long = "intake-sqs-wait-seconds", env = "SALVE_INTAKE_SQS_WAIT_SECONDS", default_value_t = 20)]
    pub sqs_wait_seconds: i32,
    /// Alarm/alert name -> workload: `oms-5xx=shop/oms:Critical,ims-*=shop/ims` (exact name, or prefix with `*`).
    #[arg(long = "alarm-workloads", env = "SALVE_ALARM_WORKLOADS", default_value = "")]
    pub alarm_workloads: String,
    /// Namespace for alarms whose dimensions name a deployment but no namespace; unset = unmappable.
    #[arg(long = "intake-default-namespace", env = "SALVE_INTAKE_DEFAULT_NAMESPACE")]
    pub default_namespace: Option<String>,
    /// Severity when neither the map nor the signal sets one: Critical, High, Medium or Low.
    #[arg(long = "intake-default-severity", env = "SALVE_INTAKE_DEFAULT_SEVERITY", default_value = "High")]
    pub default_severity: String,
    /// Bearer token Alertmanager presents on `POST /intake/alertmanager`; unset = the route answers 503.
    #[arg(long = "alertmanager-token", env = "SALVE_ALERTMANAGER_TOKEN", hide_env_values = true)]
    pub alertmanager_token: Option<SecretToken>,
}

/// A token that never shows in `Debug` output (the whole `RunArgs` may be logged).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(pub String);

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl FromStr for SecretToken {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.trim().to_string()))
    }
}

impl IntakeArgs {
    pub fn resolver(&self) -> Result<WorkloadResolver, WorkloadMapError> {
        WorkloadResolver::new(&self.alarm_workloads, self.default_namespace.clone(), parse_severity(&self.default_severity)?)
    }

    /// The configured token, if it is not blank.
    pub fn token(&self) -> Option<&str> {
        self.alertmanager_token.as_ref().map(|t| t.0.as_str()).filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The intake flags alone, with their defaults.
    #[derive(Parser)]
    struct Only {
        #[command(flatten)]
        intake: IntakeArgs,
    }

    fn defaults() -> IntakeArgs {
        Only::parse_from(["intake"]).intake
    }

    #[test]
    fn the_token_is_never_in_debug_output() {
        let mut a = defaults();
        a.alertmanager_token = Some(SecretToken("s3cr3t-value".into()));
        assert!(!format!("{a:?}").contains("s3cr3t-value"));
        assert_eq!(a.token(), Some("s3cr3t-value"));
    }

    #[test]
    fn defaults_build_a_resolver_and_bad_severity_is_reported() {
        let mut a = defaults();
        assert!(a.resolver().is_ok());
        a.default_severity = "urgent".into();
        assert!(a.resolver().is_err());
    }
}
