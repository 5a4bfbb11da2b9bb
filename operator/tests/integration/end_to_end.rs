//! The whole loop with every real part that can run here: a CloudWatch alarm notification
//! published to SNS and delivered to SQS by moto -> the operator's intake -> Incident -> evidence
//! -> Bedrock diagnosis -> pull-request remediation -> a person merges -> GitOps rolls out -> the
//! alarm's OK arrives -> verified -> Resolved -> post-mortem. The Kubernetes API, Bedrock and
//! GitHub are TEST STAND-INs (tests/fake-kube, support/bedrock_stand_in, tests/fake-github).
//! The same alarm with Bedrock down is diagnosed offline. Outcomes only, never timings.

use crate::support::alarm_queue::{Queues, alarm, publish, queues};
use crate::support::bedrock_stand_in::{MODEL, Reply, Stand, stand_in};
use crate::support::*;
use fake_github::FakeGithub;
use kube::Api;
use kube::api::ListParams;
use operator::config::RunArgs;
use operator::crd::{Incident, SignalState};
use serde_json::{Value, json};

const TOKEN: &str = "ghs_e2e_token";
const REPO: &str = "acme/gitops";
const VALUES: &str = "apps/oms/values.yaml";
const ORIGINAL: &str = "replicas: 2\nresources:\n  limits:\n    memory: 256Mi\n";
const ALARM: &str = "oms-5xx";
const ALARM_TIME: &str = "2026-11-21T19:56:10.708+0000";

/// The operator as a user would configure it for this loop: SQS intake mapping the alarm to
/// shop/oms, Bedrock through its endpoint override, pull requests to one GitOps repository.
fn operator_args(identity: &str, q: &Queues, bedrock_url: &str, gh: &FakeGithub) -> RunArgs {
    let mut a = args(identity);
    a.intake.sqs_queue = Some(q.url.clone());
    a.intake.sqs_wait_seconds = 1;
    a.intake.alarm_workloads = "oms-*=shop/oms:Critical".into();
    a.bedrock_model_id = Some(MODEL.into());
    a.bedrock_endpoint_url = Some(bedrock_url.into());
    a.bedrock_max_attempts = 2;
    a.bedrock_initial_backoff_ms = 10;
    a.allowed_actions.push("PullRequest".into());
    a.github.api_url = gh.url();
    a.github.token = Some(TOKEN.parse().expect("token"));
    a.github.repositories = vec![REPO.into()];
    a.github.allowed_paths = vec!["apps/".into()];
    a.github.poll_ms = 200;
    a.github.retry_ms = 200;
    a
}

async fn github() -> FakeGithub {
    let gh = FakeGithub::start(TOKEN).await.expect("fake github");
    gh.create_repo(REPO, "main", &[(VALUES, ORIGINAL)]);
    gh
}

/// What the model answers: a memory raise as a reviewed change to the GitOps values file.
fn pull_request_answer() -> Value {
    json!({"root_cause_category": "Resource_Limit", "summary": "oms is OOMKilled at 256Mi under the 5xx spike", "confidence": 0.8,
        "cited_evidence": ["oms pods OOMKilled"],
        "proposed_action": {"kind": "PullRequest", "targetName": "oms", "repository": REPO, "title": "Raise oms memory to 512Mi",
            "files": [{"path": VALUES, "search": "memory: 256Mi", "replace": "memory: 512Mi"}]}})
}

async fn alarm_incident(env: &Env) -> Incident {
    eventually("the alarm's Incident", || async {
        let list = Api::<Incident>::namespaced(env.client.clone(), NS).list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|i| i.spec.source.alarm_name.as_deref() == Some(ALARM))
    })
    .await
}

async fn publish_alarm(q: &Queues, state: &str) {
    publish(q, &alarm(ALARM, state, ALARM_TIME, json!([{"name": "LoadBalancer", "value": "app/oms"}]))).await;
}

fn requests(s: &Stand) -> usize {
    s.requests.lock().expect("lock").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_to_bedrock_diagnosis_to_merged_pull_request_to_verified_post_mortem() {
    let gh = github().await;
    let (bedrock, bedrock_url) = stand_in(vec![Reply::Tool(pull_request_answer())]).await;
    let q = queues(false).await;
    let env = env().await;
    create_memory_hungry_deployment(&env, 2, "256Mi").await;
    wait_oom_killed(&env).await;
    let op = start_operator(&env, operator_args("e2e", &q, &bedrock_url, &gh)).await;

    publish_alarm(&q, "ALARM").await;
    // A redelivered notification (SNS retries) must not open a second incident.
    publish_alarm(&q, "ALARM").await;
    let inc = alarm_incident(&env).await;
    let name = kube::ResourceExt::name_any(&inc);
    assert_eq!(inc.spec.target.name, "oms");
    assert_eq!(inc.spec.severity, operator::crd::Severity::Critical);

    let rem = format!("{name}-r1");
    wait_remediation_phase(&env, &rem, "AwaitingMerge").await;
    let inc = incident(&env, &name).await;
    let st = inc.status.clone().expect("status");
    let d = st.diagnosis.clone().expect("diagnosis");
    assert_eq!(d.model, MODEL, "diagnosed by the model, not the rules");
    assert_eq!(d.fallback_reason, None);
    assert_eq!((d.input_tokens, d.output_tokens), (1200, 300));
    assert!(d.prompt_hash.starts_with("sha256:") && d.estimated_cost_usd.is_some());
    assert_eq!(requests(&bedrock), 1);
    let pulls = gh.pulls(REPO);
    assert_eq!(pulls.len(), 1, "one pull request");
    assert!(pulls[0].body.contains("oms is OOMKilled at 256Mi"), "the diagnosis is the PR body: {}", pulls[0].body);
    let incidents = Api::<Incident>::namespaced(env.client.clone(), NS).list(&ListParams::default()).await.expect("list");
    assert_eq!(incidents.items.len(), 1, "the duplicate notification created nothing");

    // A person merges; GitOps rolls it out; CloudWatch reports OK through the same SNS topic.
    gh.merge(REPO, pulls[0].number);
    wait_remediation_phase(&env, &rem, "RollingOut").await;
    gitops_rolls_out(&env).await;
    publish_alarm(&q, "OK").await;
    let inc = wait_incident_phase(&env, &name, "Resolved").await;
    assert_eq!(inc.spec.signal, Some(SignalState::Ok), "the OK transition is recorded on the incident");
    assert_eq!(gh.file(REPO, "main", VALUES), Some(ORIGINAL.replace("256Mi", "512Mi")));

    let status = serde_json::to_value(inc.status.expect("status")).expect("json");
    let pm = &status["postMortem"];
    assert_eq!(pm["root_cause_category"], "Resource_Limit");
    assert!(pm["incident_signature"].as_str().is_some_and(|s| s.starts_with("sha256:")));
    let action = pm["remediation_action"].to_string();
    assert!(action.contains("PullRequest") && action.contains("memory: 512Mi"), "the exact change: {action}");
    assert_eq!(pm["simulation_context"]["recorded_diagnosis"]["model"], MODEL);
    assert!(pm["simulation_context"]["evidence"]["pods"].as_array().is_some_and(|p| !p.is_empty()));
    assert_eq!(status["llmUsage"]["calls"], 1);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_alarm_with_bedrock_down_is_diagnosed_offline_and_says_so() {
    let gh = github().await;
    // No scripted answers: every Converse call is a 500 InternalServerException.
    let (bedrock, bedrock_url) = stand_in(Vec::new()).await;
    let q = queues(true).await;
    let env = env().await;
    create_memory_hungry_deployment(&env, 2, "256Mi").await;
    wait_oom_killed(&env).await;
    let op = start_operator(&env, operator_args("e2e-offline", &q, &bedrock_url, &gh)).await;

    publish_alarm(&q, "ALARM").await;
    let name = kube::ResourceExt::name_any(&alarm_incident(&env).await);
    let rem = wait_remediation_phase(&env, &format!("{name}-r1"), "AwaitingApproval").await;
    assert_eq!(rem.spec.action.kind.as_str(), "SetDeploymentResources", "the offline rules' answer to OOMKilled");
    let st = incident(&env, &name).await.status.expect("status");
    let d = st.diagnosis.expect("diagnosis");
    assert_eq!(d.model, "rules/v1");
    assert!(d.fallback_reason.as_deref().is_some_and(|r| r.contains(MODEL)), "the incident says the model failed: {:?}", d.fallback_reason);
    let cond = st.conditions.iter().find(|c| c.type_ == "ModelDiagnosis").expect("ModelDiagnosis condition");
    assert_eq!(cond.reason, "FellBackToRules");
    assert!(requests(&bedrock) >= 1, "Bedrock was asked first");
    assert!(gh.pulls(REPO).is_empty(), "no pull request from the offline path");
    op.stop().await;
}
