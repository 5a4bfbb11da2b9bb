//! Fails when the committed `crds/*.yaml` or the chart's copies differ from what the Rust types
//! generate. Fix: `cargo run -p operator -- crdgen` from the workspace root.

use std::path::Path;

#[test]
fn committed_crds_match_the_rust_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (dir, (file, generated)) in ["crds", "charts/salve/crds"]
        .into_iter()
        .flat_map(|d| operator::crd::generated_crds().expect("generate").into_iter().map(move |c| (d, c)))
    {
        let path = root.join(dir).join(file);
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `cargo run -p operator -- crdgen`", path.display()));
        assert!(committed == generated, "{} drifted from the Rust types; run `cargo run -p operator -- crdgen`", path.display());
    }
}

#[test]
fn crds_have_the_user_facing_shape() {
    use kube::CustomResourceExt;
    let inc = serde_json::to_value(operator::crd::Incident::crd()).expect("json");
    assert_eq!(inc["spec"]["names"]["shortNames"][0], "inc");
    assert_eq!(inc["spec"]["names"]["categories"][0], "salve");
    assert_eq!(inc["spec"]["scope"], "Namespaced");
    let v = &inc["spec"]["versions"][0];
    assert_eq!(v["subresources"]["status"], serde_json::json!({}));
    let cols: Vec<&str> = v["additionalPrinterColumns"].as_array().expect("columns").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(cols, ["Service", "Severity", "Phase", "Root Cause", "Age"]);
    let conds = &v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conds["x-kubernetes-list-type"], "map");
    assert_eq!(conds["x-kubernetes-list-map-keys"][0], "type");
    let source = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["source"];
    assert_eq!(source["x-kubernetes-validations"][0]["rule"], "self == oldSelf");

    let rem = serde_json::to_value(operator::crd::Remediation::crd()).expect("json");
    assert_eq!(rem["spec"]["names"]["shortNames"][0], "rem");
    let approval = &rem["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["approval"];
    assert!(approval.to_string().contains("self.state != 'Rejected'"), "{approval}");
    assert_eq!(approval["properties"]["state"]["enum"], serde_json::json!(["Pending", "Approved", "Rejected"]));
}

/// Every CEL rule compiles and stays within the API server's cost budget (a CRD whose rules
/// are estimated too expensive is rejected at install time).
#[test]
fn cel_rules_compile_and_fit_the_cost_budget() {
    use kube::CustomResourceExt;
    fn walk(node: &serde_json::Value, path: &str, found: &mut usize) {
        if let Some(rules) = node.get("x-kubernetes-validations").and_then(|r| r.as_array()) {
            let compiled = kube_cel::compile_schema(node);
            for r in rules {
                let rule = r["rule"].as_str().expect("rule");
                *found += 1;
                for w in kube_cel::estimate_rule_cost(rule, &compiled) {
                    assert!(!matches!(w.kind, kube_cel::WarningKind::CostExceeded), "{path}: {rule}: {w:?}");
                }
            }
            for v in &compiled.validations {
                assert!(v.is_ok(), "{path}: rule does not compile: {:?}", v.as_ref().err());
            }
        }
        if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
            for (k, v) in props {
                walk(v, &format!("{path}.{k}"), found);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, &format!("{path}[]"), found);
        }
    }
    let mut found = 0;
    for crd in [operator::crd::Incident::crd(), operator::crd::Remediation::crd()] {
        let v = serde_json::to_value(&crd).expect("json");
        walk(&v["spec"]["versions"][0]["schema"]["openAPIV3Schema"], &crd.spec.names.kind, &mut found);
    }
    assert_eq!(found, 4, "source immutability, incidentRef + action immutability, approval feedback");
}
