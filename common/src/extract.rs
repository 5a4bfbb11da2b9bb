//! Extractors whose rejections use the JSON error shape (axum's own answer in plain text).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// JSON body; malformed JSON, a wrong content type or a missing field is a 400.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(r) => ApiError::unsupported_media_type(r.body_text()),
        JsonRejection::JsonSyntaxError(r) => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", r.body_text()),
        JsonRejection::JsonDataError(r) => ApiError::validation(r.body_text()),
        // The edge middleware refuses over-limit bodies first; this keeps axum's own limit, should
        // it ever be the lower one, from turning a too-large body into a 400.
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", other.body_text())
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

/// Query string; a value of the wrong type is a 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| ApiError::bad_request(r.body_text()))
    }
}

/// Path parameters; a value of the wrong type is a 400.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r: PathRejection| ApiError::bad_request(r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::extract::DefaultBodyLimit;
    use axum::http::Method;
    use axum::routing::post;

    use super::*;
    use crate::testing::{call, error_code};

    #[tokio::test]
    async fn json_bodies_map_to_the_matching_client_errors() {
        async fn echo(ApiJson(v): ApiJson<serde_json::Value>) -> axum::Json<serde_json::Value> {
            axum::Json(v)
        }
        let router = Router::new().route("/", post(echo)).layer(DefaultBodyLimit::max(16));
        let over = call(&router, Method::POST, "/", None, Some(r#"{"a": "more than sixteen bytes"}"#), &[]).await;
        assert_eq!((over.status, error_code(&over).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
        let malformed = call(&router, Method::POST, "/", None, Some("{"), &[]).await;
        assert_eq!((malformed.status, error_code(&malformed).as_str()), (StatusCode::BAD_REQUEST, "malformed_json"));
        let untyped = call(&router, Method::POST, "/", None, None, &[]).await;
        assert_eq!((untyped.status, error_code(&untyped).as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));
    }
}
