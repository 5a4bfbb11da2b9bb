//! Pull-request remediation end to end: the real controllers against the fake API server and
//! fake-github (both TEST STAND-INs). The test plays the people (merge, close with a review) and
//! the GitOps controller + kubelet (roll-out, healthy pods). Outcomes only, never timings.

use crate::support::*;
use fake_github::FakeGithub;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use operator::config::RunArgs;
use operator::crd::{Incident, Remediation};
use serde_json::json;

const TOKEN: &str = "ghs_e2e_token";
const REPO: &str = "acme/gitops";
const VALUES: &str = "apps/oms/values.yaml";
const ORIGINAL: &str = "replicas: 2\nresources:\n  limits:\n    memory: 256Mi\n";
const REM: &str = "oms-5xx-pr";

async fn github() -> FakeGithub {
    let f = FakeGithub::start(TOKEN).await.expect("fake github");
    f.create_repo(REPO, "main", &[(VALUES, ORIGINAL)]);
    f
}

fn pr_args(identity: &str, gh: Option<&FakeGithub>) -> RunArgs {
    let mut a = args(identity);
    a.allowed_actions.push("PullRequest".into());
    a.github.repositories = vec![REPO.into()];
    a.github.allowed_paths = vec!["apps/".into()];
    a.github.poll_ms = 200;
    a.github.retry_ms = 200;
    if let Some(gh) = gh {
        a.github.api_url = gh.url();
        a.github.token = Some(TOKEN.parse().expect("token"));
    }
    a
}

/// An OOM-killed oms and an Incident already waiting on our Remediation (as if the incident
/// controller had created it), so only the pull-request path runs. Done before the operator
/// starts, so the incident controller never sees the Incident at `Detected`.
async fn setup(env: &Env) {
    create_memory_hungry_deployment(env, 2, "256Mi").await;
    wait_oom_killed(env).await;
    create_incident(env, "oms-5xx", "Threshold Crossed: 5xx > 5%").await;
    let st = json!({"status": {"phase": "Remediating", "remediations": [REM], "attempts": 1,
        "diagnosis": {"rootCauseCategory": "Resource_Limit", "summary": "oms is OOMKilled at 256Mi", "confidence": 0.8,
            "model": "rules/v1", "promptHash": "", "citedEvidence": ["oms pods OOMKilled (exit 137)"]}}});
    Api::<Incident>::namespaced(env.client.clone(), NS)
        .patch_status("oms-5xx", &PatchParams::default(), &Patch::Merge(&st))
        .await
        .expect("status");
    let inc = incident(env, "oms-5xx").await;
    let rem: Remediation = serde_json::from_value(json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Remediation",
        "metadata": {"name": REM, "ownerReferences": [{"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "name": "oms-5xx",
            "uid": inc.uid().expect("uid"), "controller": true}]},
        "spec": {"incidentRef": "oms-5xx", "risk": "Low", "rationale": "OOMKilled at 256Mi",
            "action": {"kind": "PullRequest", "targetName": "oms", "repository": REPO, "title": "Raise oms memory to 512Mi",
                "files": [{"path": VALUES, "search": "memory: 256Mi", "replace": "memory: 512Mi"}]},
            "verification": {"windowSeconds": 30}}}))
    .expect("remediation");
    Api::<Remediation>::namespaced(env.client.clone(), NS).create(&PostParams::default(), &rem).await.expect("create remediation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_pull_request_rolls_out_verifies_and_resolves_with_exactly_one_pr_across_a_restart() {
    let gh = github().await;
    let env = env().await;
    // The first operator dies after opening the PR (labelling keeps failing), before recording it.
    gh.fail_next("POST", "/labels", 503, 1000);
    setup(&env).await;
    let first = start_operator(&env, pr_args("replica-a", Some(&gh))).await;
    eventually("PR opened, labelling failing", || async {
        (gh.count("POST", "/pulls") == 1 && gh.count("POST", "/labels") >= 1).then_some(())
    })
    .await;
    first.kill();
    gh.clear_failures();

    let second = start_operator(&env, pr_args("replica-b", Some(&gh))).await;
    let rem = wait_remediation_phase(&env, REM, "AwaitingMerge").await;
    let rs = rem.status.expect("status");
    assert_eq!(gh.count("POST", "/pulls"), 1, "a restart never opens a second PR");
    let pulls = gh.pulls(REPO);
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!(pr.head, format!("salve/{REM}"));
    assert_eq!(pr.title, "Raise oms memory to 512Mi");
    for want in ["Resource_Limit", "oms is OOMKilled at 256Mi", "oms pods OOMKilled (exit 137)", "Verification plan", "shop/oms-5xx", REM] {
        assert!(pr.body.contains(want), "PR body lacks {want}: {}", pr.body);
    }
    assert_eq!(pr.labels, ["salve", "remediation", "Resource_Limit"]);
    assert_eq!(rs.pr_number, Some(pr.number));
    assert_eq!(rs.pr_state.as_deref(), Some("open"));
    assert!(rs.pr_url.as_deref().is_some_and(|u| u.ends_with(&format!("/pull/{}", pr.number))));
    let snap = rs.snapshot.expect("snapshot before anything was pushed");
    assert!(snap.undo_patch.contains("memory: 256Mi"), "previous contents saved: {}", snap.undo_patch);
    assert_eq!(gh.file(REPO, "main", VALUES).as_deref(), Some(ORIGINAL), "nothing merged by the operator");

    // A person merges; until the roll-out completes, nothing is verified.
    gh.merge(REPO, pr.number);
    let rem = wait_remediation_phase(&env, REM, "RollingOut").await;
    assert_eq!(rem.status.expect("status").pr_state.as_deref(), Some("merged"));
    gitops_rolls_out(&env).await;

    let rem = wait_remediation_phase(&env, REM, "Succeeded").await;
    let rs = rem.status.expect("status");
    assert_eq!(rs.verification.and_then(|v| v.passed), Some(true));
    assert!(rs.revert_pr_url.is_none());
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;
    assert_eq!(gh.count("POST", "/pulls"), 1);
    assert_eq!(gh.file(REPO, "main", VALUES), Some(ORIGINAL.replace("256Mi", "512Mi")));
    for reason in ["AutoApproved", "PullRequestOpened", "Merged", "RolledOut", "Verified"] {
        eventually(&format!("event {reason}"), || async {
            events(&env).await.iter().any(|e| e.reason.as_deref() == Some(reason)).then_some(())
        })
        .await;
    }
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_pull_request_is_a_rejection_whose_review_feeds_the_next_diagnosis() {
    let gh = github().await;
    let env = env().await;
    setup(&env).await;
    let op = start_operator(&env, pr_args("replica-a", Some(&gh))).await;
    wait_remediation_phase(&env, REM, "AwaitingMerge").await;

    let review = "Do not raise the limit: the cache leaks, cap CACHE_ENTRIES instead";
    gh.add_comment(REPO, 1, "looking");
    gh.add_review(REPO, 1, review, "CHANGES_REQUESTED");
    gh.close(REPO, 1);

    let rem = wait_remediation_phase(&env, REM, "Rejected").await;
    let rs = rem.status.expect("status");
    assert_eq!(rs.feedback.as_deref(), Some(review));
    assert_eq!(rs.pr_state.as_deref(), Some("closed"));
    let inc = eventually("incident took the feedback", || async {
        let i = incident(&env, "oms-5xx").await;
        i.status.as_ref().is_some_and(|s| s.feedback.iter().any(|f| f == review)).then_some(i)
    })
    .await;
    let st = inc.status.expect("status");
    assert!(
        st.timeline.iter().any(|t| t.phase.as_str() == "Investigating" && t.message.contains(review)),
        "back to diagnosis with the feedback: {:?}",
        st.timeline
    );
    assert_eq!(gh.count("POST", "/pulls"), 1);
    assert_eq!(gh.file(REPO, "main", VALUES).as_deref(), Some(ORIGINAL));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_github_configuration_a_pull_request_is_refused() {
    let env = env().await;
    setup(&env).await;
    let op = start_operator(&env, pr_args("replica-a", None)).await;
    let rem = wait_remediation_phase(&env, REM, "Refused").await;
    let c = rem.status.expect("status").conditions.into_iter().find(|c| c.type_ == "PolicyAllowed").expect("condition");
    assert_eq!(c.reason, "GitHubNotConfigured");
    assert!(c.message.contains("SALVE_GITHUB_TOKEN_FILE"), "{}", c.message);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_the_remediation_with_an_event() {
    let gh = github().await;
    let env = env().await;
    let mut a = pr_args("replica-a", Some(&gh));
    a.github.token = Some("wrong".parse().expect("token"));
    setup(&env).await;
    let op = start_operator(&env, a).await;
    let rem = wait_remediation_phase(&env, REM, "Failed").await;
    let c = rem.status.expect("status").conditions.into_iter().find(|c| c.type_ == "PullRequest").expect("condition");
    assert_eq!(c.reason, "GitHubError");
    assert!(c.message.contains("401"), "{}", c.message);
    assert_eq!(gh.writes(), 0, "nothing half-done");
    eventually("a warning Event says why", || async {
        events(&env).await.iter().any(|e| e.reason.as_deref() == Some("GitHubError") && e.type_.as_deref() == Some("Warning")).then_some(())
    })
    .await;
    op.stop().await;
}
