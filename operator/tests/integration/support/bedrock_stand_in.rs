//! A local TEST STAND-IN for the Bedrock Runtime Converse API: axum on 127.0.0.1 answering with
//! Bedrock's documented JSON (tool use, text, errors with `x-amzn-errortype`, a hang), reached
//! through the SDK's endpoint override. It records every request so tests can read the prompt.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const MODEL: &str = "anthropic.claude-test-v1:0";

#[derive(Clone)]
pub enum Reply {
    Tool(Value),
    /// The model calls another tool (an investigation step), with this input.
    Call(&'static str, Value),
    Text(&'static str),
    Error(u16, &'static str),
    Hang,
}

#[derive(Clone, Default)]
pub struct Stand {
    pub replies: Arc<Mutex<VecDeque<Reply>>>,
    pub requests: Arc<Mutex<Vec<Value>>>,
}

async fn converse(State(s): State<Stand>, Path(model): Path<String>, body: String) -> Response {
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    s.requests.lock().expect("lock").push(json!({"model": model, "body": req}));
    let reply = s.replies.lock().expect("lock").pop_front().unwrap_or(Reply::Error(500, "InternalServerException"));
    let usage = json!({"inputTokens": 1200, "outputTokens": 300, "totalTokens": 1500});
    match reply {
        Reply::Tool(input) => axum::Json(json!({
            "output": {"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tu-1", "name": "report_diagnosis", "input": input}}]}},
            "stopReason": "tool_use", "usage": usage, "metrics": {"latencyMs": 5}
        }))
        .into_response(),
        Reply::Call(name, input) => axum::Json(json!({
            "output": {"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tu-1", "name": name, "input": input}}]}},
            "stopReason": "tool_use", "usage": usage, "metrics": {"latencyMs": 5}
        }))
        .into_response(),
        Reply::Text(t) => axum::Json(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": t}]}},
            "stopReason": "end_turn", "usage": usage, "metrics": {"latencyMs": 5}
        }))
        .into_response(),
        Reply::Error(code, kind) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [("x-amzn-errortype", kind), ("content-type", "application/json")],
            json!({"message": format!("{kind} from the test stand-in")}).to_string(),
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub async fn stand_in(replies: Vec<Reply>) -> (Stand, String) {
    let s = Stand { replies: Arc::new(Mutex::new(replies.into())), ..Default::default() };
    let app = Router::new().route("/model/{model}/converse", post(converse)).with_state(s.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    (s, url)
}
