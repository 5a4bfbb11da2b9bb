//! Pure decision logic: no Kubernetes client, no I/O, no clock reads. Everything here is a
//! function of its inputs, so it is unit tested on fixtures and replayable offline.

pub mod action;
pub mod diagnoser;
pub mod evidence;
pub mod model_prompt;
pub mod phase;
pub mod policy;
pub mod pull_request;
pub mod quantity;
pub mod redact;
pub mod signature;
pub mod verify;
