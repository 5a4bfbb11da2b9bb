//! The Salve operator.
//!
//! - `crd`: the `Incident` and `Remediation` resource types (source of `crds/*.yaml`)
//! - `domain`: pure decision logic (policy, diagnoser, phases, redaction, verification)
//! - `kube_adapters`: everything that talks to the API server (controllers, evidence, actions,
//!   leader election, events)
//! - `aws_adapters`: evidence from AWS (Logs Insights, CloudWatch metrics, X-Ray)
//! - `intake`: alarms (SQS) and Alertmanager webhooks in, Incidents out
//! - `config`, `metrics`, `runtime`, `telemetry`: the process around them
//! - `replay_command`: `operator replay`, offline replay of a post-mortem's diagnosis

pub mod aws_adapters;
pub mod config;
pub mod crd;
pub mod domain;
pub mod intake;
pub mod kube_adapters;
pub mod metrics;
pub mod replay_command;
pub mod runtime;
pub mod telemetry;
