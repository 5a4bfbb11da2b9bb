//! The operator's integration tests, compiled into ONE test binary (linking one binary per
//! file dominated CI time). Each module is one area; `support` holds the shared stand-ins.

mod support;

mod aws_evidence;
mod bedrock;
mod binary;
mod canaries;
mod crd_drift;
mod end_to_end;
mod eval;
mod events;
mod evidence;
mod examples;
mod github;
mod intake_alertmanager;
mod intake_sqs;
mod notifications;
mod otlp;
mod permanent_errors;
mod post_mortem;
mod post_mortem_s3;
mod pull_requests;
mod reconcile_steps;
mod replay;
mod scenarios;
mod status_first;
mod trust;
