//! The offline diagnoser: an evidence-weighing rule engine. `facts` extracts the structured
//! facts, `signals` recognises failure wording in text (data, never a decision), `rules` turns
//! facts into hypotheses with support, contradictions and bounded actions (`actions`), and
//! `weigh` picks a category, a confidence and — above a threshold — an action.

pub mod actions;
pub mod facts;
pub mod rules;
pub mod signals;
pub mod weigh;

use futures::future::BoxFuture;

use super::diagnoser::{DiagnoseError, Diagnoser, Diagnosis, DiagnosisInput, RULES_MODEL};
use super::signature::content_hash;
use facts::Facts;
use weigh::{ACTION_THRESHOLD, weigh};

/// Offline, deterministic diagnoser.
#[derive(Clone, Debug, Default)]
pub struct RuleBasedDiagnoser;

impl Diagnoser for RuleBasedDiagnoser {
    fn diagnose<'a>(&'a self, input: &'a DiagnosisInput) -> BoxFuture<'a, Result<Diagnosis, DiagnoseError>> {
        Box::pin(async move { Ok(diagnose_with_rules(input)) })
    }
}

/// Pure entry point, also used by post-mortem replay and `operator eval`. The diagnosis is
/// stored in the Incident's status and exported, so it passes the outbound gate (feedback
/// quoted in the summary is a person's free text).
pub fn diagnose_with_rules(input: &DiagnosisInput) -> Diagnosis {
    super::outbound::diagnosis(&rules_diagnosis(input))
}

fn rules_diagnosis(input: &DiagnosisInput) -> Diagnosis {
    let ev = &input.evidence;
    let facts = Facts::from(ev);
    let weighed = weigh(rules::all(&facts, ev, &input.limits));
    let feedback = if input.feedback.is_empty() { String::new() } else { format!(" Feedback considered: {}.", input.feedback.join(" | ")) };
    let excluded = if input.excluded.is_empty() {
        String::new()
    } else {
        let k: Vec<&str> = input.excluded.iter().map(|k| k.as_str()).collect();
        format!(" Not proposing again: {}.", k.join(", "))
    };
    let injections = if facts.injections > 0 {
        format!(" {} line(s) addressing the diagnoser were set aside as untrusted.", facts.injections)
    } else {
        String::new()
    };
    let prompt_hash = content_hash(&serde_json::to_string(input).unwrap_or_default());
    let mut d = Diagnosis::escalation(RULES_MODEL, prompt_hash);
    let Some(w) = weighed else {
        d.summary = format!(
            "No rule explains the evidence for {} ({} pod(s), {} ready of {} desired, {} event(s), {} stale); escalating to a person.{injections}{feedback}{excluded}",
            ev.workload,
            ev.pods.len(),
            ev.ready_replicas,
            ev.desired_replicas,
            ev.events.len(),
            facts.stale_events()
        );
        return d;
    };
    d.root_cause_category = Some(w.category);
    d.confidence = (w.confidence * 100.0).round() / 100.0;
    let lead = &w.hypotheses[0];
    for h in &w.hypotheses {
        for s in &h.supports {
            if !d.cited_evidence.contains(s) && d.cited_evidence.len() < 12 {
                d.cited_evidence.push(s.clone());
            }
        }
    }
    d.contradicting_evidence.extend(w.contradictions.iter().cloned());
    for (c, s, summary) in w.competitors.iter().take(3) {
        d.contradicting_evidence.push(format!("competing {} (support {s:.2}): {summary}", c.as_str()));
    }
    // The first action of the strongest hypothesis that carries one, skipping what people
    // rejected or what failed before; why there is none otherwise.
    let mut why_not: Vec<String> = Vec::new();
    if w.confidence >= ACTION_THRESHOLD {
        // Only a hypothesis strong on its own may act; weak ones only add support.
        'outer: for h in w.hypotheses.iter().filter(|h| h.strength >= ACTION_THRESHOLD) {
            for a in &h.actions {
                match a {
                    Ok(a) if input.excluded.contains(&a.kind) => why_not.push(format!("{} was rejected or failed before", a.kind)),
                    Ok(a) => {
                        d.proposed_action = Some(a.clone());
                        break 'outer;
                    }
                    Err(why) => why_not.push(why.clone()),
                }
            }
        }
    } else {
        why_not
            .push(format!("confidence {:.2} is below {ACTION_THRESHOLD}: the evidence supports more than one explanation", w.confidence));
    }
    let action = match &d.proposed_action {
        Some(a) => format!(" Proposed: {}.", a.describe()),
        None => format!(
            " No safe automatic action ({}); escalating.",
            why_not.first().map(String::as_str).unwrap_or("none of the rules implies one")
        ),
    };
    d.summary =
        format!("{}: {}.{action} Confidence {:.2}.{injections}{feedback}{excluded}", w.category.as_str(), lead.summary, d.confidence);
    d
}

#[cfg(test)]
mod tests;
