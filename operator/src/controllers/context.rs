//! What every reconcile needs, shared behind an `Arc`: clients, the policy, the diagnoser, the
//! optional integrations and the few settings the controllers read (not the whole command line).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::kube::recorder::Recorder;
use kube::Client;

use super::cache::RemediationCache;
use crate::domain::cloud_evidence::CloudEvidenceSource;
use crate::domain::diagnoser::{Diagnoser, Investigation};
use crate::domain::policy::Policy;
use crate::domain::post_mortem_store::PostMortemStore;
use crate::github::client::GithubClient;
use crate::kube::config_history::ConfigHistory;
use crate::kube::write_gate::WriteGate;
use crate::metrics::Metrics;

/// The settings the controllers read.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// Failed or rejected remediations before an incident escalates.
    pub max_attempts: u32,
    /// Reconciles a controller runs at once.
    pub max_concurrent_reconciles: u16,
    /// Verification window written into new Remediations.
    pub verify_window_seconds: u32,
    /// How often a verifying remediation re-checks its signal.
    pub verify_poll: Duration,
    /// How long a workload must stay settled after a change to count as fixed.
    pub verify_stability: Duration,
    /// The configured model, to label a failed model call in metrics.
    pub model_id: Option<String>,
    /// How often an open pull request is polled, and the back-off when GitHub is unavailable.
    pub github_poll: Duration,
    pub github_retry: Duration,
    /// How long a merged change may take to roll out.
    pub rollout_timeout_seconds: u64,
}

pub struct Context {
    pub client: Client,
    /// The one Recorder of this process; events carry the replica identity.
    pub recorder: Recorder,
    pub policy: Policy,
    pub diagnoser: Arc<dyn Diagnoser>,
    pub metrics: Metrics,
    pub history: ConfigHistory,
    pub settings: ControllerSettings,
    /// Archive of post-mortems (S3 with Object Lock); `None` = ConfigMap and status only.
    pub post_mortem_store: Option<Arc<dyn PostMortemStore>>,
    /// Evidence from AWS (logs, alarm metric, traces); `None` when not configured.
    pub cloud_evidence: Option<Arc<dyn CloudEvidenceSource>>,
    /// GitHub for PullRequest actions; `None` when not configured (they are then refused).
    pub github: Option<Arc<GithubClient>>,
    /// Diagnoses obtained but not yet recorded in status, by `uid/attempt`. If the status write
    /// fails, the next reconcile uses the answer it already paid for instead of asking again.
    pub unrecorded_diagnoses: Mutex<HashMap<String, Investigation>>,
    /// The controllers' (stripped) Remediations while they run: the policy counts from it
    /// instead of listing every Remediation, and terminal Incidents compare their post-mortem
    /// with it. Empty when no controller runs (then the policy lists, paged).
    pub remediation_cache: RemediationCache,
    /// Whether this replica may still write as the leader (see `kube::write_gate`).
    pub write_gate: WriteGate,
    /// The starts this leader decided, for an exact hourly limit (see `starts`).
    pub starts: super::starts::Starts,
}
