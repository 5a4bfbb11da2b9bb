//! Authentication: who a request comes from, as the API server's token authenticators decide it
//! (https://kubernetes.io/docs/reference/access-authn-authz/authentication/).
//!
//! Two modes:
//! - **open** (`FakeKube::start`, what the operator's tests have always used): the bearer token
//!   IS the user name, every request is allowed, and the name is only recorded. There is no
//!   such mode in a real cluster; it keeps tests that do not ask about access simple.
//! - **enforcing** (`FakeKube::start_enforcing`): a bearer token must be one the test
//!   registered, as in a static token file (`--token-auth-file`: token, user name, uid,
//!   groups), or a service-account token the fake issued. An unknown token is `401
//!   Unauthorized`; a request without a token is `system:anonymous` in `system:unauthenticated`
//!   (anonymous requests are enabled by default), which RBAC then refuses.
//!
//! As the real authenticator chain does, every authenticated user also gets the group
//! `system:authenticated` (apiserver/pkg/authentication/group/authenticated_group_adder.go), and
//! a service account `<ns>/<name>` is the user `system:serviceaccount:<ns>:<name>` in the
//! groups `system:serviceaccounts` and `system:serviceaccounts:<ns>`
//! (apiserver/pkg/authentication/serviceaccount/util.go `UserInfo`).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

/// The user an API request is made as (`request.userInfo` in admission).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group real RBAC lets do everything (kube-apiserver adds a privileged-groups authorizer
/// for it: pkg/kubeapiserver/authorizer/config.go).
pub const MASTERS: &str = "system:masters";

impl UserInfo {
    /// A user as a static token file lists it; `system:authenticated` is added as the real
    /// authenticator adds it.
    pub fn new(username: &str, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_string());
        }
        Self { username: username.to_string(), uid: format!("uid-{username}"), groups }
    }

    /// The identity of service account `namespace/name`.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            uid: format!("uid-sa-{namespace}-{name}"),
            groups: vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{namespace}"), AUTHENTICATED.into()],
        }
    }

    fn anonymous() -> Self {
        Self { username: "system:anonymous".into(), uid: String::new(), groups: vec![UNAUTHENTICATED.into()] }
    }
}

/// The token the enforcing fake registers for its built-in administrator (in `system:masters`),
/// used by `FakeKube::kubeconfig_yaml` so that tests that set a cluster up keep working.
pub const ADMIN_TOKEN: &str = "test-admin";

#[derive(Default)]
pub struct Authenticator {
    pub enforcing: bool,
    tokens: HashMap<String, UserInfo>,
}

/// Why a request was not authenticated: the API server answers `401 Unauthorized`.
pub struct Unauthorized;

impl Authenticator {
    pub fn enforcing() -> Self {
        let mut a = Self { enforcing: true, tokens: HashMap::new() };
        a.register(ADMIN_TOKEN, UserInfo::new(ADMIN_TOKEN, &[MASTERS]));
        a
    }

    pub fn register(&mut self, token: &str, user: UserInfo) {
        self.tokens.insert(token.to_string(), user);
    }

    /// A token for service account `namespace/name`, shaped like the JWTs the TokenRequest API
    /// issues (header.claims.signature, with `sub` = the user name) so that clients reading
    /// the subject work; the fake does not sign it: it knows the tokens it gave out.
    pub fn issue_service_account_token(&mut self, namespace: &str, name: &str) -> String {
        let user = UserInfo::service_account(namespace, name);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"fake-kube"}"#);
        let claims = json!({"iss": "https://kubernetes.default.svc.cluster.local", "sub": user.username,
                            "aud": ["https://kubernetes.default.svc.cluster.local"],
                            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": user.uid}}});
        let token = format!("{header}.{}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()), URL_SAFE_NO_PAD.encode(b"fake-kube"));
        self.register(&token, user);
        token
    }

    /// The user of a request with this `Authorization` header value (if any).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<UserInfo, Unauthorized> {
        let token = authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        if !self.enforcing {
            return Ok(match token {
                Some(t) => UserInfo::new(t, &[]),
                None => UserInfo::anonymous(),
            });
        }
        match token {
            None => Ok(UserInfo::anonymous()),
            Some(t) => self.tokens.get(t).cloned().ok_or(Unauthorized),
        }
    }
}
