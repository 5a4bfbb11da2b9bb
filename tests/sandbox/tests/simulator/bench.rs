//! `salve-sandbox bench`, small: both controllers start from their own binaries, catch up with
//! the seeded Incidents, and every figure the benchmark promises comes out measured.

use serde_json::Value;

#[tokio::test]
async fn a_small_bench_measures_every_figure_for_the_operator_and_the_baseline() {
    let exe = salve_sandbox::executable::sandbox_executable().expect("salve-sandbox");
    let dir = tempfile::tempdir().expect("tmp");
    let out = tokio::process::Command::new(exe)
        .args(["bench", "--incidents", "20", "--json", "--workdir"])
        .arg(dir.path())
        .output()
        .await
        .expect("the bench runs");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let line: Value = serde_json::from_slice(out.stdout.trim_ascii()).expect("one JSON line");
    let measured = |v: &Value| v.as_f64().is_some_and(|x| x > 0.0);
    for key in ["operator_rss_mib", "alarm_to_incident_p50_ms", "alarm_to_incident_p99_ms", "diagnose_p50_ms", "diagnose_p99_ms"] {
        assert!(measured(&line[key]), "{key} not measured: {line}");
    }
    for key in ["rss_mib", "alarm_to_incident_p99_ms", "diagnose_p99_ms"] {
        assert!(measured(&line["baseline"][key]), "baseline {key} not measured: {line}");
    }
    // Both caught up (rounded to whole reconciles per second, so a slow start may read 0).
    assert!(line["reconciles_per_second"].is_number() && line["baseline"]["reconciles_per_second"].is_number(), "{line}");
    assert!(line["ratios"]["rss"].is_number(), "{line}");
    assert!(line["watch_streams"].as_u64().is_some_and(|w| w >= 2), "the operator watches its resources: {line}");
    // The OOM-killed workload's Incidents get a proposal, so the stage includes the policy.
    assert!(line["diagnose_with_policy"].as_u64().is_some_and(|n| n > 0), "no diagnosis reached the policy: {line}");
    // With an emulator (tests/run.sh starts moto), alarms also travel SNS -> SQS, to the
    // operator and to the bare consumer.
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        assert!(measured(&line["alarm_to_incident_sqs_p99_ms"]), "SQS path not measured: {line}");
        assert!(measured(&line["baseline"]["alarm_to_incident_sqs_p99_ms"]), "bare consumer not measured: {line}");
    }
}
