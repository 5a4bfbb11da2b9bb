//! Who is acting, for `spec.approval.by`: the API server's own answer when it has one
//! (`SelfSubjectReview`, what `kubectl auth whoami` asks), else what the kubeconfig says, in this
//! order: the user entry's `username`, the subject (`sub`) of a JWT bearer token (ServiceAccount
//! and OIDC tokens), the common name of a client certificate, and last the name of the
//! kubeconfig's user entry.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::Api;
use kube::api::PostParams;
use kube::config::{AuthInfo, Kubeconfig};

use crate::der;

/// The name the API server authenticated us as, falling back to `fallback` (the kubeconfig's)
/// when the server does not serve `SelfSubjectReview` (before Kubernetes 1.28) or refuses it.
pub async fn confirmed(client: &kube::Client, fallback: &str) -> String {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = SelfSubjectReview::default();
    match api.create(&PostParams::default(), &review).await {
        Ok(r) => {
            r.status.and_then(|s| s.user_info).and_then(|u| u.username).filter(|u| !u.is_empty()).unwrap_or_else(|| fallback.to_string())
        }
        Err(_) => fallback.to_string(),
    }
}

/// The identity of `context`'s user according to the kubeconfig alone.
pub fn from_kubeconfig(kubeconfig: &Kubeconfig, context: &str) -> String {
    let user_entry = kubeconfig.contexts.iter().find(|c| c.name == context).and_then(|c| c.context.as_ref()).and_then(|c| c.user.clone());
    let Some(user_entry) = user_entry else { return "unknown-user".to_string() };
    let auth = kubeconfig.auth_infos.iter().find(|a| a.name == user_entry).and_then(|a| a.auth_info.as_ref());
    auth.and_then(from_auth_info).unwrap_or(user_entry)
}

fn from_auth_info(auth: &AuthInfo) -> Option<String> {
    if let Some(u) = auth.username.as_deref().filter(|u| !u.is_empty()) {
        return Some(u.to_string());
    }
    // The token is a secret type; its serialized form is the only way to read it without
    // another crate. It is used for its subject only and never printed.
    let plain = serde_json::to_value(auth).ok()?;
    let token = plain.get("token").and_then(|t| t.as_str()).map(str::to_string).or_else(|| {
        let file = auth.token_file.as_deref()?;
        std::fs::read_to_string(file).ok().map(|t| t.trim().to_string())
    });
    if let Some(sub) = token.as_deref().and_then(jwt_subject) {
        return Some(sub);
    }
    let pem = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(data), _) => STANDARD.decode(data.trim()).ok().and_then(|b| String::from_utf8(b).ok()),
        (None, Some(path)) => std::fs::read_to_string(path).ok(),
        (None, None) => None,
    };
    pem.as_deref().and_then(pem_to_der).and_then(|d| der::subject_common_name(&d))
}

/// `sub` of a JWT (`header.payload.signature`), unverified: it only names who we claim to be;
/// the API server checks the token itself.
pub fn jwt_subject(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub").and_then(|s| s.as_str()).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The first certificate of a PEM text, as DER.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(str::trim)
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_account_token_names_its_subject() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:shop:oncall"}"#);
        assert_eq!(jwt_subject(&format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")).as_deref(), Some("system:serviceaccount:shop:oncall"));
        assert_eq!(jwt_subject("not-a-jwt"), None);
        assert_eq!(jwt_subject("a.%%%.c"), None);
    }
}
