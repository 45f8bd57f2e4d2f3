//! What every `/services/data/vXX.X/...` call passes through, in Salesforce's order:
//! version check, latency, session check (401 `INVALID_SESSION_ID`), the daily API
//! limit (403 `REQUEST_LIMIT_EXCEEDED`), injected server errors, then the handler;
//! `Sforce-Limit-Info` is added to every answer.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

use super::AppState;
use super::error::ApiError;

/// The bearer token of a request (`Bearer` or the older `OAuth` scheme).
pub fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")).then(|| token.trim())
}

/// The middleware.
pub async fn gate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    // Nested routers see their own suffix of the path; the version is in the prefix.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |u| u.path().to_string());
    let version_ok =
        path.trim_start_matches("/services/data/").split('/').next().and_then(super::parse_version).is_some();
    if !version_ok {
        return ApiError::not_found().into_response();
    }
    let now = state.tick();
    // Only the scalars this gate needs: cloning the knobs would copy their lists on
    // every API call.
    let (latency_ms, lifetime, limit, error_rate) = {
        let k = state.knobs.read();
        (k.latency_ms, k.token_lifetime_secs.map(|s| s as i64 * 1000), k.daily_api_limit, k.error_rate)
    };
    if latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }
    let session_ok = bearer(&req).is_some_and(|t| state.oauth.store().check(t, now, lifetime).is_ok());
    if !session_ok {
        let mut resp =
            ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid").into_response();
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        return resp;
    }
    let used = state.api.count(now);
    let limit_info = HeaderValue::from_str(&format!("api-usage={}/{limit}", used.min(limit)))
        .unwrap_or(HeaderValue::from_static("api-usage=0/0"));
    if used > limit {
        let mut resp = ApiError::new(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            .into_response();
        resp.headers_mut().insert("sforce-limit-info", limit_info);
        return resp;
    }
    if error_rate > 0.0 {
        let roll = state.rng.lock().random::<f64>();
        if roll < error_rate {
            return injected_error(roll / error_rate, limit_info);
        }
    }
    let mut resp = next.run(req).await;
    resp.headers_mut().insert("sforce-limit-info", limit_info);
    resp
}

/// A server error as real orgs send them: sometimes JSON, sometimes an HTML page from
/// the edge, so clients must classify by status and not by body.
fn injected_error(roll: f64, limit_info: HeaderValue) -> Response {
    let mut resp = if roll < 0.4 {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)",
        )
        .into_response()
    } else if roll < 0.8 {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVER_UNAVAILABLE",
            "Server temporarily unavailable, please retry",
        )
        .into_response()
    } else {
        let mut r = (
            StatusCode::BAD_GATEWAY,
            "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>",
        )
            .into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return r;
    };
    resp.headers_mut().insert("sforce-limit-info", limit_info);
    resp
}
