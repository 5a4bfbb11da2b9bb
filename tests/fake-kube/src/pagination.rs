//! `limit`/`continue` list pagination with the real server's consistency rules
//! (apiserver/pkg/storage/etcd3/store.go `GetList`, apiserver/pkg/storage/continue.go):
//!
//! - every page of one list is served from the resourceVersion of the first page (a snapshot:
//!   objects written after the first page are not seen, deleted ones still are);
//! - the `continue` token is opaque to clients; like the real one it is base64 JSON naming the
//!   snapshot resourceVersion and the key to start after;
//! - once that resourceVersion is compacted away the next page is `410 Gone` (`Expired`) with a
//!   token that continues inconsistently from the latest state;
//! - `metadata.remainingItemCount` is set only when no selector filters the list.

use base64::Engine;
use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::selector::{Selector, field, label};
use crate::store::{Store, StoreError};

const TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// One page of a list.
pub struct Page {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

impl Page {
    /// The list's `metadata`.
    pub fn metadata(&self) -> Value {
        let mut m = json!({"resourceVersion": self.resource_version.to_string()});
        if let Some(c) = &self.continue_token {
            m["continue"] = json!(c);
        }
        if let Some(r) = self.remaining {
            m["remainingItemCount"] = json!(r);
        }
        m
    }
}

/// `rv` 0 means "the latest state", which is what the token of a 410 answer continues from.
fn encode(rv: u64, start: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode(token: &str) -> Option<(u64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    if v["v"] != "meta.k8s.io/v1" {
        return None;
    }
    Some((v["rv"].as_u64()?, v["start"].as_str()?.to_string()))
}

fn key_of(obj: &Value) -> String {
    let m = |k: &str| obj.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or_default().to_string();
    format!("{}/{}", m("namespace"), m("name"))
}

/// A list request: the whole list when neither `limit` nor `continue` is given, else one page.
pub fn list(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    labels: &str,
    fields: &str,
    limit: Option<usize>,
    continue_token: Option<&str>,
) -> Result<Page, StoreError> {
    let continue_token = continue_token.filter(|c| !c.is_empty());
    if limit.is_none_or(|l| l == 0) && continue_token.is_none() {
        // The common unpaginated list: the present state, no snapshot to rebuild.
        let items = store.list(rt, ns, labels, fields);
        return Ok(Page { items, resource_version: store.rv, continue_token: None, remaining: None });
    }
    let (rv, start) = match continue_token {
        None => (store.rv, None),
        Some(token) => {
            let Some((rv, start)) = decode(token) else {
                return Err(StoreError::Status {
                    code: 400,
                    reason: "BadRequest",
                    message: "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
                    details: Value::Null,
                });
            };
            let rv = if rv == 0 { store.rv } else { rv };
            if rv < store.oldest_watchable_rv {
                return Err(StoreError::Status {
                    code: 410,
                    reason: "Expired",
                    message: TOO_OLD.into(),
                    details: json!({"continue": encode(0, &start)}),
                });
            }
            (rv, Some(start))
        }
    };
    let Some(all) = store.snapshot(rt, ns, rv) else {
        return Err(StoreError::Status { code: 410, reason: "Expired", message: TOO_OLD.into(), details: Value::Null });
    };
    let ls = Selector::parse(labels);
    let fs = Selector::parse(fields);
    let filtered = labels.trim().is_empty() && fields.trim().is_empty();
    let accept = |o: &Value| ls.matches(|k| label(o, k)) && fs.matches(|k| field(o, k));
    let after = match start.as_deref() {
        Some(s) => std::ops::Bound::Excluded(s.to_string()),
        None => std::ops::Bound::Unbounded,
    };
    let mut rest = all.range((after, std::ops::Bound::Unbounded)).map(|(_, o)| *o).filter(|o| accept(o));
    let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    // Only the page is copied; what is left is counted.
    let items: Vec<Value> = rest.by_ref().take(limit).cloned().collect();
    let left = rest.count();
    // More only if something that matches is left (the real server may hand out a token that
    // leads to an empty page; clients cope with both).
    let continue_token = match (left == 0, items.last()) {
        (false, Some(last)) => Some(encode(rv, &key_of(last))),
        _ => None,
    };
    let remaining = (continue_token.is_some() && filtered).then_some(left);
    Ok(Page { items, resource_version: rv, continue_token, remaining })
}
