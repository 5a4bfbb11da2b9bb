//! The Salve operator. Folders say what their files talk to:
//!
//! - `crd`: the `Incident` and `Remediation` resource types (source of `crds/*.yaml`)
//! - `domain`: pure decisions and value types (policy, diagnoser, phases, next steps, approval,
//!   redaction, verification, post-mortem records); imports nothing from the other folders
//! - `controllers`: the Incident and Remediation reconcilers and their shared context
//! - `kube`: the Kubernetes API on the controllers' behalf (evidence, actions, health, ConfigMap
//!   history, status, Events, leader election)
//! - `aws`: Bedrock, S3 post-mortem archive, Logs Insights, CloudWatch metrics, X-Ray
//! - `github`: the GitHub client and its settings (pull-request remediation)
//! - `intake`: alarms (SQS) and Alertmanager webhooks in, Incidents out
//! - `notify`: Slack and signed webhooks when an approval waits or an incident ends
//! - `config`, `memory`, `metrics`, `runtime`, `telemetry`: the process around them
//! - `replay_command`: `operator replay`, offline replay of a post-mortem's diagnosis
//! - `eval_command`: `operator eval`, the offline diagnoser scored over a catalog of cases

pub mod aws;
pub mod config;
pub mod controllers;
pub mod crd;
pub mod domain;
pub mod eval_command;
pub mod github;
pub mod intake;
pub mod kube;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod replay_command;
pub mod runtime;
pub mod telemetry;
