//! Prometheus metrics. One registry per operator process, passed around in the context.

use std::sync::{Arc, Mutex};

use prometheus::{CounterVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::domain::conditions::reason;
use crate::domain::llm_usage::LlmCall;
use crate::domain::phase::{IncidentPhase, RemediationPhase};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounterVec,
    /// Changes of objects with nothing left to do, answered from the cache before they reach a
    /// controller's queue (see `controllers::settled`): not reconciles, but work done.
    pub settled: IntCounterVec,
    pub failures: IntCounterVec,
    pub incidents_by_phase: IntGaugeVec,
    /// Seconds from incident creation to diagnosis / remediation applied / resolved.
    pub durations: HistogramVec,
    pub diagnoses: IntCounterVec,
    /// Model calls by model and outcome (`success`, `error`), tokens by direction, estimated USD.
    pub llm_calls: IntCounterVec,
    pub llm_tokens: IntCounterVec,
    pub llm_cost_usd: CounterVec,
    /// Intake messages by source (`sqs`, `alertmanager`) and outcome (created, duplicate,
    /// ok_recorded, ok_without_incident, ignored, malformed, unmappable, dead_lettered).
    pub intake_messages: IntCounterVec,
    /// Alerts intake will never act on, by reason (`intake::rejection::Reason`): each one is
    /// dropped (or dead-lettered) on its own, without holding back the others.
    pub intake_rejected: IntCounterVec,
    /// Notifications by channel (`slack`, `webhook`) and outcome (`delivered`, `failed`).
    pub notifications: IntCounterVec,
    /// Remediations that ended, by action kind and outcome (see `remediation_outcome`): counted
    /// once, when the status write of the terminal transition succeeds.
    pub remediations: IntCounterVec,
    /// Where the by-phase gauge is read from: the leader's Incident cache. `None` on a standby
    /// (it exports no incident counts: only the leader's view is current).
    phase_source: Arc<Mutex<Option<PhaseSource>>>,
}

/// The phases of every Incident in a cache, read at scrape time.
pub type PhaseSource = Box<dyn Fn() -> Vec<IncidentPhase> + Send + Sync>;

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("salve".into()), None)?;
        let reconciles = IntCounterVec::new(Opts::new("reconciles_total", "Reconcile runs"), &["controller"])?;
        let settled = IntCounterVec::new(
            Opts::new("settled_total", "Changes of objects with nothing left to do, answered from the cache without a reconcile"),
            &["controller"],
        )?;
        registry.register(Box::new(settled.clone()))?;
        let failures = IntCounterVec::new(Opts::new("reconcile_failures_total", "Failed reconcile runs"), &["controller"])?;
        let incidents_by_phase = IntGaugeVec::new(Opts::new("incidents", "Incidents by phase"), &["phase"])?;
        let durations = HistogramVec::new(
            HistogramOpts::new("incident_stage_seconds", "Time from incident creation to a stage")
                .buckets(vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]),
            &["stage"],
        )?;
        let diagnoses = IntCounterVec::new(Opts::new("diagnoses_total", "Diagnoses by diagnoser model"), &["model"])?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(incidents_by_phase.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        registry.register(Box::new(diagnoses.clone()))?;
        let intake_messages =
            IntCounterVec::new(Opts::new("intake_messages_total", "Intake messages by source and outcome"), &["source", "outcome"])?;
        registry.register(Box::new(intake_messages.clone()))?;
        let intake_rejected =
            IntCounterVec::new(Opts::new("intake_rejected_total", "Alerts intake rejected for good, by reason"), &["reason"])?;
        registry.register(Box::new(intake_rejected.clone()))?;
        let notifications =
            IntCounterVec::new(Opts::new("notifications_total", "Notifications by channel and outcome"), &["channel", "outcome"])?;
        registry.register(Box::new(notifications.clone()))?;
        let remediations =
            IntCounterVec::new(Opts::new("remediations_total", "Remediations that ended, by action and outcome"), &["action", "outcome"])?;
        registry.register(Box::new(remediations.clone()))?;
        let llm_calls = IntCounterVec::new(Opts::new("llm_calls_total", "Model (LLM) calls for diagnosis"), &["model", "outcome"])?;
        let llm_tokens = IntCounterVec::new(Opts::new("llm_tokens_total", "Model tokens used"), &["model", "direction"])?;
        let llm_cost_usd =
            CounterVec::new(Opts::new("llm_estimated_cost_usd_total", "Estimated model cost in USD (configured prices)"), &["model"])?;
        registry.register(Box::new(llm_calls.clone()))?;
        registry.register(Box::new(llm_tokens.clone()))?;
        registry.register(Box::new(llm_cost_usd.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            settled,
            failures,
            incidents_by_phase,
            durations,
            diagnoses,
            llm_calls,
            llm_tokens,
            llm_cost_usd,
            intake_messages,
            intake_rejected,
            notifications,
            remediations,
            phase_source: Arc::default(),
        })
    }

    /// Sets (when this replica starts leading) or clears (when it stops) the gauge's source.
    pub fn set_phase_source(&self, source: Option<PhaseSource>) {
        *self.phase_source.lock().unwrap_or_else(|e| e.into_inner()) = source;
    }

    /// Recomputes `salve_incidents{phase}` from the source: deleted Incidents leave the cache,
    /// so they leave the gauge; every phase is exported, zero included.
    fn refresh_incident_gauge(&self) {
        self.incidents_by_phase.reset();
        let source = self.phase_source.lock().unwrap_or_else(|e| e.into_inner());
        let Some(phases) = source.as_ref().map(|f| f()) else { return };
        for p in IncidentPhase::ALL {
            self.incidents_by_phase.with_label_values(&[p.as_str()]).set(0);
        }
        for p in phases {
            self.incidents_by_phase.with_label_values(&[p.as_str()]).inc();
        }
    }

    pub fn record_llm_call(&self, model: &str, call: &LlmCall) {
        self.llm_calls.with_label_values(&[model, call.outcome.as_str()]).inc();
        self.llm_tokens.with_label_values(&[model, "input"]).inc_by(call.input_tokens);
        self.llm_tokens.with_label_values(&[model, "output"]).inc_by(call.output_tokens);
        self.llm_cost_usd.with_label_values(&[model]).inc_by(call.estimated_cost_usd.max(0.0));
    }

    /// One Remediation reached terminal phase `to` (with its Ready reason) and it is written.
    pub fn record_remediation(&self, action: &str, to: RemediationPhase, ready_reason: &str) {
        if let Some(outcome) = remediation_outcome(to, ready_reason) {
            self.remediations.with_label_values(&[action, outcome]).inc();
        }
    }

    pub fn render(&self) -> String {
        self.refresh_incident_gauge();
        let mut buf = String::new();
        let enc = prometheus::TextEncoder::new();
        if enc.encode_utf8(&self.registry.gather(), &mut buf).is_err() {
            buf.clear();
        }
        buf
    }
}

/// The `outcome` label of `salve_remediations_total` for a terminal phase: `succeeded`,
/// `rolled_back` (Failed after the change was undone, or a revert pull request proposed),
/// `failed` (Failed otherwise: the snapshot, the apply or the undo failed), `rejected` (a person,
/// or a pull request closed unmerged), `refused` (the policy refused it; the Incident escalates
/// to a person), `dry_run`. `None` for a phase that is not terminal.
pub fn remediation_outcome(to: RemediationPhase, ready_reason: &str) -> Option<&'static str> {
    Some(match to {
        RemediationPhase::Succeeded => "succeeded",
        RemediationPhase::Failed if [reason::ROLLED_BACK, reason::REVERT_PROPOSED].contains(&ready_reason) => "rolled_back",
        RemediationPhase::Failed => "failed",
        RemediationPhase::Rejected => "rejected",
        RemediationPhase::Refused => "refused",
        RemediationPhase::DryRun => "dry_run",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::llm_usage::CallOutcome;

    #[test]
    fn the_incident_gauge_follows_the_cache_and_a_standby_exports_none() {
        let m = Metrics::new().expect("metrics");
        let cache = Arc::new(Mutex::new(vec![IncidentPhase::Resolved, IncidentPhase::Resolved, IncidentPhase::Investigating]));
        let view = cache.clone();
        m.set_phase_source(Some(Box::new(move || view.lock().map(|v| v.clone()).unwrap_or_default())));
        let text = m.render();
        assert!(text.contains(r#"salve_incidents{phase="Resolved"} 2"#), "{text}");
        assert!(text.contains(r#"salve_incidents{phase="Escalated"} 0"#), "{text}");
        // Two Incidents deleted: they leave the cache and the gauge.
        cache.lock().expect("cache").retain(|p| *p != IncidentPhase::Resolved);
        assert!(m.render().contains(r#"salve_incidents{phase="Resolved"} 0"#));
        // Leadership lost: no stale numbers.
        m.set_phase_source(None);
        assert!(!m.render().contains("salve_incidents{"));
    }

    #[test]
    fn llm_calls_tokens_and_cost_are_exported_per_model() {
        let m = Metrics::new().expect("metrics");
        let call = LlmCall { outcome: CallOutcome::Success, input_tokens: 1200, output_tokens: 300, estimated_cost_usd: 0.0081 };
        m.record_llm_call("claude", &call);
        m.record_llm_call("claude", &LlmCall { outcome: CallOutcome::Error, input_tokens: 0, output_tokens: 0, estimated_cost_usd: 0.0 });
        let text = m.render();
        for line in [
            r#"salve_llm_calls_total{model="claude",outcome="success"} 1"#,
            r#"salve_llm_calls_total{model="claude",outcome="error"} 1"#,
            r#"salve_llm_tokens_total{direction="input",model="claude"} 1200"#,
            r#"salve_llm_tokens_total{direction="output",model="claude"} 300"#,
            r#"salve_llm_estimated_cost_usd_total{model="claude"} 0.0081"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn remediation_outcomes_name_how_each_terminal_phase_ended() {
        use RemediationPhase::*;
        assert_eq!(remediation_outcome(Succeeded, reason::VERIFIED), Some("succeeded"));
        assert_eq!(remediation_outcome(Failed, reason::ROLLED_BACK), Some("rolled_back"));
        assert_eq!(remediation_outcome(Failed, reason::REVERT_PROPOSED), Some("rolled_back"));
        assert_eq!(remediation_outcome(Failed, reason::UNDO_FAILED), Some("failed"));
        assert_eq!(remediation_outcome(Failed, reason::SNAPSHOT_FAILED), Some("failed"));
        assert_eq!(remediation_outcome(Rejected, reason::REJECTED), Some("rejected"));
        assert_eq!(remediation_outcome(Refused, reason::POLICY_REFUSED), Some("refused"));
        assert_eq!(remediation_outcome(DryRun, reason::DRY_RUN), Some("dry_run"));
        for open in [Pending, AwaitingApproval, Approved, Applying, AwaitingMerge, RollingOut, Verifying, RollingBack] {
            assert_eq!(remediation_outcome(open, ""), None, "{open:?} is not an outcome");
        }
        let m = Metrics::new().expect("metrics");
        m.record_remediation("SetConfigMapKey", Succeeded, reason::VERIFIED);
        m.record_remediation("SetConfigMapKey", Verifying, reason::APPLIED);
        let text = m.render();
        assert!(text.contains(r#"salve_remediations_total{action="SetConfigMapKey",outcome="succeeded"} 1"#), "{text}");
        assert_eq!(text.matches("salve_remediations_total{").count(), 1, "{text}");
    }
}
