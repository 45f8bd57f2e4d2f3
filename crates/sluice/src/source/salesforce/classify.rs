//! The one error classifier for Salesforce: every HTTP response, Bulk job failure and
//! transport failure becomes a [`Disposition`] (what the client does next) carrying an
//! [`Error`] (who must act, whether to retry). Pure: no I/O, no clock.
//!
//! Salesforce error bodies come in four shapes, all handled here:
//! - REST: a JSON array `[{"message": "...", "errorCode": "..."}]` (occasionally a bare
//!   object);
//! - OAuth: a JSON object `{"error": "...", "error_description": "..."}`, keyed off the
//!   `error` string rather than the status, which varies (400 or 401);
//! - HTML pages from 5xx edges and maintenance;
//! - empty bodies.
//!
//! The rules, first match wins: an error code decides when there is one, then the
//! status. `Retry-After` (seconds, or an HTTP date measured against the response's own
//! `Date`) turns a backoff into a wait of that length. No message ever contains a secret:
//! the classifier never sees a request, only what the server sent back.

use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

use crate::error::{Error, Kind, QUOTA_RETRY_AFTER, QuotaExceeded, Retry};

/// What the client does with a response.
#[derive(Debug)]
pub enum Disposition {
    /// 2xx/3xx: use the response.
    Success,
    /// `INVALID_SESSION_ID`: log in again, then retry the request once; the error is for
    /// when that retry fails the same way.
    Relogin(Error),
    /// `QUERY_TIMEOUT`, a Bulk job that gave up: run the window again as smaller slices.
    SmallerWindow(Error),
    /// Bulk API cannot read this object or field set: read it through REST.
    UseRest(Error),
    /// `INVALID_QUERY_LOCATOR`: the cursor expired; re-run the window's query from the top.
    RestartQuery(Error),
    /// Give up on this request; `Error::retry` says whether and when to try again, and
    /// [`Error::is_quota`] marks a quota stop.
    Fail(Error),
}

impl Disposition {
    /// The error carried, if any.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Disposition::Success => None,
            Disposition::Relogin(e)
            | Disposition::SmallerWindow(e)
            | Disposition::UseRest(e)
            | Disposition::RestartQuery(e)
            | Disposition::Fail(e) => Some(e),
        }
    }

    /// The error carried, if any, by value.
    pub fn into_error(self) -> Option<Error> {
        match self {
            Disposition::Success => None,
            Disposition::Relogin(e)
            | Disposition::SmallerWindow(e)
            | Disposition::UseRest(e)
            | Disposition::RestartQuery(e)
            | Disposition::Fail(e) => Some(e),
        }
    }
}

/// A failure below HTTP: no response to classify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Connect or read timed out.
    Timeout,
    /// The connection was reset or closed mid-request.
    ConnectionReset,
    /// The body ended before its declared length, or did not parse because it was cut.
    TruncatedBody,
    /// The host name does not resolve.
    Dns,
    /// Nothing listens at the address.
    Refused,
    /// The TLS handshake failed (untrusted certificate, wrong name, protocol).
    Tls,
    /// Anything else.
    Other,
}

/// Longest piece of a server message quoted in an error.
const MAX_QUOTE: usize = 400;

/// Classifies one HTTP response (see the module docs).
pub fn classify(status: u16, headers: &[(String, String)], body: &str) -> Disposition {
    if (200..400).contains(&status) {
        return Disposition::Success;
    }
    let parsed = parse_body(body);
    let disposition = match &parsed {
        Body::OAuth { error, description } => Disposition::Fail(oauth_error(error, description)),
        Body::Rest { code, message } => by_code(status, code, message, headers)
            .unwrap_or_else(|| by_status(status, &labelled(&format!("HTTP {status} {code}"), message))),
        other => by_status(status, &format!("HTTP {status}{}", other.describe())),
    };
    with_retry_after(disposition, headers)
}

/// Classifies a Bulk 2.0 job that ended in state `Failed`, from its `errorMessage`.
/// DESIGN: a failed or timed-out job is retried on smaller windows, then read via REST;
/// objects or fields Bulk cannot read go to REST at once.
pub fn classify_bulk_failure(error_message: &str) -> Disposition {
    let msg = quote(error_message);
    if bulk_unsupported(error_message) {
        Disposition::UseRest(Error::external_fatal(format!("Bulk API cannot read this query: {msg}")))
    } else {
        Disposition::SmallerWindow(Error::external(format!("Bulk query job failed: {msg}")))
    }
}

/// Classifies a failure below HTTP. `host` is the host contacted; `detail` the client
/// library's description (it holds no secret: tokens travel in headers and bodies).
pub fn classify_transport(kind: Transport, host: &str, detail: &str) -> Error {
    let detail = quote(detail);
    match kind {
        Transport::Timeout => Error::external(format!("request to {host} timed out ({detail})")),
        Transport::ConnectionReset => Error::external(format!("connection to {host} was reset ({detail})")),
        Transport::TruncatedBody => Error::external(format!("response from {host} ended early ({detail})")),
        Transport::Dns => Error::user(format!(
            "unreachable host {host}: the name does not resolve ({detail}); check source.login_url"
        )),
        Transport::Refused => Error::user(format!(
            "unreachable host {host}: connection refused ({detail}); check source.login_url and that the \
             server is running"
        )),
        Transport::Tls => Error::user(format!(
            "TLS with {host} failed ({detail}); if it uses a private or self-signed certificate, set \
             source.ca_file"
        )),
        Transport::Other => Error::external(format!("request to {host} failed ({detail})")),
    }
}

/// `(used, max)` of `api-usage` in a `Sforce-Limit-Info` value such as
/// `api-usage=25/5000; per-app-api-usage=17/250(appName=x)`. Defensive: unknown parts,
/// odd spacing, several header values joined by `,`, and garbage are ignored; `None`
/// when there is no usable `api-usage` (a limit of 0 is not usable).
pub fn parse_limit_info(value: &str) -> Option<(u64, u64)> {
    value.split([';', ',']).find_map(|part| {
        let (key, rest) = part.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("api-usage") {
            return None;
        }
        let rest = rest.split('(').next()?.trim();
        let (used, max) = rest.split_once('/')?;
        let (used, max) = (used.trim().parse::<u64>().ok()?, max.trim().parse::<u64>().ok()?);
        (max > 0).then_some((used, max))
    })
}

/// `(used, max)` from a response's `Sforce-Limit-Info` header, if present and usable.
pub fn api_usage(headers: &[(String, String)]) -> Option<(u64, u64)> {
    header(headers, "sforce-limit-info").and_then(parse_limit_info)
}

/// Whether usage has reached `percent` of the limit (`api_budget_percent`).
pub fn budget_reached(used: u64, max: u64, percent: u8) -> bool {
    u128::from(used) * 100 >= u128::from(max) * u128::from(percent)
}

/// The `Retry-After` of a response: delta-seconds, or an HTTP date taken relative to the
/// response's `Date` header (the server's clock, never ours). `None` if absent or
/// unusable; a date in the past is zero.
pub fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let value = header(headers, "retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let now = DateTime::parse_from_rfc2822(header(headers, "date")?.trim()).ok()?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The shapes an error body comes in.
enum Body {
    Rest { code: String, message: String },
    OAuth { error: String, description: String },
    Html { title: Option<String> },
    Empty,
    Text(String),
}

impl Body {
    /// A suffix for a message about a body without an error code.
    fn describe(&self) -> String {
        match self {
            Body::Html { title: Some(t) } => format!(" with an HTML page \"{t}\""),
            Body::Html { title: None } => " with an HTML page".to_owned(),
            Body::Empty => " with an empty body".to_owned(),
            Body::Text(t) => format!(": {t}"),
            Body::Rest { code, message } => labelled(&format!(" {code}"), message),
            Body::OAuth { error, description } => format!(" {error}: {description}"),
        }
    }
}

fn parse_body(body: &str) -> Body {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Body::Empty;
    }
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        let first = match &value {
            Value::Array(items) => items.first(),
            Value::Object(_) => Some(&value),
            _ => None,
        };
        if let Some(obj) = first.and_then(Value::as_object) {
            let text = |k: &str| obj.get(k).and_then(Value::as_str).map(quote);
            if let Some(code) = text("errorCode") {
                return Body::Rest { code, message: text("message").unwrap_or_default() };
            }
            if let Some(error) = text("error") {
                return Body::OAuth { error, description: text("error_description").unwrap_or_default() };
            }
        }
        return Body::Text(quote(trimmed));
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with('<') && (lower.contains("<html") || lower.contains("<!doctype")) {
        let title = lower
            .find("<title>")
            .and_then(|i| lower[i..].find("</title>").map(|j| (i + 7, i + j)))
            .map(|(a, b)| quote(&trimmed[a..b]))
            .filter(|t| !t.is_empty());
        return Body::Html { title };
    }
    Body::Text(quote(trimmed))
}

/// A server message made safe to quote: trimmed and bounded in length.
fn quote(text: &str) -> String {
    // A multi-line message is a caret diagram: keep its first line's indentation.
    let text = if text.contains('\n') { text.trim_start_matches(['\n', '\r']).trim_end() } else { text.trim() };
    match text.char_indices().nth(MAX_QUOTE) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// `head: message`, or `head:` and the message on its own lines when it is a diagram.
fn labelled(head: &str, message: &str) -> String {
    if message.contains('\n') { format!("{head}:\n{message}") } else { format!("{head}: {message}") }
}

fn oauth_error(error: &str, description: &str) -> Error {
    let what = format!("Salesforce refused the login: {error} ({description})");
    let lower = description.to_ascii_lowercase();
    match error {
        "invalid_grant" if lower.contains("approved") => {
            Error::user(format!("{what}; pre-authorize the user for the connected app (JWT bearer)"))
        }
        "invalid_grant" if lower.contains("audience") => {
            Error::user(format!("{what}; the JWT audience follows source.login_url: check it"))
        }
        "invalid_grant" if lower.contains("expired") => {
            Error::user(format!("{what}; the refresh token was revoked or expired: issue a new one"))
        }
        "invalid_grant" => Error::user(format!(
            "{what}; check the credentials of the configured auth (username, password + security token, \
             refresh_token or private_key_file)"
        )),
        "invalid_client_id" | "invalid_client" => {
            Error::user(format!("{what}; check source.client_id and source.client_secret"))
        }
        "rate_limit_exceeded" => Error::external(format!("{what}; too many logins, backing off")),
        _ => Error::user(what),
    }
}

fn bulk_unsupported(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("compound data not supported")
        || lower.contains("not supported by the bulk api")
        || lower.contains("invalidentity")
}

/// Rules keyed on the REST `errorCode`; `None` to fall back to the status.
fn by_code(status: u16, code: &str, message: &str, headers: &[(String, String)]) -> Option<Disposition> {
    let what = labelled(&format!("HTTP {status} {code}"), message);
    Some(match code {
        "INVALID_SESSION_ID" => Disposition::Relogin(Error::external(what)),
        "REQUEST_LIMIT_EXCEEDED" if message.contains("Concurrent") => {
            // Too many long-running requests at once: transient, unlike the daily quota.
            Disposition::Fail(Error::external(what))
        }
        "REQUEST_LIMIT_EXCEEDED" => {
            let (used, max) = api_usage(headers).unzip();
            let wait = retry_after(headers).unwrap_or(QUOTA_RETRY_AFTER);
            Disposition::Fail(Error::quota(
                format!("{what}; the org's API request limit is used up: stopping, the next run resumes"),
                QuotaExceeded { used, max },
                wait,
            ))
        }
        "INVALID_QUERY_LOCATOR" => Disposition::RestartQuery(Error::external(what)),
        "QUERY_TIMEOUT" | "EXCEEDED_ID_LIMIT" => Disposition::SmallerWindow(Error::external(what)),
        "INVALIDENTITY" => Disposition::UseRest(Error::external_fatal(what)),
        "API_ERROR" | "INVALID_FIELD" if bulk_unsupported(message) => Disposition::UseRest(Error::external_fatal(what)),
        // Bulk's own daily limits (jobs, result storage): REST still has budget.
        "LIMIT_EXCEEDED" => Disposition::UseRest(Error::external_fatal(what)),
        "INVALID_FIELD"
        | "INVALID_TYPE"
        | "MALFORMED_QUERY"
        | "INVALID_QUERY_FILTER_OPERATOR"
        | "INSUFFICIENT_ACCESS"
        | "INSUFFICIENT_ACCESS_OR_READONLY"
        | "API_DISABLED_FOR_ORG"
        | "API_CURRENTLY_DISABLED"
        | "FUNCTIONALITY_NOT_ENABLED"
        | "FeatureNotEnabled"
        | "NOT_FOUND" => Disposition::Fail(Error::user(what)),
        "UNKNOWN_EXCEPTION" | "SERVER_UNAVAILABLE" | "JOB_NOT_COMPLETE" => Disposition::Fail(Error::external(what)),
        _ => return None,
    })
}

/// Rules keyed on the status alone.
fn by_status(status: u16, what: &str) -> Disposition {
    let what = what.to_owned();
    match status {
        401 => Disposition::Relogin(Error::external(what)),
        403 => Disposition::Fail(Error::user(format!("{what}; the user lacks permission"))),
        404 => Disposition::Fail(Error::user(format!("{what}; unknown object or resource"))),
        408 | 420 | 429 | 500..=599 => Disposition::Fail(Error::external(what)),
        414 => Disposition::Fail(Error::internal(format!("{what}; the request URL was too long"))),
        // Anything else means sluice sent a request the API cannot accept.
        _ => Disposition::Fail(Error::internal(what)),
    }
}

/// Honours `Retry-After` on errors that would back off anyway.
fn with_retry_after(disposition: Disposition, headers: &[(String, String)]) -> Disposition {
    match (disposition, retry_after(headers)) {
        (Disposition::Fail(mut e), Some(wait)) if e.kind == Kind::External && e.retry == Retry::Backoff => {
            e.retry = Retry::After(wait);
            Disposition::Fail(e)
        }
        (d, _) => d,
    }
}

/// Response headers as `(lower-case name, value)` pairs.
pub fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned())))
        .collect()
}

/// A transport failure as an [`Error`], naming the host and never the request.
pub fn transport_error(e: &reqwest::Error, url: &str) -> Error {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_else(|| "the Salesforce host".to_owned());
    // The causes below reqwest's own message (which quotes the URL) say what happened.
    let mut causes = Vec::new();
    let mut refused = false;
    let mut reset = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            reset |= matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        causes.push(s.to_string());
        source = s.source();
    }
    let detail = causes.last().cloned().unwrap_or_else(|| "no detail".to_owned());
    let all = causes.join(" / ").to_ascii_lowercase();
    let kind = if e.is_timeout() {
        Transport::Timeout
    } else if refused || all.contains("connection refused") {
        Transport::Refused
    } else if all.contains("dns")
        || all.contains("lookup")
        || all.contains("resolve")
        || all.contains("name or service")
    {
        Transport::Dns
    } else if all.contains("certificate")
        || all.contains("tls")
        || all.contains("handshake")
        || all.contains("invalidcert")
    {
        Transport::Tls
    } else if reset || all.contains("reset") || all.contains("closed") || all.contains("incomplete") {
        if e.is_body() || e.is_decode() { Transport::TruncatedBody } else { Transport::ConnectionReset }
    } else if e.is_body() || e.is_decode() {
        Transport::TruncatedBody
    } else {
        Transport::Other
    };
    classify_transport(kind, &host, &detail)
}

#[cfg(test)]
mod tests;
