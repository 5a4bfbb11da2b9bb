//! # fake-kube — a TEST STAND-IN for the Kubernetes API server
//!
//! **This is not a real API server** and must never be used as one. No real kube-apiserver can
//! run on the machines this project is developed on (no Docker, no packaged binary), so the
//! operator's end-to-end tests run the real controllers against this small in-memory fake. It is
//! faithful only for what the operator and `kubectl get` use:
//!
//! - discovery (`/api`, `/apis`, `/apis/{group}/{version}`, `/version`) for kube-rs and kubectl
//! - namespaced CRUD for core/v1 (pods, configmaps, events, secrets, services), apps/v1
//!   (deployments, replicasets), autoscaling/v2 (horizontalpodautoscalers), coordination.k8s.io/v1 (leases), events.k8s.io/v1 (events),
//!   policy/v1 (poddisruptionbudgets) and any CustomResourceDefinition created through the API
//! - list + watch with resourceVersion: bookmarks, `410 Gone` for a compacted version
//! - `limit`/`continue` pagination (`pagination.rs`): later pages are served from the first
//!   page's resourceVersion (rebuilt from the watch history), an opaque token,
//!   `remainingItemCount` when no selector is given, `410 Expired` ("The provided continue
//!   parameter is too old ...") once that version is compacted; kube-runtime's paging watcher works
//! - watches with label/field selectors send DELETED when an update makes an object stop
//!   matching and ADDED when one makes it start matching, as the watch cache does
//! - merge patch, JSON patch (a `test` op of `null` on a missing path passes, as kube-runtime's
//!   finalizer helper expects), apply patch approximated as a merge with the field manager
//!   recorded in `managedFields` (on the status subresource the applied status replaces the old
//!   one, which is what pruning does when one manager owns all of status), strategic merge for lists keyed by `name` (containers, env, ...)
//! - status subresource separate from the main resource; generation bumped on spec change
//! - structural schemas of custom resources (`schema.rs`), on create, update, patch and status
//!   writes, before CEL: unknown fields pruned (kept under `x-kubernetes-preserve-unknown-fields`),
//!   nulls of non-nullable fields dropped, `default`s applied, then `type`, `enum`, `required`,
//!   `minimum`/`maximum` (and exclusive), `minLength`/`maxLength`, `minItems`/`maxItems`,
//!   `pattern`, `nullable`, `x-kubernetes-int-or-string` validated; 422 `Invalid` worded like the
//!   real server with `details.causes`; unchanged values ratchet on updates.
//!   `FakeKube::store_unvalidated` stores an object as an older, looser schema would have let it in
//! - finalizers + deletionTimestamp; owner-reference garbage collection done at once
//!   (`deletion.rs`): `propagationPolicy` Background (default), Foreground (owner kept with
//!   `foregroundDeletion` until dependents with `blockOwnerDeletion` are gone), Orphan;
//!   `preconditions` (uid, resourceVersion) and `dryRun` on delete
//! - `pods/eviction` (`eviction.rs`): deletes the pod unless a matching PodDisruptionBudget would
//!   be violated (429 `TooManyRequests`); allowed disruptions are computed from the PDB spec and
//!   the ready matching pods at request time (there is no disruption controller)
//! - `pods/log` (`logs.rs`) with `container`, `previous`, `tailLines`, `sinceSeconds`,
//!   `sinceTime` and `timestamps`; each line has a timestamp (when it first appeared)
//! - CEL rules (`x-kubernetes-validations`) of registered CRDs, enforced with kube-cel
//! - `Table` responses (CRD printer columns) for `kubectl get`
//! - a request log (user, RBAC group/resource/verb, status) so tests can assert what was (not)
//!   done and by whom, and scripted failures (`fail_requests`) as a loaded server gives them
//! - ObjectMeta validation of names and labels (422 `Invalid`, as the real server words it)
//! - authentication (`authn.rs`), only with `FakeKube::start_enforcing`: bearer tokens registered
//!   as a static token file lists users (`add_user`: name, groups, plus `system:authenticated`),
//!   service-account tokens (`service_account_token`: `system:serviceaccount:<ns>:<name>` in
//!   `system:serviceaccounts`, `system:serviceaccounts:<ns>`), `401 Unauthorized` for an unknown
//!   token, `system:anonymous` without one; the built-in administrator (`ADMIN_TOKEN`, used by
//!   `kubeconfig_yaml`) is in `system:masters`. `SelfSubjectReview` answers who the caller is.
//!   With `FakeKube::start` the token is taken as the user name and every request is allowed
//! - RBAC (`rbac.rs`), only with `start_enforcing`: Role, ClusterRole, RoleBinding and
//!   ClusterRoleBinding (rbac.authorization.k8s.io/v1) stored through the API and evaluated as the
//!   RBAC authorizer does (verbs incl. `*`, apiGroups, resources incl. `resource/subresource` and
//!   `*/subresource`, resourceNames, nonResourceURLs; User, Group and ServiceAccount subjects;
//!   `system:masters` allowed everything; the bootstrap grants to authenticated users for
//!   discovery and self-reviews); apply-patch that creates needs `create` too; `403 Forbidden`
//!   worded as the real server words it
//! - validating admission policies (`admission.rs`), in both modes: ValidatingAdmissionPolicy and
//!   its binding (admissionregistration.k8s.io/v1) with CEL over `request` (`userInfo`,
//!   `operation`, ...), `object`, `oldObject`, `variables` and `namespaceObject`:
//!   matchConstraints, binding matchResources, matchConditions, validations with `message`,
//!   `messageExpression` and `reason`, `failurePolicy`, and the binding's `validationActions`
//!   (Deny refuses with the real wording, Warn answers a `Warning` header, Audit is recorded)
//!
//! Not modelled: the open mode's authorization (every token is allowed, only recorded), client
//! certificates, OIDC, token expiry and whether a ServiceAccount object exists, the bootstrap
//! roles other than the grants above (`cluster-admin`, `admin`, `edit`, `view` and the control
//! plane's roles do not exist unless created), RBAC escalation checks on writing roles and
//! bindings, impersonation, SubjectAccessReviews, ValidatingAdmissionPolicy `paramKind` /
//! `paramRef` and type checking, mutating admission and admission webhooks, admission of
//! `pods/eviction`, schema validation of built-in kinds, `format`, `uniqueItems`,
//! `multipleOf`, `min/maxProperties`, `allOf`/`anyOf`/`oneOf`/`not`, `x-kubernetes-list-type`
//! and `-map-type` in CRD schemas, ratcheting inside lists, CRD version conversion (every served
//! version has its own schema, objects are stored as written), the `/openapi` documents (use
//! `kubectl --validate=false`), field ownership and pruning of real server-side apply outside
//! status, PDB `status` (never written; eviction computes from spec), `limitBytes` of logs,
//! `resourceVersionMatch` on lists, graceful deletion (`gracePeriodSeconds` is ignored), and
//! every built-in controller (no Deployment controller, no kubelet: tests play those roles).

mod admission;
mod authn;
mod deletion;
mod eviction;
mod http;
mod logs;
mod pagination;
mod patch;
mod rbac;
mod registry;
mod schema;
mod selector;
mod store;
mod table;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use authn::{ADMIN_TOKEN, UserInfo};
use logs::ContainerLog;
pub use patch::{json_patch_lenient, merge_patch, strategic_merge_patch};
pub use registry::ResourceType;
pub use store::{Fault, LoggedRequest, Store};

/// A running fake API server on 127.0.0.1 at a free port. Dropping it stops the server.
pub struct FakeKube {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    notify: tokio::sync::watch::Sender<u64>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl FakeKube {
    /// An open server: the bearer token is taken as the user name and every request is
    /// allowed (see `authn`). Validating admission policies apply in both modes.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(Store::new()).await
    }

    /// A server that authenticates and authorizes as a real one: only registered tokens
    /// (`add_user`, `service_account_token`) and the built-in administrator's (`ADMIN_TOKEN`,
    /// in `system:masters`, used by `kubeconfig_yaml`) are accepted, an unknown token is `401`,
    /// and every request must be allowed by RBAC objects stored through the API (`403`).
    pub async fn start_enforcing() -> std::io::Result<Self> {
        let mut store = Store::new();
        store.authn = authn::Authenticator::enforcing();
        Self::start_with(store).await
    }

    async fn start_with(store: Store) -> std::io::Result<Self> {
        let store = Arc::new(Mutex::new(store));
        let (notify, _) = tokio::sync::watch::channel(0u64);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let app = http::router(http::AppState { store: store.clone(), notify: notify.clone(), shutdown: shutdown.clone() });
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await;
        });
        Ok(Self { addr, store, notify, shutdown })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for kube-rs (`Config::from_custom_kubeconfig`) and kubectl (`--kubeconfig`).
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        self.kubeconfig_yaml_as(namespace, ADMIN_TOKEN)
    }

    /// Registers a user's bearer token, as a line of a static token file would (enforcing
    /// mode; `system:authenticated` is added to `groups`). Returns the user.
    pub fn add_user(&self, token: &str, username: &str, groups: &[&str]) -> UserInfo {
        let user = UserInfo::new(username, groups);
        self.lock().authn.register(token, user.clone());
        user
    }

    /// A token for service account `namespace/name` (a JWT-shaped token whose `sub` is
    /// `system:serviceaccount:<namespace>:<name>`), accepted from now on.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        self.lock().authn.issue_service_account_token(namespace, name)
    }

    /// What bindings with `validationActions: [Audit]` recorded, in order.
    pub fn admission_audit(&self) -> Vec<String> {
        self.lock().admission_audit.clone()
    }

    /// Same, with `token` as the bearer token. With `FakeKube::start` the token is the user
    /// name: everything is authorized but the user is recorded in the request log, so tests
    /// can check what one client (e.g. the operator) did. With `start_enforcing` the token
    /// must be registered (`add_user`, `service_account_token`).
    pub fn kubeconfig_yaml_as(&self, namespace: &str, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: {token}\n",
            url = self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(namespace))
    }

    /// Scripts a failure (see `Fault`): e.g. the second status write of an Incident answers 500.
    pub fn fail_requests(&self, fault: Fault) {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).faults.push(fault);
    }

    /// Every resource request seen so far (user, verb, path, patch type, field manager, body).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().requests.clone()
    }

    /// Drops watch history so that older resourceVersions get `410 Gone`.
    pub fn compact(&self) {
        self.lock().compact();
    }

    /// Sets the text served by `GET .../pods/{name}/log` (any container, current instance).
    pub fn set_pod_log(&self, namespace: &str, pod: &str, text: &str) {
        self.set_container_log(namespace, pod, "", false, text);
    }

    /// Sets one container's log, of its current instance or (`previous`) of the one before the
    /// last restart, as the kubelet keeps them (`?container=`, `?previous=true`). Lines carry no
    /// timestamps here: lines new to this log are stamped "now", lines it already held (the
    /// text is re-sent as it grows) keep theirs, so `sinceSeconds`/`sinceTime` see when each
    /// line first appeared.
    pub fn set_container_log(&self, namespace: &str, pod: &str, container: &str, previous: bool, text: &str) {
        let key = (namespace.to_string(), pod.to_string(), container.to_string(), previous);
        self.lock().pod_logs.entry(key).or_default().set_text(text, chrono::Utc::now());
    }

    /// Sets one container's log with an explicit timestamp per line (replacing what it held).
    pub fn set_container_log_lines(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        lines: &[(chrono::DateTime<chrono::Utc>, &str)],
    ) {
        let key = (namespace.to_string(), pod.to_string(), container.to_string(), previous);
        let log = ContainerLog { lines: lines.iter().map(|(t, l)| (*t, l.to_string())).collect() };
        self.lock().pod_logs.insert(key, log);
    }

    /// TEST HOOK: stores a custom resource WITHOUT schema validation, pruning, defaulting or CEL
    /// rules — an object written under an older, looser schema version, as etcd can hold and
    /// a real cluster serves after its CRD was tightened. Use it to test how a client copes
    /// with objects it cannot deserialise; never to get around validation otherwise. Later
    /// writes to the object are validated (unchanged fields ratchet, as on a real server).
    pub fn store_unvalidated(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        obj: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let result = {
            let mut s = self.lock();
            let rt = s.find_type(group, version, plural).ok_or_else(|| format!("{plural}.{group}/{version} is not served"))?;
            s.create_unvalidated(&rt, Some(namespace), obj).map_err(|e| format!("{e:?}"))
        };
        self.notify();
        result
    }

    /// Direct read of a stored object (bypasses HTTP), by plural and group.
    pub fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.lock().get(group, plural, Some(namespace), name).cloned()
    }

    pub fn current_resource_version(&self) -> u64 {
        self.lock().rv
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock poisons it; the data is still usable for a test double.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes watchers (used internally after every write).
    pub fn notify(&self) {
        let rv = self.lock().rv;
        self.notify.send_replace(rv);
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
