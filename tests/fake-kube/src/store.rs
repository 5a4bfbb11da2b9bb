//! In-memory object store with a global resourceVersion and a bounded watch history.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::{Value, json};

use crate::authn::Authenticator;
use crate::deletion::{self, DeleteOptions, Propagation};
use crate::logs::ContainerLog;
use crate::patch;
use crate::registry::{ResourceType, builtins};
use crate::schema;
use crate::selector::{Selector, field, label};

/// One resource request, for tests that assert what was (not) done and by whom.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// The authenticated user name (with `FakeKube::start`, the bearer token the client sent;
    /// empty when the token was refused).
    pub user: String,
    /// RBAC view of the request: API group, resource (`pods/log`, `incidents/status`), verb.
    pub group: String,
    pub resource: String,
    pub verb: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub field_manager: Option<String>,
    pub dry_run: bool,
    pub body: Value,
    pub status: u16,
}

#[derive(Debug)]
pub enum StoreError {
    NotFound(String),
    AlreadyExists(String),
    Conflict(String),
    Invalid(String),
    /// Any other API error, answered as a `Status` with this code, reason and `details`.
    Status {
        code: u16,
        reason: &'static str,
        message: String,
        details: Value,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ObjKey {
    group: String,
    plural: String,
    namespace: String,
    name: String,
}

#[derive(Clone, Debug)]
pub struct HistEntry {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub type_: &'static str,
    pub object: Value,
    /// The object before this change (`None` for ADDED): lets a paginated list rebuild the
    /// state at an older resourceVersion and a filtered watch see objects leave its selector.
    pub prev: Option<Value>,
}

#[derive(Clone, Copy)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

const HISTORY_LIMIT: usize = 10_000;

/// A scripted failure: the next `times` requests with this method whose path ends with
/// `path_suffix`, after `skip` matching ones pass, get `status`. Real API servers do fail this
/// way (etcd timeouts: 500/504, overload: 429/503); tests use it to prove nothing is repeated.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: String,
    pub path_suffix: String,
    pub status: u16,
    pub skip: u32,
    pub times: u32,
}

pub struct Store {
    pub rv: u64,
    pub types: Vec<ResourceType>,
    objects: BTreeMap<ObjKey, Value>,
    pub history: VecDeque<HistEntry>,
    /// Watches from a resourceVersion below this get `410 Gone` (events up to it may be gone).
    pub oldest_watchable_rv: u64,
    pub requests: Vec<LoggedRequest>,
    /// Container logs by (namespace, pod, container, previous instance?).
    pub pod_logs: HashMap<(String, String, String, bool), ContainerLog>,
    uid_counter: u64,
    /// Scripted failures (see `FakeKube::fail_requests`).
    pub faults: Vec<Fault>,
    /// Owners deleted in the foreground, waiting for their blocking dependents.
    foreground_pending: BTreeSet<ObjKey>,
    /// Who a bearer token is (`authn`).
    pub authn: Authenticator,
    /// Admission failures of bindings whose `validationActions` include `Audit`.
    pub admission_audit: Vec<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Everything except metadata and status: a change here bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

/// Compare two versions ignoring bookkeeping, to make no-op writes free (like the real server).
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Self {
            rv: 1,
            types: builtins(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest_watchable_rv: 1,
            requests: Vec::new(),
            pod_logs: HashMap::new(),
            uid_counter: 0,
            faults: Vec::new(),
            foreground_pending: BTreeSet::new(),
            authn: Authenticator::default(),
            admission_audit: Vec::new(),
        }
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    pub fn compact(&mut self) {
        self.history.clear();
        self.oldest_watchable_rv = self.rv;
    }

    fn key(rt: &ResourceType, ns: Option<&str>, name: &str) -> ObjKey {
        ObjKey {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced { ns.unwrap_or_default().to_string() } else { String::new() },
            name: name.to_string(),
        }
    }

    pub fn get(&self, group: &str, plural: &str, ns: Option<&str>, name: &str) -> Option<&Value> {
        self.objects.get(&ObjKey {
            group: group.into(),
            plural: plural.into(),
            namespace: ns.unwrap_or_default().into(),
            name: name.into(),
        })
    }

    /// Every stored object of one type, in all namespaces.
    pub fn objects_of(&self, group: &str, plural: &str) -> Vec<&Value> {
        self.objects.iter().filter(|(k, _)| k.group == group && k.plural == plural).map(|(_, v)| v).collect()
    }

    pub fn get_typed(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, StoreError> {
        self.objects
            .get(&Self::key(rt, ns, name))
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("{}.{} \"{name}\" not found", rt.plural, rt.group)))
    }

    pub fn list(&self, rt: &ResourceType, ns: Option<&str>, labels: &str, fields: &str) -> Vec<Value> {
        let ls = Selector::parse(labels);
        let fs = Selector::parse(fields);
        self.objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| ns.is_none_or(|n| k.namespace == n))
            .filter(|(_, v)| ls.matches(|key| label(v, key)) && fs.matches(|key| field(v, key)))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The objects of one type (and namespace) as they were at `rv`, in storage-key order
    /// (namespace, then name), rebuilt from the watch history by undoing every later change;
    /// `None` when the history no longer reaches back to `rv` (it was compacted).
    /// The objects of one type as they were at `rv` (`None` once compacted), by reference and in
    /// the order of their `namespace/name` key: the current objects with every later change
    /// undone from the history. Nothing is copied, so a page costs what it returns, not the
    /// size of the whole list (the lock is held meanwhile).
    pub fn snapshot(&self, rt: &ResourceType, ns: Option<&str>, rv: u64) -> Option<BTreeMap<String, &Value>> {
        if rv < self.oldest_watchable_rv || rv > self.rv {
            return None;
        }
        let mut state: BTreeMap<String, &Value> = self
            .objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural && ns.is_none_or(|n| k.namespace == n))
            .map(|(k, v)| (format!("{}/{}", k.namespace, k.name), v))
            .collect();
        // Newest first, so the oldest change after `rv` decides (its `prev` is the state at `rv`).
        for e in self.history.iter().rev().take_while(|e| e.rv > rv) {
            if e.group != rt.group || e.plural != rt.plural || ns.is_some_and(|n| e.namespace != n) {
                continue;
            }
            let name = e.object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let key = format!("{}/{name}", e.namespace);
            match &e.prev {
                Some(p) => state.insert(key, p),
                None => state.remove(&key),
            };
        }
        Some(state)
    }

    pub fn matches(labels: &str, fields: &str, obj: &Value) -> bool {
        Selector::parse(labels).matches(|k| label(obj, k)) && Selector::parse(fields).matches(|k| field(obj, k))
    }

    fn record(&mut self, rt: &ResourceType, ns: &str, type_: &'static str, object: Value, prev: Option<Value>) {
        self.history.push_back(HistEntry {
            rv: self.rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: ns.to_string(),
            type_,
            object,
            prev,
        });
        while self.history.len() > HISTORY_LIMIT {
            if let Some(e) = self.history.pop_front() {
                self.oldest_watchable_rv = e.rv;
            }
        }
    }

    fn set_meta(obj: &mut Value, key: &str, v: Value) {
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        obj["metadata"][key] = v;
    }

    pub fn create(&mut self, rt: &ResourceType, ns: Option<&str>, mut obj: Value, dry_run: bool) -> Result<Value, StoreError> {
        if !obj.is_object() {
            return Err(StoreError::Invalid("body must be an object".into()));
        }
        let mut name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        if name.is_empty() {
            match obj.pointer("/metadata/generateName").and_then(Value::as_str) {
                Some(prefix) => {
                    self.uid_counter += 1;
                    name = format!("{prefix}{:05x}", self.uid_counter);
                }
                None => return Err(StoreError::Invalid("metadata.name is required".into())),
            }
        }
        let key = Self::key(rt, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists(format!("{}.{} \"{name}\" already exists", rt.plural, rt.group)));
        }
        self.uid_counter += 1;
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        Self::set_meta(&mut obj, "name", json!(name));
        if rt.namespaced {
            Self::set_meta(&mut obj, "namespace", json!(key.namespace));
        }
        Self::set_meta(&mut obj, "uid", json!(format!("00000000-fake-0000-0000-{:012x}", self.uid_counter)));
        Self::set_meta(&mut obj, "creationTimestamp", json!(now()));
        Self::set_meta(&mut obj, "generation", json!(1));
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("deletionTimestamp");
        }
        if rt.status_subresource
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        Self::fold_string_data(rt, &mut obj);
        Self::validate_meta(rt, &obj)?;
        Self::apply_schema(rt, &mut obj, None)?;
        Self::validate_cel(rt, &obj, None)?;
        if dry_run {
            return Ok(obj);
        }
        self.rv += 1;
        Self::set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
        if rt.plural == "customresourcedefinitions" {
            self.register_crd(&obj);
        }
        self.objects.insert(key.clone(), obj.clone());
        self.record(rt, &key.namespace, "ADDED", obj.clone(), None);
        Ok(obj)
    }

    /// Stores `obj` as a create would, but without schema or CEL validation, pruning or
    /// defaulting: see `FakeKube::store_unvalidated`.
    pub fn create_unvalidated(&mut self, rt: &ResourceType, ns: Option<&str>, obj: Value) -> Result<Value, StoreError> {
        let mut loose = rt.clone();
        loose.schema = None;
        self.create(&loose, ns, obj, false)
    }

    /// A Secret's `stringData` is write-only: the API server merges it into `data` (base64,
    /// `stringData` winning) and never stores or returns it (core/v1 Secret documentation).
    fn fold_string_data(rt: &ResourceType, obj: &mut Value) {
        use base64::Engine;
        if rt.group.is_empty()
            && rt.plural == "secrets"
            && let Some(string_data) = obj.as_object_mut().and_then(|o| o.remove("stringData"))
            && let Some(entries) = string_data.as_object()
        {
            if !obj.get("data").is_some_and(Value::is_object) {
                obj["data"] = json!({});
            }
            for (k, v) in entries {
                obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default()));
            }
        }
    }

    /// ObjectMeta validation as the API server does it for every kind (apimachinery
    /// `ValidateObjectMeta` -> `ValidateLabels`, `IsValidLabelValue`: at most 63 characters,
    /// alphanumeric at both ends, `-_.` inside; names at most 253 characters).
    fn validate_meta(rt: &ResourceType, obj: &Value) -> Result<(), StoreError> {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let mut errs = Vec::new();
        if name.len() > 253 {
            errs.push(format!("metadata.name: Invalid value: \"{name}\": must be no more than 253 characters"));
        }
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
        for (key, value) in labels {
            let v = value.as_str().unwrap_or_default();
            let ok_chars = v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            let ok_ends =
                v.is_empty() || (v.starts_with(|c: char| c.is_ascii_alphanumeric()) && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
            if v.len() > 63 {
                errs.push(format!("metadata.labels: Invalid value: \"{v}\": must be no more than 63 characters"));
            } else if !ok_chars || !ok_ends {
                errs.push(format!(
                    "metadata.labels: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (key {key})"
                ));
            }
        }
        if errs.is_empty() {
            return Ok(());
        }
        Err(StoreError::Invalid(format!("{} \"{name}\" is invalid: {}", rt.kind, errs.join(", "))))
    }

    /// The status to fail this request with, if a scripted fault matches (and counts it).
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<u16> {
        let f = self.faults.iter_mut().find(|f| f.method == method && path.ends_with(&f.path_suffix) && f.times > 0)?;
        if f.skip > 0 {
            f.skip -= 1;
            return None;
        }
        f.times -= 1;
        Some(f.status)
    }

    /// Structural schema of a custom resource: prune, default, then validate (422 `Invalid`
    /// with one cause per field error). `old` enables ratcheting on updates.
    fn apply_schema(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) -> Result<(), StoreError> {
        let Some(schema) = &rt.schema else { return Ok(()) };
        schema::prune_and_default(schema, obj);
        let errs = schema::validate(schema, obj, old);
        if errs.is_empty() {
            return Ok(());
        }
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let qualified = format!("{}.{}", rt.kind, rt.group);
        Err(StoreError::Status {
            code: 422,
            reason: "Invalid",
            message: schema::invalid_message(&qualified, name, &errs),
            details: json!({"name": name, "group": rt.group, "kind": rt.kind,
                            "causes": errs.iter().map(schema::FieldError::cause).collect::<Vec<_>>()}),
        })
    }

    /// Enforces the CRD's CEL rules (transition rules when `old` is given).
    fn validate_cel(rt: &ResourceType, new: &Value, old: Option<&Value>) -> Result<(), StoreError> {
        let Some(schema) = &rt.schema else { return Ok(()) };
        kube_cel::validate(schema, new, old).map_err(|errs| {
            let name = new.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let details: Vec<String> =
                errs.into_vec().into_iter().map(|e| format!("{}: Invalid value: {}", e.field_path, e.message)).collect();
            StoreError::Invalid(format!("{}.{} \"{name}\" is invalid: {}", rt.kind, rt.group, details.join(", ")))
        })
    }

    fn register_crd(&mut self, crd: &Value) {
        for t in ResourceType::from_crd(crd) {
            self.types.retain(|x| !(x.group == t.group && x.version == t.version && x.plural == t.plural));
            self.types.push(t);
        }
    }

    /// Writes a new version of an existing object, applying the API server's rules.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        mut new: Value,
        status_only: bool,
        manager: Option<(&str, &str)>,
        dry_run: bool,
    ) -> Result<Value, StoreError> {
        let key = Self::key(rt, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("{}.{} \"{name}\" not found", rt.plural, rt.group)))?;
        if rt.status_subresource {
            if status_only {
                let status = new.get("status").cloned();
                new = old.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            } else {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
        }
        // Identity and server-owned metadata cannot be changed by clients.
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = old["kind"].clone();
        for k in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation", "managedFields"] {
            match old["metadata"].get(k) {
                Some(v) => Self::set_meta(&mut new, k, v.clone()),
                None => {
                    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove(k);
                    }
                }
            }
        }
        Self::fold_string_data(rt, &mut new);
        if let Some(schema) = &rt.schema {
            // Pruning and defaulting come first so that a write that only re-sends what the
            // server would drop or default is still a no-op.
            schema::prune_and_default(schema, &mut new);
        }
        if same_content(&old, &new) {
            return Ok(old);
        }
        Self::validate_meta(rt, &new)?;
        Self::apply_schema(rt, &mut new, Some(&old))?;
        Self::validate_cel(rt, &new, Some(&old))?;
        if spec_part(&old) != spec_part(&new) {
            let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            Self::set_meta(&mut new, "generation", json!(g + 1));
        }
        if let Some((manager, operation)) = manager {
            let mut fields: Vec<Value> = new.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
            let sub = if status_only { "status" } else { "" };
            fields.retain(|f| {
                !(f["manager"] == json!(manager)
                    && f["operation"] == json!(operation)
                    && f.get("subresource").and_then(Value::as_str).unwrap_or("") == sub)
            });
            let mut entry = json!({"manager": manager, "operation": operation, "apiVersion": rt.api_version(), "time": now(), "fieldsType": "FieldsV1", "fieldsV1": {}});
            if status_only {
                entry["subresource"] = json!("status");
            }
            fields.push(entry);
            Self::set_meta(&mut new, "managedFields", Value::Array(fields));
        }
        if dry_run {
            return Ok(new);
        }
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        let no_finalizers = new.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
        self.rv += 1;
        Self::set_meta(&mut new, "resourceVersion", json!(self.rv.to_string()));
        if deleting && no_finalizers {
            self.objects.remove(&key);
            self.record(rt, &key.namespace, "DELETED", new.clone(), Some(old));
            self.cascade(&new);
            return Ok(new);
        }
        if rt.plural == "customresourcedefinitions" {
            self.register_crd(&new);
        }
        self.objects.insert(key.clone(), new.clone());
        self.record(rt, &key.namespace, "MODIFIED", new.clone(), Some(old));
        Ok(new)
    }

    /// Optimistic concurrency: a `metadata.resourceVersion` the client sends (in a PUT body, or
    /// in a patch of any kind, server-side apply included) must be the object's current one, or
    /// the write is a 409 Conflict worded as the real server words it (`errors.NewConflict` with
    /// `registry.OptimisticLockErrorMsg`, k8s.io/apiserver/pkg/registry/generic/registry/store.go).
    fn check_resource_version(rt: &ResourceType, name: &str, sent: &Value, current: &Value) -> Result<(), StoreError> {
        match sent.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
            Some(rv) if !rv.is_empty() && Some(rv) != current.pointer("/metadata/resourceVersion").and_then(Value::as_str) => {
                Err(StoreError::Conflict(format!(
                    "Operation cannot be fulfilled on {}.{} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    rt.plural, rt.group
                )))
            }
            _ => Ok(()),
        }
    }

    /// PUT: optimistic concurrency on `metadata.resourceVersion` when the client sends one.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        new: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, StoreError> {
        let old = self.get_typed(rt, ns, name)?;
        Self::check_resource_version(rt, name, &new, &old)?;
        let result = self.commit(rt, ns, name, new, status_only, None, dry_run);
        self.collect_foreground();
        result
    }

    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        manager: Option<&str>,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, StoreError> {
        let existing = self.objects.get(&Self::key(rt, ns, name)).cloned();
        let Some(mut obj) = existing else {
            if matches!(kind, PatchKind::Apply) && !status_only {
                // Server-side apply creates what does not exist.
                let mut created = self.create(rt, ns, body.clone(), dry_run)?;
                if let Some(m) = manager
                    && !dry_run
                {
                    created = self.commit(rt, ns, name, created.clone(), false, Some((m, "Apply")), false)?;
                }
                return Ok(created);
            }
            return Err(StoreError::NotFound(format!("{}.{} \"{name}\" not found", rt.plural, rt.group)));
        };
        let builtin = !rt.group.contains('.') || rt.group.ends_with(".k8s.io");
        if !matches!(kind, PatchKind::Json) {
            Self::check_resource_version(rt, name, body, &obj)?;
        }
        match kind {
            PatchKind::Merge => patch::merge_patch(&mut obj, body),
            PatchKind::Strategic => patch::strategic_merge_patch(&mut obj, body),
            // Status is written by one field manager (the operator), so applying it owns all of
            // it: fields left out are removed, as real server-side apply prunes them.
            PatchKind::Apply if status_only => {
                if let (Some(o), Some(status)) = (obj.as_object_mut(), body.get("status")) {
                    o.insert("status".into(), status.clone());
                }
            }
            // Approximation elsewhere: apply == merge (strategic for built-in types); no pruning.
            PatchKind::Apply if builtin => patch::strategic_merge_patch(&mut obj, body),
            PatchKind::Apply => patch::merge_patch(&mut obj, body),
            PatchKind::Json => patch::json_patch_lenient(&mut obj, body).map_err(StoreError::Invalid)?,
        }
        let operation = if matches!(kind, PatchKind::Apply) { "Apply" } else { "Update" };
        let result = self.commit(rt, ns, name, obj, status_only, manager.map(|m| (m, operation)), dry_run);
        self.collect_foreground();
        result
    }

    /// DELETE with the default (background) propagation.
    pub fn delete(&mut self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, StoreError> {
        self.delete_with(rt, ns, name, &DeleteOptions::default())
    }

    /// DELETE with `DeleteOptions`: preconditions, dry run and the propagation policy.
    pub fn delete_with(&mut self, rt: &ResourceType, ns: Option<&str>, name: &str, opts: &DeleteOptions) -> Result<Value, StoreError> {
        let obj = self.get_typed(rt, ns, name)?;
        deletion::check_preconditions(rt, name, &obj, opts)?;
        if opts.dry_run {
            return Ok(obj);
        }
        let result = self.delete_inner(rt, ns, name, opts.propagation);
        self.collect_foreground();
        result
    }

    /// With finalizers the object only gets a deletionTimestamp; otherwise it is removed and its
    /// dependents are handled by `policy` (what the garbage collector does, done at once).
    fn delete_inner(&mut self, rt: &ResourceType, ns: Option<&str>, name: &str, policy: Propagation) -> Result<Value, StoreError> {
        let key = Self::key(rt, ns, name);
        let mut obj = self.get_typed(rt, ns, name)?;
        let uid = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string();
        if policy == Propagation::Orphan {
            self.orphan_dependents(&uid);
        }
        let before = obj.clone();
        if policy == Propagation::Foreground && obj.pointer("/metadata/deletionTimestamp").is_none() && !self.dependents(&uid).is_empty() {
            // The owner stays, visibly "deleting dependents", until the dependents that block
            // owner deletion are gone (see `collect_foreground`).
            let mut finalizers = obj.pointer("/metadata/finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
            if !finalizers.contains(&json!(deletion::FOREGROUND_FINALIZER)) {
                finalizers.push(json!(deletion::FOREGROUND_FINALIZER));
            }
            Self::set_meta(&mut obj, "finalizers", Value::Array(finalizers));
        }
        let has_finalizers = obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if obj.pointer("/metadata/deletionTimestamp").is_none() {
                self.rv += 1;
                Self::set_meta(&mut obj, "deletionTimestamp", json!(now()));
                Self::set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
                self.objects.insert(key.clone(), obj.clone());
                self.record(rt, &key.namespace, "MODIFIED", obj.clone(), Some(before));
                if policy == Propagation::Foreground {
                    self.foreground_pending.insert(key);
                    self.delete_dependents(&uid, true);
                }
            }
            return Ok(obj);
        }
        self.rv += 1;
        Self::set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
        self.objects.remove(&key);
        self.record(rt, &key.namespace, "DELETED", obj.clone(), Some(before));
        self.cascade(&obj);
        Ok(obj)
    }

    /// Keys and objects naming `uid` in their ownerReferences.
    fn dependents(&self, uid: &str) -> Vec<(ObjKey, Value)> {
        if uid.is_empty() {
            return vec![];
        }
        self.objects.iter().filter(|(_, v)| deletion::owner_ref(v, uid).is_some()).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn type_of(&self, k: &ObjKey) -> Option<ResourceType> {
        self.types.iter().find(|t| t.group == k.group && t.plural == k.plural).cloned()
    }

    /// Background cascade: delete every object that names `owner` in its ownerReferences.
    fn cascade(&mut self, owner: &Value) {
        let uid = owner.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string();
        self.delete_dependents(&uid, false);
    }

    /// Deletes the dependents of `uid`. Under a foreground owner, a dependent that has
    /// dependents of its own is deleted in the foreground too (the garbage collector's rule).
    fn delete_dependents(&mut self, uid: &str, foreground: bool) {
        for (k, v) in self.dependents(uid) {
            let Some(rt) = self.type_of(&k) else { continue };
            let own_uid = v.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string();
            let policy =
                if foreground && !self.dependents(&own_uid).is_empty() { Propagation::Foreground } else { Propagation::Background };
            let ns = if k.namespace.is_empty() { None } else { Some(k.namespace.clone()) };
            let _ = self.delete_inner(&rt, ns.as_deref(), &k.name, policy);
        }
    }

    /// Orphan policy: the owner's references are removed from its dependents, which stay.
    fn orphan_dependents(&mut self, uid: &str) {
        for (k, v) in self.dependents(uid) {
            let Some(rt) = self.type_of(&k) else { continue };
            let mut new = v.clone();
            if let Some(refs) = new.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                refs.retain(|r| r["uid"].as_str() != Some(uid));
                if refs.is_empty()
                    && let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    m.remove("ownerReferences");
                }
            }
            let ns = if k.namespace.is_empty() { None } else { Some(k.namespace.clone()) };
            let _ = self.commit(&rt, ns.as_deref(), &k.name, new, false, None, false);
        }
    }

    /// The garbage collector's foreground step: an owner waiting in `foregroundDeletion` loses
    /// that finalizer (and is removed, when it was the last) once no dependent with
    /// `blockOwnerDeletion: true` is left. Runs after every write; cheap when nothing waits.
    fn collect_foreground(&mut self) {
        loop {
            let mut progressed = false;
            let pending: Vec<ObjKey> = self.foreground_pending.iter().cloned().collect();
            for key in pending {
                let Some(owner) = self.objects.get(&key).cloned() else {
                    self.foreground_pending.remove(&key);
                    continue;
                };
                let finalizers = owner.pointer("/metadata/finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
                if !finalizers.contains(&json!(deletion::FOREGROUND_FINALIZER)) {
                    self.foreground_pending.remove(&key);
                    continue;
                }
                let uid = owner.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
                let blocked = self.objects.values().any(|v| deletion::owner_ref(v, uid).is_some_and(deletion::blocks_owner_deletion));
                if blocked {
                    continue;
                }
                let Some(rt) = self.type_of(&key) else { continue };
                let mut new = owner.clone();
                let rest: Vec<Value> = finalizers.into_iter().filter(|f| f != deletion::FOREGROUND_FINALIZER).collect();
                Self::set_meta(&mut new, "finalizers", Value::Array(rest));
                self.foreground_pending.remove(&key);
                let ns = if key.namespace.is_empty() { None } else { Some(key.namespace.clone()) };
                let _ = self.commit(&rt, ns.as_deref(), &key.name, new, false, None, false);
                progressed = true;
            }
            if !progressed || self.foreground_pending.is_empty() {
                return;
            }
        }
    }

    /// Events after `rv` for one resource type (and namespace, when given).
    pub fn events_since(&self, rv: u64, group: &str, plural: &str, ns: Option<&str>) -> Vec<HistEntry> {
        self.history
            .iter()
            .filter(|e| e.rv > rv && e.group == group && e.plural == plural && ns.is_none_or(|n| e.namespace == n))
            .cloned()
            .collect()
    }
}
