//! Label and field selectors, the subset kube-rs and kubectl send.

use serde_json::Value;

enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
}

pub struct Selector(Vec<Req>);

impl Selector {
    pub fn parse(s: &str) -> Self {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((k, val)) = part.split_once("!=") {
                v.push(Req::Ne(k.trim().into(), val.trim().into()));
            } else if let Some((k, val)) = part.split_once("==").or_else(|| part.split_once('=')) {
                v.push(Req::Eq(k.trim().into(), val.trim().into()));
            } else if let Some(k) = part.strip_prefix('!') {
                v.push(Req::NotExists(k.trim().into()));
            } else {
                v.push(Req::Exists(part.into()));
            }
        }
        Self(v)
    }

    /// `lookup` returns the value of a key (a label, or a field path) on the object.
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => lookup(k).as_deref() == Some(v.as_str()),
            Req::Ne(k, v) => lookup(k).as_deref() != Some(v.as_str()),
            Req::Exists(k) => lookup(k).is_some(),
            Req::NotExists(k) => lookup(k).is_none(),
        })
    }
}

pub fn label(obj: &Value, key: &str) -> Option<String> {
    obj.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str).map(str::to_string)
}

pub fn field(obj: &Value, path: &str) -> Option<String> {
    let ptr = format!("/{}", path.replace('.', "/"));
    obj.pointer(&ptr).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A `metav1.LabelSelector` object (`matchLabels`, `matchExpressions` with `In`, `NotIn`,
/// `Exists`, `DoesNotExist`) against a labels map; an empty selector matches everything
/// (apimachinery `LabelSelectorAsSelector`).
pub fn label_selector_matches(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let match_labels = selector["matchLabels"].as_object().into_iter().flatten().all(|(k, v)| get(k) == v.as_str());
    let match_expressions = selector["matchExpressions"].as_array().into_iter().flatten().all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        match e["operator"].as_str().unwrap_or_default() {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        }
    });
    match_labels && match_expressions
}
