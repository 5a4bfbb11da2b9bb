//! StatefulSets, DaemonSets, Jobs, node-pressure eviction and `kubectl rollout`, each checked
//! against the behaviour Kubernetes documents for it (names, order, labels, status fields, the
//! controllers' and the kubelet's reasons and messages). Outcomes are polled with a generous
//! deadline; nothing is timed.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use salve_sandbox::clock::TimeScale;
use salve_sandbox::cluster::{Cluster, ClusterOptions, NodeOptions, ensure_namespace};
use salve_sandbox::controllers::running_and_ready;
use salve_sandbox::demo::apply;
use serde_json::{Value, json};

use super::{NS, cluster, events, eventually, scripted};

async fn pods_labelled(c: &Cluster, selector: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(c.client.clone(), NS).list(&ListParams::default().labels(selector)).await.expect("pods").items
}

fn label(p: &Pod, key: &str) -> Option<String> {
    p.labels().get(key).cloned()
}

fn stateful_set(name: &str, replicas: i32, policy: &str, container: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": policy, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_set_creates_ordinal_pods_in_order_updates_from_the_highest_and_respects_the_partition() {
    let (c, _dir) = cluster(10.0, Duration::from_secs(10)).await;
    apply::create_all(&c.client, NS, &[stateful_set("web", 3, "OrderedReady", scripted(json!({})))]).await.expect("create");
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), NS);
    // OrderedReady: web-N exists only once web-(N-1) is Running and Ready.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let ps = pods_labelled(&c, "app=web").await;
        let names: Vec<String> = ps.iter().map(|p| p.name_any()).collect();
        for p in &ps {
            let n: usize = p.name_any().strip_prefix("web-").and_then(|n| n.parse().ok()).expect("an ordinal name");
            if n > 0 {
                let prev = ps.iter().find(|q| q.name_any() == format!("web-{}", n - 1));
                assert!(prev.is_some_and(running_and_ready), "web-{n} exists before web-{} is Running and Ready: {names:?}", n - 1);
            }
        }
        let s = sets.get("web").await.expect("sts").status.unwrap_or_default();
        if s.ready_replicas == Some(3) && s.replicas == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "3 ready pods: {s:?} {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let set = sets.get("web").await.expect("sts");
    let status = set.status.clone().unwrap_or_default();
    let revision = status.update_revision.clone().expect("updateRevision");
    assert_eq!(status.current_revision.as_ref(), Some(&revision));
    assert!(revision.starts_with("web-"), "the revision is named after the set: {revision}");
    assert_eq!((status.current_replicas, status.updated_replicas, status.available_replicas), (Some(3), Some(3), Some(3)));
    assert_eq!(status.observed_generation, set.metadata.generation);
    for p in pods_labelled(&c, "app=web").await {
        assert_eq!(label(&p, "controller-revision-hash").as_ref(), Some(&revision));
        assert_eq!(label(&p, "statefulset.kubernetes.io/pod-name"), Some(p.name_any()));
        assert_eq!(p.spec.as_ref().and_then(|s| s.hostname.clone()), Some(p.name_any()));
        let owner = p.owner_references().first().cloned().expect("owner");
        assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("StatefulSet", "web", Some(true)));
    }
    let created: Vec<String> = events(&c)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("SuccessfulCreate") && e.involved_object.kind.as_deref() == Some("StatefulSet"))
        .filter_map(|e| e.message)
        .collect();
    for n in 0..3 {
        assert!(created.contains(&format!("create Pod web-{n} in StatefulSet web successful")), "{created:?}");
    }

    // RollingUpdate with partition 1: web-2 then web-1 take the new revision, web-0 keeps the old.
    let patch = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
        "template": {"spec": {"containers": [{"name": "app", "env": [{"name": "SANDBOX_SCRIPT", "value": "{}"}, {"name": "VERSION", "value": "2"}]}]}}}});
    sets.patch("web", &PatchParams::default(), &Patch::Strategic(patch)).await.expect("update");
    let new_revision = eventually("web-1 and web-2 at the update revision", 120, || async {
        let s = sets.get("web").await.ok()?.status?;
        let update = s.update_revision.clone()?;
        let ps = pods_labelled(&c, "app=web").await;
        let at = |n: usize| {
            ps.iter()
                .find(|p| p.name_any() == format!("web-{n}"))
                .filter(|p| running_and_ready(p))
                .and_then(|p| label(p, "controller-revision-hash"))
        };
        (update != revision
            && at(1).as_ref() == Some(&update)
            && at(2).as_ref() == Some(&update)
            && s.updated_replicas == Some(2)
            && s.ready_replicas == Some(3))
        .then_some(update)
    })
    .await;
    let web0 = pods_labelled(&c, "statefulset.kubernetes.io/pod-name=web-0").await;
    assert_eq!(
        web0.first().and_then(|p| label(p, "controller-revision-hash")).as_ref(),
        Some(&revision),
        "below the partition: not updated"
    );
    let s = sets.get("web").await.expect("sts").status.unwrap_or_default();
    assert_eq!((s.current_revision.as_ref(), s.update_revision.as_ref()), (Some(&revision), Some(&new_revision)));

    // Scale down: the highest ordinal goes first.
    sets.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.expect("scale");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let names: Vec<String> = pods_labelled(&c, "app=web").await.iter().map(|p| p.name_any()).collect();
        let has = |n: &str| names.iter().any(|x| x == n);
        assert!(has("web-1") || !has("web-2"), "web-1 went before web-2: {names:?}");
        if names == ["web-0"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "scale down to 1: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_stateful_set_creates_every_pod_at_once() {
    let (c, _dir) = cluster(10.0, Duration::from_secs(10)).await;
    // Never ready: OrderedReady would stop at db-0; Parallel creates all three anyway.
    let container = scripted(json!({"fail_readiness": true}));
    apply::create_all(&c.client, NS, &[stateful_set("db", 3, "Parallel", container)]).await.expect("create");
    let mut names = eventually("three pods", 60, || async {
        let names: Vec<String> = pods_labelled(&c, "app=db").await.iter().map(|p| p.name_any()).collect();
        (names.len() == 3).then_some(names)
    })
    .await;
    names.sort();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    let s = Api::<StatefulSet>::namespaced(c.client.clone(), NS).get("db").await.expect("sts").status.unwrap_or_default();
    assert_eq!(s.ready_replicas.unwrap_or(0), 0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_set_runs_one_pod_per_matching_node_and_rolls_it() {
    let (c, _dir) = cluster(10.0, Duration::from_secs(10)).await;
    let ds = |name: &str, selector: Value| {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"nodeSelector": selector, "containers": [scripted(json!({}))]}}}})
    };
    apply::create_all(&c.client, NS, &[ds("agent", json!({"kubernetes.io/os": "linux"})), ds("gpu", json!({"accelerator": "a100"}))])
        .await
        .expect("create");
    let sets: Api<DaemonSet> = Api::namespaced(c.client.clone(), NS);
    let s = eventually("the agent ready on the node", 60, || async {
        let s = sets.get("agent").await.ok()?.status?;
        (s.number_ready == 1 && s.number_available == Some(1)).then_some(s)
    })
    .await;
    assert_eq!((s.desired_number_scheduled, s.current_number_scheduled, s.number_misscheduled), (1, 1, 0));
    assert_eq!(s.updated_number_scheduled, Some(1));
    let ps = pods_labelled(&c, "app=agent").await;
    assert_eq!(ps.len(), 1, "one pod per node");
    let p = &ps[0];
    assert_eq!(p.spec.as_ref().and_then(|s| s.node_name.as_deref()), Some("sandbox-node"));
    let affinity = serde_json::to_value(p.spec.as_ref().and_then(|s| s.affinity.clone())).expect("affinity");
    assert_eq!(
        affinity.pointer("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0"),
        Some(&json!("sandbox-node"))
    );
    let tolerations: Vec<String> = p.spec.iter().flat_map(|s| s.tolerations.iter().flatten()).filter_map(|t| t.key.clone()).collect();
    assert!(tolerations.contains(&"node.kubernetes.io/memory-pressure".to_string()), "{tolerations:?}");
    let hash = label(p, "controller-revision-hash").expect("hash label");
    // A node selector that matches no node: nothing scheduled.
    let gpu = eventually("the gpu set's status", 30, || async { sets.get("gpu").await.ok()?.status }).await;
    assert_eq!((gpu.desired_number_scheduled, gpu.current_number_scheduled), (0, 0));
    assert!(pods_labelled(&c, "app=gpu").await.is_empty());
    // RollingUpdate: the pod is replaced by one with the new template's hash.
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"rev": "2"}}}}});
    sets.patch("agent", &PatchParams::default(), &Patch::Merge(patch)).await.expect("update");
    eventually("the updated agent ready", 60, || async {
        let ps = pods_labelled(&c, "app=agent").await;
        let s = sets.get("agent").await.ok()?.status?;
        (ps.len() == 1
            && label(&ps[0], "controller-revision-hash") != Some(hash.clone())
            && running_and_ready(&ps[0])
            && s.updated_number_scheduled == Some(1)
            && s.number_ready == 1)
            .then_some(())
    })
    .await;
    c.stop().await;
}

fn job(name: &str, spec: Value, restart_policy: &str, script: Value) -> Value {
    let mut container = scripted(script);
    container.as_object_mut().expect("container").remove("readinessProbe");
    let mut s = json!({"template": {"spec": {"restartPolicy": restart_policy, "containers": [container]}}});
    if let (Some(o), Some(e)) = (s.as_object_mut(), spec.as_object()) {
        o.extend(e.clone());
    }
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": s})
}

fn condition(j: &Job, type_: &str) -> Option<(String, String)> {
    let c = j.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_ && c.status == "True")?.clone();
    Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_or_hit_their_backoff_limit_or_deadline() {
    // Scale 10: the 10 s pod-failure and container back-offs take 1 s here.
    let (c, _dir) = cluster(10.0, Duration::from_secs(10)).await;
    apply::create_all(
        &c.client,
        NS,
        &[
            job("ok", json!({"completions": 2, "parallelism": 1}), "Never", json!({"exit": {"after_ms": 300, "code": 0}})),
            job("bad", json!({"backoffLimit": 1}), "Never", json!({"exit": {"after_ms": 100, "code": 1}})),
            job("flaky", json!({"backoffLimit": 2}), "OnFailure", json!({"exit": {"after_ms": 100, "code": 2}})),
            job("slow", json!({"activeDeadlineSeconds": 20}), "Never", json!({"exit": {"after_ms": 600_000, "code": 0}})),
        ],
    )
    .await
    .expect("create");
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), NS);
    let ok =
        eventually("the ok job complete", 90, || async { jobs.get("ok").await.ok().filter(|j| condition(j, "Complete").is_some()) }).await;
    let st = ok.status.clone().unwrap_or_default();
    assert_eq!((st.succeeded, st.failed, st.active), (Some(2), None, None));
    assert!(st.start_time.is_some() && st.completion_time.is_some());
    assert_eq!(condition(&ok, "Complete"), Some(("CompletionsReached".into(), "Reached expected number of succeeded pods".into())));
    let ok_pods = pods_labelled(&c, "job-name=ok").await;
    assert_eq!(ok_pods.len(), 2);
    for p in &ok_pods {
        assert_eq!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded"));
        assert_eq!(label(p, "batch.kubernetes.io/job-name").as_deref(), Some("ok"));
        assert_eq!(label(p, "controller-uid"), ok.uid());
    }

    let backoff = ("BackoffLimitExceeded".to_string(), "Job has reached the specified backoff limit".to_string());
    let bad =
        eventually("the bad job failed", 90, || async { jobs.get("bad").await.ok().filter(|j| condition(j, "Failed").is_some()) }).await;
    assert_eq!(condition(&bad, "Failed"), Some(backoff.clone()));
    assert_eq!(bad.status.as_ref().and_then(|s| s.failed), Some(2), "backoffLimit 1: the second failed pod fails the job");
    let bad_pods = pods_labelled(&c, "job-name=bad").await;
    assert_eq!(bad_pods.len(), 2, "restartPolicy Never: a new pod per failure");
    assert!(bad_pods.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")));

    let flaky =
        eventually("the flaky job failed", 90, || async { jobs.get("flaky").await.ok().filter(|j| condition(j, "Failed").is_some()) })
            .await;
    assert_eq!(condition(&flaky, "Failed"), Some(backoff));
    assert_eq!(flaky.status.as_ref().and_then(|s| s.failed), None, "OnFailure: restarts in place, no failed pod");

    let slow = eventually("the slow job past its deadline", 90, || async {
        jobs.get("slow").await.ok().filter(|j| condition(j, "Failed").is_some())
    })
    .await;
    assert_eq!(condition(&slow, "Failed"), Some(("DeadlineExceeded".into(), "Job was active longer than specified deadline".into())));
    eventually("the slow job's pod deleted", 30, || async { pods_labelled(&c, "job-name=slow").await.is_empty().then_some(()) }).await;

    let evs = events(&c).await;
    let said =
        |reason: &str, message: &str| evs.iter().any(|e| e.reason.as_deref() == Some(reason) && e.message.as_deref() == Some(message));
    assert!(said("Completed", "Job completed"));
    assert!(said("BackoffLimitExceeded", "Job has reached the specified backoff limit"));
    assert!(said("DeadlineExceeded", "Job was active longer than specified deadline"));
    assert!(evs.iter().any(
        |e| e.reason.as_deref() == Some("SuccessfulCreate") && e.message.as_deref().is_some_and(|m| m.starts_with("Created pod: ok-"))
    ));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_puts_the_node_under_memory_pressure_and_is_evicted_then_replaced() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tmp");
    let opts = ClusterOptions {
        workdir: dir.path().to_path_buf(),
        scale: TimeScale(10.0),
        sync_frequency: Duration::from_secs(10),
        exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_salve-sandbox"))),
    };
    // A small node: 400 MiB, so a 300 MiB hog leaves less than the 100 MiB threshold.
    let c = Cluster::start_with(opts, NodeOptions { memory: "400Mi".into(), ..NodeOptions::default() }).await.expect("cluster");
    ensure_namespace(&c.client, NS).await.expect("namespace");
    let hog = scripted(json!({"grow_memory_mib_per_s": 100, "grow_memory_to_mib": 300}));
    let mut steady = scripted(json!({}));
    steady["resources"] = json!({"requests": {"memory": "100Mi"}});
    apply::create_all(&c.client, NS, &[super::app("hog", 1, hog, json!({})), super::app("steady", 1, steady, json!({}))])
        .await
        .expect("create");
    let evicted = eventually("an evicted hog", 120, || async {
        pods_labelled(&c, "app=hog").await.into_iter().find(|p| p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted"))
    })
    .await;
    let status = evicted.status.clone().unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let message = status.message.unwrap_or_default();
    assert!(message.starts_with("The node was low on resource: memory. Threshold quantity: 100Mi, available: "), "{message}");
    assert!(
        message.contains("Container app was using ") && message.ends_with(", request is 0, has larger consumption of memory. "),
        "{message}"
    );
    let disruption = status.conditions.iter().flatten().find(|c| c.type_ == "DisruptionTarget").cloned().expect("DisruptionTarget");
    assert_eq!(disruption.reason.as_deref(), Some("TerminationByKubelet"));
    let node = Api::<Node>::all(c.client.clone()).get("sandbox-node").await.expect("node");
    let pressure =
        node.status.iter().flat_map(|s| s.conditions.iter().flatten()).find(|c| c.type_ == "MemoryPressure").cloned().expect("condition");
    assert_eq!((pressure.status.as_str(), pressure.reason.as_deref()), ("True", Some("KubeletHasInsufficientMemory")));
    let taints: Vec<(String, String)> =
        node.spec.iter().flat_map(|s| s.taints.iter().flatten()).map(|t| (t.key.clone(), t.effect.clone())).collect();
    assert!(taints.contains(&("node.kubernetes.io/memory-pressure".into(), "NoSchedule".into())), "{taints:?}");
    let evs = events(&c).await;
    assert!(evs.iter().any(|e| e.reason.as_deref() == Some("Evicted") && e.message.as_deref() == Some(message.as_str())));
    // The steady pod, within its requests, is ranked after the hog and is not evicted first.
    let steady_pods = pods_labelled(&c, "app=steady").await;
    assert!(steady_pods.iter().all(|p| p.status.as_ref().and_then(|s| s.reason.as_deref()) != Some("Evicted")));
    // The ReplicaSet replaces the evicted pod (which stays, Failed, as in a cluster).
    eventually("a replacement hog", 60, || async {
        pods_labelled(&c, "app=hog").await.into_iter().find(|p| p.name_any() != evicted.name_any())
    })
    .await;
    assert!(pods_labelled(&c, "app=hog").await.iter().any(|p| p.name_any() == evicted.name_any()), "the evicted pod is kept");
    c.stop().await;
}

fn kubectl(c: &Cluster, args: &[&str]) -> String {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["-n", NS])
        .args(args)
        .output()
        .expect("kubectl runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubectl {args:?}: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_restart_and_undo_work_against_the_sandbox() {
    // kubectl sends no bearer token to a plain-HTTP server, so against an API server that
    // authenticates it would be anonymous, and anonymous discovery is refused as in a cluster.
    // This test is about the Deployment controller: the API server here does not authenticate.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tmp");
    let c = Cluster::start_open(ClusterOptions {
        workdir: dir.path().to_path_buf(),
        scale: TimeScale(10.0),
        sync_frequency: Duration::from_secs(10),
        exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_salve-sandbox"))),
    })
    .await
    .expect("cluster");
    ensure_namespace(&c.client, NS).await.expect("namespace");
    apply::create_all(&c.client, NS, &[super::app("web", 1, scripted(json!({})), json!({}))]).await.expect("create");
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), NS);
    let revision = |d: &Deployment| d.annotations().get("deployment.kubernetes.io/revision").cloned().unwrap_or_default();
    let settled = |want: &'static str| {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("web").await.ok()?;
            let s = d.status.clone()?;
            (revision(&d) == want && s.updated_replicas == Some(1) && s.available_replicas == Some(1) && s.replicas == Some(1)).then_some(d)
        }
    };
    eventually("revision 1 available", 60, || settled("1")).await;
    let first_rs = Api::<ReplicaSet>::namespaced(c.client.clone(), NS).list(&ListParams::default()).await.expect("rs").items;
    let first_rs = first_rs.first().map(|r| r.name_any()).expect("a ReplicaSet");

    let out = kubectl(&c, &["rollout", "restart", "deployment/web"]);
    assert!(out.contains("deployment.apps/web restarted"), "{out}");
    let d = eventually("revision 2 available", 90, || settled("2")).await;
    let restarted = d
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get("kubectl.kubernetes.io/restartedAt"))
        .cloned();
    assert!(restarted.is_some(), "rollout restart sets the restartedAt template annotation");
    let sets = Api::<ReplicaSet>::namespaced(c.client.clone(), NS).list(&ListParams::default()).await.expect("rs").items;
    assert_eq!(sets.len(), 2, "a new ReplicaSet for the restarted template");

    let out = kubectl(&c, &["rollout", "undo", "deployment/web"]);
    assert!(out.contains("deployment.apps/web rolled back"), "{out}");
    let d = eventually("revision 3 available", 90, || settled("3")).await;
    let annotations = d.spec.template.metadata.as_ref().and_then(|m| m.annotations.clone()).unwrap_or_default();
    assert!(!annotations.contains_key("kubectl.kubernetes.io/restartedAt"), "undo restores the previous template: {annotations:?}");
    let reused = Api::<ReplicaSet>::namespaced(c.client.clone(), NS).get(&first_rs).await.expect("first rs");
    assert_eq!(
        reused.annotations().get("deployment.kubernetes.io/revision").map(String::as_str),
        Some("3"),
        "the old ReplicaSet is reused"
    );
    assert_eq!(reused.spec.replicas, Some(1));
    let history = kubectl(&c, &["rollout", "history", "deployment/web"]);
    assert!(history.contains('2') && history.contains('3'), "{history}");
    let scaled: Vec<String> =
        events(&c).await.into_iter().filter(|e| e.reason.as_deref() == Some("ScalingReplicaSet")).filter_map(|e| e.message).collect();
    assert!(scaled.iter().all(|m| !m.ends_with("from 0 to 0")), "no event for a scale that did nothing: {scaled:?}");
    c.stop().await;
}
