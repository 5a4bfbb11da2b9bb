//! Pure decision logic: no Kubernetes client, no I/O, no clock reads. Everything here is a
//! function of its inputs, so it is unit tested on fixtures and replayable offline.

pub mod action;
pub mod cloud_evidence;
pub mod diagnoser;
pub mod evidence;
pub mod llm_usage;
pub mod model_prompt;
pub mod phase;
pub mod policy;
pub mod post_mortem;
pub mod post_mortem_store;
pub mod pull_request;
pub mod quantity;
pub mod redact;
pub mod replay;
pub mod signature;
pub mod simulation;
pub mod verify;
