//! `Table` responses (meta.k8s.io/v1) so that `kubectl get` prints CRD printer columns.

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// Evaluates the simple JSONPaths printer columns use (`.spec.a.b`).
fn eval_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj;
    for seg in path.trim_start_matches('.').split('.').filter(|s| !s.is_empty()) {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return Value::Null,
        }
    }
    cur.clone()
}

/// Age like kubectl prints it ("5s", "3m", "2h", "4d"); the real server does this conversion
/// for `date` columns of custom resources.
fn human_age(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

pub fn table(rt: &ResourceType, objects: &[Value], resource_version: u64) -> Value {
    let mut cols = vec![json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0})];
    let printer: Vec<(String, String, String)> = if rt.printer_columns.is_empty() {
        vec![("Age".into(), "date".into(), ".metadata.creationTimestamp".into())]
    } else {
        rt.printer_columns.iter().map(|c| (c.name.clone(), c.type_.clone(), c.json_path.clone())).collect()
    };
    for (name, type_, _) in &printer {
        cols.push(json!({"name": name, "type": type_, "format": "", "description": "", "priority": 0}));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for (_, type_, path) in &printer {
                let v = eval_path(o, path);
                cells.push(match (type_.as_str(), &v) {
                    ("date", Value::String(s)) => json!(human_age(s)),
                    (_, Value::Null) => json!(""),
                    _ => v,
                });
            }
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": cols,
        "rows": rows,
    })
}
