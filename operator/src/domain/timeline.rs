//! One line of an incident's story: when it entered a phase and why.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::phase::IncidentPhase;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub time: String,
    pub phase: IncidentPhase,
    pub message: String,
}
