//! AWS evidence against real AWS wire protocols: CloudWatch Logs Insights and X-Ray on moto,
//! CloudWatch GetMetricData on ministack (moto cannot speak rpc-v2-cbor), both started by
//! `tests/moto.sh`. The controller test runs the real Incident controller against the fake API
//! server (a TEST STAND-IN). Outcomes are asserted, never timings.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::*;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use operator::aws::cloud_evidence::AwsCloudEvidence;
use operator::aws::metric_data::MetricData;
use operator::aws::settings::AwsEvidenceArgs;
use operator::config::RunArgs;
use operator::crd::Incident;
use operator::domain::cloud_evidence::{CloudEvidenceRequest, CloudEvidenceSource, MetricRef};
use operator::domain::evidence::Evidence;
use operator::domain::redact::{Bounds, Kind, redact_and_bound};
use serde_json::json;

const EMAIL: &str = "jane.doe@example.com";
const BEARER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const CARD: &str = "4111 1111 1111 1111";
const SECRETS: [&str; 4] = [EMAIL, BEARER, AWS_KEY_ID, CARD];

fn aws_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: these tests need moto; run tests/run.sh (or `source tests/moto.sh && start_moto` first)")
    })
}

async fn sdk() -> aws_config::SdkConfig {
    aws_endpoint();
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A name no other test (or earlier run against the same emulator) uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{prefix}-{:x}", nanos & 0xff_ffff_ffff)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn trace_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("1-{:08x}-{:024x}", now_secs(), nanos & 0xffff_ffff_ffff_ffff_ffff_ffff)
}

fn settings(template: &str, cluster: &str) -> AwsEvidenceArgs {
    let mut s = RunArgs::defaults().aws_evidence;
    s.log_group_template = Some(template.into());
    s.cluster_name = cluster.into();
    s.query_poll_ms = 50;
    s
}

/// Log lines of the workload in the group, one second apart, ending now.
async fn put_logs(sdk: &aws_config::SdkConfig, group: &str, lines: &[String]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    logs.create_log_group().log_group_name(group).send().await.expect("create log group");
    logs.create_log_stream().log_group_name(group).log_stream_name("oms-7d9f-abc").send().await.expect("create stream");
    let now_ms = i64::try_from(now_secs()).expect("time") * 1000;
    let n = i64::try_from(lines.len()).expect("len");
    let events =
        lines.iter().zip(0..).map(|(l, i)| InputLogEvent::builder().timestamp(now_ms - (n - i) * 1000).message(l).build().expect("event"));
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("oms-7d9f-abc")
        .set_log_events(Some(events.collect()))
        .send()
        .await
        .expect("put");
}

/// An X-Ray segment for `trace`: a 502 fault with annotations, one holding an email address.
async fn put_trace(sdk: &aws_config::SdkConfig, trace: &str) {
    let start = now_secs() as f64 - 2.0;
    let doc = json!({"name": "oms", "id": "70de5b6f19ff9a0a", "trace_id": trace, "start_time": start, "end_time": start + 1.5,
        "fault": true, "http": {"response": {"status": 502}},
        "annotations": {"order_id": "o-42", "customer": EMAIL}});
    let xray = aws_sdk_xray::Client::new(sdk);
    let out = xray.put_trace_segments().trace_segment_documents(doc.to_string()).send().await.expect("put segment");
    assert!(out.unprocessed_trace_segments().is_empty(), "segment rejected: {:?}", out.unprocessed_trace_segments());
}

fn error_lines(trace: &str) -> Vec<String> {
    vec![
        "INFO started order service".to_string(),
        format!("ERROR payment failed for {EMAIL} card {CARD} trace_id={trace}"),
        format!("ERROR upstream rejected Authorization: Bearer {BEARER}"),
        format!("ERROR s3 access denied for {AWS_KEY_ID}"),
    ]
}

fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "raw secret {s:?} in {text}");
    }
}

fn request(workload: &str) -> CloudEvidenceRequest {
    CloudEvidenceRequest { namespace: NS.into(), workload: workload.into(), metric: None, alarm_time: Timestamp::now() }
}

#[tokio::test]
async fn logs_insights_lines_come_back_redacted_bounded_with_their_trace() {
    let sdk = sdk().await;
    let cluster = unique("logs");
    let group = format!("/salve/{cluster}/{NS}/oms");
    let trace = trace_id();
    // Ten long old lines, then the interesting ones.
    let mut lines: Vec<String> = (0..10).map(|i| format!("ERROR timeout {i} {}", "x".repeat(400))).collect();
    lines.extend(error_lines(&trace));
    put_logs(&sdk, &group, &lines).await;
    put_trace(&sdk, &trace).await;
    let source = AwsCloudEvidence::from_sdk_config(&sdk, settings("/salve/{cluster}/{namespace}/{workload}", &cluster));

    let cloud = source.collect(&request("oms")).await;
    assert!(cloud.notes.is_empty(), "nothing failed: {:?}", cloud.notes);
    let raw = cloud.logs.as_ref().expect("logs");
    assert_eq!(raw.log_group, group);
    assert_eq!(raw.lines.len(), lines.len());
    assert!(raw.lines[0].contains("ERROR timeout 0 "), "oldest first: {:?}", raw.lines[0]);
    assert!(raw.lines[13].ends_with(&format!("access denied for {AWS_KEY_ID}")), "newest last: {:?}", raw.lines[13]);
    assert_eq!(cloud.trace_ids, vec![trace.clone()], "the trace id in the logs was extracted");

    let bounds = Bounds { max_cloud_log_lines: 12, max_line_len: 200, ..Default::default() };
    let ev = redact_and_bound(Evidence { cloud: Some(cloud), ..Default::default() }, &bounds);
    assert!(ev.truncated, "long lines and the two oldest lines were cut");
    let stored = ev.cloud.expect("cloud");
    let lines = stored.logs.expect("logs").lines;
    assert_eq!(lines.len(), 12, "the newest lines are kept");
    assert!(lines.iter().all(|l| l.chars().count() <= 201));
    let text = lines.join("\n");
    assert_no_secret(&text);
    let (email, card) = (Kind::Email.marker(), Kind::CardNumber.marker());
    assert!(text.contains(&format!("payment failed for {email} card {card} trace_id={trace}")), "{text}");
    assert!(text.contains(&format!("Bearer {}", Kind::Authorization.marker())), "{text}");
    assert!(text.contains(&format!("access denied for {}", Kind::AwsAccessKey.marker())), "{text}");
    assert_eq!(stored.traces.len(), 1, "the trace was looked up");
}

#[tokio::test]
async fn xray_traces_named_in_logs_are_summarized() {
    let sdk = sdk().await;
    let cluster = unique("xray");
    let (known, unknown) = (trace_id(), "1-00000000-000000000000000000000001".to_string());
    put_logs(&sdk, &format!("/salve/{cluster}/{NS}/oms"), &[format!("ERROR a trace_id={known}"), format!("ERROR b trace_id={unknown}")])
        .await;
    put_trace(&sdk, &known).await;
    let source = AwsCloudEvidence::from_sdk_config(&sdk, settings("/salve/{cluster}/{namespace}/{workload}", &cluster));

    let cloud = source.collect(&request("oms")).await;
    let summary = cloud.traces.iter().find(|t| t.id == known).expect("summary of the known trace");
    assert!(summary.fault && !summary.throttle);
    assert_eq!(summary.http_status, Some(502));
    assert_eq!(summary.annotations.get("order_id").map(String::as_str), Some("o-42"));
    assert!(summary.duration_seconds.is_some_and(|d| d > 0.0));
    assert!(cloud.notes.iter().any(|n| n.contains(&unknown)), "the missing trace is a note: {:?}", cloud.notes);

    let ev = redact_and_bound(Evidence { cloud: Some(cloud), ..Default::default() }, &Bounds::default());
    let stored = &ev.cloud.expect("cloud").traces;
    let t = stored.iter().find(|t| t.id == known).expect("kept");
    assert_eq!(t.annotations.get("customer").map(String::as_str), Some(Kind::Email.marker()), "annotations are redacted");
}

#[tokio::test]
async fn a_missing_log_group_is_a_note_not_a_failure() {
    let sdk = sdk().await;
    let source = AwsCloudEvidence::from_sdk_config(&sdk, settings("/salve/{cluster}/{namespace}/{workload}", &unique("none")));
    let cloud = source.collect(&request("oms")).await;
    assert!(cloud.logs.is_none());
    assert!(cloud.notes.iter().any(|n| n.contains("Logs Insights")), "{:?}", cloud.notes);
}

#[tokio::test]
async fn alarm_metric_datapoints_around_the_alarm() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_CLOUDWATCH") else {
        panic!(
            "AWS_ENDPOINT_URL_CLOUDWATCH is not set: this test needs ministack; run tests/run.sh (or `source tests/moto.sh && start_moto`)"
        )
    };
    assert!(!endpoint.is_empty());
    let sdk = sdk().await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let namespace = unique("Salve/Test");
    let dims = BTreeMap::from([("Service".to_string(), "oms".to_string())]);
    let now = now_secs();
    for (ago, value) in [(180u64, 2.0), (120, 5.0), (60, 9.0)] {
        let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name("5xxErrors")
            .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("Service").value("oms").build())
            .timestamp(aws_smithy_types::DateTime::from_secs(i64::try_from(now - ago).expect("time")))
            .value(value)
            .build();
        cw.put_metric_data().namespace(&namespace).metric_data(datum).send().await.expect("put metric data");
    }
    let metric = MetricRef { namespace: namespace.clone(), name: "5xxErrors".into(), dimensions: dims, statistic: None };
    let data = MetricData::new(cw, std::time::Duration::from_secs(10));
    let end = Timestamp::now();
    let start = end.checked_sub(std::time::Duration::from_secs(600)).expect("start");
    let series = data.fetch(&metric, "Sum", 60, start, end).await.expect("GetMetricData");
    let values: Vec<f64> = series.datapoints.iter().map(|d| d.value).collect();
    assert_eq!(values, vec![2.0, 5.0, 9.0], "oldest first: {:?}", series.datapoints);
    assert_eq!(series.statistic, "Sum");
}

/// The whole path: an Incident on the fake API server, the real Incident controller with AWS
/// evidence configured, and nothing secret stored anywhere in the Incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_status_carries_redacted_cloud_evidence() {
    let sdk = sdk().await;
    let cluster = unique("ctl");
    let trace = trace_id();
    put_logs(&sdk, &format!("/salve/{cluster}/{NS}/{APP}"), &error_lines(&trace)).await;
    put_trace(&sdk, &trace).await;

    let env = env().await;
    // Container logs with secrets too: everything stored is redacted, not only cloud logs.
    create_config_map(&env, CM, json!({"POOL_SIZE": "10"}), json!({})).await;
    let mut script = refuses_pool_size_zero();
    script["crash"]["log"] = json!(["error: POOL_SIZE must be > 0", format!("login by {EMAIL} token={BEARER}")]);
    create_deployment_with(&env, 2, "256Mi", script, true).await;
    wait_ready(&env, 2).await;
    break_config(&env).await;
    let mut a = args("aws-evidence");
    a.aws_evidence = settings("/salve/{cluster}/{namespace}/{workload}", &cluster);
    let op = start_operator(&env, a).await;
    let inc: Incident = serde_json::from_value(json!({
        "apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "metadata": {"name": "oms-cloud"},
        "spec": {"service": APP, "severity": "High",
            "source": {"kind": "CloudWatchAlarm", "alarmName": "oms-5xx", "region": "us-east-1",
                "stateChangeTime": Timestamp::now().to_string(),
                "reason": format!("Threshold Crossed: key {AWS_KEY_ID} used"),
                "metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count", "dimensions": {"LoadBalancer": "app/oms"}}},
            "target": {"kind": "Deployment", "name": APP}}
    }))
    .expect("incident");
    Api::<Incident>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &inc).await.expect("create incident");

    let inc = eventually("cloud evidence in status", || async {
        let i = incident(&env, "oms-cloud").await;
        i.status.as_ref().and_then(|s| s.evidence.as_ref()).and_then(|e| e.cloud.as_ref()).is_some().then_some(i)
    })
    .await;
    op.stop().await;

    let status = inc.status.expect("status");
    let cloud = status.evidence.as_ref().and_then(|e| e.cloud.clone()).expect("cloud");
    let lines = cloud.logs.expect("logs").lines;
    assert!(lines.iter().any(|l| l.contains(&format!("payment failed for {}", Kind::Email.marker()))), "{lines:?}");
    assert_eq!(cloud.trace_ids, vec![trace.clone()]);
    assert!(cloud.traces.iter().any(|t| t.id == trace && t.fault), "{:?}", cloud.traces);
    let metric = cloud.metric.expect("the alarm metric named in spec.source.metric was queried");
    assert_eq!((metric.namespace.as_str(), metric.name.as_str()), ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"));
    assert!(cloud.notes.is_empty(), "nothing failed: {:?}", cloud.notes);
    let stored = serde_json::to_string(&status).expect("json");
    assert_no_secret(&stored);
    assert!(stored.contains("POOL_SIZE must be > 0"), "container logs are still there");
}
