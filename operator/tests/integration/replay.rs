//! `operator replay` as a user runs it: the real binary on a post-mortem file produced by the
//! builder, then on files that are not post-mortems.

use std::process::Output;

use operator::crd::{Incident, IncidentPhase, IncidentSpec, IncidentStatus, TimelineEntry};
use operator::domain::diagnoser::DiagnosisInput;
use operator::domain::diagnosis::diagnose_with_rules;
use operator::domain::evidence::{ConfigChange, Evidence, PodEvidence};
use operator::domain::post_mortem::PostMortem;
use operator::domain::simulation::PromptInputs;
use serde_json::{Value, json};

fn replay(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_operator")).arg("replay").args(args).output().expect("operator runs")
}

/// A resolved config-error incident, as the controller records it.
fn post_mortem() -> PostMortem {
    let evidence = Evidence {
        workload: "Deployment/oms".into(),
        desired_replicas: 2,
        pods: vec![PodEvidence {
            name: "oms-1".into(),
            phase: "Running".into(),
            restarts: 5,
            waiting_reason: Some("CrashLoopBackOff".into()),
            ..Default::default()
        }],
        config_changes: vec![ConfigChange {
            config_map: "oms-config".into(),
            key: "POOL_SIZE".into(),
            previous: Some("10".into()),
            current: Some("0".into()),
            observed_at: "2026-01-01T00:00:00Z".into(),
            redacted: false,
        }],
        ..Default::default()
    };
    let input = DiagnosisInput { evidence: evidence.clone(), feedback: vec!["do not restart".into()], ..Default::default() };
    let spec: IncidentSpec = serde_json::from_value(json!({"service": "oms", "severity": "High",
        "source": {"kind": "Manual"}, "target": {"kind": "Deployment", "name": "oms"}}))
    .expect("spec");
    let mut inc = Incident::new("oms-5xx", spec);
    inc.metadata.namespace = Some("shop".into());
    let status = IncidentStatus {
        phase: IncidentPhase::Resolved,
        evidence: Some(Box::new(evidence)),
        diagnosis: Some(Box::new(diagnose_with_rules(&input))),
        diagnosis_inputs: Some(PromptInputs::from(&input)),
        timeline: vec![TimelineEntry { time: "2026-01-01T00:05:00Z".into(), phase: IncidentPhase::Resolved, message: "verified".into() }],
        ..Default::default()
    };
    operator::controllers::post_mortem::assemble(&inc, &status, &[], Some(5))
}

#[test]
fn replay_reproduces_the_recorded_category_and_action() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("postmortem.json");
    std::fs::write(&file, post_mortem().to_json()).expect("write");
    let out = replay(&["--file", file.to_str().expect("path")]);
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report on stdout");
    assert_eq!(report["incident"], "shop/oms-5xx");
    assert_eq!(report["category_matches"], true);
    assert_eq!(report["action_matches"], true);
    assert_eq!(report["matches"], true);
    assert_eq!(report["replayed"]["rootCauseCategory"], "Config_Error");
    assert_eq!(report["replayed"]["proposedAction"], report["recorded"]["proposedAction"]);
    assert_eq!(report["replayed"]["proposedAction"]["value"], "10", "restores the previous value");
}

#[test]
fn a_mismatch_is_reported_and_fails_only_when_asked() {
    let mut pm = post_mortem();
    if let Some(d) = pm.simulation_context.recorded_diagnosis.as_mut() {
        d.proposed_action = None;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("postmortem.json");
    std::fs::write(&file, pm.to_json()).expect("write");
    let path = file.to_str().expect("path");
    let out = replay(&["--file", path]);
    assert!(out.status.success(), "a mismatch alone does not change the exit code");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["action_matches"], false);
    assert_eq!(replay(&["--file", path, "--fail-on-mismatch"]).status.code(), Some(1));
}

#[test]
fn broken_or_missing_files_exit_non_zero_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        ("broken.json", "{\"schema_version\": \"salve.dev/post-mortem/v1\", ", "not valid JSON"),
        ("pod.json", "{\"kind\": \"Pod\"}", "not a Salve post-mortem"),
    ];
    for (name, body, message) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, body).expect("write");
        let out = replay(&["--file", file.to_str().expect("path")]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message) && err.contains(name), "{name}: {err}");
        assert!(out.stdout.is_empty(), "no report for {name}");
    }
    let out = replay(&["--file", dir.path().join("absent.json").to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
