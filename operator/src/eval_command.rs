//! `operator eval DIR`: runs the offline diagnoser over every case file (`*.yaml`, `*.yml`,
//! `*.json`) in DIR, prints one line per case, `category X/N, action Y/N, unsafe Z`, the
//! always-escalate baseline, and `N passed, M failed`.
//!
//! Exit codes: 0 every case passed; 1 a case failed; 2 the directory or a case file cannot be
//! read or is invalid (the message names the file and the field).

use std::path::{Path, PathBuf};

use crate::domain::eval::{Case, Totals, baseline, run_case, totals};

#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Directory of case files (e.g. tests/diagnosis).
    #[arg(env = "SALVE_EVAL_DIR")]
    pub dir: PathBuf,
    /// Print each diagnosis summary under its case.
    #[arg(long, env = "SALVE_EVAL_VERBOSE", default_value_t = false)]
    pub verbose: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: invalid case: {message}")]
    Invalid { path: String, message: String },
    #[error("{0}: no case files (*.yaml, *.yml, *.json)")]
    Empty(String),
}

pub const EXIT_FAILED: i32 = 1;
pub const EXIT_INVALID: i32 = 2;

pub fn load_cases(dir: &Path) -> Result<Vec<(String, Case)>, EvalError> {
    let read_err = |source| EvalError::Read { path: dir.display().to_string(), source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(EvalError::Empty(dir.display().to_string()));
    }
    let mut out = Vec::new();
    for f in files {
        let path = f.display().to_string();
        let text = std::fs::read_to_string(&f).map_err(|source| EvalError::Read { path: path.clone(), source })?;
        // YAML is a superset of JSON, so one parser reads both; its message names the field.
        let case: Case = serde_yaml::from_str(&text).map_err(|e| EvalError::Invalid { path: path.clone(), message: e.to_string() })?;
        out.push((path, case));
    }
    Ok(out)
}

fn line(t: &Totals) -> String {
    format!("category {}/{}, action {}/{}, unsafe {}", t.category, t.cases, t.action, t.cases, t.unsafe_actions)
}

pub fn run(args: &EvalArgs) -> i32 {
    let cases = match load_cases(&args.dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("operator eval: {e}");
            return EXIT_INVALID;
        }
    };
    let mut results = Vec::new();
    for (path, case) in &cases {
        let r = run_case(case);
        let d = &r.diagnosis;
        let got_cat = d.root_cause_category.map_or("none", |c| c.as_str());
        let want_cat = case.expect.category.map_or("none", |c| c.as_str());
        let got_action = d.proposed_action.as_ref().map_or("escalate".to_string(), |a| a.kind.to_string());
        let mut want: Vec<String> = case.expect.actions.iter().map(|k| k.to_string()).collect();
        if case.expect.escalate.unwrap_or(case.expect.actions.is_empty()) {
            want.push("escalate".into());
        }
        println!(
            "{} {}: category {got_cat} (want {want_cat}), action {got_action} (want {}){} [{path}]",
            if r.passed() { "PASS" } else { "FAIL" },
            case.name,
            want.join("|"),
            if r.unsafe_action { " UNSAFE" } else { "" },
        );
        if args.verbose || !r.passed() {
            println!("    {} (confidence {:.2})", d.summary, d.confidence);
        }
        results.push(r);
    }
    let t = totals(&results);
    let just_cases: Vec<Case> = cases.into_iter().map(|(_, c)| c).collect();
    println!("{}", line(&t));
    println!("baseline (always escalate): {}", line(&baseline(&just_cases)));
    println!("{} passed, {} failed", t.passed, t.cases - t.passed);
    if t.passed == t.cases { 0 } else { EXIT_FAILED }
}
