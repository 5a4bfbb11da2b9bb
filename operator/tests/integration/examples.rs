//! The example manifests users `kubectl apply` stay valid: they parse as the operator's types,
//! and every environment variable in the example Deployment is one the operator reads.

use clap::CommandFactory;
use k8s_openapi::api::apps::v1::Deployment;
use operator::crd::{Incident, Remediation};

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"))).expect("example exists")
}

#[test]
fn incident_and_remediation_examples_parse() {
    let inc: Incident = serde_yaml::from_str(&read("incident.yaml")).expect("Incident");
    assert_eq!(inc.spec.target.name, "salve-oms");
    let rem: Remediation = serde_yaml::from_str(&read("remediation.yaml")).expect("Remediation");
    assert!(rem.spec.action.validate().is_ok());
}

#[test]
fn operator_deployment_env_is_understood_by_the_operator() {
    let d: Deployment = serde_yaml::from_str(&read("operator.yaml")).expect("Deployment");
    let mut cmd = operator::config::Cli::command();
    let run = cmd.find_subcommand_mut("run").expect("run subcommand");
    let known: Vec<String> = run.get_arguments().filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned())).collect();
    let pod = d.spec.template.spec.expect("pod spec");
    for env in pod.containers[0].env.iter().flatten() {
        assert!(known.contains(&env.name), "{} is not read by the operator", env.name);
    }
}

#[test]
fn rbac_never_grants_secrets_or_wildcards() {
    let text = read("rbac.yaml");
    assert!(!text.contains("secrets"), "the operator must not read Secrets");
    assert!(!text.contains("\"*\""), "no wildcards");
}
