//! GitHub, for PullRequest remediations: the REST client (octocrab) and its settings.

pub mod client;
pub mod settings;
