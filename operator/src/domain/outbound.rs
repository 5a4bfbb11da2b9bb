//! The one gate before anything leaves the operator's memory for somewhere a secret must not
//! go: the model (Bedrock), the post-mortem (its ConfigMap, the copy in the Incident's status,
//! S3 under Object Lock), Slack and webhooks, pull requests, Events, the logs and the Incident's
//! status. Free text is masked with the patterns of `redact`; patches and snapshots, which hold
//! whole objects as they were in the cluster, keep their shape and names but carry a hash of each
//! value instead of the value.
//!
//! The in-cluster Remediation keeps its snapshot and patch as they are: an undo needs the real
//! values, and they never leave the cluster from there.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::action::ProposedAction;
use super::diagnoser::Diagnosis;
use super::evidence::Evidence;
use super::post_mortem::{AppliedRemediation, PostMortem};
use super::redact::redact_text;

/// Free text (a summary, a message, a log line, a PR body): every secret pattern masked.
pub fn text(s: &str) -> String {
    redact_text(s)
}

/// `sha256:` and the first 12 hex digits of the value's SHA-256: enough to tell whether two
/// exported values are the same, or to check one against a value a person holds, and nothing
/// to read. (A value short enough to guess stays guessable; secrets are not.)
pub fn value_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Already a hash: exporting twice changes nothing.
fn is_value_hash(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| h.len() == 12 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Object fields whose strings name things rather than hold values: they stay readable, so an
/// exported patch still says which key, container or variable changed.
const NAME_FIELDS: [&str; 12] =
    ["name", "kind", "apiVersion", "namespace", "key", "path", "repository", "baseCommit", "mountPath", "subPath", "protocol", "image"];

/// Subtrees of Kubernetes quantities (`512Mi`, `250m`): sizes, never credentials.
const QUANTITY_FIELDS: [&str; 3] = ["resources", "limits", "requests"];

/// Pull-request file edits: the text is what the pull request shows a reviewer anyway, so it is
/// masked like free text rather than hashed.
const REVIEWED_TEXT_FIELDS: [&str; 2] = ["search", "replace"];

fn hash_values(v: &mut Value, field: Option<&str>) {
    match v {
        Value::String(s) if is_value_hash(s) => {}
        Value::String(s) => {
            *s = match field {
                Some(f) if NAME_FIELDS.contains(&f) => redact_text(s),
                Some(f) if REVIEWED_TEXT_FIELDS.contains(&f) => redact_text(s),
                _ => value_hash(s),
            };
        }
        Value::Array(items) => {
            for i in items {
                hash_values(i, field);
            }
        }
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if QUANTITY_FIELDS.contains(&k.as_str()) {
                    redact_strings(child);
                } else {
                    hash_values(child, Some(k.as_str()));
                }
            }
        }
        // Numbers and flags (replicas, revisions, ports) carry no secret.
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

fn redact_strings(v: &mut Value) {
    match v {
        Value::String(s) => *s = redact_text(s),
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(map) => map.values_mut().for_each(redact_strings),
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// An exported patch, snapshot or dry-run result: JSON (or a sentence followed by JSON, as in
/// `server accepted: {…}`) keeps its shape, names and numbers, each string value becomes its
/// hash. Anything else is masked as free text.
pub fn patch(s: &str) -> String {
    if let Ok(mut v) = serde_json::from_str::<Value>(s) {
        hash_values(&mut v, None);
        return v.to_string();
    }
    if let Some(start) = s.find(['{', '['])
        && let Ok(mut v) = serde_json::from_str::<Value>(&s[start..])
    {
        hash_values(&mut v, None);
        return format!("{}{v}", redact_text(&s[..start]));
    }
    redact_text(s)
}

/// A proposed action as it is exported. Its value came from redacted evidence (the rules) or
/// from a model that saw only redacted evidence, and a replay compares it; it is masked as text.
pub fn action(a: &ProposedAction) -> ProposedAction {
    let mut out = a.clone();
    out.value = out.value.as_deref().map(redact_text);
    out.title = out.title.as_deref().map(redact_text);
    for f in &mut out.files {
        f.search = f.search.as_deref().map(redact_text);
        f.replace = redact_text(&f.replace);
    }
    out
}

/// A diagnosis as it is exported or stored in the Incident's status.
pub fn diagnosis(d: &Diagnosis) -> Diagnosis {
    let mut out = d.clone();
    out.summary = redact_text(&out.summary);
    out.cited_evidence = out.cited_evidence.iter().map(|s| redact_text(s)).collect();
    out.contradicting_evidence = out.contradicting_evidence.iter().map(|s| redact_text(s)).collect();
    out.fallback_reason = out.fallback_reason.as_deref().map(redact_text);
    out.proposed_action = out.proposed_action.as_ref().map(action);
    for x in &mut out.investigation {
        x.answer = redact_text(&x.answer);
    }
    out
}

/// Evidence as it is exported: already redacted when it was collected; masked again string by
/// string, so a record written by an older operator leaves no less safe. Idempotent.
pub fn evidence(ev: &Evidence) -> Evidence {
    let Ok(mut v) = serde_json::to_value(ev) else { return ev.clone() };
    redact_strings(&mut v);
    serde_json::from_value(v).unwrap_or_else(|_| ev.clone())
}

/// One remediation's record in an exported post-mortem.
pub fn applied_remediation(r: AppliedRemediation) -> AppliedRemediation {
    AppliedRemediation {
        action: action(&r.action),
        description: redact_text(&r.description),
        applied_patch: r.applied_patch.as_deref().map(patch),
        undo_patch: r.undo_patch.as_deref().map(patch),
        dry_run_result: r.dry_run_result.as_deref().map(patch),
        verification: r.verification.as_deref().map(redact_text),
        ..r
    }
}

/// The post-mortem as it is written to its ConfigMap, the Incident's status and S3.
pub fn post_mortem(mut pm: PostMortem) -> PostMortem {
    pm.source.reason = pm.source.reason.as_deref().map(redact_text);
    pm.remediation_action = pm.remediation_action.into_iter().map(applied_remediation).collect();
    for t in &mut pm.timeline {
        t.message = redact_text(&t.message);
    }
    let ctx = &mut pm.simulation_context;
    ctx.evidence = ctx.evidence.as_ref().map(evidence);
    ctx.feedback = ctx.feedback.iter().map(|s| redact_text(s)).collect();
    ctx.recorded_diagnosis = ctx.recorded_diagnosis.as_ref().map(diagnosis);
    pm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::action::{ActionKind, FileChange};

    #[test]
    fn a_rollback_undo_names_every_variable_and_hashes_every_value() {
        // What a Rollback's undo is: a whole pod template with literal env values.
        let undo = r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"env\":\"DB_PASSWORD=hunter2\"}"}},
            "spec":{"containers":[{"name":"oms","image":"registry.example.com/oms:1.4","env":[{"name":"DB_PASSWORD","value":"hunter2"},
            {"name":"DATABASE_URL","value":"postgres://oms:pw0rd@db/shop"}],"resources":{"limits":{"memory":"512Mi"}}}]}},"replicas":3}}"#;
        let out = patch(undo);
        for secret in ["hunter2", "pw0rd"] {
            assert!(!out.contains(secret), "{secret} left in {out}");
        }
        let v: Value = serde_json::from_str(&out).expect("still JSON");
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["name"], "oms");
        assert_eq!(c["image"], "registry.example.com/oms:1.4");
        assert_eq!(c["env"][0]["name"], "DB_PASSWORD", "the variable that changed is named");
        assert_eq!(c["env"][0]["value"], value_hash("hunter2"), "its value is a hash");
        assert_eq!(c["resources"]["limits"]["memory"], "512Mi", "sizes stay readable");
        assert_eq!(v["spec"]["replicas"], 3);
    }

    #[test]
    fn a_config_map_patch_names_the_key_and_hashes_the_value() {
        let out = patch(r#"{"data":{"application.properties":"db.password=hunter2\npool.size=10"}}"#);
        let hash = value_hash("db.password=hunter2\npool.size=10");
        assert_eq!(out, format!(r#"{{"data":{{"application.properties":"{hash}"}}}}"#));
        assert!(hash.starts_with("sha256:") && hash.len() == "sha256:".len() + 12);
        assert_eq!(patch(&out), out, "exporting twice changes nothing");
    }

    #[test]
    fn a_dry_run_result_keeps_its_sentence_and_hashes_the_object() {
        let out = patch(r#"server accepted: {"metadata":{"name":"oms-config"},"data":{"API_URL":"https://u:pw@api"}}"#);
        assert!(out.starts_with("server accepted: ") && out.contains("oms-config") && !out.contains("pw@"), "{out}");
        assert_eq!(patch("server rejected: password=hunter2 is invalid"), "server rejected: password=[REDACTED:secret-value] is invalid");
    }

    #[test]
    fn an_exported_action_keeps_what_a_replay_compares_and_masks_secrets() {
        let mut a = ProposedAction::new(ActionKind::PullRequest, "oms");
        a.files = vec![FileChange {
            path: "apps/oms/values.yaml".into(),
            search: Some("memory: 256Mi".into()),
            replace: "memory: 512Mi\ntoken: ghp_16C7e42F292c6912E7710c838347Ae178B4a".into(),
        }];
        let out = action(&a);
        assert_eq!(out.files[0].replace, "memory: 512Mi\ntoken: [REDACTED:github-token]");
        let mut plain = ProposedAction::new(ActionKind::SetConfigMapKey, "oms-config");
        plain.value = Some("10".into());
        assert_eq!(action(&plain), plain, "a plain value is exported as it is");
    }
}
