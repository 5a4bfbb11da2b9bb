//! `list`: a kubectl-like table per namespace or across all (-A), objects with -o, and -w.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::fixtures;
use crate::support::{self, NS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_shows_service_severity_phase_root_cause_action_and_age() {
    let env = support::start().await;
    fixtures::awaiting_approval(&env.client, NS, "oms-oom").await;
    fixtures::detected(&env.client, "payments", "pay-5xx").await;

    let out = env.salve(&["list"]).await.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let header: Vec<&str> = lines[0].split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(header, ["NAME", "SERVICE", "SEVERITY", "PHASE", "ROOT CAUSE", "ACTION", "AGE"]);
    for cell in ["oms-oom", "oms", "High", "Remediating", "Resource_Limit", "set memory limit"] {
        assert!(lines[1].contains(cell), "{cell} missing in {}", lines[1]);
    }
    assert!(!out.stdout.contains("pay-5xx"), "another namespace leaked into the list");

    let all = env.salve(&["list", "-A"]).await.ok();
    assert!(all.stdout.starts_with("NAMESPACE"), "{}", all.stdout);
    assert!(all.stdout.lines().any(|l| l.starts_with("payments") && l.contains("pay-5xx") && l.contains("Detected")), "{}", all.stdout);

    let other = env.salve(&["list", "-n", "payments"]).await.ok();
    assert!(other.stdout.contains("pay-5xx") && !other.stdout.contains("oms-oom"));

    let empty = env.salve(&["list", "-n", "nothing-here"]).await.ok();
    assert!(empty.stdout.is_empty() && empty.stderr.contains("No incidents found in nothing-here namespace"), "{}", empty.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_yaml_are_the_stored_objects_in_a_list() {
    let env = support::start().await;
    fixtures::awaiting_approval(&env.client, NS, "oms-oom").await;
    let json: serde_json::Value = serde_json::from_str(&env.salve(&["list", "-o", "json"]).await.ok().stdout).expect("json");
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"][0]["kind"], "Incident");
    assert_eq!(json["items"][0]["metadata"]["name"], "oms-oom");
    assert_eq!(json["items"][0]["status"]["diagnosis"]["rootCauseCategory"], "Resource_Limit");
    let yaml: serde_json::Value = serde_yaml::from_str(&env.salve(&["list", "-o", "yaml"]).await.ok().stdout).expect("yaml");
    assert_eq!(yaml, json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_the_list_then_each_new_or_changed_incident() {
    let env = support::start().await;
    fixtures::awaiting_approval(&env.client, NS, "oms-oom").await;
    let mut child = support::command(&env.kubeconfig, env.dir.path(), &["list", "-w"]).spawn().expect("spawn list -w");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("a line within 30 s").expect("read").expect("open")
    };
    assert!(next().await.starts_with("NAME"));
    assert!(next().await.starts_with("oms-oom"));
    fixtures::detected(&env.client, NS, "ims-crash").await;
    // Created, then its status written: one line per change, the last one Detected.
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("ims-crash") && l.contains("Detected")) {
        seen.push(next().await);
    }
    child.kill().await.expect("stop the watch");
}
