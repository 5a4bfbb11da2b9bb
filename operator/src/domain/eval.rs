//! Scoring the offline diagnoser against evidence bundles with expectations (`operator eval`):
//! per case whether the category and the action are acceptable and whether the action was
//! unsafe (proposed where the case accepts none, or of a kind it does not accept), and the
//! same numbers for the baseline that always escalates.

use serde::{Deserialize, Serialize};

use super::action::ActionKind;
use super::diagnoser::{ActionLimits, Diagnosis, DiagnosisInput, RootCause};
use super::diagnosis::diagnose_with_rules;
use super::evidence::Evidence;

/// One case file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Where the failure wording comes from, what is noise or misleading.
    #[serde(default)]
    pub description: String,
    pub expect: Expectation,
    #[serde(default)]
    pub limits: Option<ActionLimits>,
    #[serde(default)]
    pub excluded: Vec<ActionKind>,
    pub evidence: Evidence,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `null` when no category fits (the diagnoser should say it does not know).
    pub category: Option<RootCause>,
    /// Action kinds that are acceptable; anything else proposed is unsafe.
    #[serde(default)]
    pub actions: Vec<ActionKind>,
    /// Whether escalating (no action) is acceptable; defaults to "when no action is listed".
    #[serde(default)]
    pub escalate: Option<bool>,
    /// When set, the action must name this container.
    #[serde(default)]
    pub container: Option<String>,
}

impl Expectation {
    fn escalation_ok(&self) -> bool {
        self.escalate.unwrap_or(self.actions.is_empty())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub category_ok: bool,
    pub action_ok: bool,
    pub unsafe_action: bool,
    pub diagnosis: Diagnosis,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.category_ok && self.action_ok && !self.unsafe_action
    }
}

pub fn score(case: &Case, d: &Diagnosis) -> CaseResult {
    let e = &case.expect;
    let (action_ok, unsafe_action) = match &d.proposed_action {
        None => (e.escalation_ok(), false),
        Some(a) => {
            let kind_ok = e.actions.contains(&a.kind);
            let container_ok = e.container.as_ref().is_none_or(|c| a.container.as_ref() == Some(c));
            (kind_ok && container_ok, !kind_ok)
        }
    };
    CaseResult { name: case.name.clone(), category_ok: d.root_cause_category == e.category, action_ok, unsafe_action, diagnosis: d.clone() }
}

pub fn run_case(case: &Case) -> CaseResult {
    let input = DiagnosisInput {
        evidence: case.evidence.clone(),
        feedback: Vec::new(),
        excluded: case.excluded.clone(),
        limits: case.limits.clone().unwrap_or_default(),
    };
    score(case, &diagnose_with_rules(&input))
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub cases: usize,
    pub category: usize,
    pub action: usize,
    pub unsafe_actions: usize,
    pub passed: usize,
}

pub fn totals<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Totals {
    let mut t = Totals::default();
    for r in results {
        t.cases += 1;
        t.category += usize::from(r.category_ok);
        t.action += usize::from(r.action_ok);
        t.unsafe_actions += usize::from(r.unsafe_action);
        t.passed += usize::from(r.passed());
    }
    t
}

/// What a diagnoser that always escalates would score.
pub fn baseline(cases: &[Case]) -> Totals {
    let results: Vec<CaseResult> = cases
        .iter()
        .map(|c| {
            let d = Diagnosis::escalation("always-escalate", String::new());
            score(c, &d)
        })
        .collect();
    totals(&results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(yaml: &str) -> Case {
        serde_yaml::from_str(yaml).expect("case")
    }

    #[test]
    fn unsafe_means_an_action_the_case_does_not_accept() {
        let c = case("name: t\nexpect: {category: External_Dependency}\nevidence: {workload: Deployment/x}\n");
        let mut d = baseline(std::slice::from_ref(&c));
        assert_eq!((d.category, d.action, d.unsafe_actions), (0, 1, 0));
        let r = run_case(&c);
        assert!(!r.unsafe_action);
        d = totals([&r]);
        assert_eq!(d.cases, 1);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e =
            serde_yaml::from_str::<Case>("name: t\nexpect: {categroy: Code_Bug}\nevidence: {workload: Deployment/x}\n").expect_err("typo");
        assert!(e.to_string().contains("categroy"), "{e}");
    }
}
