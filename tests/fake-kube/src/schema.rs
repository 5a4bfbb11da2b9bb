//! Structural-schema handling of custom resources, in the order the real apiextensions-apiserver
//! applies it to a write: prune unknown fields, drop non-nullable nulls, apply `default`s, then
//! validate against the CRD's `openAPIV3Schema` (CEL rules run afterwards, in the store).
//!
//! Sources of behaviour and wording (kubernetes/kubernetes, staging/src/k8s.io/):
//! - apiextensions-apiserver/pkg/apiserver/schema/pruning/algorithm.go (pruning; `apiVersion`,
//!   `kind`, `metadata` at the root and in embedded resources are kept)
//! - apiextensions-apiserver/pkg/apiserver/schema/defaulting/{algorithm.go,prunenulls.go}
//! - apiextensions-apiserver/pkg/apiserver/validation/validation.go
//!   (`kubeOpenAPIResultToFieldErrors`: which openapi failure becomes which field error)
//! - apiextensions-apiserver/pkg/apiserver/validation/ratcheting.go (unchanged values pass)
//! - kube-openapi/pkg/validation/errors/schema.go (`%s in %s must be of type %s: %q`, ...)
//! - apimachinery/pkg/util/validation/field/errors.go (`Required value`, `Unsupported value`)

use serde_json::{Map, Value, json};

/// `field.ErrorType` of apimachinery; `reason()` is what lands in `details.causes[].reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Invalid,
    TypeInvalid,
    NotSupported,
    TooLong,
    TooMany,
}

impl ErrorType {
    fn text(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
        }
    }
}

/// One `field.Error`: what failed where, with the bad value and a detail.
#[derive(Clone, Debug)]
pub struct FieldError {
    pub type_: ErrorType,
    pub field: String,
    pub value: Value,
    pub detail: String,
}

impl FieldError {
    /// `ErrorBody()`: the message without the field. Required and TooLong omit the value, the
    /// rest print it (strings quoted, numbers and booleans bare, anything else as JSON).
    pub fn body(&self) -> String {
        let mut s = match self.type_ {
            ErrorType::Required | ErrorType::TooLong => self.type_.text().to_string(),
            _ => format!("{}: {}", self.type_.text(), go_value(&self.value)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }

    /// A `StatusCause` of the 422 answer.
    pub fn cause(&self) -> Value {
        json!({"reason": self.type_.reason(), "message": self.body(), "field": self.field})
    }
}

fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        Value::Number(_) => number_text(v),
        other => other.to_string(),
    }
}

/// Numbers as Go's `%v` prints the schema's float64 bounds: `1`, not `1.0`.
fn number_text(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 && !v.is_i64() && !v.is_u64() => format!("{}", f as i64),
        _ => v.to_string(),
    }
}

/// The `StatusReasonInvalid` message: `Kind.group "name" is invalid: <errors>`, the errors in
/// brackets when there are several (`ErrorList.ToAggregate()`).
pub fn invalid_message(qualified_kind: &str, name: &str, errs: &[FieldError]) -> String {
    let list: Vec<String> = errs.iter().map(FieldError::message).collect();
    let joined = if list.len() == 1 { list.join("") } else { format!("[{}]", list.join(", ")) };
    format!("{qualified_kind} \"{name}\" is invalid: {joined}")
}

fn is_true(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The schema that applies to `key` of an object: a named property, else `additionalProperties`.
fn child_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema.get("properties").and_then(|p| p.get(key)).or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

/// Pruning and null-dropping and defaulting of a whole object (the root keeps `apiVersion`,
/// `kind` and `metadata`, which are handled by the generic ObjectMeta code).
pub fn prune_and_default(schema: &Value, obj: &mut Value) {
    prune(schema, obj, true);
    default(schema, obj);
}

fn prune(schema: &Value, v: &mut Value, root: bool) {
    match v {
        Value::Object(map) => {
            let preserve = is_true(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = root || is_true(schema, "x-kubernetes-embedded-resource");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match child_schema(schema, &key) {
                    Some(child) => {
                        // prunenulls.go: a null for a field that is not nullable is dropped (and
                        // then defaulted, when there is a default).
                        if map.get(&key).is_some_and(Value::is_null) && !is_true(child, "nullable") {
                            map.remove(&key);
                        } else if let Some(value) = map.get_mut(&key) {
                            prune(child, value, false);
                        }
                    }
                    None if preserve => {}
                    None => {
                        map.remove(&key);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    prune(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}

fn default(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, child) in props {
                    if !map.contains_key(key)
                        && let Some(d) = child.get("default")
                    {
                        map.insert(key.clone(), d.clone());
                    }
                }
            }
            for (key, value) in map.iter_mut() {
                if let Some(child) = child_schema(schema, key) {
                    default(child, value);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    default(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// Validates an object against its schema. On updates (`old` given) a value deep-equal to the
/// old value at the same path is not validated again (CRD validation ratcheting, GA in 1.33):
/// objects stored under a looser schema stay writable as long as the bad parts are untouched.
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = obj.as_object() else {
        return errs;
    };
    // The root is always an object; its apiVersion/kind/metadata are validated elsewhere.
    let mut rest = Map::new();
    for (k, v) in map {
        if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            rest.insert(k.clone(), v.clone());
        }
    }
    let mut root_schema = schema.clone();
    if let Some(o) = root_schema.as_object_mut() {
        o.remove("type");
        if let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) {
            props.remove("metadata");
            props.remove("apiVersion");
            props.remove("kind");
        }
        if let Some(req) = o.get_mut("required").and_then(Value::as_array_mut) {
            req.retain(|r| !matches!(r.as_str(), Some("apiVersion" | "kind" | "metadata")));
        }
    }
    walk(&root_schema, &Value::Object(rest), old, "", &mut errs);
    errs
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(schema: &Value, v: &Value, old: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    if old == Some(v) {
        return; // ratcheting: unchanged
    }
    let invalid = |errs: &mut Vec<FieldError>, detail: String| {
        errs.push(FieldError { type_: ErrorType::Invalid, field: path.into(), value: v.clone(), detail });
    };
    if v.is_null() {
        if !is_true(schema, "nullable") && schema.get("type").is_some() {
            let ty = schema["type"].as_str().unwrap_or_default();
            errs.push(FieldError {
                type_: ErrorType::TypeInvalid,
                field: path.into(),
                value: json!("null"),
                detail: format!("{path} in body must be of type {ty}: \"null\""),
            });
        }
        return;
    }
    let actual = type_name(v);
    if is_true(schema, "x-kubernetes-int-or-string") {
        if !matches!(actual, "integer" | "string") {
            errs.push(FieldError {
                type_: ErrorType::TypeInvalid,
                field: path.into(),
                value: json!(actual),
                detail: format!("{path} in body must be of type integer,string: \"{actual}\""),
            });
            return;
        }
    } else if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = ty == actual || (ty == "number" && actual == "integer");
        if !ok {
            errs.push(FieldError {
                type_: ErrorType::TypeInvalid,
                field: path.into(),
                value: json!(actual),
                detail: format!("{path} in body must be of type {ty}: \"{actual}\""),
            });
            return; // a wrong type stops the checks below, as in kube-openapi
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let values: Vec<String> =
            allowed.iter().filter(|a| !a.is_null()).map(|a| a.as_str().map(String::from).unwrap_or_else(|| a.to_string())).collect();
        let quoted: Vec<String> = values.iter().map(|s| format!("{s:?}")).collect();
        errs.push(FieldError {
            type_: ErrorType::NotSupported,
            field: path.into(),
            value: v.clone(),
            detail: format!("supported values: {}", quoted.join(", ")),
        });
    }
    match v {
        Value::Number(_) => {
            let x = v.as_f64().unwrap_or_default();
            let exclusive_min = is_true(schema, "exclusiveMinimum");
            let exclusive_max = is_true(schema, "exclusiveMaximum");
            if let Some(min) = schema.get("minimum").filter(|m| m.is_number()) {
                let m = min.as_f64().unwrap_or_default();
                if x < m || (exclusive_min && x == m) {
                    let rel = if exclusive_min { "greater than" } else { "greater than or equal to" };
                    invalid(errs, format!("{path} in body should be {rel} {}", number_text(min)));
                }
            }
            if let Some(max) = schema.get("maximum").filter(|m| m.is_number()) {
                let m = max.as_f64().unwrap_or_default();
                if x > m || (exclusive_max && x == m) {
                    let rel = if exclusive_max { "less than" } else { "less than or equal to" };
                    invalid(errs, format!("{path} in body should be {rel} {}", number_text(max)));
                }
            }
        }
        Value::String(s) => {
            // kube-openapi counts characters (runes), not bytes.
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                invalid(errs, format!("{path} in body should be at least {min} chars long"));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errs.push(FieldError {
                    type_: ErrorType::TooLong,
                    field: path.into(),
                    value: v.clone(),
                    detail: format!("may not be longer than {max}"),
                });
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(pattern)
                && !re.is_match(s)
            {
                invalid(errs, format!("{path} in body should match '{pattern}'"));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                invalid(errs, format!("{path} in body should have at least {min} items"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                errs.push(FieldError {
                    type_: ErrorType::TooMany,
                    field: path.into(),
                    value: json!(n),
                    detail: format!("must have at most {max} items"),
                });
            }
            if let Some(item_schema) = schema.get("items") {
                // Lists are not correlated item by item for ratcheting (only whole-list equality).
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, None, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(map) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errs.push(FieldError {
                            type_: ErrorType::Required,
                            field: join(path, r),
                            value: Value::Null,
                            detail: String::new(),
                        });
                    }
                }
            }
            for (key, value) in map {
                if let Some(child) = child_schema(schema, key) {
                    let old_child = old.and_then(|o| o.get(key));
                    walk(child, value, old_child, &join(path, key), errs);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["service"], "properties": {
            "service": {"type": "string", "maxLength": 5},
            "severity": {"type": "string", "enum": ["Critical", "High"]},
            "replicas": {"type": "integer", "minimum": 1.0, "default": 1},
            "port": {"x-kubernetes-int-or-string": true},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string", "pattern": "^[a-z]+$"}}}}}})
    }

    #[test]
    fn prunes_defaults_and_keeps_preserved_fields() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "whatever": 1}, "junk": 1,
            "spec": {"service": "s", "unknown": true, "free": {"any": {"thing": 1}}, "severity": null}});
        prune_and_default(&schema(), &mut o);
        assert_eq!(
            o,
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "whatever": 1},
            "spec": {"service": "s", "free": {"any": {"thing": 1}}, "replicas": 1}})
        );
    }

    #[test]
    fn messages_are_worded_like_the_real_server() {
        let o = json!({"spec": {"service": 42, "severity": "Apocalyptic", "replicas": 0, "port": 1.5, "tags": ["a", "B", "c"]}});
        let msgs: Vec<String> = validate(&schema(), &o, None).iter().map(FieldError::message).collect();
        assert!(
            msgs.contains(&r#"spec.service: Invalid value: "integer": spec.service in body must be of type string: "integer""#.to_string())
        );
        assert!(msgs.contains(&r#"spec.severity: Unsupported value: "Apocalyptic": supported values: "Critical", "High""#.to_string()));
        assert!(msgs.contains(&"spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1".to_string()));
        assert!(
            msgs.contains(&r#"spec.tags[1]: Invalid value: "B": spec.tags[1] in body should match '^[a-z]+$'"#.to_string()),
            "{msgs:?}"
        );
        assert!(msgs.contains(&"spec.tags: Too many: 3: must have at most 2 items".to_string()), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("spec.port: Invalid value: \"number\"")), "{msgs:?}");
        let missing = validate(&schema(), &json!({"spec": {}}), None);
        assert_eq!(missing[0].message(), "spec.service: Required value");
        let long = validate(&schema(), &json!({"spec": {"service": "toolong"}}), None);
        assert_eq!(long[0].message(), "spec.service: Too long: may not be longer than 5");
    }

    #[test]
    fn unchanged_values_ratchet() {
        let old = json!({"spec": {"service": 42}});
        assert!(validate(&schema(), &old, Some(&old)).is_empty());
        assert!(!validate(&schema(), &json!({"spec": {"service": 43}}), Some(&old)).is_empty());
    }
}
