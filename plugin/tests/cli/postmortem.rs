//! `postmortem` and `replay`: the full record from the ConfigMap (the status copy when the
//! ConfigMap cannot be read), as Markdown or JSON, and the offline replay of its diagnosis.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::DeleteParams;
use operator::crd::incident::PostMortem;

use crate::fixtures;
use crate::support::{self, NS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_mortem_reads_as_markdown_or_as_the_stored_json() {
    let env = support::start().await;
    let pm = fixtures::resolved(&env.client, NS, "oms-oom").await;
    let md = env.salve(&["postmortem", "oms-oom"]).await.ok().stdout;
    for want in [
        "# Post-mortem: shop/oms-oom",
        "| Root cause | Resource_Limit |",
        "| Outcome | Resolved |",
        "| Record | ConfigMap shop/oms-oom-postmortem key postmortem.json |",
        "### oms-oom-memory",
        "- Approval: Approved by alice",
        "- Verification: passed: every replica ready, no new restarts",
        "**Resolved**: the signal cleared",
    ] {
        assert!(md.contains(want), "missing {want:?} in\n{md}");
    }
    let json = env.salve(&["postmortem", "oms-oom", "-o", "json"]).await.ok().stdout;
    assert_eq!(serde_json::from_str::<PostMortem>(&json).expect("post-mortem JSON"), pm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_config_map_the_status_copy_is_shown_and_said_so() {
    let env = support::start().await;
    fixtures::resolved(&env.client, NS, "oms-oom").await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    cms.delete("oms-oom-postmortem", &DeleteParams::default()).await.expect("delete ConfigMap");
    let out = env.salve(&["postmortem", "oms-oom"]).await.ok();
    assert!(out.stderr.contains("ConfigMap shop/oms-oom-postmortem not found; showing the bounded copy"), "{}", out.stderr);
    assert!(out.stdout.contains("| Record | incident shop/oms-oom .status.postMortem (bounded copy) |"), "{}", out.stdout);

    fixtures::awaiting_approval(&env.client, NS, "ims-oom").await;
    let none = env.salve(&["postmortem", "ims-oom"]).await;
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("incident \"ims-oom\" has no post-mortem yet (phase Remediating)"), "{}", none.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reruns_the_recorded_diagnosis_and_reports_a_match() {
    let env = support::start().await;
    fixtures::resolved(&env.client, NS, "oms-oom").await;
    let text = env.salve(&["replay", "oms-oom"]).await.ok().stdout;
    assert!(text.contains("Verdict:    MATCH") && text.contains("Root cause matches: yes"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&env.salve(&["replay", "oms-oom", "-o", "json"]).await.ok().stdout).expect("json");
    assert_eq!(json["incident"], "shop/oms-oom");
    assert_eq!(json["matches"], true);
    assert_eq!(json["replayed"]["rootCauseCategory"], "Resource_Limit");
    env.salve(&["replay", "oms-oom", "--fail-on-mismatch"]).await.ok();
}
