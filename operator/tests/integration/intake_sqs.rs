//! SQS intake end to end: real SNS -> SQS delivery and real SQS long polling in moto (started by
//! tests/run.sh), the real consumer, and the fake Kubernetes API server (a TEST STAND-IN).
//! EventBridge events are sent to SQS in the documented shape (the operator dependency set has
//! no EventBridge client to drive moto's rule targets).

use std::collections::HashMap;

use crate::support::alarm_queue::*;
use crate::support::moto::unique;
use crate::support::*;
use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::types::QueueAttributeName;
use fake_kube::Fault;
use kube::api::ListParams;
use kube::{Api, Client, Config, ResourceExt};
use operator::crd::{Incident, Severity, SignalState, SourceKind};
use operator::domain::policy::Policy;
use operator::intake::identity::{ALARM_LABEL, alarm_key};
use operator::intake::sqs::{REJECT_REASON_ATTRIBUTE, SqsIntake};
use operator::intake::workload::WorkloadResolver;
use operator::metrics::Metrics;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The operator's own identity on the fake API server (so RBAC can be checked).
async fn operator_client(env: &Env) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(&env.fake.kubeconfig_yaml_as(NS, "salve-operator")).expect("kubeconfig");
    Client::try_from(Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config")).expect("client")
}

fn eventbridge_event(name: &str, state: &str, time: &str) -> String {
    json!({
        "version": "0", "id": unique("evt"), "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": "123456789012", "time": "2026-11-21T19:56:10Z", "region": "eu-west-1",
        "resources": [format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}")],
        "detail": {"alarmName": name,
            "configuration": {"description": "IMS latency", "metrics": [{"id": "m1", "metricStat": {"metric": {
                "dimensions": {"ClusterName": "prod", "Namespace": NS, "PodName": "ims"}, "name": "pod_cpu_utilization", "namespace": "ContainerInsights"},
                "period": 60, "stat": "Average"}, "returnData": true}]},
            "previousState": {"reason": "ok", "timestamp": "2026-11-21T19:00:00.000+0000", "value": "OK"},
            "state": {"reason": "CPU high", "timestamp": time, "value": state}}
    })
    .to_string()
}

/// The body of the next message, left on the queue (visibility timeout 0): what SNS delivered.
async fn peek(q: &Queues) -> String {
    let got = q.sqs.receive_message().queue_url(&q.url).visibility_timeout(0).wait_time_seconds(5).send().await.expect("receive");
    got.messages.unwrap_or_default().into_iter().next().and_then(|m| m.body).expect("a delivered message")
}

async fn send(q: &Queues, body: &str) {
    q.sqs.send_message().queue_url(&q.url).message_body(body).send().await.expect("send");
}

fn consumer(env_client: Client, q: &Queues, map: &str, dlq: bool, metrics: &Metrics) -> SqsIntake {
    consumer_allowing(env_client, q, map, dlq, metrics, &[NS])
}

/// A consumer whose policy allows `namespaces`.
fn consumer_allowing(env_client: Client, q: &Queues, map: &str, dlq: bool, metrics: &Metrics, namespaces: &[&str]) -> SqsIntake {
    SqsIntake {
        sqs: q.sqs.clone(),
        queue_url: q.url.clone(),
        dlq_url: dlq.then(|| q.dlq_url.clone()),
        wait_seconds: 1,
        kube: env_client,
        resolver: WorkloadResolver::new(map, None, Severity::High).expect("map"),
        policy: Policy { allowed_namespaces: namespaces.iter().map(|n| n.to_string()).collect(), ..Policy::default() },
        metrics: metrics.clone(),
    }
}

fn rejected(metrics: &Metrics, reason: &str) -> u64 {
    metrics.intake_rejected.with_label_values(&[reason]).get()
}

/// Every message in the DLQ: body -> reject reason attribute.
async fn dead_letters(q: &Queues, expected: usize) -> HashMap<String, String> {
    let mut reasons: HashMap<String, String> = HashMap::new();
    for _ in 0..10 {
        let got = q
            .sqs
            .receive_message()
            .queue_url(&q.dlq_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive dlq");
        for m in got.messages.unwrap_or_default() {
            let why = m.message_attributes.as_ref().and_then(|a| a.get(REJECT_REASON_ATTRIBUTE)).and_then(|v| v.string_value.clone());
            reasons.insert(m.body.unwrap_or_default(), why.expect("every dead letter says why"));
        }
        if reasons.len() >= expected {
            break;
        }
    }
    reasons
}

fn start(intake: SqsIntake) -> CancellationToken {
    let token = CancellationToken::new();
    tokio::spawn(intake.run(token.clone()));
    token
}

fn count(metrics: &Metrics, outcome: &str) -> u64 {
    metrics.intake_messages.with_label_values(&["sqs", outcome]).get()
}

async fn wait_count(metrics: &Metrics, outcome: &str, n: u64) {
    eventually(&format!("{n} x {outcome}"), || async move { (count(metrics, outcome) >= n).then_some(()) }).await;
}

async fn incidents(env: &Env) -> Vec<Incident> {
    Api::<Incident>::all(env.client.clone()).list(&ListParams::default()).await.expect("list").items
}

/// Messages still on the queue, visible or in flight.
async fn left_on(sqs: &SqsClient, url: &str) -> u64 {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_enveloped_alarm_opens_one_incident_and_ok_is_recorded_on_it() {
    let env = env().await;
    let q = queues(false).await;
    let metrics = Metrics::new().expect("metrics");
    let alarm_time = "2026-11-21T19:56:10.708+0000";
    publish(&q, &alarm("oms-5xx", "ALARM", alarm_time, json!([]))).await;
    publish(&q, &alarm("oms-5xx", "ALARM", alarm_time, json!([]))).await; // SNS delivers twice, or CloudWatch retries
    let delivered: Value = serde_json::from_str(&peek(&q).await).expect("json");
    assert_eq!(delivered["Type"], "Notification", "raw delivery off: the SNS envelope");
    let stop = start(consumer(operator_client(&env).await, &q, "oms-5xx=shop/oms:Critical", true, &metrics));
    wait_count(&metrics, "created", 1).await;
    wait_count(&metrics, "duplicate", 1).await;

    let all = incidents(&env).await;
    assert_eq!(all.len(), 1, "a duplicate creates nothing new");
    let inc = &all[0];
    assert_eq!(inc.namespace().as_deref(), Some(NS));
    assert!(inc.name_any().starts_with("oms-5xx-"), "{}", inc.name_any());
    assert_eq!(inc.spec.target.name, "oms");
    assert_eq!(inc.spec.service, "oms");
    assert_eq!(inc.spec.severity, Severity::Critical);
    let src = &inc.spec.source;
    assert_eq!(src.kind, SourceKind::CloudWatchAlarm);
    assert_eq!(src.alarm_name.as_deref(), Some("oms-5xx"));
    assert_eq!(src.alarm_arn.as_deref(), Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:oms-5xx"));
    assert_eq!(src.region.as_deref(), Some("eu-west-1"));
    assert_eq!(src.state_change_time.as_deref(), Some("2026-11-21T19:56:10.708Z"));
    assert!(src.reason.as_deref().is_some_and(|r| r.starts_with("Threshold Crossed")));
    assert_eq!(inc.spec.signal, None);
    let key = alarm_key("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:oms-5xx");
    assert_eq!(inc.labels().get(ALARM_LABEL), Some(&key));

    publish(&q, &alarm("oms-5xx", "OK", "2026-11-21T20:06:10.000+0000", json!([]))).await;
    let name = inc.name_any();
    eventually("OK recorded on the incident", || {
        let name = name.clone();
        let env = &env;
        async move { (incident(env, &name).await.spec.signal == Some(SignalState::Ok)).then_some(()) }
    })
    .await;
    wait_count(&metrics, "ok_recorded", 1).await; // counted just after the write
    eventually("every message deleted after its write", || async { (left_on(&q.sqs, &q.url).await == 0).then_some(()) }).await;
    assert_eq!(incidents(&env).await.len(), 1);
    assert_rbac_covers_operator_requests(&env);
    stop.cancel();
}

/// A batch's alarms are handled concurrently, but one alarm's messages in the order received:
/// its OK, received in the same batch as its ALARM, is recorded on the Incident it opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_one_batch_an_alarm_and_its_ok_keep_their_order_beside_other_alarms() {
    let env = env().await;
    let q = queues(true).await;
    let metrics = Metrics::new().expect("metrics");
    for (name, state, time) in [
        ("oms-5xx", "ALARM", "2026-11-21T19:56:10.000+0000"),
        ("ims-latency", "ALARM", "2026-11-21T19:56:11.000+0000"),
        ("oms-5xx", "OK", "2026-11-21T19:58:10.000+0000"),
    ] {
        publish(&q, &alarm(name, state, time, json!([]))).await;
    }
    let stop = start(consumer(operator_client(&env).await, &q, "oms-5xx=shop/oms,ims-latency=shop/ims", true, &metrics));
    wait_count(&metrics, "created", 2).await;
    wait_count(&metrics, "ok_recorded", 1).await;
    let signal_of = |all: &[Incident], target: &str| {
        all.iter().find(|i| i.spec.target.name == target).map(|i| i.spec.signal).expect("an incident for the target")
    };
    let all = incidents(&env).await;
    assert_eq!(all.len(), 2);
    assert_eq!(signal_of(&all, "oms"), Some(SignalState::Ok), "the OK followed its ALARM");
    assert_eq!(signal_of(&all, "ims"), None, "the other alarm is still firing");
    eventually("every message deleted after its write", || async { (left_on(&q.sqs, &q.url).await == 0).then_some(()) }).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_delivery_and_eventbridge_events_map_workloads_from_dimensions() {
    let env = env().await;
    let q = queues(true).await;
    let metrics = Metrics::new().expect("metrics");
    let dims = json!([{"name": "Namespace", "value": NS}, {"name": "Deployment", "value": "oms"}, {"name": "Service", "value": "orders"}]);
    publish(&q, &alarm("orders-errors", "ALARM", "2026-11-21T19:56:10.708+0000", dims.clone())).await;
    let delivered: Value = serde_json::from_str(&peek(&q).await).expect("json");
    assert_eq!(delivered["AlarmName"], "orders-errors", "raw delivery on: the alarm JSON itself");
    // No map: the workload comes from the alarms' dimensions.
    let stop = start(consumer(operator_client(&env).await, &q, "", true, &metrics));
    send(&q, &eventbridge_event("ims-cpu", "ALARM", "2026-11-21T19:57:00.000+0000")).await;
    send(&q, &eventbridge_event("ims-cpu", "INSUFFICIENT_DATA", "2026-11-21T19:58:00.000+0000")).await;
    publish(&q, &alarm("never-fired", "OK", "2026-11-21T19:59:00.000+0000", dims)).await;
    wait_count(&metrics, "created", 2).await;
    wait_count(&metrics, "ignored", 1).await;
    wait_count(&metrics, "ok_without_incident", 1).await;

    let all = incidents(&env).await;
    assert_eq!(all.len(), 2);
    let orders = all.iter().find(|i| i.spec.source.alarm_name.as_deref() == Some("orders-errors")).expect("raw-delivered alarm");
    assert_eq!((orders.spec.target.name.as_str(), orders.spec.service.as_str()), ("oms", "orders"));
    assert_eq!(orders.spec.severity, Severity::High, "the default severity");
    let ims = all.iter().find(|i| i.spec.source.alarm_name.as_deref() == Some("ims-cpu")).expect("EventBridge alarm");
    assert_eq!(ims.spec.target.name, "ims", "Container Insights PodName");
    assert_eq!(ims.namespace().as_deref(), Some(NS));
    assert_eq!(ims.spec.source.alarm_arn.as_deref(), Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:ims-cpu"));
    assert_eq!(ims.spec.source.reason.as_deref(), Some("CPU high"));
    let metric = ims.spec.source.metric.as_ref().expect("the alarm metric, for AWS evidence");
    assert_eq!((metric.namespace.as_str(), metric.name.as_str()), ("ContainerInsights", "pod_cpu_utilization"));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unmappable_messages_are_dead_lettered_and_intake_goes_on() {
    let env = env().await;
    let q = queues(false).await;
    let metrics = Metrics::new().expect("metrics");
    let stop = start(consumer(operator_client(&env).await, &q, "oms-5xx=shop/oms", true, &metrics));

    send(&q, "this is not JSON").await;
    send(&q, r#"{"Type":"Notification","Message":"{\"AlarmName\": 42}"}"#).await;
    publish(&q, &alarm("nobody-knows-me", "ALARM", "2026-11-21T19:56:10.708+0000", json!([{"name": "LoadBalancer", "value": "app/x"}])))
        .await;
    publish(&q, &alarm("oms-5xx", "ALARM", "2026-11-21T19:56:10.708+0000", json!([]))).await;
    wait_count(&metrics, "dead_lettered", 3).await;
    wait_count(&metrics, "created", 1).await;
    assert_eq!(count(&metrics, "malformed"), 2);
    assert_eq!(count(&metrics, "unmappable"), 1);
    assert_eq!((rejected(&metrics, "Malformed"), rejected(&metrics, "Unmappable")), (2, 1));
    assert_eq!(incidents(&env).await.len(), 1, "the good alarm after the bad ones still became an incident");

    let reasons = dead_letters(&q, 3).await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons["this is not JSON"].contains("not JSON"));
    let unmappable = reasons.iter().find(|(body, _)| body.contains("nobody-knows-me")).expect("unmappable alarm in the DLQ");
    assert!(unmappable.1.contains("no workload"), "{}", unmappable.1);
    eventually("source queue drained", || async { (left_on(&q.sqs, &q.url).await == 0).then_some(()) }).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_failure_leaves_the_message_for_redelivery() {
    let env = env().await;
    let q = queues(false).await;
    let metrics = Metrics::new().expect("metrics");
    publish(&q, &alarm("oms-5xx", "ALARM", "2026-11-21T19:56:10.708+0000", json!([]))).await;

    // An API server that is down: nothing listens on this port.
    let dead = Client::try_from(Config::new("http://127.0.0.1:9".parse().expect("uri"))).expect("client");
    let failing = consumer(dead, &q, "oms-5xx=shop/oms", true, &metrics);
    eventually("the failing consumer received the message", || async { failing.poll_once().await.err() }).await;
    assert_eq!(count(&metrics, "created"), 0);
    assert_eq!(left_on(&q.sqs, &q.url).await, 1, "not deleted");

    // The API server is back: the redelivered message (visibility timeout 1 s) becomes the incident.
    let healthy = consumer(operator_client(&env).await, &q, "oms-5xx=shop/oms", true, &metrics);
    eventually("redelivered and written", || async { healthy.poll_once().await.ok().filter(|n| *n > 0) }).await;
    assert_eq!(count(&metrics, "created"), 1);
    assert_eq!(incidents(&env).await.len(), 1);
    eventually("deleted once written", || async { (left_on(&q.sqs, &q.url).await == 0).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dlq_bad_messages_are_left_for_the_queue_redrive_policy() {
    let env = env().await;
    let q = queues(false).await;
    let metrics = Metrics::new().expect("metrics");
    send(&q, "garbage").await;
    let intake = consumer(operator_client(&env).await, &q, "", false, &metrics);
    eventually("received", || async { intake.poll_once().await.ok().filter(|n| *n > 0) }).await;
    assert_eq!(count(&metrics, "malformed"), 1);
    assert_eq!(count(&metrics, "dead_lettered"), 0);
    assert_eq!(left_on(&q.sqs, &q.url).await, 1, "left on the source queue");
    assert_eq!(left_on(&q.sqs, &q.dlq_url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_consumes_the_configured_queue_by_name() {
    let env = env().await;
    let q = queues(false).await;
    let queue_name = q.url.rsplit('/').next().expect("queue name").to_string();
    let mut a = args("replica-a");
    a.intake.sqs_queue = Some(queue_name);
    a.intake.sqs_dlq_url = Some(q.dlq_url.clone());
    a.intake.sqs_wait_seconds = 1;
    a.intake.alarm_workloads = "oms-5xx=shop/oms".into();
    let op = start_operator(&env, a).await;
    publish(&q, &alarm("oms-5xx", "ALARM", "2026-11-21T19:56:10.708+0000", json!([]))).await;
    send(&q, "not an alarm").await;
    let inc = eventually("incident from the queue", || async {
        incidents(&env).await.into_iter().find(|i| i.spec.source.alarm_name.as_deref() == Some("oms-5xx"))
    })
    .await;
    assert_eq!(inc.spec.target.name, "oms");
    eventually("bad message dead-lettered", || async { (left_on(&q.sqs, &q.dlq_url).await == 1).then_some(()) }).await;
    op.stop().await;
}

/// An alarm whose Incident the API server will never accept (a namespace the policy does not
/// allow, RBAC's 403, a missing namespace's 404) is dead-lettered with the reason, instead of
/// coming back every visibility timeout; the alarms around it are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_the_api_server_will_never_accept_are_dead_lettered_and_the_others_written() {
    let env = env().await;
    let q = queues(true).await;
    let metrics = Metrics::new().expect("metrics");
    for (ns, status) in [("locked", 403), ("gone", 404)] {
        let path_suffix = format!("/namespaces/{ns}/incidents");
        env.fake.fail_requests(Fault { method: "POST".into(), path_suffix, status, skip: 0, times: u32::MAX });
    }
    let t = "2026-11-21T19:56:10.708+0000";
    for name in ["payments-5xx", "locked-5xx", "gone-5xx", "oms-5xx"] {
        publish(&q, &alarm(name, "ALARM", t, json!([]))).await;
    }
    let map = "payments-5xx=payments/api,locked-5xx=locked/api,gone-5xx=gone/api,oms-5xx=shop/oms";
    let stop = start(consumer_allowing(operator_client(&env).await, &q, map, true, &metrics, &[NS, "locked", "gone"]));
    wait_count(&metrics, "created", 1).await;
    wait_count(&metrics, "dead_lettered", 3).await;
    let reasons = dead_letters(&q, 3).await;
    let reason_of =
        |alarm: &str| reasons.iter().find(|(body, _)| body.contains(&format!("alarm:{alarm}"))).map(|(_, r)| r.clone()).unwrap_or_default();
    assert!(reason_of("payments-5xx").starts_with("NamespaceNotAllowed:"), "{reasons:?}");
    assert!(reason_of("locked-5xx").starts_with("Forbidden:"), "{reasons:?}");
    assert!(reason_of("gone-5xx").starts_with("NotFound:"), "{reasons:?}");
    for reason in ["NamespaceNotAllowed", "Forbidden", "NotFound"] {
        assert_eq!(rejected(&metrics, reason), 1, "{reason}");
    }
    let all = incidents(&env).await;
    assert_eq!(all.iter().map(|i| i.spec.source.alarm_name.clone().unwrap_or_default()).collect::<Vec<_>>(), ["oms-5xx"]);
    eventually("source queue drained", || async { (left_on(&q.sqs, &q.url).await == 0).then_some(()) }).await;
    stop.cancel();
}

/// ALARM at t1 opens A, OK at t2 resolves it; ALARM at t3 opens B; the OK of t2 delivered again
/// (SQS delivers at least once, in no set order) must not record OK on B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_ok_does_not_resolve_a_newer_incident_of_the_same_alarm() {
    let env = env().await;
    let q = queues(true).await;
    let metrics = Metrics::new().expect("metrics");
    let (t1, t2, t3) = ("2026-11-21T19:56:10.000+0000", "2026-11-21T20:06:10.000+0000", "2026-11-21T20:30:00.000+0000");
    let stop = start(consumer(operator_client(&env).await, &q, "oms-5xx=shop/oms", true, &metrics));
    let by_time = |all: Vec<Incident>, t: &str| all.into_iter().find(|i| i.spec.source.state_change_time.as_deref() == Some(t));

    publish(&q, &alarm("oms-5xx", "ALARM", t1, json!([]))).await;
    wait_count(&metrics, "created", 1).await;
    publish(&q, &alarm("oms-5xx", "OK", t2, json!([]))).await;
    wait_count(&metrics, "ok_recorded", 1).await;
    let a = by_time(incidents(&env).await, "2026-11-21T19:56:10.000Z").expect("incident A");
    assert_eq!(a.spec.signal, Some(SignalState::Ok));
    // The operator resolves A.
    let api: Api<Incident> = Api::namespaced(env.client.clone(), NS);
    api.patch_status(&a.name_any(), &Default::default(), &kube::api::Patch::Merge(json!({"status": {"phase": "Resolved"}})))
        .await
        .expect("resolve A");

    publish(&q, &alarm("oms-5xx", "ALARM", t3, json!([]))).await;
    wait_count(&metrics, "created", 2).await;
    publish(&q, &alarm("oms-5xx", "OK", t2, json!([]))).await;
    eventually("the stale OK rejected", || async { (rejected(&metrics, "StaleOk") == 1).then_some(()) }).await;
    let b = by_time(incidents(&env).await, "2026-11-21T20:30:00.000Z").expect("incident B");
    assert_eq!(b.spec.signal, None, "B is still firing");
    assert_eq!(count(&metrics, "ok_recorded"), 1);
    eventually("the stale OK deleted, not dead-lettered", || async { (left_on(&q.sqs, &q.url).await == 0).then_some(()) }).await;
    assert_eq!(left_on(&q.sqs, &q.dlq_url).await, 0);
    stop.cancel();
}
