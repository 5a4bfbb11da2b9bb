//! Permanent errors end in a `Stalled` condition and one Warning Event, never in a silent
//! retry loop; names of any valid length give valid labels and derived names.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::*;

/// A 70-character Incident name is valid, but too long for a label value: the Remediation is
/// still created (label hashed) and the incident resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_with_a_long_name_is_remediated_and_resolved() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let op = start_operator(&env, args("replica-a")).await;
    let name = format!("oms-5xx-{}", "a".repeat(62));
    break_config(&env).await;
    create_incident(&env, &name, "5xx > 5%").await;
    eventually("previous value restored", || async { (config_value(&env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(()) })
        .await;
    let inc = wait_incident_phase(&env, &name, "Resolved").await;
    let rem_name = inc.status.expect("status").remediations.first().cloned().expect("a remediation");
    let rem = remediation(&env, &rem_name).await.expect("remediation exists");
    let label = rem.labels().get("salve.dev/incident").cloned().expect("label");
    assert!(label.len() <= 63 && label.starts_with("oms-5xx-"), "{label}");
    op.stop().await;
}

/// The API server rejects the Remediation (here a CEL rule an administrator added to the CRD:
/// config changes are frozen). The Incident says so in a `Stalled` condition and one Warning
/// Event, and the operator stops asking until the Incident changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remediation_the_api_server_rejects_stalls_the_incident_once() {
    let env = env().await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let mut crd = crds.get("remediations.salve.dev").await.expect("crd");
    let mut value = serde_json::to_value(&crd).expect("json");
    let rules =
        value.pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec").and_then(|s| s.as_object_mut()).expect("spec schema");
    rules.insert(
        "x-kubernetes-validations".into(),
        json!([{"rule": "self.action.kind != 'SetConfigMapKey'", "message": "config changes are frozen"}]),
    );
    crd = serde_json::from_value(value).expect("crd");
    crds.replace("remediations.salve.dev", &Default::default(), &crd).await.expect("replace crd");

    broken_config_setup(&env, json!({})).await;
    let op = start_operator(&env, args("replica-a")).await;
    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx > 5%").await;
    let inc = eventually("stalled", || async {
        let inc = incident(&env, "oms-5xx").await;
        let stalled = inc
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled" && c.status == operator::crd::ConditionStatus::True)?
            .clone();
        Some((inc, stalled))
    })
    .await;
    assert_eq!(inc.1.reason, "RejectedByAPIServer");
    assert!(inc.1.message.contains("config changes are frozen"), "{}", inc.1.message);
    let creates = || env.fake.requests().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/remediations")).count();
    // Writing the condition is itself a change of the Incident, so the controller may try once
    // more right after it (and, finding the same error, writes nothing): let that settle, then
    // nothing may follow.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let before = creates();
    assert!(before <= 2, "{before} creates before the stall settled");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(creates(), before, "no retry loop: the create is not repeated");
    let warnings: Vec<_> = events(&env).await.into_iter().filter(|e| e.reason.as_deref() == Some("RejectedByAPIServer")).collect();
    assert_eq!(warnings.len(), 1, "one Warning Event");
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    assert!(warnings[0].series.is_none(), "published once, not repeated");

    op.stop().await;
}
