//! Whether a changed object still holds what a remediation applied to it. Verification asks it
//! at the end of the window (a fix someone overwrote meanwhile proves nothing), and so does the
//! undo before it writes (it must not wipe a person's hotfix made during the window).

use serde_json::Value;

use super::quantity::{parse_bytes, parse_millicores};

/// `live` holds `applied` when every field of `applied` is in `live` with the same value. Lists
/// of named items (containers, env) are matched by `name`, as a strategic merge does; other lists
/// must be equal. Quantities compare by amount: the API server writes them canonically
/// (`1024Mi` is read back as `1Gi`).
pub fn holds(live: &Value, applied: &Value) -> bool {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => a.iter().all(|(k, av)| match l.get(k) {
            Some(lv) => holds(lv, av),
            None => av.is_null(),
        }),
        (Value::Array(l), Value::Array(a)) if a.iter().all(|v| v.get("name").is_some()) => {
            a.iter().all(|av| l.iter().any(|lv| lv.get("name") == av.get("name") && holds(lv, av)))
        }
        (Value::String(l), Value::String(a)) => l == a || same_quantity(l, a),
        (l, a) => l == a,
    }
}

fn same_quantity(a: &str, b: &str) -> bool {
    let bytes = parse_bytes(a).zip(parse_bytes(b)).is_some_and(|(x, y)| x == y);
    bytes || parse_millicores(a).zip(parse_millicores(b)).is_some_and(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_untouched_change_is_held_and_an_overwritten_one_is_not() {
        let applied =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "oms", "resources": {"limits": {"memory": "1024Mi"}}}]}}}});
        let live = json!({"metadata": {"name": "oms"}, "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "sidecar", "image": "x"},
            {"name": "oms", "image": "oms:1", "resources": {"limits": {"memory": "1Gi", "cpu": "1"}}}]}}}});
        assert!(holds(&live, &applied), "other fields and containers, and a canonical quantity, still hold");
        let hotfix = json!({"spec": {"template": {"spec": {"containers": [{"name": "oms", "resources": {"limits": {"memory": "2Gi"}}}]}}}});
        assert!(!holds(&hotfix, &applied));
        assert!(holds(&json!({"data": {"k": "v", "other": "x"}}), &json!({"data": {"k": "v"}})));
        assert!(!holds(&json!({"data": {"k": "hotfix"}}), &json!({"data": {"k": "v"}})));
        assert!(!holds(&json!({"data": {}}), &json!({"data": {"k": "v"}})));
    }
}
