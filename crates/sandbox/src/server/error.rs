//! REST error responses as Salesforce sends them: always a JSON array of
//! `{"message", "errorCode"[, "fields"]}`, with `application/json;charset=UTF-8`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use crate::write::WriteError;

/// The content type of every JSON body Salesforce sends.
pub const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// A JSON response with Salesforce's content type.
pub fn json_response(status: StatusCode, body: &Json) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    resp
}

/// An error of the REST or Bulk API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The errors of the body (usually one).
    pub errors: Vec<(String, String, Vec<String>)>,
}

impl ApiError {
    /// One error with `errorCode` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError { status, errors: vec![(code.to_string(), message.into(), Vec::new())] }
    }

    /// 400 with the given code.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
    }

    /// 404 `ENTITY_IS_DELETED`.
    pub fn entity_deleted() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ENTITY_IS_DELETED", "entity is deleted")
    }

    /// 400 `INVALID_TYPE` for an unknown object in a URL.
    pub fn unknown_object(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("The requested resource does not exist: sObject type '{name}' is not supported."),
        )
    }

    /// 405 `METHOD_NOT_ALLOWED`.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are GET,HEAD,POST,PATCH,DELETE"),
        )
    }

    /// 400 `JSON_PARSER_ERROR` for a body that is not the JSON the resource takes.
    pub fn json_parser(detail: impl std::fmt::Display) -> Self {
        Self::bad_request("JSON_PARSER_ERROR", format!("The request body is not valid JSON: {detail}"))
    }

    /// The response body.
    pub fn body(&self) -> Json {
        Json::Array(
            self.errors
                .iter()
                .map(|(code, message, fields)| {
                    if fields.is_empty() {
                        json!({"message": message, "errorCode": code})
                    } else {
                        json!({"message": message, "errorCode": code, "fields": fields})
                    }
                })
                .collect(),
        )
    }
}

impl From<Vec<WriteError>> for ApiError {
    fn from(errors: Vec<WriteError>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            errors: errors.into_iter().map(|e| (e.code.to_string(), e.message, e.fields)).collect(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = json_response(self.status, &self.body());
        // Kept so that an API with another error layout (Bulk 2.0) can re-render it.
        resp.extensions_mut().insert(self);
        resp
    }
}

/// Result of a REST handler.
pub type ApiResult<T = Response> = Result<T, ApiError>;
