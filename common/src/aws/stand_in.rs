//! For unit tests of AWS adapters: a labelled stand-in endpoint (an axum router that answers
//! one API's wire protocol the way the real service documents it, including the unkind answers
//! the emulators never give) on a local port, and the SDK configuration that points at it.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

/// Serves `app` on 127.0.0.1 and returns an SDK configuration aimed at it.
pub async fn serve(app: axum::Router) -> SdkConfig {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
    let url = format!("http://{}", listener.local_addr().expect("a bound port"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "stand-in")))
        .endpoint_url(url)
        .build()
}

/// An answer in the AWS JSON 1.0 protocol's shape (errors carry `__type`, as the services send
/// them).
pub fn answer(status: axum::http::StatusCode, body: serde_json::Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, [("content-type", "application/x-amz-json-1.0")], body.to_string()).into_response()
}
