//! OpenAPI pieces both services' generated documents share.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};

use crate::http::{MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_URI_BYTES};

/// Declares the `x-api-key` header scheme (named `ApiKeyAuth`, as in the reference contracts).
pub struct ApiKeySecurity;

impl utoipa::Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("ApiKeyAuth", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(crate::auth::API_KEY_HEADER))));
    }
}

/// Documents what the shared HTTP edge ([`crate::http::assemble`]) answers on any operation,
/// whatever its handler does: the limits on URI, header fields and body, the API key, injected
/// faults and the request timeout. The handlers' own annotations keep their more specific
/// descriptions where both name a status. `public_paths` need no API key.
pub fn describe_edge(doc: &mut OpenApi, public_paths: &[&str]) {
    let components = doc.components.get_or_insert_with(Default::default);
    let size = |bytes: usize| match bytes {
        b if b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
        b => format!("{} KiB", b / 1024),
    };
    for (name, description) in [
        ("BadRequest", "The request is malformed, e.g. its body ended before its Content-Length".to_string()),
        ("Unauthorized", "No accepted x-api-key header".to_string()),
        ("RequestTimeout", "The body did not arrive in full within body_timeout_ms (runtime settings)".to_string()),
        ("PayloadTooLarge", format!("The body is larger than {}", size(MAX_BODY_BYTES))),
        ("UriTooLong", format!("The path and query are longer than {}", size(MAX_URI_BYTES))),
        ("UnsupportedMediaType", "The body is not declared as application/json".to_string()),
        ("HeadersTooLarge", format!("The header fields take more than {}, or there are more than 100 of them", size(MAX_HEADER_BYTES))),
        ("InternalError", "An internal error, or a fault injected through the runtime settings".to_string()),
        ("Unavailable", "Storage is unavailable, or the request took longer than request_timeout_ms".to_string()),
    ] {
        components.responses.insert(name.to_string(), RefOr::T(error_response(&description)));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = public_paths.contains(&path.as_str());
        for operation in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten() {
            describe_operation(operation, public);
        }
    }
}

fn describe_operation(operation: &mut Operation, public: bool) {
    let body = operation.request_body.as_ref().map(|b| b.content.contains_key("application/json"));
    let mut add = |status: &str, response: &str| {
        operation.responses.responses.entry(status.to_string()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(response)));
    };
    add("414", "UriTooLong");
    add("431", "HeadersTooLarge");
    add("503", "Unavailable");
    if let Some(json) = body {
        add("400", "BadRequest");
        add("408", "RequestTimeout");
        add("413", "PayloadTooLarge");
        if json {
            add("415", "UnsupportedMediaType");
        }
    }
    if public {
        // An empty list overrides the document-wide API-key requirement.
        operation.security = Some(Vec::new());
    } else {
        add("401", "Unauthorized");
        add("500", "InternalError");
    }
}

fn error_response(description: &str) -> Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build()
}
