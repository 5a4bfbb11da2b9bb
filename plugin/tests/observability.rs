//! Every query of the chart's Grafana dashboards and alert rules names metrics Salve really
//! exports: the metric names (histogram `_bucket` / `_sum` / `_count` included) and the label
//! names of each selector are looked up in the real `/metrics` text of the operator (its
//! registry with one sample of each series recorded) and of OMS and IMS (both services run
//! in-process, with one order through the saga, and scraped over HTTP).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use operator::domain::llm_usage::{CallOutcome, LlmCall};
use operator::domain::phase::{IncidentPhase, RemediationPhase};
use operator::metrics::Metrics;
use regex::Regex;
use shop_tests::client::ShopClient;
use shop_tests::in_process::{Shop, ShopOptions};

/// Prometheus' own per-target series, not in any `/metrics` text.
const SYNTHETIC: [&str; 1] = ["up"];
/// Labels Prometheus (ServiceMonitor relabelling) adds to every scraped series.
const TARGET_LABELS: [&str; 7] = ["namespace", "job", "pod", "instance", "service", "container", "endpoint"];
const FUNCTIONS: [&str; 22] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk",
    "bottomk",
    "quantile",
    "rate",
    "irate",
    "increase",
    "delta",
    "changes",
    "histogram_quantile",
    "absent",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "clamp_min",
    "vector",
    "time",
    "label_values",
];
const KEYWORDS: [&str; 12] =
    ["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "le"];

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/salve")
}

/// Series name -> label names seen on its samples, from Prometheus text exposition.
fn families(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let sample = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ").expect("regex");
    let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)=""#).expect("regex");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(c) = sample.captures(line) else { continue };
        let name = &c[1];
        let labels: BTreeSet<String> =
            c.get(3).map(|m| label.captures_iter(m.as_str()).map(|l| l[1].to_string()).collect()).unwrap_or_default();
        // Series names: a histogram appears as its `_bucket`, `_sum` and `_count` series,
        // which is how queries name it.
        out.entry(name.to_string()).or_default().extend(labels);
    }
    out
}

/// The metric selectors of one PromQL expression: (metric, label names in its matchers).
fn selectors(expr: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let strings = Regex::new(r#""(?:[^"\\]|\\.)*""#).expect("regex");
    let expr = strings.replace_all(expr, "\"\"");
    let ranges = Regex::new(r"\[[^\]]*\]").expect("regex");
    let expr = ranges.replace_all(&expr, " ");
    let grouping = Regex::new(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)").expect("regex");
    let expr = grouping.replace_all(&expr, " ");
    let token = Regex::new(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\}|\()?|\{[^}]*\}|[0-9.]+(?:e[0-9]+)?").expect("regex");
    let label_name = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)"#).expect("regex");
    let mut found = Vec::new();
    for t in token.captures_iter(&expr) {
        let Some(ident) = t.get(1).map(|m| m.as_str()) else { continue };
        let next = t.get(2).map(|m| m.as_str()).unwrap_or_default();
        if KEYWORDS.contains(&ident) {
            continue;
        }
        if next == "(" {
            if !FUNCTIONS.contains(&ident) {
                return Err(format!("unknown function {ident}() in {expr}"));
            }
            continue;
        }
        let labels = label_name.captures_iter(next).map(|c| c[1].to_string()).collect();
        found.push((ident.to_string(), labels));
    }
    Ok(found)
}

/// Every PromQL expression of the dashboards, with where it is.
fn dashboard_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = chart().join("files/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).expect("dashboards dir").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    assert_eq!(files.len(), 2, "the operator and the shop dashboards: {files:?}");
    for file in files {
        let board: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("dashboard JSON");
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        for panel in board["panels"].as_array().expect("panels") {
            let kind = panel["type"].as_str().unwrap_or_default();
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if !matches!(kind, "row" | "text") {
                assert!(!targets.is_empty(), "{name}: panel {:?} has no query", panel["title"]);
            }
            for t in targets {
                out.push((format!("{name}: {}", panel["title"]), t["expr"].as_str().expect("expr").to_string()));
            }
        }
        for var in board["templating"]["list"].as_array().expect("templating") {
            if let Some(q) = var["definition"].as_str() {
                let metric = q.trim_start_matches("label_values(").split(',').next().unwrap_or_default().trim();
                out.push((format!("{name}: variable {}", var["name"]), metric.to_string()));
            }
        }
    }
    out
}

/// Every `expr:` of the PrometheusRule template, with Helm's `{{ ... }}` taken out (selectors
/// keep their PromQL shape: the release namespace is a matcher, thresholds are numbers).
fn rule_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(chart().join("templates/prometheusrule.yaml")).expect("rule template");
    let helm = Regex::new(r"\{\{-?[^}]*-?\}\}").expect("regex");
    let mut out = Vec::new();
    let mut alert = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(a) = line.strip_prefix("- alert: ") {
            alert = a.to_string();
        }
        if let Some(expr) = line.strip_prefix("expr: ") {
            let expr = expr.replace("{ {{- $ns }}", "{namespace=\"shop\"").replace("{ {{- $ns }}}", "{namespace=\"shop\"}");
            out.push((format!("alert {alert}"), helm.replace_all(&expr, "1").to_string()));
        }
    }
    assert_eq!(out.len(), 7, "seven alerts: {out:?}");
    out
}

fn operator_metrics() -> String {
    let m = Metrics::new().expect("operator metrics");
    for c in ["incident", "remediation"] {
        m.reconciles.with_label_values(&[c]).inc();
        m.settled.with_label_values(&[c]).inc();
        m.failures.with_label_values(&[c]).inc();
    }
    for stage in ["diagnose", "remediate", "resolve"] {
        m.durations.with_label_values(&[stage]).observe(42.0);
    }
    m.diagnoses.with_label_values(&["rules/v1"]).inc();
    m.record_llm_call(
        "claude",
        &LlmCall { outcome: CallOutcome::Success, input_tokens: 1000, output_tokens: 200, estimated_cost_usd: 0.01 },
    );
    m.intake_messages.with_label_values(&["sqs", "created"]).inc();
    m.intake_messages.with_label_values(&["sqs", "dead_lettered"]).inc();
    m.notifications.with_label_values(&["webhook", "failed"]).inc();
    m.record_remediation("SetConfigMapKey", RemediationPhase::Succeeded, "Verified");
    m.record_remediation("Rollback", RemediationPhase::Rejected, "Rejected");
    let phases = Arc::new(Mutex::new(vec![IncidentPhase::Resolved]));
    m.set_phase_source(Some(Box::new(move || phases.lock().map(|p| p.clone()).unwrap_or_default())));
    m.render()
}

async fn shop_metrics() -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = Shop::start(dir.path(), ShopOptions::local("key")).await.expect("shop");
    let client = ShopClient::new(&shop.oms_url(), &shop.ims_url(), "key");
    client.product_with_stock("PEN", "Pen", 1.25, 5).await.expect("product");
    let customer = client.customer("Ada", "ada@example.com").await.expect("customer");
    let order = client.order(&customer, &[("PEN", 1)]).await.expect("order");
    let settled = client.settled(&order, Duration::from_secs(30)).await.expect("settled");
    assert_eq!(settled["status"], "CONFIRMED");
    let http = reqwest::Client::new();
    let mut text = String::new();
    for url in [shop.oms_url(), shop.ims_url()] {
        let body = http.get(format!("{url}/metrics")).send().await.expect("scrape").text().await.expect("body");
        text.push_str(&body);
    }
    shop.stop().await;
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_query_names_exported_metrics_and_labels() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let exported = families(&(operator_metrics() + &shop_metrics().await));
    for must in ["salve_incidents", "salve_incident_stage_seconds_bucket", "oms_orders", "ims_reservations_total", "oms_outbox_depth"] {
        assert!(exported.contains_key(must), "{must} is not exported; exported: {:?}", exported.keys());
    }
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (place, expr) in dashboard_queries().into_iter().chain(rule_queries()) {
        let found = match selectors(&expr) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("{place}: {e}"));
                continue;
            }
        };
        if found.is_empty() {
            problems.push(format!("{place}: no metric in {expr}"));
        }
        for (metric, labels) in found {
            used.insert(metric.clone());
            if SYNTHETIC.contains(&metric.as_str()) {
                continue;
            }
            let Some(have) = exported.get(&metric) else {
                problems.push(format!("{place}: {metric} is not exported (in {expr})"));
                continue;
            };
            for l in labels {
                if !have.contains(&l) && !TARGET_LABELS.contains(&l.as_str()) {
                    problems.push(format!("{place}: {metric} has no label {l} (it has {have:?})"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "queries that name what Salve does not export:\n{}", problems.join("\n"));
    // The dashboards cover what the issue asks for.
    for want in [
        "salve_incidents",
        "salve_incident_stage_seconds_bucket",
        "salve_llm_calls_total",
        "salve_llm_tokens_total",
        "salve_llm_estimated_cost_usd_total",
        "salve_intake_messages_total",
        "salve_remediations_total",
        "salve_notifications_total",
        "salve_reconcile_failures_total",
        "oms_orders",
        "ims_reservations_total",
        "oms_outbox_depth",
        "ims_outbox_oldest_age_seconds",
        "oms_http_request_duration_seconds_bucket",
    ] {
        assert!(used.contains(want), "no query uses {want}");
    }
}

#[test]
fn the_query_reader_finds_metrics_and_rejects_unknown_ones() {
    let found = selectors(r#"histogram_quantile(0.9, sum by (le, stage) (rate(salve_incident_stage_seconds_bucket{namespace="$namespace"}[$__rate_interval])))"#)
        .expect("parse");
    assert_eq!(found, [("salve_incident_stage_seconds_bucket".to_string(), vec!["namespace".to_string()])]);
    let found = selectors(r#"absent(salve_incidents{namespace="shop"}) and on() (sum(up{job="x"}) > 0)"#).expect("parse");
    assert_eq!(found.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["salve_incidents", "up"]);
    assert!(selectors("made_up_fn(salve_incidents)").is_err());
    let exported = families("# TYPE salve_incidents gauge\nsalve_incidents{phase=\"Resolved\"} 1\n");
    assert_eq!(exported.get("salve_incidents").map(|l| l.iter().cloned().collect::<Vec<_>>()), Some(vec!["phase".to_string()]));
}
