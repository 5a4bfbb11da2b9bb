//! `operator eval` through the real binary: the public catalog under tests/diagnosis scores at
//! least 90% on category with no unsafe action, and invalid cases are clear errors.

use std::process::Output;

fn eval(dir: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_operator")).arg("eval").arg(dir).output().expect("operator runs")
}

/// `category X/N, action Y/N, unsafe Z` from the report.
fn numbers(stdout: &str) -> (usize, usize, usize, usize) {
    let line = stdout.lines().find(|l| l.starts_with("category ")).expect("summary line");
    let nums: Vec<usize> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
    (nums[0], nums[1], nums[2], nums[4])
}

#[test]
fn the_public_catalog_scores_at_least_ninety_percent_with_nothing_unsafe() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/diagnosis");
    let out = eval(dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (category, cases, action, unsafe_actions) = numbers(&stdout);
    assert!(cases >= 40, "the catalog has at least 40 cases: {stdout}");
    assert!(category * 10 >= cases * 9, "category {category}/{cases}:\n{stdout}");
    assert_eq!(unsafe_actions, 0, "no unsafe action:\n{stdout}");
    assert!(action * 10 >= cases * 9, "action {action}/{cases}:\n{stdout}");
    assert!(stdout.contains("baseline (always escalate): category "), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with("failed") && last.contains("passed"), "{last}");
    assert_eq!(out.status.success(), last.ends_with(" 0 failed"), "exit code follows the failures: {last}");
}

#[test]
fn a_failing_case_exits_one_and_an_invalid_case_names_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An OOM kill expected to be called a code bug: the diagnoser disagrees, the case fails.
    std::fs::write(
        dir.path().join("wrong.yaml"),
        "name: wrong expectation\nexpect: {category: Code_Bug}\nevidence:\n  workload: Deployment/oms\n  containers: [{name: oms, memoryLimit: 256Mi}]\n  pods: [{name: oms-1, phase: Running, ready: false, restarts: 3, lastTerminationReason: OOMKilled}]\n",
    )
    .expect("write");
    let out = eval(&dir.path().display().to_string());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL wrong expectation") && stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");

    std::fs::write(
        dir.path().join("typo.yaml"),
        "name: typo\nexpect: {category: Code_Bug, acions: [Rollback]}\nevidence: {workload: Deployment/oms}\n",
    )
    .expect("write");
    let out = eval(&dir.path().display().to_string());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("typo.yaml") && stderr.contains("acions"), "{stderr}");

    let out = eval("/nonexistent/salve-cases");
    assert_eq!(out.status.code(), Some(2));
}
