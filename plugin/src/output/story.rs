//! `kubectl salve describe`: an Incident told as a story, in kubectl describe's layout — where it
//! came from, what happened when, what the evidence showed, what was diagnosed (with the cited
//! evidence and the confidence), what it cost, each remediation with its approval and
//! verification, whether notifications get through, and where the post-mortem is.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use operator::crd::incident::{Evidence, Incident, SignalState, SourceKind};
use operator::crd::remediation::{ApprovalState, Remediation, RemediationPhase};
use operator::crd::{ConditionStatus, condition_type};
use operator::domain::diagnoser::Diagnosis;

use super::age;

const LABEL: usize = 18;

fn field(out: &mut String, indent: usize, label: &str, value: impl std::fmt::Display) {
    let pad = LABEL.saturating_sub(indent + label.len() + 1).max(1);
    let _ = writeln!(out, "{}{label}:{}{value}", " ".repeat(indent), " ".repeat(pad));
}

pub fn render(incident: &Incident, remediations: &[Remediation], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let name = incident.metadata.name.clone().unwrap_or_default();
    let namespace = incident.metadata.namespace.clone().unwrap_or_default();
    let status = incident.status.clone().unwrap_or_default();
    let spec = &incident.spec;
    field(&mut out, 0, "Name", &name);
    field(&mut out, 0, "Namespace", &namespace);
    field(&mut out, 0, "Service", format!("{} ({}/{})", spec.service, spec.target.kind, spec.target.name));
    field(&mut out, 0, "Severity", format!("{:?}", spec.severity));
    field(&mut out, 0, "Phase", status.phase.as_str());
    field(&mut out, 0, "Age", age::since(incident.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).as_deref(), now));
    field(&mut out, 0, "Source", source(incident));
    if let Some(reason) = spec.source.reason.as_deref() {
        field(&mut out, 2, "Reason", reason);
    }
    let signal = match spec.signal {
        Some(SignalState::Ok) => "OK (the alarm cleared)",
        Some(SignalState::Alarm) | None => "Alarm",
    };
    field(&mut out, 0, "Signal", signal);
    field(&mut out, 0, "Attempts", status.attempts);
    if let Some(c) = status.conditions.iter().find(|c| c.type_ == condition_type::NOTIFICATION_DELIVERED) {
        let text = match c.status {
            ConditionStatus::True => c.message.clone(),
            ConditionStatus::False => format!("NOT delivered ({} since {}): {}", c.reason, c.last_transition_time, c.message),
            ConditionStatus::Unknown => format!("{}: {}", c.reason, c.message),
        };
        field(&mut out, 0, "Notifications", text);
    }

    out.push_str("\nTimeline:\n");
    if status.timeline.is_empty() {
        out.push_str("  <none>\n");
    }
    for t in &status.timeline {
        let _ = writeln!(out, "  {}  {:<13}  {}", t.time, t.phase.as_str(), t.message);
    }

    match &status.evidence {
        Some(e) => evidence(&mut out, e),
        None => out.push_str("\nEvidence:           <not collected yet>\n"),
    }

    match &status.diagnosis {
        Some(d) => diagnosis(&mut out, d),
        None => out.push_str("\nDiagnosis:          <not diagnosed yet>\n"),
    }
    if let Some(u) = &status.llm_usage {
        out.push('\n');
        field(
            &mut out,
            0,
            "Model usage",
            format!(
                "{} call(s), {} input / {} output tokens, est. ${:.4} (all attempts)",
                u.calls, u.input_tokens, u.output_tokens, u.estimated_cost_usd
            ),
        );
    }
    if !status.feedback.is_empty() {
        out.push_str("\nReviewer feedback:\n");
        for f in &status.feedback {
            let _ = writeln!(out, "  - {f}");
        }
    }

    out.push_str("\nRemediations:\n");
    if remediations.is_empty() {
        out.push_str("  <none>\n");
    }
    for r in remediations {
        remediation(&mut out, r, &namespace);
    }

    if !status.conditions.is_empty() {
        out.push_str("\nConditions:\n");
        for c in &status.conditions {
            let _ = writeln!(out, "  {:<20} {:<7} {:<22} {}", c.type_, format!("{:?}", c.status), c.reason, c.message);
        }
    }

    out.push('\n');
    match (&status.post_mortem_ref, &status.post_mortem_archive) {
        (Some(cm), archive) => {
            field(
                &mut out,
                0,
                "Post-mortem",
                format!("ConfigMap {namespace}/{cm} (key postmortem.json): kubectl salve postmortem {name} -n {namespace}"),
            );
            if let Some(a) = archive {
                let version = a.version_id.as_deref().map(|v| format!(" version {v}")).unwrap_or_default();
                field(&mut out, 2, "Archive", format!("{}{version}", a.uri));
            }
            if let Some(score) = status.post_mortem.as_ref().and_then(|p| p.human_feedback_score) {
                field(&mut out, 2, "Score", format!("{score}/5"));
            } else {
                field(&mut out, 2, "Score", format!("<none>: kubectl salve score {name} 1..5 -n {namespace}"));
            }
        }
        (None, _) if status.phase.is_terminal() => field(&mut out, 0, "Post-mortem", "<being written>"),
        (None, _) => field(&mut out, 0, "Post-mortem", "<written when the incident is Resolved or Escalated>"),
    }
    out
}

fn source(incident: &Incident) -> String {
    let s = &incident.spec.source;
    let when = s.state_change_time.as_deref().map(|t| format!(" at {t}")).unwrap_or_default();
    match s.kind {
        SourceKind::Manual => "created by hand (kubectl)".to_string(),
        SourceKind::CloudWatchAlarm => {
            let region = s.region.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            let metric = s.metric.as_ref().map(|m| format!(", metric {}/{}", m.namespace, m.name)).unwrap_or_default();
            format!("CloudWatch alarm {}{region}{when}{metric}", s.alarm_name.as_deref().unwrap_or("<unnamed>"))
        }
        SourceKind::Alertmanager => {
            let fp = s.fingerprint.as_deref().map(|f| format!(" (fingerprint {f})")).unwrap_or_default();
            format!("Alertmanager alert {}{fp}{when}", s.alert_name.as_deref().unwrap_or("<unnamed>"))
        }
    }
}

fn evidence(out: &mut String, e: &Evidence) {
    let _ = writeln!(out, "\nEvidence ({}{}):", e.workload, if e.truncated { ", truncated to its size bound" } else { "" });
    field(out, 2, "Replicas", format!("{}/{} ready, {} unavailable", e.ready_replicas, e.desired_replicas, e.unavailable_replicas));
    for p in &e.pods {
        let mut line = format!("{} {} restarts={}", p.name, p.phase, p.restarts);
        if let Some(w) = &p.waiting_reason {
            let _ = write!(line, " waiting={w}");
        }
        if let Some(t) = &p.last_termination_reason {
            let _ = write!(line, " last-terminated={t}");
            if let Some(code) = p.last_exit_code {
                let _ = write!(line, " (exit {code})");
            }
        }
        field(out, 2, "Pod", line);
    }
    if !e.events.is_empty() {
        let reasons: Vec<String> = e.events.iter().take(5).map(|ev| format!("{} {} on {}", ev.type_, ev.reason, ev.object)).collect();
        field(out, 2, "Events", format!("{} ({}{})", e.events.len(), reasons.join("; "), if e.events.len() > 5 { "; ..." } else { "" }));
    }
    for r in e.rollouts.iter().take(3) {
        field(out, 2, "Rollout", format!("revision {} {} {}", r.revision, r.replica_set, r.images.join(",")));
    }
    for c in &e.config_changes {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "<absent>".into());
        field(
            out,
            2,
            "Config change",
            format!("ConfigMap {} key {}: {} -> {} at {}", c.config_map, c.key, show(&c.previous), show(&c.current), c.observed_at),
        );
    }
    if !e.logs.is_empty() {
        let lines: usize = e.logs.iter().map(|l| l.lines.len()).sum();
        field(out, 2, "Logs", format!("{lines} line(s) from {} container(s)", e.logs.len()));
    }
    if let Some(c) = &e.cloud {
        if let Some(l) = &c.logs {
            field(out, 2, "CloudWatch Logs", format!("{} line(s) from {}", l.lines.len(), l.log_group));
        }
        if let Some(m) = &c.metric {
            field(out, 2, "Alarm metric", format!("{}/{} {} ({} datapoints)", m.namespace, m.name, m.statistic, m.datapoints.len()));
        }
        if !c.traces.is_empty() {
            let failing = c.traces.iter().filter(|t| t.error || t.fault).count();
            field(out, 2, "X-Ray traces", format!("{} ({failing} with errors or faults)", c.traces.len()));
        }
        for n in &c.notes {
            field(out, 2, "Note", n);
        }
    }
}

fn diagnosis(out: &mut String, d: &Diagnosis) {
    out.push_str("\nDiagnosis:\n");
    let cause = d.root_cause_category.map(|c| c.as_str()).unwrap_or("<unknown>");
    field(out, 2, "Root cause", format!("{cause} (confidence {:.0}%)", d.confidence * 100.0));
    field(out, 2, "Summary", &d.summary);
    if !d.cited_evidence.is_empty() {
        out.push_str("  Cited evidence:\n");
        for c in &d.cited_evidence {
            let _ = writeln!(out, "    - {c}");
        }
    }
    let action = d.proposed_action.as_ref().map(|a| a.describe()).unwrap_or_else(|| "<none: escalate to a person>".into());
    field(out, 2, "Proposed action", action);
    let cost = d.estimated_cost_usd.map(|c| format!(", est. ${c:.4}")).unwrap_or_default();
    field(out, 2, "Model", format!("{} ({} input / {} output tokens{cost})", d.model, d.input_tokens, d.output_tokens));
    field(out, 2, "Prompt hash", &d.prompt_hash);
    if let Some(f) = &d.fallback_reason {
        field(out, 2, "Fell back to rules", f);
    }
}

fn remediation(out: &mut String, r: &Remediation, namespace: &str) {
    let name = r.metadata.name.clone().unwrap_or_default();
    let status = r.status.clone().unwrap_or_default();
    let _ = writeln!(out, "  {name}:");
    field(out, 4, "Action", format!("{} (risk {:?})", r.spec.action.describe(), r.spec.risk));
    if !r.spec.rationale.is_empty() {
        field(out, 4, "Rationale", &r.spec.rationale);
    }
    field(out, 4, "Phase", status.phase.as_str());
    let approval = match &r.spec.approval {
        None => "Pending".to_string(),
        Some(a) => {
            let by = a.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
            let why = a.feedback.as_deref().map(|f| format!(": {f:?}")).unwrap_or_default();
            format!("{:?}{by}{why}", a.state)
        }
    };
    field(out, 4, "Approval", approval);
    let undecided = r.spec.approval.as_ref().is_none_or(|a| a.state == ApprovalState::Pending);
    if status.phase == RemediationPhase::AwaitingApproval && undecided {
        field(out, 4, "Waiting for you", format!("kubectl salve approve {name} -n {namespace}"));
        field(out, 4, "", format!("kubectl salve reject {name} -n {namespace} --feedback '...'"));
    }
    if let Some(at) = &status.applied_at {
        field(out, 4, "Applied", at);
    }
    if let Some(p) = &status.applied_patch {
        field(out, 4, "Patch", p);
    }
    if let Some(url) = &status.pr_url {
        field(out, 4, "Pull request", format!("{url} ({})", status.pr_state.as_deref().unwrap_or("open")));
    }
    if let Some(url) = &status.revert_pr_url {
        field(out, 4, "Revert PR", url);
    }
    if let Some(d) = &status.dry_run_result {
        field(out, 4, "Dry run", d);
    }
    let verification = match &status.verification {
        None => "<not started>".to_string(),
        Some(v) => {
            let verdict = match v.passed {
                Some(true) => "passed",
                Some(false) => "failed",
                None => "in progress",
            };
            let msg = if v.message.is_empty() { String::new() } else { format!(": {}", v.message) };
            format!("{verdict} (window until {}){msg}", v.deadline)
        }
    };
    field(out, 4, "Verification", verification);
    if let Some(f) = &status.feedback {
        field(out, 4, "Review feedback", f);
    }
}
