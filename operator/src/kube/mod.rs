//! Everything that reads or writes the Kubernetes API on the controllers' behalf: evidence
//! collection, applying and undoing actions, workload health, ConfigMap history, status
//! writes, Events and leader election.

pub mod actions;
pub mod claim;
pub mod config_history;
pub mod events;
pub mod evidence;
pub mod finalizer;
pub mod health;
pub mod leader;
pub mod policy_context;
pub mod recorder;
pub mod remediations;
pub mod restart;
pub mod status;
pub mod surroundings;
pub mod workload;
pub mod write_gate;
