//! What every `/services/data/vXX.X/...` call passes through, in Salesforce's order:
//! version check, latency, session check (401 `INVALID_SESSION_ID`), the daily API
//! limit (403 `REQUEST_LIMIT_EXCEEDED`), injected throttling (429 with `Retry-After`) and
//! server errors, then the handler, whose successful answer may be cut short (knob
//! `truncate_rate`); `Sforce-Limit-Info` is added to every answer.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

use super::error::ApiError;
use super::state::AppState;
use super::version::parse_version;

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
    let version_ok = path.trim_start_matches("/services/data/").split('/').next().and_then(parse_version).is_some();
    if !version_ok {
        return ApiError::not_found().into_response();
    }
    let now = state.tick();
    // Only the scalars this gate needs: cloning the knobs would copy their lists on
    // every API call.
    let (latency_ms, limit, error_rate, rate_limit_rate, truncate_rate) = {
        let k = state.knobs.read();
        (k.latency_ms, k.daily_api_limit, k.error_rate, k.rate_limit_rate, k.truncate_rate)
    };
    if latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }
    let session_ok = bearer(&req).is_some_and(|t| state.session_valid(t, now));
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
    if rate_limit_rate > 0.0 && state.rng.lock().random::<f64>() < rate_limit_rate {
        return throttled(limit_info);
    }
    if error_rate > 0.0 {
        let roll = state.rng.lock().random::<f64>();
        if roll < error_rate {
            return injected_error(roll / error_rate, limit_info);
        }
    }
    let mut resp = next.run(req).await;
    resp.headers_mut().insert("sforce-limit-info", limit_info);
    if truncate_rate > 0.0 && resp.status().is_success() && state.rng.lock().random::<f64>() < truncate_rate {
        return truncated(resp).await;
    }
    resp
}

/// `429 Too Many Requests`, as a throttling edge answers: come back in a second. The
/// reference documents no 429 body, so the error code is a neutral one that no client
/// mistakes for the daily quota (`REQUEST_LIMIT_EXCEEDED`, 403): clients must go by the
/// status and `Retry-After`.
fn throttled(limit_info: HeaderValue) -> Response {
    let mut resp =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "Too many requests: retry after 1 second")
            .into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp.headers_mut().insert("sforce-limit-info", limit_info);
    resp
}

/// How long a cut-short body waits after its first half before failing, so the server
/// sends that half (and the headers) before the connection is dropped.
const TRUNCATE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// `resp` with its body cut short, as a proxy dropping the connection leaves it: the full
/// `Content-Length` is announced, the first half of the bytes is sent, then the body fails
/// and the server ends the connection, so a client reading it gets an error. An empty or
/// one-byte body is left whole.
async fn truncated(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            let failed = futures_util::stream::once(async move { Err::<axum::body::Bytes, _>(e) });
            return Response::from_parts(parts, Body::from_stream(failed));
        }
    };
    if bytes.len() < 2 {
        return Response::from_parts(parts, Body::from(bytes));
    }
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let half = bytes.slice(..bytes.len() / 2);
    let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(half) });
    let dropped = futures_util::stream::once(async {
        tokio::time::sleep(TRUNCATE_PAUSE).await;
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the connection was dropped (truncate_rate)"))
    });
    Response::from_parts(parts, Body::from_stream(futures_util::StreamExt::chain(first, dropped)))
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
