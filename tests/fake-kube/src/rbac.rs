//! Authorization in the enforcing mode: the RBAC authorizer over the Roles, ClusterRoles and
//! their bindings stored through the API (rbac.authorization.k8s.io/v1), as
//! https://kubernetes.io/docs/reference/access-authn-authz/rbac/ documents it and
//! plugin/pkg/auth/authorizer/rbac/rbac.go (`RuleAllows`) with pkg/apis/rbac/v1/evaluation_helpers.go
//! (`VerbMatches`, `APIGroupMatches`, `ResourceMatches`, `ResourceNameMatches`,
//! `NonResourceURLMatches`) implement it. Rules only allow; there is no deny.
//!
//! Before RBAC, members of `system:masters` are allowed everything (the privileged-groups
//! authorizer kube-apiserver puts first). The bootstrap policy's grants to every authenticated
//! user are built in rather than stored: `system:basic-user` (create self-subject reviews),
//! `system:discovery` and `system:public-info-viewer` (discovery paths, `/version`), see
//! plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go. No other bootstrap role (`admin`,
//! `edit`, `view`, `cluster-admin`, the controllers' roles) exists unless a test creates it.
//!
//! A refusal is `403 Forbidden` worded as apiserver/pkg/endpoints/handlers/responsewriters/
//! errors.go `forbiddenMessage` and apimachinery `errors.NewForbidden` word it.

use serde_json::{Value, json};

use crate::authn::{AUTHENTICATED, MASTERS, UNAUTHENTICATED, UserInfo};
use crate::store::Store;

/// What the authorizer sees of a request (apiserver/pkg/authorization/authorizer `Attributes`).
#[derive(Clone, Debug)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    /// A resource request; `false` for paths like `/version` or `/apis`.
    pub resource_request: bool,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
}

/// Allowed, or refused with the reason the RBAC authorizer gives (empty unless a binding names
/// a role that does not exist).
pub enum Decision {
    Allow,
    Deny(String),
}

/// One PolicyRule (rbac/v1), read from JSON.
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
}

impl Rule {
    fn from_json(r: &Value) -> Self {
        Self {
            verbs: strings(&r["verbs"]),
            api_groups: strings(&r["apiGroups"]),
            resources: strings(&r["resources"]),
            resource_names: strings(&r["resourceNames"]),
            non_resource_urls: strings(&r["nonResourceURLs"]),
        }
    }

    /// rbac.go `RuleAllows`.
    fn allows(&self, a: &Attributes) -> bool {
        let verb = self.verbs.iter().any(|v| v == "*" || *v == a.verb);
        if !a.resource_request {
            return verb && self.non_resource_urls.iter().any(|u| non_resource_url_matches(u, &a.path));
        }
        let combined = if a.subresource.is_empty() { a.resource.clone() } else { format!("{}/{}", a.resource, a.subresource) };
        verb && self.api_groups.iter().any(|g| g == "*" || *g == a.group)
            && self.resources.iter().any(|r| resource_matches(r, &combined, &a.subresource))
            && (self.resource_names.is_empty() || (!a.name.is_empty() && self.resource_names.contains(&a.name)))
    }
}

/// `ResourceMatches`: `*`, the exact `resource[/subresource]`, or `*/subresource`.
fn resource_matches(rule: &str, combined: &str, subresource: &str) -> bool {
    rule == "*" || rule == combined || (!subresource.is_empty() && rule.strip_prefix("*/") == Some(subresource))
}

/// `NonResourceURLMatches`: `*`, exact, or a prefix ending in `*`.
fn non_resource_url_matches(rule: &str, path: &str) -> bool {
    rule == "*" || rule == path || rule.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
}

/// The bootstrap grants every (un)authenticated user has (bootstrappolicy/policy.go).
fn bootstrap_rules(user: &UserInfo) -> Vec<Rule> {
    let rule = |verbs: &[&str], groups: &[&str], resources: &[&str], urls: &[&str]| Rule {
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        api_groups: groups.iter().map(|s| s.to_string()).collect(),
        resources: resources.iter().map(|s| s.to_string()).collect(),
        resource_names: vec![],
        non_resource_urls: urls.iter().map(|s| s.to_string()).collect(),
    };
    let has = |g: &str| user.groups.iter().any(|x| x == g);
    let mut rules = Vec::new();
    if has(AUTHENTICATED) || has(UNAUTHENTICATED) {
        // system:public-info-viewer
        rules.push(rule(&["get"], &[], &[], &["/healthz", "/livez", "/readyz", "/version", "/version/"]));
    }
    if has(AUTHENTICATED) {
        // system:discovery
        rules.push(rule(&["get"], &[], &[], &["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*"]));
        // system:basic-user
        rules.push(rule(&["create"], &["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"], &[]));
        rules.push(rule(&["create"], &["authentication.k8s.io"], &["selfsubjectreviews"], &[]));
    }
    rules
}

/// Does a binding's subject name this user? (rbac/validation/rule.go `appliesToUser`; a
/// ServiceAccount subject without a namespace is in the RoleBinding's namespace.)
fn applies_to(subject: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str().unwrap_or_default() {
        "User" => user.username == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(binding_namespace);
            user.username == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// The rules bound to `user` that apply in `namespace` ("" = cluster scope: ClusterRoleBindings
/// only), and the errors met resolving them (a binding to a role that does not exist).
fn rules_for(store: &Store, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
    let mut rules = bootstrap_rules(user);
    let mut errors = Vec::new();
    let rbac = "rbac.authorization.k8s.io";
    let mut resolve = |role_ref: &Value, binding_ns: &str, rules: &mut Vec<Rule>| {
        let name = role_ref["name"].as_str().unwrap_or_default();
        let role = match role_ref["kind"].as_str() {
            Some("ClusterRole") => store.get(rbac, "clusterroles", None, name).ok_or(format!("clusterrole.{rbac} \"{name}\" not found")),
            _ => store.get(rbac, "roles", Some(binding_ns), name).ok_or(format!("role.{rbac} \"{name}\" not found")),
        };
        match role {
            Ok(role) => rules.extend(role["rules"].as_array().into_iter().flatten().map(Rule::from_json)),
            Err(e) => errors.push(e),
        }
    };
    for b in store.objects_of(rbac, "clusterrolebindings") {
        if b["subjects"].as_array().into_iter().flatten().any(|s| applies_to(s, user, "")) {
            resolve(&b["roleRef"], "", &mut rules);
        }
    }
    if !namespace.is_empty() {
        for b in store.objects_of(rbac, "rolebindings").into_iter().filter(|b| b["metadata"]["namespace"] == json!(namespace)) {
            if b["subjects"].as_array().into_iter().flatten().any(|s| applies_to(s, user, namespace)) {
                resolve(&b["roleRef"], namespace, &mut rules);
            }
        }
    }
    (rules, errors)
}

pub fn authorize(store: &Store, a: &Attributes) -> Decision {
    if a.user.groups.iter().any(|g| g == MASTERS) {
        return Decision::Allow;
    }
    let (rules, errors) = rules_for(store, &a.user, &a.namespace);
    if rules.iter().any(|r| r.allows(a)) {
        return Decision::Allow;
    }
    match errors.as_slice() {
        [] => Decision::Deny(String::new()),
        [one] => Decision::Deny(format!("RBAC: {one}")),
        many => Decision::Deny(format!("RBAC: [{}]", many.join(", "))),
    }
}

/// responsewriters `forbiddenMessage`.
fn forbidden_message(a: &Attributes) -> String {
    let user = &a.user.username;
    if !a.resource_request {
        return format!("User {user:?} cannot {} path {:?}", a.verb, a.path);
    }
    let resource = if a.subresource.is_empty() { a.resource.clone() } else { format!("{}/{}", a.resource, a.subresource) };
    if a.namespace.is_empty() {
        format!("User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope", a.verb, a.group)
    } else {
        format!("User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}", a.verb, a.group, a.namespace)
    }
}

/// The `403 Forbidden` Status the API server answers (responsewriters `Forbidden`, then
/// `errors.NewForbidden(groupResource, name, ...)`).
pub fn forbidden_status(a: &Attributes, reason: &str) -> Value {
    let mut msg = forbidden_message(a);
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    let qualified = if a.group.is_empty() { a.resource.clone() } else { format!("{}.{}", a.resource, a.group) };
    let message = match (a.resource_request, a.name.is_empty()) {
        (false, _) => format!("forbidden: {msg}"),
        (true, true) => format!("{qualified} is forbidden: {msg}"),
        (true, false) => format!("{qualified} {:?} is forbidden: {msg}", a.name),
    };
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": "Forbidden", "details": {"name": a.name, "group": a.group, "kind": a.resource}, "code": 403})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            user: UserInfo::new("alice", &[]),
            verb: verb.into(),
            resource_request: true,
            group: "salve.dev".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "shop".into(),
            name: name.into(),
            path: String::new(),
        }
    }

    #[test]
    fn rules_match_as_the_rbac_authorizer_matches_them() {
        let rule = |v: Value| Rule::from_json(&v);
        let patch_incidents = rule(json!({"apiGroups": ["salve.dev"], "resources": ["incidents"], "verbs": ["patch"]}));
        assert!(patch_incidents.allows(&attrs("patch", "incidents", "", "x")));
        assert!(!patch_incidents.allows(&attrs("patch", "incidents", "status", "x")), "a subresource is its own resource");
        let any_status = rule(json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]}));
        assert!(any_status.allows(&attrs("update", "incidents", "status", "x")));
        assert!(!any_status.allows(&attrs("update", "incidents", "", "x")));
        let named = rule(json!({"apiGroups": ["salve.dev"], "resources": ["incidents"], "resourceNames": ["a"], "verbs": ["get", "list"]}));
        assert!(named.allows(&attrs("get", "incidents", "", "a")));
        assert!(!named.allows(&attrs("get", "incidents", "", "b")));
        assert!(!named.allows(&attrs("list", "incidents", "", "")), "resourceNames cannot allow a list");
        let urls = rule(json!({"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]}));
        let mut path = attrs("get", "", "", "");
        path.resource_request = false;
        path.path = "/healthz/etcd".into();
        assert!(urls.allows(&path));
    }

    #[test]
    fn a_refusal_is_worded_as_the_api_server_words_it() {
        let s = forbidden_status(&attrs("patch", "incidents", "", "x"), "");
        assert_eq!(
            s["message"],
            "incidents.salve.dev \"x\" is forbidden: User \"alice\" cannot patch resource \"incidents\" in API group \"salve.dev\" in the namespace \"shop\""
        );
        let mut list = attrs("list", "pods", "", "");
        list.group = String::new();
        list.namespace = String::new();
        assert_eq!(
            forbidden_status(&list, "")["message"],
            "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
        );
    }
}
