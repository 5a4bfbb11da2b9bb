//! Pure decision logic and value types: no Kubernetes client, no I/O, no clock reads (except
//! `time::now_rfc3339`, which only the adapters call). Everything here is a
//! function of its inputs, so it is unit tested on fixtures and replayable offline.

pub mod action;
pub mod applied_state;
pub mod approval;
pub mod blast_radius;
pub mod cloud_evidence;
pub mod conditions;
pub mod config_visibility;
pub mod diagnoser;
pub mod diagnosis;
pub mod eval;
pub mod evidence;
pub mod incident_steps;
pub mod investigation;
pub mod llm_usage;
pub mod model_prompt;
pub mod names;
pub mod outbound;
pub mod phase;
pub mod pod_template;
pub mod policy;
pub mod post_mortem;
pub mod post_mortem_store;
pub mod pull_request;
pub mod quantity;
pub mod redact;
pub mod replay;
pub mod signature;
pub mod simulation;
pub mod source;
pub mod time;
pub mod timeline;
pub mod undo;
pub mod verify;
