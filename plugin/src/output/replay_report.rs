//! The replay report for people: what was recorded, what the rules say now, and whether they agree.

use std::fmt::Write;

use operator::domain::diagnoser::Diagnosis;
use operator::domain::replay::ReplayReport;

pub fn render(r: &ReplayReport, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Incident:   {}", r.incident);
    let _ = writeln!(out, "Replayed:   {source}, with the offline rules");
    let line = |d: &Diagnosis| {
        let cause = d.root_cause_category.map(|c| c.as_str()).unwrap_or("<unknown>");
        let action = d.proposed_action.as_ref().map(|a| a.describe()).unwrap_or_else(|| "<none>".into());
        format!("{cause}, {action} (model {}, confidence {:.0}%)", d.model, d.confidence * 100.0)
    };
    let _ = writeln!(out, "Recorded:   {}", r.recorded.as_ref().map(line).unwrap_or_else(|| "<none>".into()));
    let _ = writeln!(out, "Now:        {}", line(&r.replayed));
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let _ = writeln!(out, "Root cause matches: {}", yes(r.category_matches));
    let _ = writeln!(out, "Action matches:     {}", yes(r.action_matches));
    let _ = writeln!(out, "Prompt matches:     {}", yes(r.prompt_hash_matches));
    let _ = writeln!(out, "Verdict:    {}", if r.matches { "MATCH" } else { "MISMATCH" });
    if let Some(n) = &r.note {
        let _ = writeln!(out, "Note:       {n}");
    }
    out
}
