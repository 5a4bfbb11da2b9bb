//! The real `operator` binary as a process against the fake API server (a TEST STAND-IN):
//! configuration from the environment, JSON logs, readiness, a full remediation, and a graceful
//! shutdown on SIGTERM that releases the leader Lease.

use std::process::Stdio;

use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_remediates_and_shuts_down_gracefully_on_sigterm() {
    let env = env().await;
    broken_config_setup(&env, json!({})).await;
    let dir = tempfile::tempdir().expect("tmp");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, env.fake.kubeconfig_yaml_as(NS, "salve-operator")).expect("kubeconfig");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_operator"))
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAME", "salve-operator-0")
        .env("SALVE_HTTP_ADDR", addr.to_string())
        .env("SALVE_LEASE_NAMESPACE", NS)
        .env("SALVE_ALLOWED_NAMESPACES", NS)
        .env("SALVE_DRY_RUN", "false")
        .env("SALVE_VERIFY_STABILITY_SECONDS", "1")
        .env("SALVE_LEASE_SECONDS", "60")
        .env("SALVE_VERIFY_WINDOW_SECONDS", "60")
        .env("SALVE_VERIFY_POLL_MS", "200")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("operator starts");

    eventually("binary ready", || async {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => (http_get(addr, "/readyz").await.0 == 200).then_some(()),
            Err(_) => None,
        }
    })
    .await;
    eventually("binary leads", || async { (lease_holder(&env).await.as_deref() == Some("salve-operator-0")).then_some(()) }).await;

    break_config(&env).await;
    create_incident(&env, "oms-5xx", "5xx").await;
    eventually("restored", || async { (config_value(&env, "POOL_SIZE").await.as_deref() == Some("10")).then_some(()) }).await;
    wait_incident_phase(&env, "oms-5xx", "Resolved").await;

    let pid = child.id().expect("pid").to_string();
    let status = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
    assert!(status.success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output()).await.expect("exits").expect("output");
    assert!(out.status.success(), "graceful exit: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(lease_holder(&env).await, None, "the Lease is released for a standby");
    let logs = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "JSON logs: {logs}");
    assert_eq!(lines.len(), logs.lines().count(), "every log line is JSON");
    assert!(lines.iter().any(|l| l["fields"]["message"] == "incident transition" && l["fields"]["to"] == "Resolved"));
}

/// A newcomer's first try: `operator run` with no cluster configured says what it tried and
/// what to do, instead of a debug dump.
#[tokio::test]
async fn binary_without_a_cluster_says_what_it_tried() {
    let home = tempfile::tempdir().expect("tmp");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_operator"))
        .args(["run", "--dry-run", "--http-addr", "127.0.0.1:0"])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in ["in-cluster", "KUBECONFIG", ".kube/config", "Point KUBECONFIG at a cluster"] {
        assert!(err.contains(expected), "{expected:?} missing from: {err}");
    }
    assert!(!err.contains("InferConfig("), "no debug dump: {err}");
}

/// `operator run --help` lists the run options (they belong to the subcommand).
#[test]
fn run_help_lists_its_options() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_operator")).args(["run", "--help"]).output().expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && help.contains("--allowed-namespaces") && help.contains("--dry-run"), "{help}");
}
