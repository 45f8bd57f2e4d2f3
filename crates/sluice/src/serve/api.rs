//! The HTTP API of `sluice serve` (`/api/v1`, JSON) and `/healthz`, as an axum
//! [`Router`] built by [`router`], so that tests can serve it in process.
//!
//! - `GET /` (no token): the dashboard, one embedded page reading the endpoints below.
//! - `GET /healthz` (no token): 200 while the scheduler loop beats and the destination's
//!   state was last read or written without error, 503 otherwise.
//! - `GET /api/v1/status`: healthy or not, the run in progress, the org's API calls.
//! - `GET /api/v1/flows`: every flow's state, freshness, lag, last and next run, failures.
//! - `GET /api/v1/runs?limit=N`, `GET /api/v1/runs/{id}`: the records `sluice history
//!   --json` prints (the same serializer).
//! - `POST /api/v1/runs` `{"objects": [...], "full_refresh": false}`: 202 with the run id,
//!   409 when one of those flows is running.
//! - `POST /api/v1/flows/{object}/pause` and `/resume`.
//! - `GET /metrics`: Prometheus text ([`super::metrics`]).
//!
//! With `serve.token` set, every `/api/v1` and `/metrics` request needs `Authorization: Bearer <token>`,
//! compared in constant time; without one (allowed on loopback only) the API is open to
//! local callers. Request bodies are limited to [`MAX_BODY`]. No answer holds a secret: the
//! view holds none.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, body::Body};
use chrono::Utc;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio::sync::mpsc;

use super::metrics::Metrics;
use super::scheduler::{Command, change_clock, unknown_flow};
use super::view::View;
use crate::config::Config;
use crate::pipeline::{self, select_flows};

/// The largest request body taken.
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// The scheduler's view.
    pub view: Arc<Mutex<View>>,
    /// Where requests to the scheduler go.
    pub commands: mpsc::UnboundedSender<Command>,
    /// The config being served.
    pub config: Arc<Config>,
    /// What `/metrics` renders.
    pub metrics: Arc<Metrics>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/status", get(status))
        .route("/flows", get(flows))
        .route("/runs", get(runs).post(start_run))
        .route("/runs/{id}", get(run))
        .route("/flows/{object}/pause", post(pause))
        .route("/flows/{object}/resume", post(resume))
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    let metrics =
        Router::new().route("/metrics", get(metrics)).layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .merge(metrics)
        .nest("/api/v1", api)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Refuses an `/api/v1` request without the configured token.
async fn authorize(State(state): State<ApiState>, request: Request<Body>, next: Next) -> Response {
    if let Some(token) = &state.config.serve.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
            let mut response = error(StatusCode::UNAUTHORIZED, "a valid `Authorization: Bearer <token>` is required");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

async fn healthz(State(state): State<ApiState>) -> Response {
    if state.view.lock().healthy() {
        (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
    } else {
        error(StatusCode::SERVICE_UNAVAILABLE, "the scheduler loop or the destination's state is not answering")
    }
}

/// The dashboard: one embedded page that reads the API (no secret in it; the API asks for
/// the token). Scripts and styles are its own inline ones only.
const DASHBOARD: &str = include_str!("dashboard.html");

async fn dashboard() -> Response {
    let policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
                  img-src 'self'; form-action 'none'; frame-ancestors 'none'";
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, policy)], DASHBOARD)
        .into_response()
}

async fn status(State(state): State<ApiState>) -> Response {
    let view = state.view.lock();
    let api_calls = view
        .api_usage
        .map(|(used, limit)| json!({ "used": used, "limit": limit, "remaining": limit.saturating_sub(used) }));
    Json(json!({
        "healthy": view.healthy(),
        "running": view.running.as_ref().map(|(id, _)| id.clone()),
        "api_calls": api_calls,
        "flows": view.flows.len(),
    }))
    .into_response()
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let text = {
        let view = state.view.lock();
        state.metrics.render(&view, Utc::now())
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn flows(State(state): State<ApiState>) -> Response {
    let flows = state.view.lock().flow_views(Utc::now());
    Json(flows).into_response()
}

#[derive(Deserialize)]
struct RunsQuery {
    limit: Option<usize>,
}

async fn runs(State(state): State<ApiState>, Query(q): Query<RunsQuery>) -> Response {
    let limit = q.limit.unwrap_or(20).clamp(1, super::scheduler::RUNS_KEPT);
    let runs: Vec<_> = state.view.lock().runs.iter().take(limit).cloned().collect();
    Json(runs).into_response()
}

async fn run(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let found = state.view.lock().runs.iter().find(|r| r.run_id == id).cloned();
    match found {
        Some(run) => Json(run).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no run {id:?} among the newest {}", super::scheduler::RUNS_KEPT)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    objects: Option<Vec<String>>,
    #[serde(default)]
    full_refresh: bool,
}

async fn start_run(State(state): State<ApiState>, Json(request): Json<RunRequest>) -> Response {
    let selected = match select_flows(&state.config, request.objects.as_deref()) {
        Ok(flows) => flows,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.message),
    };
    let objects: Vec<String> = selected.iter().map(|f| f.object.clone()).collect();
    {
        let view = state.view.lock();
        if let Some(busy) = objects.iter().find(|o| view.is_running(o)) {
            let run_id = view.running.as_ref().map(|(id, _)| id.clone()).unwrap_or_default();
            return error(StatusCode::CONFLICT, format!("{busy} is running in run {run_id}; try again once it ends"));
        }
    }
    let run_id = pipeline::new_run_id();
    let command = Command::Run { run_id: run_id.clone(), objects: objects.clone(), full_refresh: request.full_refresh };
    if state.commands.send(command).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the scheduler is shutting down");
    }
    (StatusCode::ACCEPTED, Json(json!({ "run_id": run_id, "objects": objects, "full_refresh": request.full_refresh })))
        .into_response()
}

async fn pause(State(state): State<ApiState>, Path(object): Path<String>) -> Response {
    set_paused(&state, &object, true)
}

async fn resume(State(state): State<ApiState>, Path(object): Path<String>) -> Response {
    set_paused(&state, &object, false)
}

fn set_paused(state: &ApiState, object: &str, paused: bool) -> Response {
    let now = Utc::now();
    let changed =
        change_clock(&state.view, object, |clock| if paused { clock.paused_by_hand() } else { clock.resumed(now) });
    let Some(flow) = changed else {
        return error(StatusCode::NOT_FOUND, unknown_flow(object, &state.config).message);
    };
    let _ = state.commands.send(Command::Changed(flow.clone()));
    let view = state.view.lock();
    let shown = view.flows.iter().find(|f| f.config.object == flow).map(|f| view.flow_view(f, now));
    Json(shown).into_response()
}
