//! Status is written before any Event, and a model answer is paid for once: when the status
//! write after a diagnosis fails, the next reconcile records the answer it already has.

use fake_kube::Fault;
use serde_json::json;

use crate::support::bedrock_stand_in::{MODEL, Reply, stand_in};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_status_write_after_diagnosis_neither_asks_the_model_again_nor_repeats_events() {
    let answer = json!({"root_cause_category": "Config_Error", "summary": "POOL_SIZE=0 crashes the pool", "confidence": 0.9,
        "cited_evidence": ["POOL_SIZE must be > 0"],
        "proposed_action": {"kind": "SetConfigMapKey", "targetName": CM, "key": "POOL_SIZE", "value": "10"}});
    // A second answer is scripted so that a repeated call would succeed (and be visible).
    let (bedrock, url) = stand_in(vec![Reply::Tool(answer.clone()), Reply::Tool(answer)]).await;
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    break_config(&env).await;
    // The first status write (Detected -> Investigating) passes; the one carrying the
    // diagnosis fails once, as an overloaded API server would answer.
    env.fake.fail_requests(Fault {
        method: "PATCH".into(),
        path_suffix: "/incidents/oms-5xx/status".into(),
        status: 500,
        skip: 1,
        times: 1,
    });
    let mut a = args("replica-a");
    a.bedrock_model_id = Some(MODEL.into());
    a.bedrock_endpoint_url = Some(url);
    a.max_auto_approve_risk = "None".into();
    let op = start_operator(&env, a).await;
    create_incident(&env, "oms-5xx", "5xx > 5%").await;
    let inc = wait_incident_phase(&env, "oms-5xx", "Remediating").await;

    assert_eq!(bedrock.requests.lock().expect("lock").len(), 1, "the model was asked once");
    let usage = inc.status.as_ref().and_then(|s| s.llm_usage.clone()).expect("usage");
    assert_eq!(usage.calls, 1, "and that one call is what the Incident records");
    wait_event(&env, "Diagnosed").await;
    let diagnosed = events(&env).await.into_iter().filter(|e| e.reason.as_deref() == Some("Diagnosed")).count();
    assert_eq!(diagnosed, 1, "the Diagnosed Event is published once, after the write that succeeded");
    op.stop().await;
}
