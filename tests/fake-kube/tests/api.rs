//! Tests of the fake API server (a TEST STAND-IN) through real clients: kube-rs and kubectl.

use std::time::Duration;

use fake_kube::FakeKube;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::json;

async fn client(fake: &FakeKube) -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml("default")).expect("kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    Client::try_from(cfg).expect("client")
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "shop"}}, "data": {"k": v}})).expect("cm")
}

#[tokio::test]
async fn crud_list_and_selectors() {
    let fake = FakeKube::start().await.expect("start");
    let api: Api<ConfigMap> = Api::namespaced(client(&fake).await, "default");
    api.create(&PostParams::default(), &cm("a", "1")).await.expect("create");
    api.create(&PostParams::default(), &cm("b", "2")).await.expect("create");
    let dup = api.create(&PostParams::default(), &cm("a", "1")).await;
    assert!(matches!(dup, Err(kube::Error::Api(e)) if e.code == 409));
    let got = api.get("a").await.expect("get");
    assert!(got.metadata.uid.is_some() && got.metadata.creation_timestamp.is_some());
    let all = api.list(&ListParams::default().labels("app=shop")).await.expect("list");
    assert_eq!(all.items.len(), 2);
    let one = api.list(&ListParams::default().fields("metadata.name=b")).await.expect("list");
    assert_eq!(one.items.len(), 1);
    api.delete("a", &DeleteParams::default()).await.expect("delete");
    assert!(matches!(api.get("a").await, Err(kube::Error::Api(e)) if e.code == 404));
    let other: Api<ConfigMap> = Api::namespaced(client(&fake).await, "other");
    assert!(other.list(&ListParams::default()).await.expect("list").items.is_empty());
}

#[tokio::test]
async fn patches_status_and_generation() {
    let fake = FakeKube::start().await.expect("start");
    let c = client(&fake).await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}]}, {"name": "side", "image": "s:1"}]}}},
        "status": {"replicas": 99}
    })).expect("deploy");
    let created = api.create(&PostParams::default(), &d).await.expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.status.is_none(), "status is ignored on create");

    // strategic merge: env merged by name, other container kept
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}}});
    let d = api.patch("web", &PatchParams::default(), &Patch::Strategic(&p)).await.expect("smp");
    let spec = d.spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(spec.containers.len(), 2);
    assert_eq!(spec.containers[0].env.as_ref().map(Vec::len), Some(2));
    assert_eq!(d.metadata.generation, Some(2));

    // status subresource is separate from spec
    let st = json!({"status": {"readyReplicas": 1, "replicas": 1}});
    let d = api.patch_status("web", &PatchParams::default(), &Patch::Merge(&st)).await.expect("status");
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(1));
    assert_eq!(d.metadata.generation, Some(2), "status writes do not bump generation");
    let p = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 7}});
    let d = api.patch("web", &PatchParams::default(), &Patch::Merge(&p)).await.expect("merge");
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(1), "main resource ignores status");
    assert_eq!(d.metadata.generation, Some(3));

    // apply records the field manager; a no-op apply does not bump resourceVersion
    let a = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 4}});
    let d1 = api.patch("web", &PatchParams::apply("salve-operator"), &Patch::Apply(&a)).await.expect("apply");
    let d2 = api.patch("web", &PatchParams::apply("salve-operator"), &Patch::Apply(&a)).await.expect("apply");
    assert_eq!(d1.metadata.resource_version, d2.metadata.resource_version);
    let managers: Vec<String> = d2.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect();
    assert!(managers.contains(&"salve-operator".to_string()));
    // server-side dry run changes nothing
    let a = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 9}});
    let dry = api.patch("web", &PatchParams::apply("salve-operator").dry_run(), &Patch::Apply(&a)).await.expect("dry");
    assert_eq!(dry.spec.replicas, Some(9));
    assert_eq!(api.get("web").await.expect("get").spec.replicas, Some(4));

    // JSON patch, including kube-runtime's finalizer `test null` idiom
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["salve.dev/cleanup"]}
    ]))
    .expect("ops");
    let d = api.patch("web", &PatchParams::default(), &Patch::<()>::Json(jp)).await.expect("json patch");
    assert_eq!(d.metadata.finalizers, Some(vec!["salve.dev/cleanup".into()]));
    // a finalizer holds deletion: deletionTimestamp set, object stays until the finalizer goes
    api.delete("web", &DeleteParams::default()).await.expect("delete");
    let d = api.get("web").await.expect("still there");
    assert!(d.metadata.deletion_timestamp.is_some());
    let rm = json!({"metadata": {"finalizers": null}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&rm)).await.expect("unfinalize");
    assert!(matches!(api.get("web").await, Err(kube::Error::Api(e)) if e.code == 404));
}

#[tokio::test]
async fn owner_reference_cascade() {
    let fake = FakeKube::start().await.expect("start");
    let c = client(&fake).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let owner = cms.create(&PostParams::default(), &cm("owner", "1")).await.expect("owner");
    let uid = owner.metadata.uid.clone().expect("uid");
    let child: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "child", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}}))
    .expect("child");
    cms.create(&PostParams::default(), &child).await.expect("child");
    cms.delete("owner", &DeleteParams::default()).await.expect("delete");
    assert!(matches!(cms.get("child").await, Err(kube::Error::Api(e)) if e.code == 404));
}

#[tokio::test]
async fn watch_resumes_bookmarks_and_expires() {
    let fake = FakeKube::start().await.expect("start");
    let c = client(&fake).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let list = pods.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("rv");
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p1"}})).expect("pod");
    pods.create(&PostParams::default(), &p).await.expect("create");
    let mut stream = pods.watch(&WatchParams { bookmarks: true, ..WatchParams::default() }.timeout(5), &rv).await.expect("watch").boxed();
    let mut saw_added = false;
    let mut saw_bookmark = false;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.ok().flatten() {
        match ev.expect("event") {
            WatchEvent::Added(p) => saw_added = p.metadata.name.as_deref() == Some("p1"),
            WatchEvent::Bookmark(_) => saw_bookmark = true,
            _ => {}
        }
        if saw_added && saw_bookmark {
            break;
        }
    }
    assert!(saw_added && saw_bookmark);

    fake.compact();
    let mut stream = pods.watch(&WatchParams::default(), &rv).await.expect("watch").boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }

    // kube-runtime's watcher lists, watches and sees later changes
    let mut w = watcher(pods.clone(), watcher::Config::default()).applied_objects().boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("timely").expect("item").expect("ok");
    assert_eq!(first.metadata.name.as_deref(), Some("p1"));
    let p2: Pod = serde_json::from_value(json!({"metadata": {"name": "p2"}})).expect("pod");
    pods.create(&PostParams::default(), &p2).await.expect("create");
    let next = tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("timely").expect("item").expect("ok");
    assert_eq!(next.metadata.name.as_deref(), Some("p2"));
}

#[tokio::test]
async fn lease_replace_uses_optimistic_concurrency() {
    let fake = FakeKube::start().await.expect("start");
    let leases: Api<Lease> = Api::namespaced(client(&fake).await, "default");
    let l: Lease = serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {"holderIdentity": "a"}})).expect("lease");
    let l = leases.create(&PostParams::default(), &l).await.expect("create");
    let mut stale = l.clone();
    let mut fresh = l.clone();
    fresh.spec.as_mut().expect("spec").holder_identity = Some("b".into());
    leases.replace("x", &PostParams::default(), &fresh).await.expect("first writer wins");
    stale.spec.as_mut().expect("spec").holder_identity = Some("c".into());
    let r = leases.replace("x", &PostParams::default(), &stale).await;
    assert!(matches!(r, Err(kube::Error::Api(e)) if e.code == 409));
}

#[tokio::test]
async fn crds_are_discoverable_and_kubectl_prints_columns() {
    let fake = FakeKube::start().await.expect("start");
    let c = client(&fake).await;
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.dev"},
        "spec": {"group": "example.dev", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                        "x-kubernetes-validations": [{"rule": "self.color != 'red'", "message": "no red widgets"}],
                        "properties": {"color": {"type": "string"}}}}}},
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                                             {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}
    }))
    .expect("crd");
    Api::all(c.clone()).create(&PostParams::default(), &crd).await.expect("crd create");
    let discovery = kube::Discovery::new(c.clone()).run().await.expect("discovery");
    let (ar, caps) = discovery.resolve_gvk(&kube::api::GroupVersionKind::gvk("example.dev", "v1", "Widget")).expect("widget discovered");
    assert_eq!(ar.plural, "widgets");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "widgets/status") || !caps.subresources.is_empty());
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let w: kube::api::DynamicObject = serde_json::from_value(json!({"apiVersion": "example.dev/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"color": "blue"}}))
    .expect("w");
    widgets.create(&PostParams::default(), &w).await.expect("create widget");
    let red: kube::api::DynamicObject = serde_json::from_value(json!({"apiVersion": "example.dev/v1", "kind": "Widget",
        "metadata": {"name": "w2"}, "spec": {"color": "red"}}))
    .expect("w");
    let err = widgets.create(&PostParams::default(), &red).await.expect_err("CEL rule enforced");
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("no red widgets")), "{err}");

    let dir = tempfile_dir();
    let kc = dir.join("kubeconfig");
    fake.write_kubeconfig(&kc, "default").expect("kubeconfig");
    let out = tokio::process::Command::new("kubectl")
        .env("KUBECACHEDIR", dir.join("cache"))
        .env("HOME", &dir)
        .args(["--kubeconfig", kc.to_str().unwrap_or_default(), "get", "wd"])
        .output()
        .await
        .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kubectl failed: {}", String::from_utf8_lossy(&out.stderr));
    let header = stdout.lines().next().unwrap_or_default();
    assert!(header.contains("NAME") && header.contains("COLOR") && header.contains("AGE"), "{stdout}");
    assert!(stdout.contains("w1") && stdout.contains("blue"), "{stdout}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("fake-kube-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}
