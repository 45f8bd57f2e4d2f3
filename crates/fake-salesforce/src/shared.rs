//! What the handlers share: the script, the request log, the Bulk jobs, the shutdown
//! signal ([`Shared`]), and the small response helpers.

use std::sync::atomic::AtomicU64;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::script::{Endpoint, Recorded, Script};

/// One created job.
pub(crate) struct Job {
    pub id: String,
    pub operation: String,
    pub created: String,
    pub aborted: bool,
    pub deleted: bool,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    /// What to serve (the recorder serves the default script's nothing).
    pub script: Script,
    /// False for the recorder: no routes, no session gate.
    pub salesforce: bool,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Every request, in arrival order.
    pub log: Mutex<Vec<Recorded>>,
    /// Calls under `/services/data` so far.
    pub calls: AtomicU64,
    /// Bulk jobs created so far.
    pub jobs: Mutex<Vec<Job>>,
    /// Becomes true (or closes) when the server shuts down.
    pub stopped: watch::Receiver<bool>,
}

impl Shared {
    pub fn new(script: Option<Script>, base_url: String, stopped: watch::Receiver<bool>) -> Shared {
        Shared {
            salesforce: script.is_some(),
            script: script.unwrap_or_default(),
            base_url,
            log: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            jobs: Mutex::new(Vec::new()),
            stopped,
        }
    }

    /// If the script hangs `endpoint`, waits until shutdown and answers 503.
    pub async fn hang(&self, endpoint: Endpoint) -> Option<Response> {
        if !self.script.misbehave.hang.contains(&endpoint) {
            return None;
        }
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|stop| *stop).await;
        Some(error(StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE", "The fake server shut down."))
    }
}

/// Sets a header, skipping values that cannot be one.
pub(crate) fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// A JSON response with Salesforce's content type.
pub(crate) fn json(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json;charset=UTF-8")], body.to_string()).into_response()
}

/// A REST error: Salesforce's one-element array.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, json!([{"errorCode": code, "message": message}]))
}

/// 404 `NOT_FOUND`.
pub(crate) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
}
