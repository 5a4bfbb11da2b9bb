//! How results are written: kubectl-style tables and ages, objects as JSON or YAML, the
//! incident story, the post-mortem as Markdown, the replay report.

pub mod age;
pub mod objects;
pub mod post_mortem_markdown;
pub mod replay_report;
pub mod story;
pub mod table;
