//! HTTP surface: path routing, the verbs, watch streams and error `Status` bodies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::admission;
use crate::authn::{Unauthorized, UserInfo};
use crate::deletion::DeleteOptions;
use crate::logs::LogQuery;
use crate::rbac::{self, Attributes, Decision};
use crate::registry::{self, ResourceType};
use crate::store::{HistEntry, LoggedRequest, PatchKind, Store, StoreError};
use crate::table;
use crate::{eviction, pagination};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Mutex<Store>>,
    pub notify: tokio::sync::watch::Sender<u64>,
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn status_error(code: StatusCode, reason: &str, message: &str) -> Response {
    json_response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(m) => status_error(StatusCode::NOT_FOUND, "NotFound", &m),
        StoreError::AlreadyExists(m) => status_error(StatusCode::CONFLICT, "AlreadyExists", &m),
        StoreError::Conflict(m) => status_error(StatusCode::CONFLICT, "Conflict", &m),
        StoreError::Invalid(m) => status_error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &m),
        StoreError::Status { code, reason, message, details } => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": message, "reason": reason, "code": code.as_u16()});
            // An expired continue token comes with one that continues from the latest state.
            match details.get("continue") {
                Some(c) => body["metadata"]["continue"] = c.clone(),
                None if !details.is_null() => body["details"] = details,
                None => {}
            }
            json_response(code, &body)
        }
    }
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let pairs = q
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Self(pairs)
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A resource request after path parsing.
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

/// The `401 Unauthorized` Status (apiserver/pkg/endpoints/handlers/responsewriters
/// `Unauthorized`... via `errors.NewUnauthorized("Unauthorized")`).
fn unauthorized() -> Response {
    status_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
}

/// The verb the authorizer sees (apiserver/pkg/endpoints/request/requestinfo.go).
fn verb_of(method: &Method, named: bool, watch: bool) -> &'static str {
    match (method.as_str(), named) {
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) if watch => "watch",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// A request for a path that is no resource (`/version`, discovery): authorized by
/// `nonResourceURLs` rules.
fn non_resource(st: &AppState, user: &Result<UserInfo, Unauthorized>, method: &Method, path: &str) -> Option<Response> {
    let Ok(user) = user else { return Some(unauthorized()) };
    let a = Attributes {
        user: user.clone(),
        verb: method.as_str().to_ascii_lowercase(),
        resource_request: false,
        group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        path: path.to_string(),
    };
    authorize(st, &a)
}

/// `None` when allowed (always, with `FakeKube::start`), else the 403 response.
fn authorize(st: &AppState, a: &Attributes) -> Option<Response> {
    let s = st.lock();
    if !s.authn.enforcing {
        return None;
    }
    match rbac::authorize(&s, a) {
        Decision::Allow => None,
        Decision::Deny(reason) => Some(json_response(StatusCode::FORBIDDEN, &rbac::forbidden_status(a, &reason))),
    }
}

async fn handle(State(st): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let fault = st.lock().take_fault(method.as_str(), &path);
    if let Some(code) = fault {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return status_error(code, "InternalError", "scripted failure (fake-kube fault injection)");
    }
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let user = st.lock().authn.authenticate(authorization);
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let query = Query::parse(uri.query());
    let discovery = matches!(segs.as_slice(), ["version"] | ["api"] | ["apis"] | ["api", _] | ["apis", _, _]);
    if discovery && let Some(refused) = non_resource(&st, &user, &method, &path) {
        return refused;
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => {
            return json_response(
                StatusCode::OK,
                &json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-fake", "platform": "linux/amd64"}),
            );
        }
        ["api"] => return json_response(StatusCode::OK, &registry::api_versions()),
        ["apis"] => {
            let types = st.lock().types.clone();
            return json_response(StatusCode::OK, &registry::api_group_list(&types));
        }
        ["api", v] | ["apis", "", v] => {
            let types = st.lock().types.clone();
            return match registry::api_resource_list(&types, "", v) {
                Some(l) => json_response(StatusCode::OK, &l),
                None => status_error(StatusCode::NOT_FOUND, "NotFound", "no such group version"),
            };
        }
        ["apis", g, v] => {
            let types = st.lock().types.clone();
            return match registry::api_resource_list(&types, g, v) {
                Some(l) => json_response(StatusCode::OK, &l),
                None => status_error(StatusCode::NOT_FOUND, "NotFound", "no such group version"),
            };
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            if let Some(refused) = non_resource(&st, &user, &method, &path) {
                return refused;
            }
            return status_error(StatusCode::NOT_FOUND, "NotFound", &format!("the server could not find {path}"));
        }
    };
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] if tail.len() <= 2 => {
            (Some(ns.to_string()), *plural, tail.first().map(|s| s.to_string()), tail.get(1).map(|s| s.to_string()))
        }
        [plural, tail @ ..] if tail.len() <= 2 => (None, *plural, tail.first().map(|s| s.to_string()), tail.get(1).map(|s| s.to_string())),
        _ => return status_error(StatusCode::NOT_FOUND, "NotFound", &format!("the server could not find {path}")),
    };
    let Some(rt) = st.lock().find_type(group, version, plural) else {
        if user.is_err() {
            return unauthorized();
        }
        return status_error(StatusCode::NOT_FOUND, "NotFound", &format!("the server could not find the requested resource ({path})"));
    };
    let t = Target { rt, namespace, name, sub };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let verb = verb_of(&method, t.name.is_some(), query.flag("watch"));
    let resource = match &t.sub {
        Some(sub) => format!("{}/{sub}", t.rt.plural),
        None => t.rt.plural.clone(),
    };
    let body_json: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return status_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("body is not JSON (YAML is not supported by the fake): {e}"),
                );
            }
        }
    };
    let response = match &user {
        Err(Unauthorized) => unauthorized(),
        Ok(user) => {
            // A list or watch of one object by `metadata.name` is authorized as that name.
            let by_field = query.get("fieldSelector").and_then(|f| f.strip_prefix("metadata.name=")).filter(|n| !n.contains(','));
            let a = Attributes {
                user: user.clone(),
                verb: verb.to_string(),
                resource_request: true,
                group: t.rt.group.clone(),
                resource: t.rt.plural.clone(),
                subresource: t.sub.clone().unwrap_or_default(),
                namespace: t.namespace.clone().unwrap_or_default(),
                name: t.name.clone().or(by_field.map(String::from)).unwrap_or_default(),
                path: path.clone(),
            };
            match authorize(&st, &a).or_else(|| apply_creates(&st, &t, &content_type, &a)) {
                Some(refused) => refused,
                None => dispatch(&st, &method, &t, user, &query, &content_type, &accept, &body_json),
            }
        }
    };
    let mut s = st.lock();
    s.requests.push(LoggedRequest {
        user: user.as_ref().map(|u| u.username.clone()).unwrap_or_default(),
        group: t.rt.group.clone(),
        resource,
        verb: verb.to_string(),
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_string(),
        content_type,
        field_manager: query.get("fieldManager").map(String::from),
        dry_run: query.get("dryRun").is_some(),
        body: body_json,
        status: response.status().as_u16(),
    });
    let rv = s.rv;
    drop(s);
    if method != Method::GET {
        st.notify.send_replace(rv);
    }
    response
}

/// Server-side apply of an object that does not exist creates it, which needs `create` as well
/// as `patch` (apiserver/pkg/endpoints/handlers/patch.go wraps the create in `withAuthorization`).
fn apply_creates(st: &AppState, t: &Target, content_type: &str, a: &Attributes) -> Option<Response> {
    let apply = content_type.starts_with("application/apply-patch");
    let exists = || st.lock().get_typed(&t.rt, t.namespace.as_deref(), &a.name).is_ok();
    if !apply || a.verb != "patch" || !a.subresource.is_empty() || exists() {
        return None;
    }
    authorize(st, &Attributes { verb: "create".into(), ..a.clone() })
}

/// `SelfSubjectReview` (authentication.k8s.io/v1): the user the request was authenticated as,
/// what `kubectl auth whoami` shows. Answered, never stored.
fn self_subject_review(user: &UserInfo) -> Response {
    json_response(
        StatusCode::CREATED,
        &json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": null},
                "status": {"userInfo": {"username": user.username, "uid": user.uid, "groups": user.groups}}}),
    )
}

/// Adds a `Warning` header per admission warning (`299 - "text"`, RFC 7234 as the API server
/// sends them).
fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {w:?}");
        if let Ok(v) = header::HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

/// Runs `write` (called with the dry-run flag) behind validating admission, under one lock so
/// that nothing changes between the check and the write. When a policy concerns the request,
/// the write is first made as a dry run: its result is the `object` admission sees, as the
/// real server admits the object it is about to store. `Err` is the refusal.
fn admitted<F>(
    st: &AppState,
    t: &Target,
    user: &UserInfo,
    dry_run: bool,
    delete: bool,
    write: F,
) -> Result<(Value, Vec<String>), Box<Response>>
where
    F: Fn(&mut Store, bool) -> Result<Value, StoreError>,
{
    let mut s = st.lock();
    let name = t.name.clone().unwrap_or_default();
    let old = if name.is_empty() { None } else { s.get_typed(&t.rt, t.namespace.as_deref(), &name).ok() };
    let operation = match (delete, &old) {
        (true, _) => "DELETE",
        (false, Some(_)) => "UPDATE",
        (false, None) => "CREATE",
    };
    let mut request = admission::Request {
        user,
        operation,
        group: &t.rt.group,
        version: &t.rt.version,
        kind: &t.rt.kind,
        resource: &t.rt.plural,
        subresource: t.sub.as_deref().unwrap_or_default(),
        namespace: t.namespace.as_deref().unwrap_or_default(),
        name: &name,
        object: None,
        old_object: old.as_ref(),
        dry_run,
    };
    let candidates = admission::candidates(&s, &request);
    let mut warnings = Vec::new();
    if !candidates.is_empty() {
        let new = if delete { None } else { Some(write(&mut s, true).map_err(|e| Box::new(store_error(e)))?) };
        let new_name = new.as_ref().and_then(|o| o.pointer("/metadata/name")).and_then(Value::as_str).unwrap_or_default().to_string();
        if request.name.is_empty() {
            request.name = &new_name;
        }
        request.object = new.as_ref();
        let outcome = admission::admit(&mut s, &candidates, &request);
        if let Some(status) = outcome.denied {
            let code =
                status["code"].as_u64().and_then(|c| StatusCode::from_u16(c as u16).ok()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            return Err(Box::new(json_response(code, &status)));
        }
        warnings = outcome.warnings;
    }
    write(&mut s, dry_run).map(|v| (v, warnings)).map_err(|e| Box::new(store_error(e)))
}

/// `GET .../pods/{name}/log` with `container`, `previous`, `tailLines`, `sinceSeconds`,
/// `sinceTime` and `timestamps` (see `logs`). Like the API server, `previous=true` without a
/// terminated instance is a 400.
fn pod_log(st: &AppState, ns: &str, pod: &str, q: &Query) -> Response {
    let s = st.lock();
    let previous = q.get("previous").is_some_and(|p| p == "true");
    let container = q.get("container").unwrap_or_default();
    let query = match LogQuery::parse(|k| q.get(k).map(String::from), chrono::Utc::now()) {
        Ok(query) => query,
        Err(e) => return status_error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &format!("PodLogOptions \"{pod}\" is invalid: {e}")),
    };
    let log = s
        .pod_logs
        .get(&(ns.to_string(), pod.to_string(), container.to_string(), previous))
        .or_else(|| s.pod_logs.get(&(ns.to_string(), pod.to_string(), String::new(), previous)))
        .or_else(|| {
            // No container named: the only container's log.
            let mut own = s.pod_logs.iter().filter(|((n, p, _, prev), _)| n == ns && p == pod && *prev == previous);
            match (container.is_empty(), own.next(), own.next()) {
                (true, Some((_, log)), None) => Some(log),
                _ => None,
            }
        });
    let Some(log) = log else {
        if previous {
            let msg = format!("previous terminated container \"{container}\" in pod \"{pod}\" not found");
            return status_error(StatusCode::BAD_REQUEST, "BadRequest", &msg);
        }
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], String::new()).into_response();
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], query.render(log)).into_response()
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    st: &AppState,
    method: &Method,
    t: &Target,
    user: &UserInfo,
    q: &Query,
    content_type: &str,
    accept: &str,
    body: &Value,
) -> Response {
    if t.rt.group == "authentication.k8s.io" && t.rt.plural == "selfsubjectreviews" {
        // The open fake authenticates nobody, so it cannot say who a client is: it answers as a
        // server without the API (before Kubernetes 1.28) does.
        let enforcing = st.lock().authn.enforcing;
        return match *method {
            _ if !enforcing => status_error(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource"),
            Method::POST => self_subject_review(user),
            _ => status_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "selfsubjectreviews can only be created"),
        };
    }
    let ns = t.namespace.as_deref();
    let status_only = t.sub.as_deref() == Some("status");
    let dry_run = q.get("dryRun").is_some();
    if let Some(sub) = t.sub.as_deref() {
        if sub == "log" && t.rt.plural == "pods" && *method == Method::GET {
            return pod_log(st, ns.unwrap_or_default(), t.name.as_deref().unwrap_or_default(), q);
        }
        if sub == "eviction" && t.rt.group.is_empty() && t.rt.plural == "pods" && *method == Method::POST {
            let pod = t.name.as_deref().unwrap_or_default();
            return match eviction::evict(&mut st.lock(), &t.rt, ns.unwrap_or_default(), pod, body) {
                Ok(status) => json_response(StatusCode::CREATED, &status),
                Err(e) => store_error(e),
            };
        }
        if sub != "status" || !t.rt.status_subresource {
            return status_error(StatusCode::NOT_FOUND, "NotFound", &format!("subresource {sub} is not served by the fake"));
        }
    }
    let wants_table = accept.contains("as=Table");
    match (method.clone(), &t.name) {
        (Method::GET, None) => {
            let labels = q.get("labelSelector").unwrap_or_default();
            let fields = q.get("fieldSelector").unwrap_or_default();
            if q.flag("watch") {
                return watch(st, t, q, labels, fields);
            }
            let s = st.lock();
            let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok());
            let page = match pagination::list(&s, &t.rt, ns, labels, fields, limit, q.get("continue")) {
                Ok(page) => page,
                Err(e) => return store_error(e),
            };
            if wants_table {
                let mut table = table::table(&t.rt, &page.items, page.resource_version);
                table["metadata"] = page.metadata();
                return json_response(StatusCode::OK, &table);
            }
            json_response(
                StatusCode::OK,
                &json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(),
                        "metadata": page.metadata(), "items": page.items}),
            )
        }
        (Method::GET, Some(name)) => {
            let s = st.lock();
            match s.get_typed(&t.rt, ns, name) {
                Ok(obj) if wants_table => json_response(StatusCode::OK, &table::table(&t.rt, &[obj], s.rv)),
                Ok(obj) => json_response(StatusCode::OK, &obj),
                Err(e) => store_error(e),
            }
        }
        (Method::POST, None) => match admitted(st, t, user, dry_run, false, |s, dry| s.create(&t.rt, ns, body.clone(), dry)) {
            Ok((obj, warnings)) => with_warnings(json_response(StatusCode::CREATED, &obj), &warnings),
            Err(refused) => *refused,
        },
        (Method::PUT, Some(name)) => {
            match admitted(st, t, user, dry_run, false, |s, dry| s.replace(&t.rt, ns, name, body.clone(), status_only, dry)) {
                Ok((obj, warnings)) => with_warnings(json_response(StatusCode::OK, &obj), &warnings),
                Err(refused) => *refused,
            }
        }
        (Method::PATCH, Some(name)) => {
            let kind = match content_type.split(';').next().unwrap_or_default().trim() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
                other => {
                    return status_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", &format!("patch type {other}"));
                }
            };
            if matches!(kind, PatchKind::Apply) && q.get("fieldManager").is_none() {
                return status_error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "fieldManager is required for apply patches");
            }
            if matches!(kind, PatchKind::Strategic)
                && !(t.rt.group.is_empty() || t.rt.group.ends_with(".k8s.io") || !t.rt.group.contains('.'))
            {
                return status_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "strategic merge patch is not supported for custom resources",
                );
            }
            let manager = q.get("fieldManager");
            let write = |s: &mut Store, dry: bool| s.patch(&t.rt, ns, name, kind, body, manager, status_only, dry);
            match admitted(st, t, user, dry_run, false, write) {
                Ok((obj, warnings)) => with_warnings(json_response(StatusCode::OK, &obj), &warnings),
                Err(refused) => *refused,
            }
        }
        (Method::DELETE, Some(name)) => match DeleteOptions::parse(body, q.get("propagationPolicy"), dry_run)
            .map_err(|e| Box::new(store_error(e)))
            .and_then(|opts| admitted(st, t, user, dry_run, true, |s, _| s.delete_with(&t.rt, ns, name, &opts)).map(|(obj, _)| obj))
        {
            Ok(obj)
                if obj.pointer("/metadata/deletionTimestamp").is_some()
                    && obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty()) =>
            {
                json_response(StatusCode::OK, &obj)
            }
            Ok(obj) => json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "kind": t.rt.plural, "uid": obj["metadata"]["uid"]}}),
            ),
            Err(refused) => *refused,
        },
        _ => status_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "verb not supported by the fake"),
    }
}

/// What a watch with selectors sees of one change, as the watch cache decides it
/// (apiserver/pkg/storage/cacher/cache_watcher.go `convertToWatchEvent`): an update that makes
/// an object stop matching is a DELETED (of the new state), one that makes it start matching is
/// an ADDED; updates of objects that match neither before nor after are not sent.
fn filtered_event_type(labels: &str, fields: &str, e: &HistEntry) -> Option<&'static str> {
    let now = Store::matches(labels, fields, &e.object);
    let before = e.prev.as_ref().is_some_and(|p| Store::matches(labels, fields, p));
    match e.type_ {
        "ADDED" => now.then_some("ADDED"),
        "DELETED" => (now || before).then_some("DELETED"),
        _ => match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

/// A watch stream: newline-delimited JSON events, bookmarks when asked, `410` in-stream
/// (as the real server does) when the requested resourceVersion was compacted away.
fn watch(st: &AppState, t: &Target, q: &Query, labels: &str, fields: &str) -> Response {
    let requested = q.get("resourceVersion").unwrap_or_default();
    let bookmarks = q.flag("allowWatchBookmarks");
    let timeout = Duration::from_secs(q.get("timeoutSeconds").and_then(|s| s.parse().ok()).unwrap_or(300));
    let (start, initial) = {
        let s = st.lock();
        if requested.is_empty() || requested == "0" {
            let items = s.list(&t.rt, t.namespace.as_deref(), labels, fields);
            let initial: Vec<Value> = items.into_iter().map(|o| json!({"type": "ADDED", "object": o})).collect();
            (s.rv, initial)
        } else {
            match requested.parse::<u64>() {
                Ok(rv) if rv >= s.oldest_watchable_rv => (rv, vec![]),
                _ => {
                    let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "reason": "Expired", "code": 410,
                        "message": format!("too old resource version: {requested} ({})", s.oldest_watchable_rv)}});
                    return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], format!("{gone}\n")).into_response();
                }
            }
        }
    };
    struct W {
        st: AppState,
        rt: ResourceType,
        ns: Option<String>,
        labels: String,
        fields: String,
        last: u64,
        pending: Vec<Value>,
        rx: tokio::sync::watch::Receiver<u64>,
        deadline: tokio::time::Instant,
        bookmarks: bool,
    }
    let w = W {
        st: st.clone(),
        rt: t.rt.clone(),
        ns: t.namespace.clone(),
        labels: labels.to_string(),
        fields: fields.to_string(),
        last: start,
        pending: initial,
        rx: st.notify.subscribe(),
        deadline: tokio::time::Instant::now() + timeout,
        bookmarks,
    };
    let stream = futures::stream::unfold(w, |mut w| async move {
        loop {
            if !w.pending.is_empty() {
                let mut chunk = String::new();
                for e in w.pending.drain(..) {
                    chunk.push_str(&e.to_string());
                    chunk.push('\n');
                }
                return Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), w));
            }
            if w.st.shutdown.is_cancelled() || tokio::time::Instant::now() >= w.deadline {
                return None;
            }
            {
                let s = w.st.lock();
                if w.last < s.oldest_watchable_rv {
                    w.pending.push(json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "reason": "Expired", "code": 410, "message": "too old resource version"}}));
                    w.deadline = tokio::time::Instant::now();
                    continue;
                }
                for e in s.events_since(w.last, &w.rt.group, &w.rt.plural, w.ns.as_deref()) {
                    if let Some(type_) = filtered_event_type(&w.labels, &w.fields, &e) {
                        w.pending.push(json!({"type": type_, "object": e.object}));
                    }
                }
                w.last = s.rv;
            }
            if !w.pending.is_empty() {
                continue;
            }
            let wait = tokio::time::timeout(Duration::from_millis(500), w.rx.changed());
            tokio::select! {
                r = wait => {
                    if r.is_err() && w.bookmarks {
                        w.pending.push(json!({"type": "BOOKMARK", "object": {"kind": w.rt.kind, "apiVersion": w.rt.api_version(),
                            "metadata": {"resourceVersion": w.last.to_string()}}}));
                    }
                    if let Ok(Err(_)) = r {
                        return None;
                    }
                }
                _ = w.st.shutdown.cancelled() => return None,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| status_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "watch"))
}
