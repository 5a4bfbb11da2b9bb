//! API-server semantics of the fake (a TEST STAND-IN) that clients depend on, checked through a
//! kube-rs `Client` as the operator uses it: schema validation, pruning and defaulting of custom
//! resources, paginated lists, deletion propagation, filtered watches, log filters, eviction;
//! authentication, RBAC and validating admission policies in `api_semantics/access.rs`.

#[path = "api_semantics/access.rs"]
mod access;

use std::time::Duration;

use fake_kube::FakeKube;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, EvictParams, ListParams, LogParams, Patch, PatchParams, PostParams, Preconditions,
    WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{Value, json};

async fn client(fake: &FakeKube) -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml("default")).expect("kubeconfig");
    let mut cfg = Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    // kube-rs retries 429s (15 times, backing off up to minutes) by default; these tests want to
    // see the server's first answer.
    cfg.default_retry = false;
    Client::try_from(cfg).expect("client")
}

fn api_error(r: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// An Incident-like CRD exercising every schema keyword the fake validates.
async fn incidents(c: &Client) -> Api<DynamicObject> {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "incidents.salve.dev"},
        "spec": {"group": "salve.dev", "scope": "Namespaced",
            "names": {"plural": "incidents", "singular": "incident", "kind": "Incident"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["service", "severity"],
                        "x-kubernetes-validations": [{"rule": "self.service != 'forbidden'", "message": "no forbidden service"}],
                        "properties": {
                            "service": {"type": "string", "minLength": 2, "maxLength": 20, "pattern": "^[a-z][a-z0-9-]*$"},
                            "severity": {"type": "string", "enum": ["Critical", "High"]},
                            "replicas": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
                            "ratio": {"type": "number"},
                            "paused": {"type": "boolean", "default": false},
                            "port": {"x-kubernetes-int-or-string": true},
                            "owner": {"type": "string", "nullable": true},
                            "tags": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string"}},
                            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "target": {"type": "object", "properties": {"kind": {"type": "string", "default": "Deployment"},
                                                                         "name": {"type": "string"}}}}},
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string", "enum": ["Investigating", "Resolved"]},
                        "attempts": {"type": "integer", "minimum": 0, "default": 0}}}}}}}]}
    }))
    .expect("crd");
    Api::<CustomResourceDefinition>::all(c.clone()).create(&PostParams::default(), &crd).await.expect("crd");
    let ar = ApiResource {
        group: "salve.dev".into(),
        version: "v1".into(),
        api_version: "salve.dev/v1".into(),
        kind: "Incident".into(),
        plural: "incidents".into(),
    };
    Api::namespaced_with(c.clone(), "default", &ar)
}

fn incident(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "salve.dev/v1", "kind": "Incident", "metadata": {"name": name}, "spec": spec}))
        .expect("incident")
}

#[tokio::test]
async fn custom_resource_writes_are_validated_against_the_schema() {
    let fake = FakeKube::start().await.expect("start");
    let api = incidents(&client(&fake).await).await;

    let e = api_error(api.create(&PostParams::default(), &incident("x", json!({"service": 42, "severity": "Apocalyptic"}))).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with("Incident.salve.dev \"x\" is invalid: ["), "{}", e.message);
    assert!(
        e.message.contains(r#"spec.severity: Unsupported value: "Apocalyptic": supported values: "Critical", "High""#),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(r#"spec.service: Invalid value: "integer": spec.service in body must be of type string: "integer""#),
        "{}",
        e.message
    );
    let causes = e.details.expect("details").causes;
    assert!(causes.iter().any(|c| c.field == "spec.severity" && c.reason == "FieldValueNotSupported"));
    assert!(causes.iter().any(|c| c.field == "spec.service" && c.reason == "FieldValueTypeInvalid"));

    let e = api_error(api.create(&PostParams::default(), &incident("x", json!({"service": "oms"}))).await);
    assert_eq!(e.message, "Incident.salve.dev \"x\" is invalid: spec.severity: Required value");

    for (spec, expected) in [
        (
            json!({"service": "oms", "severity": "High", "replicas": 0}),
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
        ),
        (
            json!({"service": "oms", "severity": "High", "replicas": 6}),
            "spec.replicas: Invalid value: 6: spec.replicas in body should be less than or equal to 5",
        ),
        (
            json!({"service": "o", "severity": "High"}),
            "spec.service: Invalid value: \"o\": spec.service in body should be at least 2 chars long",
        ),
        (json!({"service": "a-very-long-service-name", "severity": "High"}), "spec.service: Too long: may not be longer than 20"),
        (
            json!({"service": "OMS", "severity": "High"}),
            "spec.service: Invalid value: \"OMS\": spec.service in body should match '^[a-z][a-z0-9-]*$'",
        ),
        (
            json!({"service": "oms", "severity": "High", "tags": []}),
            "spec.tags: Invalid value: []: spec.tags in body should have at least 1 items",
        ),
        (json!({"service": "oms", "severity": "High", "tags": ["a", "b", "c", "d"]}), "spec.tags: Too many: 4: must have at most 3 items"),
        (
            json!({"service": "oms", "severity": "High", "tags": ["a", 1]}),
            "spec.tags[1]: Invalid value: \"integer\": spec.tags[1] in body must be of type string: \"integer\"",
        ),
        (
            json!({"service": "oms", "severity": "High", "port": true}),
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
        ),
        (
            json!({"service": "oms", "severity": "High", "ratio": "half"}),
            "spec.ratio: Invalid value: \"string\": spec.ratio in body must be of type number: \"string\"",
        ),
        (
            json!({"service": "oms", "severity": "High", "paused": "no"}),
            "spec.paused: Invalid value: \"string\": spec.paused in body must be of type boolean: \"string\"",
        ),
    ] {
        let e = api_error(api.create(&PostParams::default(), &incident("x", spec)).await);
        assert_eq!(e.message, format!("Incident.salve.dev \"x\" is invalid: {expected}"));
    }

    // Schema validation comes before CEL: a schema error hides the rule's message.
    let e = api_error(api.create(&PostParams::default(), &incident("x", json!({"service": "forbidden"}))).await);
    assert!(e.message.contains("Required value") && !e.message.contains("no forbidden service"), "{}", e.message);
    let e = api_error(api.create(&PostParams::default(), &incident("x", json!({"service": "forbidden", "severity": "High"}))).await);
    assert!(e.message.contains("no forbidden service"), "{}", e.message);

    // Valid values of every kind pass: int-or-string both ways, null where nullable, numbers.
    let ok = json!({"service": "oms", "severity": "High", "port": "http", "owner": null, "ratio": 1, "tags": ["a"]});
    api.create(&PostParams::default(), &incident("ok", ok)).await.expect("valid incident");
    let p = json!({"spec": {"port": 8080, "ratio": 0.5}});
    api.patch("ok", &PatchParams::default(), &Patch::Merge(&p)).await.expect("valid patch");

    // Updates are validated too: replace, merge patch, and the status subresource.
    let mut cur = api.get("ok").await.expect("get");
    cur.data["spec"]["severity"] = json!("Low");
    let e = api_error(api.replace("ok", &PostParams::default(), &cur).await);
    assert!(e.message.contains("spec.severity: Unsupported value: \"Low\""), "{}", e.message);
    let p = json!({"spec": {"replicas": "three"}});
    let e = api_error(api.patch("ok", &PatchParams::default(), &Patch::Merge(&p)).await);
    assert!(e.message.contains("spec.replicas in body must be of type integer: \"string\""), "{}", e.message);
    let s = json!({"status": {"phase": "Exploded"}});
    let e = api_error(api.patch_status("ok", &PatchParams::default(), &Patch::Merge(&s)).await);
    assert!(e.message.contains("status.phase: Unsupported value: \"Exploded\""), "{}", e.message);
    assert_eq!(api.get("ok").await.expect("get").data.get("status"), None, "rejected writes change nothing");
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_defaults_applied() {
    let fake = FakeKube::start().await.expect("start");
    let api = incidents(&client(&fake).await).await;
    let spec = json!({"service": "oms", "severity": "High", "typo": 1, "target": {"name": "oms", "bogus": true},
                      "extra": {"anything": {"goes": [1, 2]}}, "owner": null, "paused": null});
    let created = api.create(&PostParams::default(), &incident("a", spec)).await.expect("create");
    let spec = &created.data["spec"];
    assert_eq!(spec.get("typo"), None, "unknown field pruned, not rejected");
    assert_eq!(spec["target"], json!({"name": "oms", "kind": "Deployment"}), "nested prune + default");
    assert_eq!(spec["extra"], json!({"anything": {"goes": [1, 2]}}), "x-kubernetes-preserve-unknown-fields keeps everything");
    assert_eq!(spec["replicas"], json!(1));
    assert_eq!(spec["owner"], Value::Null, "null kept where nullable");
    assert_eq!(spec["paused"], json!(false), "null dropped where not nullable, then defaulted");
    let stored = fake.get("salve.dev", "incidents", "default", "a").expect("stored");
    assert_eq!(stored["spec"], created.data["spec"], "what is answered is what is stored");

    // Status writes are pruned and defaulted as well.
    let s = json!({"status": {"phase": "Investigating", "unknown": "x"}});
    let inc = api.patch_status("a", &PatchParams::default(), &Patch::Merge(&s)).await.expect("status");
    assert_eq!(inc.data["status"], json!({"phase": "Investigating", "attempts": 0}));
}

#[tokio::test]
async fn objects_stored_under_a_looser_schema_stay_readable_and_writable() {
    let fake = FakeKube::start().await.expect("start");
    let api = incidents(&client(&fake).await).await;
    let garbled = json!({"apiVersion": "salve.dev/v1", "kind": "Incident", "metadata": {"name": "garbled"},
                         "spec": {"service": 42, "severity": "Apocalyptic"}});
    fake.store_unvalidated("salve.dev", "v1", "incidents", "default", garbled).expect("stored");
    let got = api.get("garbled").await.expect("readable");
    assert_eq!(got.data["spec"]["service"], json!(42));
    // Ratcheting: a write that leaves the invalid fields alone is accepted...
    let s = json!({"status": {"phase": "Resolved"}});
    api.patch_status("garbled", &PatchParams::default(), &Patch::Merge(&s)).await.expect("status write ratchets");
    // ...one that changes them is validated.
    let p = json!({"spec": {"severity": "Worse"}});
    assert_eq!(api_error(api.patch("garbled", &PatchParams::default(), &Patch::Merge(&p)).await).code, 422);
}

fn cm(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("cm")
}

fn names(items: &[ConfigMap]) -> Vec<String> {
    items.iter().filter_map(|c| c.metadata.name.clone()).collect()
}

#[tokio::test]
async fn paginated_lists_are_consistent_snapshots() {
    let fake = FakeKube::start().await.expect("start");
    let c = client(&fake).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    for n in ["a", "b", "c", "d", "e"] {
        cms.create(&PostParams::default(), &cm(n, json!({"app": "shop"}))).await.expect("create");
    }
    let first = cms.list(&ListParams::default().limit(2)).await.expect("page 1");
    assert_eq!(names(&first.items), ["a", "b"]);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().expect("continue token");

    // Changes after the first page are not seen by later pages of the same list.
    cms.delete("c", &DeleteParams::default()).await.expect("delete");
    cms.create(&PostParams::default(), &cm("f", json!({"app": "shop"}))).await.expect("create");
    let p = json!({"metadata": {"labels": {"changed": "yes"}}});
    cms.patch("d", &PatchParams::default(), &Patch::Merge(&p)).await.expect("patch");
    let second = cms.list(&ListParams::default().limit(2).continue_token(&token)).await.expect("page 2");
    assert_eq!(names(&second.items), ["c", "d"]);
    assert!(second.items[1].metadata.labels.as_ref().is_some_and(|l| !l.contains_key("changed")), "the old version of d");
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
    let third = cms
        .list(&ListParams::default().limit(2).continue_token(second.metadata.continue_.as_deref().unwrap_or_default()))
        .await
        .expect("page 3");
    assert_eq!(names(&third.items), ["e"]);
    assert!(third.metadata.continue_.is_none());

    // A fresh list sees the present; selectors page too (no remainingItemCount then).
    let all = cms.list(&ListParams::default()).await.expect("all");
    assert_eq!(names(&all.items), ["a", "b", "d", "e", "f"]);
    let sel = cms.list(&ListParams::default().labels("changed=yes").limit(1)).await.expect("selected");
    assert_eq!((names(&sel.items), sel.metadata.remaining_item_count), (vec!["d".to_string()], None));

    // A token older than compaction is 410 Gone, with the real server's wording.
    let page = cms.list(&ListParams::default().limit(1)).await.expect("page");
    cms.create(&PostParams::default(), &cm("g", json!({}))).await.expect("create");
    fake.compact();
    let e =
        api_error(cms.list(&ListParams::default().limit(1).continue_token(page.metadata.continue_.as_deref().unwrap_or_default())).await);
    assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
    assert!(e.message.starts_with("The provided continue parameter is too old to display a consistent list result."), "{}", e.message);

    // kube-runtime's watcher pages through the initial list.
    let listed_before = fake.requests().into_iter().filter(|r| r.verb == "list" && r.query.contains("limit=2")).count();
    let mut events = watcher(cms.clone(), watcher::Config::default().page_size(2)).boxed();
    let mut listed = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await {
            Ok(Ok(Some(watcher::Event::InitApply(o)))) => listed.push(o),
            Ok(Ok(Some(watcher::Event::InitDone))) => break,
            Ok(Ok(Some(_))) => {}
            other => panic!("watcher: {other:?}"),
        }
    }
    assert_eq!(names(&listed), ["a", "b", "d", "e", "f", "g"]);
    let pages = fake.requests().into_iter().filter(|r| r.verb == "list" && r.query.contains("limit=2")).count();
    assert_eq!(pages - listed_before, 3, "the watcher paged through six objects two at a time");
}

fn owned(name: &str, owner: &ConfigMap, block: bool, finalizers: &[&str]) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "finalizers": finalizers, "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid, "blockOwnerDeletion": block}]}}))
    .expect("owned")
}

#[tokio::test]
async fn deletion_propagation_policies_and_preconditions() {
    let fake = FakeKube::start().await.expect("start");
    let cms: Api<ConfigMap> = Api::namespaced(client(&fake).await, "default");
    let gone = |r: Result<ConfigMap, kube::Error>| matches!(r, Err(kube::Error::Api(e)) if e.code == 404);

    // Foreground: the owner waits, marked, for the dependents that block its deletion.
    let owner = cms.create(&PostParams::default(), &cm("owner", json!({}))).await.expect("owner");
    cms.create(&PostParams::default(), &owned("blocker", &owner, true, &["test/hold"])).await.expect("dep");
    cms.create(&PostParams::default(), &owned("loose", &owner, false, &[])).await.expect("dep");
    cms.delete("owner", &DeleteParams::foreground()).await.expect("delete");
    let o = cms.get("owner").await.expect("owner still there");
    assert!(o.metadata.deletion_timestamp.is_some());
    assert_eq!(o.metadata.finalizers, Some(vec!["foregroundDeletion".to_string()]));
    assert!(gone(cms.get("loose").await), "non-blocking dependents are deleted too");
    assert!(cms.get("blocker").await.expect("held by its finalizer").metadata.deletion_timestamp.is_some());
    let rm = json!({"metadata": {"finalizers": null}});
    cms.patch("blocker", &PatchParams::default(), &Patch::Merge(&rm)).await.expect("release");
    assert!(gone(cms.get("blocker").await));
    assert!(gone(cms.get("owner").await), "owner removed once its blocking dependents are gone");

    // Orphan: dependents stay, without the reference to the deleted owner.
    let owner = cms.create(&PostParams::default(), &cm("owner2", json!({}))).await.expect("owner");
    cms.create(&PostParams::default(), &owned("kept", &owner, true, &[])).await.expect("dep");
    cms.delete("owner2", &DeleteParams::orphan()).await.expect("delete");
    assert!(gone(cms.get("owner2").await));
    assert_eq!(cms.get("kept").await.expect("orphan kept").metadata.owner_references, None);

    // Background (the default) keeps cascading.
    let owner = cms.create(&PostParams::default(), &cm("owner3", json!({}))).await.expect("owner");
    cms.create(&PostParams::default(), &owned("child", &owner, false, &[])).await.expect("dep");
    cms.delete("owner3", &DeleteParams::background()).await.expect("delete");
    assert!(gone(cms.get("child").await));

    // Preconditions: a stale uid or resourceVersion is a 409 and deletes nothing.
    let v = cms.create(&PostParams::default(), &cm("guarded", json!({}))).await.expect("create");
    let stale =
        DeleteParams { preconditions: Some(Preconditions { uid: Some("other".into()), resource_version: None }), ..Default::default() };
    let e = api_error(cms.delete("guarded", &stale).await);
    assert_eq!(e.code, 409);
    assert!(e.message.contains("Precondition failed: UID in precondition: other"), "{}", e.message);
    let stale = DeleteParams { preconditions: Some(Preconditions { uid: None, resource_version: Some("1".into()) }), ..Default::default() };
    assert_eq!(api_error(cms.delete("guarded", &stale).await).code, 409);
    let exact = DeleteParams {
        preconditions: Some(Preconditions { uid: v.metadata.uid.clone(), resource_version: v.metadata.resource_version.clone() }),
        ..Default::default()
    };
    cms.delete("guarded", &exact).await.expect("matching preconditions delete");
    assert!(gone(cms.get("guarded").await));
}

#[tokio::test]
async fn selector_watches_see_objects_leave_and_enter() {
    let fake = FakeKube::start().await.expect("start");
    let cms: Api<ConfigMap> = Api::namespaced(client(&fake).await, "default");
    let rv = cms.list(&ListParams::default()).await.expect("list").metadata.resource_version.expect("rv");
    let mut stream = cms.watch(&WatchParams::default().labels("app=shop").timeout(10), &rv).await.expect("watch").boxed();
    cms.create(&PostParams::default(), &cm("a", json!({"app": "shop"}))).await.expect("create");
    cms.create(&PostParams::default(), &cm("other", json!({"app": "other"}))).await.expect("create");
    let label = |v: &str| json!({"metadata": {"labels": {"app": v}}});
    cms.patch("a", &PatchParams::default(), &Patch::Merge(&label("gone"))).await.expect("leave");
    cms.patch("other", &PatchParams::default(), &Patch::Merge(&label("shop"))).await.expect("enter");
    cms.patch("a", &PatchParams::default(), &Patch::Merge(&json!({"data": {"k": "v"}}))).await.expect("unseen change");
    cms.delete("other", &DeleteParams::default()).await.expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await else { break };
        seen.push(match ev.expect("event") {
            WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.unwrap_or_default()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.unwrap_or_default()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap_or_default()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["ADDED a", "DELETED a", "ADDED other", "DELETED other"]);
}

#[tokio::test]
async fn pod_logs_filter_by_time_and_show_timestamps() {
    let fake = FakeKube::start().await.expect("start");
    let pods: Api<Pod> = Api::namespaced(client(&fake).await, "default");
    let now = chrono::Utc::now();
    let old = now - chrono::Duration::seconds(3600);
    fake.set_container_log_lines("default", "p", "app", false, &[(old, "booting"), (old, "ready"), (now, "error: boom")]);
    let logs = |lp: LogParams| {
        let pods = pods.clone();
        async move { pods.logs("p", &LogParams { container: Some("app".into()), ..lp }).await.expect("logs") }
    };
    assert_eq!(logs(LogParams::default()).await, "booting\nready\nerror: boom");
    assert_eq!(logs(LogParams { since_seconds: Some(60), ..Default::default() }).await, "error: boom");
    let since = k8s_openapi::jiff::Timestamp::from_second((now - chrono::Duration::seconds(60)).timestamp()).expect("ts");
    assert_eq!(logs(LogParams { since_time: Some(since), ..Default::default() }).await, "error: boom");
    assert_eq!(logs(LogParams { tail_lines: Some(2), ..Default::default() }).await, "ready\nerror: boom");
    let stamped = logs(LogParams { timestamps: true, tail_lines: Some(1), ..Default::default() }).await;
    let (ts, line) = stamped.split_once(' ').expect("timestamp prefix");
    assert_eq!(line, "error: boom");
    assert_eq!(chrono::DateTime::parse_from_rfc3339(ts).expect("RFC3339Nano"), now);
    assert_eq!(ts.split_once('.').map(|(_, f)| f.len()), Some(10), "nine fraction digits and Z: {ts}");

    // Text set without timestamps counts as written now; re-sent lines keep their time.
    fake.set_container_log("default", "q", "", false, "one");
    fake.set_container_log("default", "q", "", false, "one\ntwo");
    assert_eq!(pods.logs("q", &LogParams { since_seconds: Some(60), ..Default::default() }).await.expect("logs"), "one\ntwo");
}

#[tokio::test]
async fn eviction_honours_pod_disruption_budgets() {
    let fake = FakeKube::start().await.expect("start");
    let c = client(&fake).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    for (name, ready) in [("oms-1", true), ("oms-2", true), ("oms-3", false)] {
        let obj: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "oms"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}))
        .expect("pod");
        pods.create(&PostParams::default(), &obj).await.expect("pod");
        let status = if ready { "True" } else { "False" };
        let s = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&s)).await.expect("status");
    }
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "oms"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "oms"}}}}))
    .expect("pdb");
    Api::<PodDisruptionBudget>::namespaced(c.clone(), "default").create(&PostParams::default(), &pdb).await.expect("pdb served");
    // Two ready, one needed: one ready pod may go, the last one may not.
    pods.evict("oms-1", &EvictParams::default()).await.expect("first eviction allowed");
    assert!(matches!(pods.get("oms-1").await, Err(kube::Error::Api(e)) if e.code == 404), "evicted pod deleted");
    let e = api_error(pods.evict("oms-2", &EvictParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(e.message, "Cannot evict pod as it would violate the pod's disruption budget.");
    assert!(pods.get("oms-2").await.is_ok(), "refused eviction deletes nothing");
    // An unready pod may go while the budget is met (unhealthyPodEvictionPolicy IfHealthyBudget).
    pods.evict("oms-3", &EvictParams::default()).await.expect("unready pod evicted");
    assert_eq!(api_error(pods.evict("missing", &EvictParams::default()).await).code, 404);
    let logged = fake.requests().into_iter().filter(|r| r.resource == "pods/eviction" && r.verb == "create").count();
    assert_eq!(logged, 4);
}

/// A resourceVersion in a patch body is a precondition, for merge and server-side apply patches
/// alike: a write decided on a state that has changed since is a 409 Conflict, worded as the
/// real API server words it; the current resourceVersion passes.
#[tokio::test]
async fn a_resource_version_in_a_patch_is_a_precondition() {
    let fake = FakeKube::start().await.expect("fake");
    let c = client(&fake).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let read = api.create(&PostParams::default(), &cm("settings", json!({}))).await.expect("create");
    let rv = read.metadata.resource_version.clone().expect("resourceVersion");
    api.patch("settings", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "changed meanwhile"}}))).await.expect("patch");
    let stale = json!({"metadata": {"resourceVersion": rv}, "data": {"k": "decided on the old state"}});
    let e = api_error(api.patch("settings", &PatchParams::default(), &Patch::Merge(&stale)).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(e.message.contains("the object has been modified; please apply your changes to the latest version"), "{}", e.message);
    let applied =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "resourceVersion": rv}, "data": {"k": "x"}});
    let e = api_error(api.patch("settings", &PatchParams::apply("test").force(), &Patch::Apply(&applied)).await);
    assert_eq!(e.code, 409);
    let now = api.get("settings").await.expect("get").metadata.resource_version.expect("rv");
    let current = json!({"metadata": {"resourceVersion": now}, "data": {"k": "decided on the current state"}});
    let ok = api.patch("settings", &PatchParams::default(), &Patch::Merge(&current)).await.expect("current version passes");
    assert_eq!(ok.data.and_then(|d| d.get("k").cloned()).as_deref(), Some("decided on the current state"));
}
