//! What every reconcile needs, shared behind an `Arc`.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::Recorder;

use super::config_history::ConfigHistory;
use super::github::GithubClient;
use crate::config::RunArgs;
use crate::domain::cloud_evidence::CloudEvidenceSource;
use crate::domain::diagnoser::Diagnoser;
use crate::domain::policy::Policy;
use crate::domain::post_mortem_store::PostMortemStore;
use crate::metrics::Metrics;

pub struct Context {
    pub client: Client,
    /// The one Recorder of this process; events carry the replica identity.
    pub recorder: Recorder,
    pub policy: Policy,
    pub diagnoser: Arc<dyn Diagnoser>,
    pub metrics: Metrics,
    pub history: ConfigHistory,
    pub settings: RunArgs,
    /// Archive of post-mortems (S3 with Object Lock); `None` = ConfigMap and status only.
    pub post_mortem_store: Option<Arc<dyn PostMortemStore>>,
    /// Evidence from AWS (logs, alarm metric, traces); `None` when not configured.
    pub cloud_evidence: Option<Arc<dyn CloudEvidenceSource>>,
    /// GitHub for PullRequest actions; `None` when not configured (they are then refused).
    pub github: Option<Arc<GithubClient>>,
}
