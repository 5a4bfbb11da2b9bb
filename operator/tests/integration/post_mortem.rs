//! Post-mortems end to end: the real controllers against the fake API server (a TEST
//! STAND-IN) and the S3 archive against moto (started by tests/run.sh). Asserts what a user
//! reads with kubectl and the AWS CLI: the status copy, the ConfigMap, the locked S3 object, a
//! later score reaching all three, and an offline replay of the recorded diagnosis.

use crate::support::bedrock_stand_in::{MODEL, Reply, stand_in};
use crate::support::moto::{bucket, require_moto, s3};
use crate::support::*;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{BucketVersioningStatus, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockMode, VersioningConfiguration};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use operator::aws::post_mortem_s3::RetentionMode;
use operator::config::RunArgs;
use operator::crd::{ActionKind, ConditionStatus, Incident};
use operator::domain::replay::{parse_post_mortem, replay_offline};
use serde_json::{Value, json};

fn archiving_to(bucket: &str, mode: RetentionMode) -> RunArgs {
    let mut a = args("replica-a");
    a.post_mortem_archive.postmortem_bucket = Some(bucket.into());
    a.post_mortem_archive.postmortem_prefix = "pm/".into();
    a.post_mortem_archive.postmortem_retention_mode = mode;
    a.post_mortem_archive.postmortem_retention_days = 7;
    a.post_mortem_archive.postmortem_s3_force_path_style = true;
    a
}

async fn config_map_post_mortem(env: &Env, incident: &str) -> Option<Value> {
    let cm = Api::<ConfigMap>::namespaced(env.client.clone(), NS).get_opt(&format!("{incident}-postmortem")).await.ok()??;
    serde_json::from_str(cm.data?.get("postmortem.json")?).ok()
}

async fn s3_object(client: &Client, bucket: &str, key: &str) -> Value {
    let o = client.get_object().bucket(bucket).key(key).send().await.expect("get object");
    serde_json::from_slice(&o.body.collect().await.expect("body").into_bytes()).expect("json")
}

/// Config change -> crash loop -> restored -> Resolved (scenario 1 of scenarios.rs).
async fn resolve_broken_config(env: &Env, a: RunArgs) -> Running {
    broken_config_setup(env, json!({})).await;
    let op = start_operator(env, a).await;
    break_config(env).await;
    create_incident(env, "oms-5xx", "Threshold Crossed: 5xx > 5%").await;
    eventually("previous value restored", || async { (config_value(env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(()) }).await;
    wait_incident_phase(env, "oms-5xx", "Resolved").await;
    op
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_post_mortem_is_in_status_config_map_and_locked_in_s3_and_follows_the_score() {
    require_moto();
    let client = s3().await;
    let b = bucket(&client, true).await;
    let env = env().await;
    let op = resolve_broken_config(&env, archiving_to(&b, RetentionMode::Compliance)).await;

    let st = eventually("post-mortem archived", || async {
        let st = incident(&env, "oms-5xx").await.status?;
        (st.post_mortem.is_some() && st.post_mortem_archive.is_some()).then_some(st)
    })
    .await;
    let copy = serde_json::to_value(st.post_mortem.as_ref().expect("copy")).expect("json");
    for key in ["incident_signature", "root_cause_category", "remediation_action", "human_feedback_score", "simulation_context"] {
        assert!(copy.get(key).is_some(), "status.postMortem has {key}");
    }
    assert_eq!(copy["root_cause_category"], "Config_Error");
    assert!(copy["human_feedback_score"].is_null());
    let applied = &copy["remediation_action"][0];
    assert_eq!(applied["remediation"], "oms-5xx-r1");
    assert_eq!(applied["outcome"], "Succeeded");
    // Exported patches name the key that changed and carry a hash of each value, never the value.
    let hashed = |v: &str| format!(r#""POOL_SIZE":"{}""#, operator::domain::outbound::value_hash(v));
    let patch = applied["applied_patch"].as_str().unwrap_or_default();
    assert!(patch.contains(&hashed("10")) && !patch.contains(r#""10""#), "{applied}");
    let undo = applied["undo_patch"].as_str().unwrap_or_default();
    assert!(undo.contains(&hashed("0")) && !undo.contains(r#""0""#), "{applied}");
    assert!(copy["simulation_context"]["evidence"]["logs"].is_array(), "small enough to keep the evidence");
    assert_eq!(st.post_mortem_ref.as_deref(), Some("oms-5xx-postmortem"));
    let in_cm = config_map_post_mortem(&env, "oms-5xx").await.expect("ConfigMap post-mortem");
    assert_eq!(in_cm, copy, "a small record is the same in status and ConfigMap");

    // The S3 object: the same JSON, under a COMPLIANCE lock that refuses deletion.
    let archive = st.post_mortem_archive.clone().expect("archive");
    assert_eq!(archive.uri, format!("s3://{b}/pm/shop/oms-5xx.json"));
    let key = "pm/shop/oms-5xx.json";
    assert_eq!(s3_object(&client, &b, key).await, in_cm);
    let v1 = archive.version_id.clone().expect("version");
    let head = client.head_object().bucket(&b).key(key).version_id(&v1).send().await.expect("head");
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert!(head.object_lock_retain_until_date().is_some());
    assert!(client.delete_object().bucket(&b).key(key).version_id(&v1).send().await.is_err(), "locked");
    let cond = st.conditions.iter().find(|c| c.type_ == "PostMortemArchived").expect("condition");
    assert_eq!(cond.status, ConditionStatus::True);
    wait_event(&env, "PostMortemArchived").await;

    // The recorded diagnosis replays offline to the same answer.
    let replay = replay_offline(&parse_post_mortem(&in_cm.to_string()).expect("parse")).expect("replay");
    assert!(replay.matches && replay.prompt_hash_matches, "{replay:?}");

    // Later, a person scores the outcome: ConfigMap, status copy and a new S3 version follow.
    let p = json!({"metadata": {"annotations": {"salve.dev/feedback-score": "4"}}});
    Api::<Incident>::namespaced(env.client.clone(), NS).patch("oms-5xx", &PatchParams::default(), &Patch::Merge(&p)).await.expect("score");
    let st = eventually("score everywhere", || async {
        let st = incident(&env, "oms-5xx").await.status?;
        let archived = st.post_mortem_archive.as_ref()?.version_id.as_deref() != Some(v1.as_str());
        (st.post_mortem.as_ref()?.human_feedback_score == Some(4) && archived).then_some(st)
    })
    .await;
    assert_eq!(config_map_post_mortem(&env, "oms-5xx").await.expect("cm")["human_feedback_score"], 4);
    assert_eq!(s3_object(&client, &b, key).await["human_feedback_score"], 4);
    let old = client.get_object().bucket(&b).key(key).version_id(&v1).send().await.expect("first version kept");
    let old: Value = serde_json::from_slice(&old.body.collect().await.expect("body").into_bytes()).expect("json");
    assert!(old["human_feedback_score"].is_null(), "the first version is unchanged");
    assert_ne!(st.post_mortem_archive.and_then(|a| a.version_id), Some(v1));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_archive_is_reported_retried_and_never_blocks_resolution() {
    require_moto();
    let client = s3().await;
    let b = bucket(&client, false).await; // no Object Lock: every upload is refused
    let env = env().await;
    let op = resolve_broken_config(&env, archiving_to(&b, RetentionMode::Governance)).await;

    let st = eventually("archive failure reported", || async {
        let st = incident(&env, "oms-5xx").await.status?;
        st.conditions.iter().any(|c| c.type_ == "PostMortemArchived" && c.status == ConditionStatus::False).then_some(st)
    })
    .await;
    assert_eq!(st.phase.as_str(), "Resolved", "the outcome stands");
    assert!(st.post_mortem.is_some() && st.post_mortem_archive.is_none(), "status and ConfigMap copies exist regardless");
    let cond = st.conditions.iter().find(|c| c.type_ == "PostMortemArchived").expect("condition");
    assert_eq!(cond.reason, "ObjectLockNotEnabled");
    assert!(cond.message.contains("Object Lock"), "{}", cond.message);
    wait_event(&env, "PostMortemArchiveFailed").await;

    // The bucket owner fixes the bucket; the next retry archives without anyone touching the Incident.
    client
        .put_bucket_versioning()
        .bucket(&b)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .expect("versioning");
    client
        .put_object_lock_configuration()
        .bucket(&b)
        .object_lock_configuration(ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).build())
        .send()
        .await
        .expect("object lock");
    let st = eventually("archived on retry", || async {
        let st = incident(&env, "oms-5xx").await.status?;
        st.post_mortem_archive.is_some().then_some(st)
    })
    .await;
    let cond = st.conditions.iter().find(|c| c.type_ == "PostMortemArchived").expect("condition");
    assert_eq!(cond.status, ConditionStatus::True, "the condition clears once archived");
    let head = client.head_object().bucket(&b).key("pm/shop/oms-5xx.json").send().await.expect("archived object");
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    op.stop().await;
}

/// OOMKilled oms: a person rejects the first proposal (a memory raise), approves the scale-out
/// that follows, and the incident resolves when the alarm clears. Nothing is auto-approved.
async fn reject_memory_then_approve_scale(env: &Env, mut a: RunArgs) -> Running {
    create_memory_hungry_deployment(env, 2, "256Mi").await;
    wait_oom_killed(env).await;
    a.max_auto_approve_risk = "None".into();
    let op = start_operator(env, a).await;
    create_incident(env, "oms-oom", "memory pressure").await;
    wait_remediation_phase(env, "oms-oom-r1", "AwaitingApproval").await;
    decide(env, "oms-oom-r1", json!({"state": "Rejected", "feedback": "memory budget is fixed; scale out instead", "by": "alice"})).await;
    wait_remediation_phase(env, "oms-oom-r2", "AwaitingApproval").await;
    decide(env, "oms-oom-r2", json!({"state": "Approved", "by": "alice"})).await;
    eventually("scaled to 3", || async { (deployment(env).await.spec.replicas == Some(3)).then_some(()) }).await;
    // The pods still need more than their limit; spread over three, the 5xx rate falls under
    // the threshold and CloudWatch's OK verifies the scale-out.
    alarm_returns_to_ok(env, "oms-oom").await;
    wait_incident_phase(env, "oms-oom", "Resolved").await;
    op
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_then_resolved_incident_replays_offline_to_the_same_action() {
    let env = env().await;
    let op = reject_memory_then_approve_scale(&env, args("replica-a")).await;

    let pm = eventually("post-mortem written", || async { config_map_post_mortem(&env, "oms-oom").await }).await;
    let ctx = &pm["simulation_context"];
    assert_eq!(ctx["feedback"], json!(["memory budget is fixed; scale out instead"]));
    assert_eq!(ctx["excluded_actions"], json!(["SetDeploymentResources"]), "the rejected kind was excluded from the last diagnosis");
    let outcomes: Vec<&str> = pm["remediation_action"].as_array().expect("list").iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["Rejected", "Succeeded"]);
    let replay = replay_offline(&parse_post_mortem(&pm.to_string()).expect("parse")).expect("replay");
    assert!(replay.category_matches && replay.prompt_hash_matches, "same inputs, same rules: {replay:?}");
    // The status apply replaces the old status (as pruning does), so nothing of the rejected
    // proposal lingers in the recorded action: the replay matches it exactly.
    assert!(replay.matches, "{replay:?}");
    let action = replay.replayed.proposed_action.expect("replayed action");
    assert_eq!((action.kind, action.replicas), (ActionKind::Scale, Some(3)));
    assert!(incident(&env, "oms-oom").await.status.expect("status").llm_usage.is_none(), "the offline rules are not an LLM call");
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_use_is_summed_over_attempts_in_status_and_post_mortem() {
    // The Bedrock client takes region and credentials from the AWS chain: tests/moto.sh sets them.
    require_moto();
    let (_, url) = stand_in(vec![
        Reply::Tool(json!({"root_cause_category": "Resource_Limit", "summary": "OOMKilled at 256Mi", "confidence": 0.8,
            "proposed_action": {"kind": "SetDeploymentResources", "targetName": "oms", "container": "oms", "memoryLimit": "512Mi"}})),
        Reply::Tool(json!({"root_cause_category": "Resource_Limit", "summary": "scale out instead", "confidence": 0.7,
            "proposed_action": {"kind": "Scale", "targetName": "oms", "replicas": 3}})),
    ])
    .await;
    let env = env().await;
    let mut a = args("replica-a");
    a.bedrock_model_id = Some(MODEL.into());
    a.bedrock_endpoint_url = Some(url);
    let op = reject_memory_then_approve_scale(&env, a).await;
    let inc = incident(&env, "oms-oom").await;

    let usage = inc.status.expect("status").llm_usage.expect("llmUsage");
    assert_eq!((usage.calls, usage.input_tokens, usage.output_tokens), (2, 2400, 600));
    assert!((usage.estimated_cost_usd - 0.0162).abs() < 1e-9, "{}", usage.estimated_cost_usd);
    let pm = eventually("post-mortem written", || async { config_map_post_mortem(&env, "oms-oom").await }).await;
    assert_eq!(pm["llm_usage"]["calls"], 2);
    assert_eq!(pm["llm_usage"]["inputTokens"], 2400);
    let recorded = &pm["simulation_context"]["recorded_diagnosis"];
    assert_eq!(recorded["model"], MODEL);
    assert_eq!(recorded["inputTokens"], 1200);
    assert!(recorded["promptHash"].as_str().is_some_and(|h| h.starts_with("sha256:")));
    assert_eq!(pm["simulation_context"]["feedback"], json!(["memory budget is fixed; scale out instead"]));
    op.stop().await;
}
