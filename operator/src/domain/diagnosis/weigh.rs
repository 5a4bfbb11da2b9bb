//! Weighing: every hypothesis counts. Support for one category combines (noisy-or: independent
//! evidence adds up, never past 1); the winner's confidence is lowered by the strongest
//! competing category; below the thresholds the diagnosis names no category, or no action.

use std::collections::BTreeMap;

use super::rules::Hypothesis;
use crate::domain::diagnoser::RootCause;

/// Below this combined support no category is named.
pub const CATEGORY_THRESHOLD: f64 = 0.3;
/// Below this confidence nothing is proposed: a person decides.
pub const ACTION_THRESHOLD: f64 = 0.5;

#[derive(Clone, Debug)]
pub struct Weighed {
    pub category: RootCause,
    pub support: f64,
    pub confidence: f64,
    /// The winner's hypotheses, strongest first.
    pub hypotheses: Vec<Hypothesis>,
    /// Other categories with their combined support, strongest first.
    pub competitors: Vec<(RootCause, f64, String)>,
    /// What any hypothesis found against itself (a rollout that changed only annotations...).
    pub contradictions: Vec<String>,
}

pub fn weigh(hypotheses: Vec<Hypothesis>) -> Option<Weighed> {
    let contradictions: Vec<String> = hypotheses.iter().flat_map(|h| h.contradicts.iter().cloned()).collect();
    let mut by: BTreeMap<&'static str, (RootCause, Vec<Hypothesis>)> = BTreeMap::new();
    for h in hypotheses {
        by.entry(h.category.as_str()).or_insert_with(|| (h.category, Vec::new())).1.push(h);
    }
    let mut scored: Vec<(RootCause, f64, Vec<Hypothesis>)> = by
        .into_values()
        .map(|(c, mut hs)| {
            hs.sort_by(|a, b| b.strength.total_cmp(&a.strength));
            let support = 1.0 - hs.iter().map(|h| 1.0 - h.strength.clamp(0.0, 1.0)).product::<f64>();
            (c, support, hs)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.as_str().cmp(b.0.as_str())));
    let mut it = scored.into_iter();
    let (category, support, hypotheses) = it.next()?;
    if support < CATEGORY_THRESHOLD {
        return None;
    }
    let competitors: Vec<(RootCause, f64, String)> =
        it.map(|(c, s, hs)| (c, s, hs.first().map(|h| h.summary.clone()).unwrap_or_default())).collect();
    let second = competitors.first().map_or(0.0, |c| c.1);
    let confidence = (support - 0.5 * second).clamp(0.0, 1.0);
    Some(Weighed { category, support, confidence, hypotheses, competitors, contradictions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(category: RootCause, strength: f64) -> Hypothesis {
        Hypothesis { rule: "t", category, strength, summary: String::new(), supports: vec![], contradicts: vec![], actions: vec![] }
    }

    #[test]
    fn support_adds_up_and_competition_lowers_confidence() {
        let w = weigh(vec![h(RootCause::Config_Error, 0.6), h(RootCause::Config_Error, 0.5)]).expect("winner");
        assert!((w.support - 0.8).abs() < 1e-9);
        assert!((w.confidence - 0.8).abs() < 1e-9);
        let w = weigh(vec![h(RootCause::Config_Error, 0.8), h(RootCause::External_Dependency, 0.6)]).expect("winner");
        assert_eq!(w.category, RootCause::Config_Error);
        assert!((w.confidence - 0.5).abs() < 1e-9);
        assert!(weigh(vec![h(RootCause::Code_Bug, 0.1)]).is_none());
    }
}
