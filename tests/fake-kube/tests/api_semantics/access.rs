//! Access control of the enforcing fake (`FakeKube::start_enforcing`), through kube-rs clients
//! with their own tokens: authentication (401), RBAC (403 worded as the API server words it,
//! subresources as their own resources) and validating admission policies, including the
//! approval policy Salve ships (`operator/examples/approval-policy.yaml`).

use fake_kube::FakeKube;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, LogParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde_json::{Value, json};

use super::api_error;

const REMEDIATIONS_CRD: &str = include_str!("../../../../crds/remediations.salve.dev.yaml");
const APPROVAL_POLICY: &str = include_str!("../../../../operator/examples/approval-policy.yaml");
const OPERATOR: &str = "system:serviceaccount:salve-system:salve-operator";

async fn client_with(fake: &FakeKube, token: &str) -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml_as("shop", token)).expect("kubeconfig");
    let mut cfg = Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    cfg.default_retry = false;
    Client::try_from(cfg).expect("client")
}

async fn admin(fake: &FakeKube) -> Client {
    client_with(fake, fake_kube::ADMIN_TOKEN).await
}

/// The `Api` of one manifest's kind (those these tests create).
fn api_for(client: &Client, doc: &Value) -> Api<DynamicObject> {
    let api_version = doc["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = doc["kind"].as_str().expect("kind");
    let (plural, namespaced) = match kind {
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "ValidatingAdmissionPolicy" => ("validatingadmissionpolicies", false),
        "ValidatingAdmissionPolicyBinding" => ("validatingadmissionpolicybindings", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "Remediation" => ("remediations", true),
        "Incident" => ("incidents", true),
        other => panic!("no Api for {other}"),
    };
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match (namespaced, doc.pointer("/metadata/namespace").and_then(Value::as_str)) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        (true, None) => Api::namespaced_with(client.clone(), "shop", &ar),
        (false, _) => Api::all_with(client.clone(), &ar),
    }
}

async fn create(client: &Client, doc: Value) -> Result<DynamicObject, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(doc.clone()).expect("object");
    api_for(client, &doc).create(&PostParams::default(), &obj).await
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

async fn whoami(client: &Client) -> (String, Vec<String>) {
    let review = Api::<SelfSubjectReview>::all(client.clone()).create(&PostParams::default(), &SelfSubjectReview::default()).await;
    let user = review.expect("self-subject review").status.and_then(|s| s.user_info).expect("userInfo");
    (user.username.unwrap_or_default(), user.groups.unwrap_or_default())
}

#[tokio::test]
async fn an_unknown_token_is_401_and_the_server_says_who_a_known_one_is() {
    let fake = FakeKube::start_enforcing().await.expect("start");
    let unknown = client_with(&fake, "not-a-token-anyone-issued").await;
    let e = api_error(Api::<ConfigMap>::namespaced(unknown, "shop").list(&Default::default()).await);
    assert_eq!((e.code, e.reason.as_str(), e.message.as_str()), (401, "Unauthorized", "Unauthorized"));

    fake.add_user("alice-token", "alice", &["sre"]);
    let (name, groups) = whoami(&client_with(&fake, "alice-token").await).await;
    assert_eq!(name, "alice");
    assert_eq!(groups, ["sre", "system:authenticated"]);

    let sa = fake.service_account_token("salve-system", "salve-operator");
    let (name, groups) = whoami(&client_with(&fake, &sa).await).await;
    assert_eq!(name, OPERATOR);
    assert_eq!(groups, ["system:serviceaccounts", "system:serviceaccounts:salve-system", "system:authenticated"]);
    let logged = fake.requests();
    assert!(logged.iter().any(|r| r.status == 401 && r.user.is_empty()), "the refused request is logged without a user");
}

/// A namespaced custom resource with a status subresource.
async fn install_incidents(admin: &Client) {
    create(
        admin,
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "incidents.salve.dev"},
        "spec": {"group": "salve.dev", "scope": "Namespaced", "names": {"plural": "incidents", "singular": "incident", "kind": "Incident"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    )
    .await
    .expect("crd");
}

fn incident(name: &str) -> Value {
    json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "metadata": {"name": name}, "spec": {"service": "oms"}})
}

fn binding(kind: &str, name: &str, role_kind: &str, role: &str, subject: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name, "namespace": "shop"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": [subject]})
}

#[tokio::test]
async fn rbac_allows_what_is_bound_and_refuses_the_rest_in_the_api_servers_words() {
    let fake = FakeKube::start_enforcing().await.expect("start");
    let admin = admin(&fake).await;
    install_incidents(&admin).await;
    create(&admin, incident("oms-down")).await.expect("incident");
    fake.add_user("alice", "alice", &[]);
    fake.add_user("bob", "bob", &["sre"]);
    let alice = client_with(&fake, "alice").await;
    let incidents = |c: &Client| api_for(c, &incident("x"));
    let merge = |v: Value| Patch::Merge(v);

    // No binding: nothing.
    let e = api_error(incidents(&alice).get("oms-down").await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        r#"incidents.salve.dev "oms-down" is forbidden: User "alice" cannot get resource "incidents" in API group "salve.dev" in the namespace "shop""#
    );

    // A Role lets her patch incidents in shop, and nothing more: the status subresource is its
    // own resource, another namespace is another scope.
    create(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "incident-patcher", "namespace": "shop"},
        "rules": [{"apiGroups": ["salve.dev"], "resources": ["incidents"], "verbs": ["patch"]}]}),
    )
    .await
    .expect("role");
    create(&admin, binding("RoleBinding", "alice-patches", "Role", "incident-patcher", json!({"kind": "User", "name": "alice"})))
        .await
        .expect("binding");
    incidents(&alice).patch("oms-down", &PatchParams::default(), &merge(json!({"spec": {"service": "ims"}}))).await.expect("patch allowed");
    let e = api_error(
        incidents(&alice).patch_status("oms-down", &PatchParams::default(), &merge(json!({"status": {"phase": "Resolved"}}))).await,
    );
    assert_eq!(
        e.message,
        r#"incidents.salve.dev "oms-down" is forbidden: User "alice" cannot patch resource "incidents/status" in API group "salve.dev" in the namespace "shop""#
    );
    let incident_type = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("salve.dev", "v1alpha1", "Incident"), "incidents");
    let elsewhere = Api::<DynamicObject>::namespaced_with(alice.clone(), "other", &incident_type);
    assert_eq!(api_error(elsewhere.patch("oms-down", &PatchParams::default(), &merge(json!({"spec": {}}))).await).code, 403);
    let all: Api<DynamicObject> = Api::all_with(alice.clone(), &incident_type);
    let e = api_error(all.list(&Default::default()).await);
    assert_eq!(
        e.message,
        r#"incidents.salve.dev is forbidden: User "alice" cannot list resource "incidents" in API group "salve.dev" at the cluster scope"#
    );

    // A ClusterRole bound in one namespace, to a group; `*/status` is every status subresource.
    create(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "status-writer"},
        "rules": [{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]},
                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
    )
    .await
    .expect("cluster role");
    create(&admin, binding("RoleBinding", "sre-status", "ClusterRole", "status-writer", json!({"kind": "Group", "name": "sre"})))
        .await
        .expect("binding");
    let bob = client_with(&fake, "bob").await;
    incidents(&bob)
        .patch_status("oms-down", &PatchParams::default(), &merge(json!({"status": {"phase": "Resolved"}})))
        .await
        .expect("status");
    assert_eq!(api_error(incidents(&bob).patch("oms-down", &PatchParams::default(), &merge(json!({"spec": {}}))).await).code, 403);
    // pods get is not pods/log get.
    let e = api_error(Api::<Pod>::namespaced(bob.clone(), "shop").logs("web-0", &LogParams::default()).await);
    assert!(e.message.ends_with(r#"cannot get resource "pods/log" in API group "" in the namespace "shop""#), "{}", e.message);

    // A binding to a role that does not exist grants nothing, and the refusal says why.
    create(&admin, binding("RoleBinding", "ghost", "Role", "ghost", json!({"kind": "User", "name": "alice"}))).await.expect("binding");
    let e = api_error(incidents(&alice).get("oms-down").await);
    assert!(e.message.ends_with(r#"in the namespace "shop": RBAC: role.rbac.authorization.k8s.io "ghost" not found"#), "{}", e.message);
}

fn policy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name}, "spec": spec})
}

fn policy_binding(name: &str, policy: &str, actions: &[&str]) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
           "spec": {"policyName": policy, "validationActions": actions}})
}

fn config_map(name: &str, mode: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"mode": mode}})).expect("cm")
}

#[tokio::test]
async fn validating_admission_policies_deny_audit_and_fail_as_their_bindings_and_failure_policy_say() {
    let fake = FakeKube::start_enforcing().await.expect("start");
    let admin = admin(&fake).await;
    let configmaps = |ns: &str| Api::<ConfigMap>::namespaced(admin.clone(), ns);
    let rules = json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE", "UPDATE"]}]});
    create(&admin, policy("no-unsafe-mode", json!({"matchConstraints": rules,
        "matchConditions": [{"name": "not-kube-system", "expression": "request.namespace != 'kube-system'"}],
        "variables": [{"name": "mode", "expression": "has(object.data) && 'mode' in object.data ? object.data.mode : ''"}],
        "validations": [{"expression": "variables.mode != 'unsafe'", "messageExpression": "'mode unsafe is not for ' + request.userInfo.username"},
                        {"expression": "variables.mode != 'secret'", "reason": "Forbidden"},
                        {"expression": "oldObject == null || variables.mode != 'frozen' || oldObject.data.mode == 'frozen'", "message": "frozen is for new ConfigMaps"}]})))
    .await
    .expect("policy");
    create(&admin, policy_binding("no-unsafe-mode", "no-unsafe-mode", &["Deny"])).await.expect("binding");

    // Admission applies to everyone, system:masters included.
    let e = api_error(configmaps("shop").create(&PostParams::default(), &config_map("a", "unsafe")).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let cause =
        "ValidatingAdmissionPolicy 'no-unsafe-mode' with binding 'no-unsafe-mode' denied request: mode unsafe is not for test-admin";
    assert_eq!(e.message, format!(r#"configmaps "a" is forbidden: {cause}"#));
    assert_eq!(e.details.expect("details").causes[0].message, cause);
    // A reason picks the code; no message means the expression is named.
    let e = api_error(configmaps("shop").create(&PostParams::default(), &config_map("b", "secret")).await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert!(e.message.ends_with("denied request: failed expression: variables.mode != 'secret'"), "{}", e.message);
    // oldObject: an update is judged against what was stored.
    configmaps("shop").create(&PostParams::default(), &config_map("c", "safe")).await.expect("create");
    let frozen = Patch::Merge(json!({"data": {"mode": "frozen"}}));
    let e = api_error(configmaps("shop").patch("c", &PatchParams::default(), &frozen).await);
    assert!(e.message.ends_with("denied request: frozen is for new ConfigMaps"), "{}", e.message);
    configmaps("shop").create(&PostParams::default(), &config_map("d", "frozen")).await.expect("frozen from the start");
    // matchConditions: the policy does not apply.
    configmaps("kube-system").create(&PostParams::default(), &config_map("a", "unsafe")).await.expect("not matched");
    assert!(configmaps("shop").get_opt("a").await.expect("get").is_none(), "the refused ConfigMap was not stored");

    // Audit only: admitted, recorded.
    create(
        &admin,
        policy(
            "no-debug",
            json!({"matchConstraints": rules, "validations": [{"expression": "object.data.mode != 'debug'", "message": "debug mode"}]}),
        ),
    )
    .await
    .expect("policy");
    create(&admin, policy_binding("no-debug-audit", "no-debug", &["Audit"])).await.expect("binding");
    configmaps("shop").create(&PostParams::default(), &config_map("e", "debug")).await.expect("audited, admitted");
    assert_eq!(fake.admission_audit(), ["ValidatingAdmissionPolicy 'no-debug' with binding 'no-debug-audit': debug mode"]);

    // An expression that cannot be evaluated: Fail refuses, Ignore admits.
    for (policy_name, failure_policy) in [("strict", "Fail"), ("lenient", "Ignore")] {
        create(
            &admin,
            policy(
                policy_name,
                json!({"failurePolicy": failure_policy, "matchConstraints": rules,
            "validations": [{"expression": "object.data.owner == 'platform'"}]}),
            ),
        )
        .await
        .expect("policy");
    }
    create(&admin, policy_binding("lenient", "lenient", &["Deny"])).await.expect("binding");
    configmaps("shop").create(&PostParams::default(), &config_map("f", "safe")).await.expect("Ignore admits");
    create(&admin, policy_binding("strict", "strict", &["Deny"])).await.expect("binding");
    let e = api_error(configmaps("shop").create(&PostParams::default(), &config_map("g", "safe")).await);
    assert!(e.message.contains("denied request: expression 'object.data.owner == 'platform'' resulted in error"), "{}", e.message);
}

/// What Salve's approval policy is tested with: the Remediation CRD, the policy and its
/// binding as shipped, a ClusterRole letting every authenticated user create and patch
/// Remediations (so that only admission decides), and the operator's ServiceAccount.
struct Approvals {
    fake: FakeKube,
    admin: Client,
    operator: Client,
}

impl Approvals {
    async fn start() -> Self {
        let fake = FakeKube::start_enforcing().await.expect("start");
        let admin = admin(&fake).await;
        for doc in yaml_docs(REMEDIATIONS_CRD).into_iter().chain(yaml_docs(APPROVAL_POLICY)) {
            create(&admin, doc).await.expect("install");
        }
        create(&admin, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "remediation-writer"},
            "rules": [{"apiGroups": ["salve.dev"], "resources": ["remediations", "remediations/status"], "verbs": ["get", "create", "patch"]}]}))
        .await
        .expect("role");
        create(
            &admin,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "remediation-writer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "remediation-writer"},
            "subjects": [{"kind": "Group", "name": "system:authenticated"}]}),
        )
        .await
        .expect("binding");
        fake.add_user("alice", "alice", &["sre"]);
        fake.add_user("bob", "bob", &["sre"]);
        let token = fake.service_account_token("salve-system", "salve-operator");
        let operator = client_with(&fake, &token).await;
        Self { fake, admin, operator }
    }

    async fn as_user(&self, user: &str) -> Client {
        client_with(&self.fake, user).await
    }

    fn remediations(c: &Client) -> Api<DynamicObject> {
        api_for(c, &json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Remediation"}))
    }

    async fn create(&self, c: &Client, name: &str, approval: Value) -> Result<DynamicObject, kube::Error> {
        create(
            c,
            json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Remediation", "metadata": {"name": name},
            "spec": {"incidentRef": "oms-down", "risk": "High", "rationale": "OOMKilled",
                "action": {"kind": "SetDeploymentResources", "targetName": "oms", "memoryLimit": "512Mi"}, "approval": approval}}),
        )
        .await
    }

    async fn decide(&self, c: &Client, name: &str, approval: Value) -> Result<DynamicObject, kube::Error> {
        Self::remediations(c).patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"approval": approval}}))).await
    }
}

fn denial(e: &kube::core::Status) -> &str {
    e.message.split_once("denied request: ").map(|(_, m)| m).unwrap_or(&e.message)
}

#[tokio::test]
async fn an_approval_is_accepted_only_in_the_name_of_the_user_who_writes_it() {
    let t = Approvals::start().await;
    t.create(&t.operator, "fix", json!({"state": "Pending"})).await.expect("the operator creates it waiting for a person");
    let (alice, bob) = (t.as_user("alice").await, t.as_user("bob").await);

    // Alice forges Bob's approval.
    let e = api_error(t.decide(&alice, "fix", json!({"state": "Approved", "by": "bob"})).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with(r#"remediations.salve.dev "fix" is forbidden: ValidatingAdmissionPolicy 'salve-approvals' with binding 'salve-approvals' denied request: "#), "{}", e.message);
    assert_eq!(
        denial(&e),
        "spec.approval.by must be your own user name (alice): an approval, rejection or feedback is signed by the user who writes it"
    );
    // Nor may she pass it off as the policy's, nor may a cluster admin sign for her.
    let e = api_error(t.decide(&alice, "fix", json!({"state": "Approved", "by": "salve-operator/policy"})).await);
    assert_eq!(denial(&e), "only the operator signs as salve-operator/policy, when it creates a Remediation its policy approves");
    assert_eq!(api_error(t.decide(&t.admin, "fix", json!({"state": "Approved", "by": "alice"})).await).code, 422);

    // Bob approves as himself; Alice cannot change his feedback or take his approval away.
    t.decide(&bob, "fix", json!({"state": "Approved", "by": "bob"})).await.expect("bob approves");
    assert_eq!(api_error(t.decide(&alice, "fix", json!({"feedback": "not so fast"})).await).code, 422);
    let e = api_error(
        Approvals::remediations(&alice).patch("fix", &PatchParams::default(), &Patch::Merge(json!({"spec": {"approval": null}}))).await,
    );
    assert!(denial(&e).starts_with("spec.approval.by must be your own user name (alice)"), "{}", e.message);
    // Rejection is signed the same way.
    t.decide(&alice, "fix", json!({"state": "Rejected", "by": "alice", "feedback": "memory is not the problem"}))
        .await
        .expect("alice rejects");
    let stored = Approvals::remediations(&t.admin).get("fix").await.expect("get");
    assert_eq!(stored.data["spec"]["approval"], json!({"state": "Rejected", "by": "alice", "feedback": "memory is not the problem"}));
}

#[tokio::test]
async fn the_operators_service_account_cannot_decide_in_a_persons_name() {
    let t = Approvals::start().await;
    // What the operator does: create Pending, or approved by its policy; write status.
    t.create(&t.operator, "waits", json!({"state": "Pending"})).await.expect("pending");
    t.create(&t.operator, "auto", json!({"state": "Approved", "by": "salve-operator/policy"})).await.expect("policy approval");
    Approvals::remediations(&t.operator)
        .patch_status("waits", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "AwaitingApproval"}})))
        .await
        .expect("status is not the approval");

    // What it cannot: approve or reject for a person, at creation or later, or approve by
    // policy what was left to a person.
    let person = "the operator's service account cannot approve, reject or give feedback in a person's name";
    let e = api_error(t.create(&t.operator, "forged", json!({"state": "Approved", "by": "alice"})).await);
    assert_eq!(denial(&e), person);
    let e = api_error(t.decide(&t.operator, "waits", json!({"state": "Approved", "by": "alice"})).await);
    assert_eq!(denial(&e), person);
    let e = api_error(t.decide(&t.operator, "waits", json!({"state": "Rejected", "by": OPERATOR, "feedback": "no"})).await);
    assert_eq!(denial(&e), person);
    let e = api_error(t.decide(&t.operator, "waits", json!({"state": "Approved", "by": "salve-operator/policy"})).await);
    assert_eq!(denial(&e), "only the operator signs as salve-operator/policy, when it creates a Remediation its policy approves");
    let stored = Approvals::remediations(&t.admin).get("waits").await.expect("get");
    assert_eq!(stored.data["spec"]["approval"]["state"], "Pending");
}
