//! `approve` / `reject` / `score`: written through the fields the operator reads, with the
//! person's identity, and refused when the remediation is not awaiting approval.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kube::Api;
use operator::crd::incident::Incident;
use operator::crd::remediation::{ApprovalState, Remediation};
use operator::domain::approval::{ApprovalDecision, decide};

use crate::fixtures;
use crate::support::{self, NS};

async fn remediation(env: &support::Env, name: &str) -> Remediation {
    let api: Api<Remediation> = Api::namespaced(env.client.clone(), NS);
    api.get(name).await.expect("remediation")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_records_the_kubeconfig_user_and_the_operator_reads_it_as_a_persons_approval() {
    let env = support::start().await;
    fixtures::awaiting_approval(&env.client, NS, "oms-oom").await;
    let out = env.salve(&["approve", "oms-oom-memory"]).await.ok();
    // The fake serves no SelfSubjectReview and its token is opaque: the kubeconfig's user entry names us.
    assert!(out.stdout.contains("remediation.salve.dev/oms-oom-memory approved by fake"), "{}", out.stdout);
    let r = remediation(&env, "oms-oom-memory").await;
    let a = r.spec.approval.clone().expect("approval");
    assert_eq!((a.state, a.by.as_deref(), a.feedback.as_deref()), (ApprovalState::Approved, Some("fake"), None));
    assert_eq!(decide(Some((a.state, a.by.as_deref())), false), ApprovalDecision::ApprovedByPerson);

    // Decided once: a second decision is refused and nothing is written.
    let patches = env.patches();
    let again = env.salve(&["reject", "oms-oom-memory", "--feedback", "changed my mind"]).await;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("is not awaiting approval") && again.stderr.contains("Approved by fake"), "{}", again.stderr);
    assert_eq!(env.patches(), patches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_is_signed_with_the_name_the_api_server_vouches_for_which_the_approval_policy_requires() {
    let env = support::start_enforcing().await;
    fixtures::awaiting_approval(&env.client, NS, "oms-oom").await;
    // The kubeconfig's user entry is called "fake"; the API server knows the token as alice.
    env.fake.add_user("alice-token", "alice", &["sre"]);
    env.fake.add_user("bob-token", "bob", &["sre"]);
    let alice = env.write_kubeconfig("alice", &env.fake.kubeconfig_yaml_as(NS, "alice-token"));
    let bob = env.write_kubeconfig("bob", &env.fake.kubeconfig_yaml_as(NS, "bob-token"));

    // Bob cannot sign for Alice by hand: the approval policy refuses it, with its reason.
    let forged = serde_json::json!({"spec": {"approval": {"state": "Approved", "by": "alice"}}});
    let kc = kube::config::Kubeconfig::read_from(&bob).expect("kubeconfig");
    let bob_client =
        kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config")).expect("client");
    let refused = Api::<Remediation>::namespaced(bob_client, NS)
        .patch("oms-oom-memory", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&forged))
        .await;
    let Err(kube::Error::Api(e)) = refused else { panic!("a forged approval was accepted: {refused:?}") };
    assert_eq!(e.code, 422);
    assert!(e.message.contains("ValidatingAdmissionPolicy 'salve-approvals' with binding 'salve-approvals' denied request: spec.approval.by must be your own user name (bob)"), "{}", e.message);

    // `kubectl salve approve` asks the server who we are and signs with that name: admitted.
    let out = support::run_with_kubeconfig(&alice, env.dir.path(), &["approve", "oms-oom-memory"]).await.ok();
    assert!(out.stdout.contains("remediation.salve.dev/oms-oom-memory approved by alice"), "{}", out.stdout);
    let a = remediation(&env, "oms-oom-memory").await.spec.approval.expect("approval");
    assert_eq!((a.state, a.by.as_deref()), (ApprovalState::Approved, Some("alice")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_needs_feedback_and_records_it_with_the_tokens_subject() {
    let env = support::start().await;
    fixtures::awaiting_approval(&env.client, NS, "oms-oom").await;
    let before = env.patches();

    let missing = env.salve(&["reject", "oms-oom-memory"]).await;
    assert_eq!(missing.code, 2, "clap usage error: {}", missing.stderr);
    assert!(missing.stderr.contains("--feedback"), "{}", missing.stderr);
    let blank = env.salve(&["reject", "oms-oom-memory", "--feedback", "  "]).await;
    assert_eq!(blank.code, 1);
    assert!(blank.stderr.contains("a rejection needs feedback"), "{}", blank.stderr);
    assert_eq!(env.patches(), before, "nothing is written");

    // A ServiceAccount (JWT) token: its subject is who rejected.
    let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"system:serviceaccount:shop:oncall"}"#);
    let yaml = env.fake.kubeconfig_yaml_as(NS, &format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2lnbmF0dXJl"));
    let kubeconfig = env.write_kubeconfig("oncall", &yaml);
    let args = ["reject", "oms-oom-memory", "--feedback", "memory is not the problem: a config change broke the pool"];
    let out = support::run_with_kubeconfig(&kubeconfig, env.dir.path(), &args).await.ok();
    assert!(out.stdout.contains("rejected by system:serviceaccount:shop:oncall"), "{}", out.stdout);
    let a = remediation(&env, "oms-oom-memory").await.spec.approval.expect("approval");
    assert_eq!(a.state, ApprovalState::Rejected);
    assert_eq!(a.by.as_deref(), Some("system:serviceaccount:shop:oncall"));
    assert_eq!(a.feedback.as_deref(), Some("memory is not the problem: a config change broke the pool"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remediation_past_approval_is_refused_with_its_phase() {
    let env = support::start().await;
    fixtures::resolved(&env.client, NS, "oms-oom").await;
    let before = env.patches();
    let out = env.salve(&["approve", "oms-oom-memory"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("remediation \"oms-oom-memory\" is not awaiting approval: its phase is Succeeded"), "{}", out.stderr);
    assert_eq!(env.patches(), before, "nothing is written");
    let missing = env.salve(&["approve", "no-such-fix"]).await;
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("remediation \"no-such-fix\" not found in namespace \"shop\""), "{}", missing.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_sets_the_annotation_the_operator_reads_and_refuses_out_of_range() {
    let env = support::start().await;
    fixtures::resolved(&env.client, NS, "oms-oom").await;
    let out = env.salve(&["score", "oms-oom", "4"]).await.ok();
    assert!(out.stdout.contains("scored 4/5; the post-mortem is rewritten with it"), "{}", out.stdout);
    let api: Api<Incident> = Api::namespaced(env.client.clone(), NS);
    let inc = api.get("oms-oom").await.expect("incident");
    assert_eq!(inc.metadata.annotations.unwrap_or_default().get("salve.dev/feedback-score").map(String::as_str), Some("4"));

    let patches = env.patches();
    for bad in ["0", "6", "four"] {
        let r = env.salve(&["score", "oms-oom", bad]).await;
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
    }
    assert_eq!(env.patches(), patches);
}
