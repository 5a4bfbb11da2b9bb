//! OpenAPI pieces both services' generated documents share.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};

/// Declares the `x-api-key` header scheme (named `ApiKeyAuth`, as in the reference contracts).
pub struct ApiKeySecurity;

impl utoipa::Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("ApiKeyAuth", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(crate::auth::API_KEY_HEADER))));
    }
}
