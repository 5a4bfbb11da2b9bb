//! What a user sees when something is missing: the object, the permission, the CRDs, the
//! cluster, or the kubeconfig.

use fake_kube::Fault;

use crate::support::{self, NS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_incident_is_named_with_its_namespace() {
    let env = support::start().await;
    for cmd in [&["describe", "nope"][..], &["score", "nope", "3"], &["postmortem", "nope"], &["replay", "nope"]] {
        let out = env.salve(cmd).await;
        assert_eq!(out.code, 1, "{cmd:?}");
        assert_eq!(out.stderr.trim(), "error: incident \"nope\" not found in namespace \"shop\"", "{cmd:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rbac_denial_says_who_may_not_do_what_where() {
    let env = support::start().await;
    env.fake.fail_requests(Fault {
        method: "GET".into(),
        path_suffix: format!("/namespaces/{NS}/incidents"),
        status: 403,
        skip: 0,
        times: 1,
    });
    let out = env.salve(&["list"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("forbidden: fake may not list incidents.salve.dev in namespace \"shop\""), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_the_crds_is_told_how_to_install_them() {
    let env = support::start_with_crds(false).await;
    let out = env.salve(&["list"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("the Salve CRDs are not installed"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_and_a_missing_kubeconfig_are_clear() {
    let env = support::start().await;
    // A port nothing listens on: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let yaml = env.fake.kubeconfig_yaml(NS).replace(&env.fake.url(), &format!("http://127.0.0.1:{port}"));
    let kubeconfig = env.write_kubeconfig("down", &yaml);
    let out = support::run_with_kubeconfig(&kubeconfig, env.dir.path(), &["list"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(&format!("cannot reach the cluster at http://127.0.0.1:{port}/ (context \"fake\")")), "{}", out.stderr);

    let out = support::run_with_kubeconfig(&env.dir.path().join("absent"), env.dir.path(), &["list"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no usable kubeconfig"), "{}", out.stderr);

    let out = env.salve(&["--context", "prod", "list"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no usable kubeconfig") && out.stderr.contains("prod"), "{}", out.stderr);
}
