//! OAuth 2.0 endpoints (`/services/oauth2/*`) and the identity URL, wired onto the
//! grant logic in [`crate::oauth`].

use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, json_response};
use super::state::AppState;
use crate::oauth::{OAuthError, TokenRequest};

fn oauth_error(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(status, &e.body())
}

async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Ok(Form(mut req)) = form else {
        return oauth_error(&OAuthError::new("invalid_request", "request must be application/x-www-form-urlencoded"));
    };
    req.authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let now = state.clock.now_ms();
    match state.oauth.token(&req, &state.base_url, &state.base_url, now) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => {
            tracing::debug!(message = "Token request refused.", grant = ?req.grant_type, error = e.error);
            oauth_error(&e)
        }
    }
}

#[derive(Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

async fn authorize(State(state): State<Arc<AppState>>, Query(p): Query<AuthorizeParams>) -> Response {
    if p.response_type.as_deref() != Some("code") {
        return oauth_error(&OAuthError::unsupported_response_type());
    }
    let now = state.clock.now_ms();
    match state.oauth.authorize(
        p.client_id.as_deref().unwrap_or_default(),
        p.redirect_uri.as_deref().unwrap_or_default(),
        p.state.as_deref(),
        now,
    ) {
        Ok(location) => match HeaderValue::from_str(&location) {
            Ok(loc) => (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response(),
            Err(_) => oauth_error(&OAuthError::new("invalid_request", "redirect_uri is not a valid URL")),
        },
        Err(e) => oauth_error(&e),
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
}

async fn revoke(State(state): State<Arc<AppState>>, form: Result<Form<RevokeForm>, FormRejection>) -> Response {
    let token = form.ok().and_then(|Form(f)| f.token).unwrap_or_default();
    if state.oauth.store().revoke(&token) {
        StatusCode::OK.into_response()
    } else {
        oauth_error(&OAuthError::new("unsupported_token_type", "this token type is not supported"))
    }
}

fn session_ok(state: &AppState, req: &Request) -> bool {
    super::gate::bearer(req).is_some_and(|t| state.session_valid(t, state.clock.now_ms()))
}

fn bad_session() -> Response {
    (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response()
}

async fn userinfo(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if !session_ok(&state, &req) {
        return bad_session();
    }
    json_response(StatusCode::OK, &state.oauth.identity_document(&state.base_url, &state.base_url))
}

async fn identity(
    State(state): State<Arc<AppState>>,
    Path((org, user)): Path<(String, String)>,
    req: Request,
) -> Response {
    if !session_ok(&state, &req) {
        return bad_session();
    }
    if !state.oauth.is_own_identity(&org, &user) {
        return ApiError::not_found().into_response();
    }
    json_response(StatusCode::OK, &state.oauth.identity_document(&state.base_url, &state.base_url))
}

async fn well_known() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"grant_types_supported": ["password", "client_credentials", "refresh_token", "authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"]}),
    )
}

/// OAuth and identity routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/authorize", get(authorize))
        .route("/services/oauth2/revoke", post(revoke))
        .route("/services/oauth2/userinfo", get(userinfo))
        .route("/id/{org}/{user}", get(identity))
        .route("/.well-known/openid-configuration", get(well_known))
}
