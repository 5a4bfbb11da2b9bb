//! The two reconcilers and what they share: the Incident controller drives an incident from
//! detection to resolution, the Remediation controller applies, verifies and undoes one fix.

pub mod cache;
pub mod cached;
pub mod cached_incident;
pub mod cached_remediation;
pub mod context;
pub mod incident;
pub mod post_mortem;
pub mod remediation;
pub mod retry;
pub mod settled;
pub mod stalled;
pub mod starts;
