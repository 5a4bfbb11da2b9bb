//! Objects as kubectl's `-o json` / `-o yaml` print them; several objects as a `v1` `List`.

use serde::Serialize;

use crate::cli::Format;
use crate::error::PluginError;

pub fn render<T: Serialize>(value: &T, format: Format) -> Result<String, PluginError> {
    match format {
        Format::Yaml => serde_yaml::to_string(value).map_err(|e| PluginError::Output(e.to_string())),
        _ => serde_json::to_string_pretty(value).map(|s| s + "\n").map_err(|e| PluginError::Output(e.to_string())),
    }
}

pub fn list<T: Serialize>(items: &[T]) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}
