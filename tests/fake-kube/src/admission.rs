//! Validating admission policies (admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy and
//! ValidatingAdmissionPolicyBinding), enforced on create, update, patch and delete as
//! https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/
//! documents them and apiserver/pkg/admission/plugin/policy/validating (dispatcher.go,
//! validator.go) implements them:
//!
//! - a policy applies when its `matchConstraints` match the request (`resourceRules` with
//!   `apiGroups`, `apiVersions`, `resources` incl. `resource/subresource`, `*/sub` and `*/*`,
//!   `operations`, `resourceNames`, `scope`; `excludeResourceRules`; `namespaceSelector` on the
//!   namespace's labels; `objectSelector` on the object's labels) and a binding names it
//!   (`policyName`) whose own `matchResources`, when given, match too;
//! - its `matchConditions` must all be true, else it does not apply;
//! - `variables` are evaluated in order and read as `variables.<name>`;
//! - each validation's `expression` must be true; otherwise the message is the
//!   `messageExpression`'s result, else `message`, else `failed expression: <expression>`;
//!   the status reason is the validation's `reason` (default `Invalid`, 422);
//! - an expression that fails to compile or evaluate follows `failurePolicy` (default `Fail`:
//!   refused with `expression '<expression>' resulted in error: <error>`; `Ignore`: admitted);
//! - the binding's `validationActions` decide what a failure does: `Deny` refuses the request
//!   with `<resource>.<group> "<name>" is forbidden: ValidatingAdmissionPolicy '<policy>' with
//!   binding '<binding>' denied request: <message>`; `Warn` answers a `Warning` header
//!   (`Validation failed for ValidatingAdmissionPolicy '<policy>' with binding '<binding>':
//!   <message>`); `Audit` is recorded (`FakeKube::admission_audit`).
//!
//! CEL sees `object` (null on delete), `oldObject` (null on create), `request` (`operation`,
//! `userInfo.{username,uid,groups}`, `name`, `namespace`, `kind`, `resource`, `subResource`,
//! `dryRun`), `variables` and `namespaceObject`. Not modelled: `paramKind`/`paramRef` (`params`
//! is not bound), `authorizer`, type checking of expressions when a policy is written, a
//! policy's status, `matchPolicy: Equivalent`, and mutating admission.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{Context, Program, Value as Cel};
use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::selector::label_selector_matches;
use crate::store::Store;

const GROUP: &str = "admissionregistration.k8s.io";

/// What admission sees of one write.
pub struct Request<'a> {
    pub user: &'a UserInfo,
    /// CREATE, UPDATE or DELETE.
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    pub dry_run: bool,
}

/// A policy and one of its bindings that match a request by resource and operation.
pub struct Candidate {
    policy: Value,
    binding: Value,
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

/// One `NamedRuleWithOperations` (admission/plugin/webhook/predicates/rules/rules.go `Matcher`).
fn rule_matches(rule: &Value, r: &Request) -> bool {
    let any = |field: &str, want: &str| strs(&rule[field]).iter().any(|x| *x == "*" || *x == want);
    let resource = strs(&rule["resources"]).iter().any(|x| {
        let (res, sub) = x.split_once('/').unwrap_or((x, ""));
        (res == "*" || res == r.resource) && (sub == "*" || sub == r.subresource)
    });
    let names = strs(&rule["resourceNames"]);
    let scope = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => r.namespace.is_empty(),
        "Namespaced" => !r.namespace.is_empty(),
        _ => true,
    };
    any("operations", r.operation)
        && any("apiGroups", r.group)
        && any("apiVersions", r.version)
        && resource
        && (names.is_empty() || names.contains(&r.name))
        && scope
}

/// `resourceRules` / `excludeResourceRules` of a `MatchResources`; `rules_required` is false for
/// a binding, whose empty `resourceRules` mean "whatever the policy matches".
fn rules_match(m: &Value, r: &Request, rules_required: bool) -> bool {
    let rules = m["resourceRules"].as_array().cloned().unwrap_or_default();
    let included = if rules.is_empty() { !rules_required } else { rules.iter().any(|rule| rule_matches(rule, r)) };
    let excluded = m["excludeResourceRules"].as_array().into_iter().flatten().any(|rule| rule_matches(rule, r));
    included && !excluded
}

/// `namespaceSelector` (the namespace's labels; cluster-scoped objects always match, a
/// Namespace is matched by its own labels) and `objectSelector` (the new or the old object).
fn selectors_match(store: &Store, m: &Value, r: &Request) -> bool {
    let empty = json!({});
    let ns_labels = if r.namespace.is_empty() {
        None
    } else {
        Some(store.get("", "namespaces", None, r.namespace).and_then(|n| n.pointer("/metadata/labels")).unwrap_or(&empty))
    };
    let namespace_ok = match (m.get("namespaceSelector"), ns_labels) {
        (Some(sel), Some(labels)) => label_selector_matches(sel, labels),
        _ => true,
    };
    let object_ok = match m.get("objectSelector") {
        Some(sel) => [r.object, r.old_object]
            .into_iter()
            .flatten()
            .any(|o| label_selector_matches(sel, o.pointer("/metadata/labels").unwrap_or(&empty))),
        None => true,
    };
    namespace_ok && object_ok
}

/// The (policy, binding) pairs whose resource rules match, sorted by names. Cheap: no object is
/// needed, so a write that no policy concerns is never evaluated.
pub fn candidates(store: &Store, r: &Request) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut policies: Vec<&Value> = store.objects_of(GROUP, "validatingadmissionpolicies");
    policies.sort_by_key(|p| name_of(p).to_string());
    let bindings: Vec<&Value> = store.objects_of(GROUP, "validatingadmissionpolicybindings");
    for p in policies.into_iter().filter(|p| rules_match(&p["spec"]["matchConstraints"], r, true)) {
        let mut mine: Vec<&&Value> = bindings.iter().filter(|b| b["spec"]["policyName"].as_str() == Some(name_of(p))).collect();
        mine.sort_by_key(|b| name_of(b).to_string());
        for b in mine {
            let m = &b["spec"]["matchResources"];
            if m.is_null() || rules_match(m, r, false) {
                out.push(Candidate { policy: p.clone(), binding: (*b).clone() });
            }
        }
    }
    out
}

/// JSON as CEL values: integers stay integers (`int`), as the API server's CEL sees them.
fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => {
            let map: HashMap<Key, Cel> = o.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v))).collect();
            Cel::Map(Map { map: Arc::new(map) })
        }
    }
}

/// The `request` variable (admission/v1 AdmissionRequest as CEL sees it).
fn request_json(r: &Request) -> Value {
    json!({
        "operation": r.operation,
        "name": r.name,
        "namespace": r.namespace,
        "dryRun": r.dry_run,
        "kind": {"group": r.group, "version": r.version, "kind": r.kind},
        "resource": {"group": r.group, "version": r.version, "resource": r.resource},
        "subResource": r.subresource,
        "requestKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "requestResource": {"group": r.group, "version": r.version, "resource": r.resource},
        "requestSubResource": r.subresource,
        "userInfo": {"username": r.user.username, "uid": r.user.uid, "groups": r.user.groups},
    })
}

/// Evaluates one expression; `Err` carries the API server's wording of a failed expression.
fn eval(ctx: &Context, expression: &str) -> Result<Cel, String> {
    let program = Program::compile(expression).map_err(|e| format!("compilation failed: {e}"))?;
    program.execute(ctx).map_err(|e| format!("expression '{expression}' resulted in error: {e}"))
}

fn eval_bool(ctx: &Context, expression: &str) -> Result<bool, String> {
    match eval(ctx, expression)? {
        Cel::Bool(b) => Ok(b),
        other => Err(format!("expression '{expression}' resulted in error: no such overload (got {other:?}, want bool)")),
    }
}

/// One failed validation (or evaluation error under `failurePolicy: Fail`).
struct Failure {
    message: String,
    reason: String,
}

/// Evaluates one policy for one request: `None` = admitted (or not applicable).
fn evaluate(policy: &Value, store: &Store, r: &Request) -> Option<Failure> {
    let spec = &policy["spec"];
    let ignore_errors = spec["failurePolicy"].as_str() == Some("Ignore");
    let on_error = |message: String| (!ignore_errors).then(|| Failure { message, reason: "Invalid".into() });
    let mut ctx = Context::default();
    ctx.register_all();
    ctx.add_variable_from_value("object", r.object.map(to_cel).unwrap_or(Cel::Null));
    ctx.add_variable_from_value("oldObject", r.old_object.map(to_cel).unwrap_or(Cel::Null));
    ctx.add_variable_from_value("request", to_cel(&request_json(r)));
    if !r.namespace.is_empty()
        && let Some(ns) = store.get("", "namespaces", None, r.namespace)
    {
        ctx.add_variable_from_value("namespaceObject", to_cel(ns));
    }
    // Variables are composited lazily by the real server; here in order, each seeing those
    // before it. One that fails is left unset, so an expression using it fails in turn.
    let mut variables: HashMap<Key, Cel> = HashMap::new();
    for v in spec["variables"].as_array().into_iter().flatten() {
        ctx.add_variable_from_value("variables", Cel::Map(Map { map: Arc::new(variables.clone()) }));
        if let Ok(value) = eval(&ctx, v["expression"].as_str().unwrap_or_default()) {
            variables.insert(Key::String(Arc::new(v["name"].as_str().unwrap_or_default().to_string())), value);
        }
    }
    ctx.add_variable_from_value("variables", Cel::Map(Map { map: Arc::new(variables) }));
    for c in spec["matchConditions"].as_array().into_iter().flatten() {
        match eval_bool(&ctx, c["expression"].as_str().unwrap_or_default()) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return on_error(e),
        }
    }
    for v in spec["validations"].as_array().into_iter().flatten() {
        let expression = v["expression"].as_str().unwrap_or_default();
        match eval_bool(&ctx, expression) {
            Ok(true) => {}
            Ok(false) => {
                let from_expression = v["messageExpression"].as_str().and_then(|me| match eval(&ctx, me) {
                    Ok(Cel::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                    _ => None,
                });
                let message = from_expression
                    .or_else(|| v["message"].as_str().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()))
                    .unwrap_or_else(|| format!("failed expression: {}", expression.trim()));
                return Some(Failure { message, reason: v["reason"].as_str().unwrap_or("Invalid").to_string() });
            }
            Err(e) => {
                if let Some(f) = on_error(e) {
                    return Some(f);
                }
            }
        }
    }
    None
}

/// What admission decided: the warnings to answer with, or the refusal (a `Status`).
pub struct Outcome {
    pub warnings: Vec<String>,
    pub denied: Option<Value>,
}

/// Runs every candidate policy; the first denial refuses the request (dispatcher.go).
pub fn admit(store: &mut Store, candidates: &[Candidate], r: &Request) -> Outcome {
    let mut warnings = Vec::new();
    let mut denied = None;
    for c in candidates {
        let (p, b) = (name_of(&c.policy), name_of(&c.binding));
        let m = &c.binding["spec"]["matchResources"];
        if !selectors_match(store, &c.policy["spec"]["matchConstraints"], r) || (!m.is_null() && !selectors_match(store, m, r)) {
            continue;
        }
        let Some(failure) = evaluate(&c.policy, store, r) else { continue };
        let actions = strs(&c.binding["spec"]["validationActions"]);
        if actions.contains(&"Warn") {
            warnings.push(format!("Validation failed for ValidatingAdmissionPolicy '{p}' with binding '{b}': {}", failure.message));
        }
        if actions.contains(&"Audit") {
            store.admission_audit.push(format!("ValidatingAdmissionPolicy '{p}' with binding '{b}': {}", failure.message));
        }
        if actions.contains(&"Deny") && denied.is_none() {
            denied = Some(refusal(r, p, b, &failure));
        }
    }
    Outcome { warnings, denied }
}

/// `admission.NewForbidden` with the reason and code the validation asked for (`reasonToCode`).
fn refusal(r: &Request, policy: &str, binding: &str, f: &Failure) -> Value {
    let cause = format!("ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {}", f.message);
    let qualified = if r.group.is_empty() { r.resource.to_string() } else { format!("{}.{}", r.resource, r.group) };
    let name = if r.name.is_empty() { r.object.map(name_of).unwrap_or_default() } else { r.name };
    let message =
        if name.is_empty() { format!("{qualified} is forbidden: {cause}") } else { format!("{qualified} {name:?} is forbidden: {cause}") };
    let code = match f.reason.as_str() {
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    };
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": f.reason,
           "details": {"name": name, "group": r.group, "kind": r.resource, "causes": [{"message": cause}]}, "code": code})
}
