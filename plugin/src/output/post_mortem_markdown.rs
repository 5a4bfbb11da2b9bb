//! A post-mortem as Markdown, for a ticket or a wiki page: the same record as the JSON, in the
//! order a reader asks the questions.

use std::fmt::Write;

use operator::crd::incident::PostMortem;

pub fn render(pm: &PostMortem, location: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Post-mortem: {}/{}\n", pm.incident_namespace, pm.incident_name);
    let _ = writeln!(out, "| | |\n|---|---|");
    let row = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "| {k} | {} |", v.replace('|', "\\|").replace('\n', " "));
    };
    row(&mut out, "Service", &pm.service);
    row(&mut out, "Severity", &format!("{:?}", pm.severity));
    row(&mut out, "Outcome", pm.outcome.as_str());
    row(&mut out, "Opened", pm.created_at.as_deref().unwrap_or("-"));
    row(&mut out, "Closed", pm.closed_at.as_deref().unwrap_or("-"));
    row(&mut out, "Root cause", pm.root_cause_category.map(|c| c.as_str()).unwrap_or("unknown"));
    row(&mut out, "Signature", pm.incident_signature.as_deref().unwrap_or("-"));
    row(&mut out, "Human score", &pm.human_feedback_score.map(|s| format!("{s}/5")).unwrap_or_else(|| "not scored".into()));
    let u = &pm.llm_usage;
    row(
        &mut out,
        "Model usage",
        &format!("{} call(s), {} input / {} output tokens, est. ${:.4}", u.calls, u.input_tokens, u.output_tokens, u.estimated_cost_usd),
    );
    row(&mut out, "Record", location);

    if let Some(d) = &pm.simulation_context.recorded_diagnosis {
        let _ = writeln!(out, "\n## Diagnosis\n\n{}\n", d.summary);
        let _ = writeln!(out, "- Confidence: {:.0}%", d.confidence * 100.0);
        let _ = writeln!(out, "- Model: `{}` (prompt `{}`)", d.model, d.prompt_hash);
        if let Some(f) = &d.fallback_reason {
            let _ = writeln!(out, "- Fell back to the offline rules: {f}");
        }
        for c in &d.cited_evidence {
            let _ = writeln!(out, "- Evidence: {c}");
        }
    }

    let _ = writeln!(out, "\n## Remediations\n");
    if pm.remediation_action.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for r in &pm.remediation_action {
        let _ = writeln!(out, "### {}\n", r.remediation);
        let _ = writeln!(out, "- Action: {} (risk {:?})", r.description, r.risk);
        let approval = r.approval.map(|a| format!("{a:?}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "- Approval: {approval}{}", r.approved_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default());
        let _ = writeln!(out, "- Outcome: {}", r.outcome.as_str());
        if let Some(v) = &r.verification {
            let _ = writeln!(out, "- Verification: {v}");
        }
        if let Some(url) = &r.pr_url {
            let _ = writeln!(out, "- Pull request: {url}");
        }
        if let Some(p) = &r.applied_patch {
            let _ = writeln!(
                out,
                "- Applied{}:\n\n  ```json\n  {p}\n  ```",
                r.applied_at.as_deref().map(|a| format!(" at {a}")).unwrap_or_default()
            );
        }
        if let Some(p) = &r.undo_patch {
            let _ = writeln!(out, "- Undo:\n\n  ```json\n  {p}\n  ```");
        }
        out.push('\n');
    }

    let ctx = &pm.simulation_context;
    if !ctx.feedback.is_empty() {
        let _ = writeln!(out, "## Reviewer feedback\n");
        for f in &ctx.feedback {
            let _ = writeln!(out, "- {f}");
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Timeline\n");
    for t in &pm.timeline {
        let _ = writeln!(out, "- `{}` **{}**: {}", t.time, t.phase.as_str(), t.message);
    }
    if !pm.truncated.is_empty() {
        let _ = writeln!(out, "\n_This copy was trimmed to its size bound: {}._", pm.truncated.join(", "));
    }
    out
}
