//! The router, the request log and session gate, and the token endpoint.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use crate::script::{ACCESS_TOKEN, Endpoint, Recorded};
use crate::shared::{Shared, error, json, not_found, set};
use crate::{bulk, rest};

/// The fake's routes (or the recorder's catch-all), behind the log and the session gate.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let routes = if shared.salesforce {
        Router::new()
            .route("/services/oauth2/token", post(token))
            .route("/services/data/{v}/sobjects/{object}/describe", get(rest::describe))
            .route("/services/data/{v}/query", get(rest::query))
            .route("/services/data/{v}/query/", get(rest::query))
            .route("/services/data/{v}/queryAll", get(rest::query))
            .route("/services/data/{v}/queryAll/", get(rest::query))
            .route("/services/data/{v}/query/{locator}", get(rest::more))
            .route("/services/data/{v}/queryAll/{locator}", get(rest::more))
            .route("/services/data/{v}/jobs/query", post(bulk::create))
            .route("/services/data/{v}/jobs/query/{id}", get(bulk::status).patch(bulk::abort).delete(bulk::delete))
            .route("/services/data/{v}/jobs/query/{id}/results", get(bulk::results))
            .fallback(|| async { not_found() })
    } else {
        Router::new().fallback(|| async { json(StatusCode::OK, json!({"totalSize": 0, "done": true, "records": []})) })
    };
    routes.layer(axum::middleware::from_fn_with_state(shared.clone(), observe)).with_state(shared)
}

/// Logs the request; under `/services/data` counts it, checks the session and stamps
/// `Sforce-Limit-Info` and `Date`.
async fn observe(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let recorded = {
        let text =
            |name| req.headers().get(name).map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Recorded {
            method: req.method().to_string(),
            path_and_query: req.uri().path_and_query().map_or_else(|| req.uri().path().to_owned(), |p| p.to_string()),
            authorization: text(header::AUTHORIZATION),
            host: text(header::HOST),
        }
    };
    let authorization = recorded.authorization.clone();
    shared.log.lock().push(recorded);
    if !shared.salesforce || !req.uri().path().starts_with("/services/data") {
        return next.run(req).await;
    }
    let used = shared.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let mut resp = if authorization.as_deref() == Some(format!("Bearer {ACCESS_TOKEN}").as_str()) {
        next.run(req).await
    } else {
        error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid")
    };
    let headers = resp.headers_mut();
    set(headers, "sforce-limit-info", &format!("api-usage={used}/15000"));
    set(headers, "date", &chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    resp
}

/// `POST /services/oauth2/token`: any grant, any body.
async fn token(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(hung) = shared.hang(Endpoint::Login).await {
        return hung;
    }
    let base = &shared.base_url;
    let instance_url = shared.script.misbehave.instance_url.clone().unwrap_or_else(|| base.clone());
    json(
        StatusCode::OK,
        json!({
            "access_token": ACCESS_TOKEN,
            "instance_url": instance_url,
            "id": format!("{base}/id/00DFAKE00000001AAA/005FAKE00000001AAA"),
            "token_type": "Bearer",
            "issued_at": chrono::Utc::now().timestamp_millis().to_string(),
            "signature": "RmFrZVNhbGVzZm9yY2VTaWduYXR1cmU9PQ==",
        }),
    )
}
