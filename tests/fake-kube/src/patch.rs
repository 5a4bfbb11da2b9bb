//! Patch flavours the API server accepts.

use serde_json::{Map, Value};

/// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// List fields merged by a key instead of replaced, as Kubernetes' strategic merge does for
/// the built-in types (the subset that matters for Deployments and Pods).
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "env" | "volumes" | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ports" => Some("containerPort"),
        "conditions" => Some("type"),
        _ => None,
    }
}

/// Strategic merge patch approximation: like a merge patch, but lists named in `merge_key`
/// merge element by element on their key; `{"$patch": "delete", key: ...}` removes an element.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, pv) in p {
        if pv.is_null() {
            t.remove(k);
            continue;
        }
        match (merge_key(k), pv) {
            (Some(key), Value::Array(items)) => {
                let existing = t.entry(k.clone()).or_insert_with(|| Value::Array(vec![]));
                if !existing.is_array() {
                    *existing = Value::Array(vec![]);
                }
                if let Value::Array(list) = existing {
                    for item in items {
                        let id = item.get(key).cloned();
                        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                        let pos = id.as_ref().and_then(|id| list.iter().position(|e| e.get(key) == Some(id)));
                        match (pos, delete) {
                            (Some(i), true) => {
                                list.remove(i);
                            }
                            (None, true) => {}
                            (Some(i), false) => strategic_merge_patch(&mut list[i], item),
                            (None, false) => list.push(item.clone()),
                        }
                    }
                }
            }
            (_, Value::Object(_)) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                strategic_merge_patch(slot, pv);
            }
            _ => {
                t.insert(k.clone(), pv.clone());
            }
        }
    }
}

/// RFC 6902 JSON patch, except that `{"op":"test","value":null}` passes when the path is
/// missing — the API server treats a missing value as null, and kube-runtime's finalizer helper
/// relies on it when it adds the first finalizer.
pub fn json_patch_lenient(target: &mut Value, ops: &Value) -> Result<(), String> {
    let Value::Array(list) = ops else {
        return Err("JSON patch must be an array".into());
    };
    let kept: Vec<Value> = list
        .iter()
        .filter(|op| {
            let is_null_test = op.get("op").and_then(Value::as_str) == Some("test") && op.get("value").is_some_and(Value::is_null);
            if !is_null_test {
                return true;
            }
            let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
            // Keep the op (so it can fail) only when a non-null value exists at the path.
            target.pointer(path).is_some_and(|v| !v.is_null())
        })
        .cloned()
        .collect();
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(kept)).map_err(|e| e.to_string())?;
    json_patch::patch(target, &patch).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_and_env_by_name() {
        let mut d = json!({"spec":{"containers":[{"name":"a","image":"x","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},{"name":"b"}]}});
        strategic_merge_patch(
            &mut d,
            &json!({"spec":{"containers":[{"name":"a","env":[{"name":"B","value":"3"},{"name":"C","value":"4"}]}]}}),
        );
        assert_eq!(
            d,
            json!({"spec":{"containers":[{"name":"a","image":"x","env":[{"name":"A","value":"1"},{"name":"B","value":"3"},{"name":"C","value":"4"}]},{"name":"b"}]}})
        );
        strategic_merge_patch(&mut d, &json!({"spec":{"containers":[{"name":"b","$patch":"delete"}]}}));
        assert_eq!(d["spec"]["containers"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn json_patch_test_null_on_missing_path_passes() {
        let mut d = json!({"metadata":{}});
        json_patch_lenient(
            &mut d,
            &json!([{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["f"]}]),
        )
        .expect("patch");
        assert_eq!(d["metadata"]["finalizers"], json!(["f"]));
        let err = json_patch_lenient(&mut d, &json!([{"op":"test","path":"/metadata/finalizers","value":null}]));
        assert!(err.is_err(), "test null must fail when a value exists");
    }
}
