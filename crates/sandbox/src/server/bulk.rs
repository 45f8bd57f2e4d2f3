//! Bulk API 2.0 query jobs: `/jobs/query` create, list, get, abort, delete and results.
//!
//! A job moves `UploadComplete → InProgress → JobComplete | Failed | Aborted`. Its
//! result is rendered once, as CSV bytes plus the byte offset of every row, so any
//! page (`locator` = base64 of the row offset, `maxRecords` rows) is a slice served
//! without re-running the query, and every page carries its own header line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::Rng;
use serde_json::{Value as Json, json};

use super::error::{ApiError, ApiResult, json_response};
use super::jobs::{Job, JobResult};
use super::query::{compile, execute};
use super::render::{CsvFormat, Projection, csv_eol, csv_field, csv_rows};
use super::state::AppState;
use super::version::parse_version;
use crate::ids;
use crate::soql::SelectItem;
use crate::store::today;
use crate::value::FieldType;

pub use super::jobs::{JobState, Jobs};

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    operation: Option<String>,
    query: Option<String>,
    content_type: Option<String>,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

fn delimiter_byte(name: &str) -> Option<u8> {
    Some(match name {
        "COMMA" => b',',
        "TAB" => b'\t',
        "PIPE" => b'|',
        "SEMICOLON" => b';',
        "CARET" => b'^',
        "BACKQUOTE" => b'`',
        _ => return None,
    })
}

async fn create(State(state): State<Arc<AppState>>, Path(v): Path<String>, body: Bytes) -> ApiResult {
    let version = parse_version(&v).ok_or_else(ApiError::not_found)?;
    let req: CreateBody = serde_json::from_slice(&body).map_err(ApiError::json_parser)?;
    let operation = req.operation.unwrap_or_default();
    if operation != "query" && operation != "queryAll" {
        return Err(ApiError::bad_request(
            "INVALIDJOB",
            format!("Invalid operation: '{operation}'. Valid operations for query jobs are query and queryAll"),
        ));
    }
    let q = req
        .query
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("INVALIDJOB", "query is required"))?;
    if req.content_type.as_deref().is_some_and(|c| c != "CSV") {
        return Err(ApiError::bad_request("INVALIDJOB", "contentType must be CSV"));
    }
    let delimiter = req.column_delimiter.unwrap_or_else(|| "COMMA".into());
    let delimiter_b = delimiter_byte(&delimiter).ok_or_else(|| {
        ApiError::bad_request(
            "INVALIDJOB",
            format!(
                "Invalid columnDelimiter: '{delimiter}'. Valid values are BACKQUOTE, CARET, COMMA, PIPE, SEMICOLON, TAB"
            ),
        )
    })?;
    let line_ending = req.line_ending.unwrap_or_else(|| "LF".into());
    if line_ending != "LF" && line_ending != "CRLF" {
        return Err(ApiError::bad_request(
            "INVALIDJOB",
            format!("Invalid lineEnding: '{line_ending}'. Valid values are LF, CRLF"),
        ));
    }
    let now = state.tick();
    let (object, user) = {
        let org = state.org.read();
        let (table, bound) = compile(&org, &q, now)?;
        if bound.select.iter().any(|s| !matches!(s, SelectItem::Field(_))) {
            return Err(ApiError::bad_request(
                "API_ERROR",
                "Aggregate queries are not supported by Bulk API 2.0 query jobs",
            ));
        }
        if bound.offset.is_some() {
            return Err(ApiError::bad_request("API_ERROR", "OFFSET is not supported by Bulk API 2.0 query jobs"));
        }
        for s in &bound.select {
            if let SelectItem::Field(i) = s {
                match bound.fields[*i].ty {
                    FieldType::Address | FieldType::Location => {
                        return Err(ApiError::bad_request(
                            "API_ERROR",
                            "Selecting compound data not supported in Bulk Query",
                        ));
                    }
                    FieldType::Base64 => {
                        return Err(ApiError::bad_request(
                            "API_ERROR",
                            "Selecting base64 data not supported in Bulk Query",
                        ));
                    }
                    _ => {}
                }
            }
        }
        (org.tables[table].def.name.clone(), org.user_id.clone())
    };
    let id = {
        let mut inner = state.jobs.inner.lock();
        inner.next += 1;
        let id = ids::make("750", inner.next);
        inner.order.push(id.clone());
        inner.created.push(now);
        inner.jobs.insert(
            id.clone(),
            Job {
                id: id.clone(),
                operation,
                object,
                query: q,
                created_by: user,
                created_ms: now - now.rem_euclid(1000),
                modstamp_ms: now - now.rem_euclid(1000),
                state: JobState::UploadComplete,
                api_version: version,
                line_ending: line_ending.clone(),
                delimiter,
                records: 0,
                processing_ms: 0,
                error: None,
                result: None,
            },
        );
        id
    };
    let info = state.jobs.inner.lock().jobs[&id].info(false);
    let fmt = CsvFormat { delimiter: delimiter_b, crlf: line_ending == "CRLF" };
    tokio::spawn(run_job(state.clone(), id, fmt));
    Ok(json_response(StatusCode::OK, &info))
}

fn set_state(state: &AppState, id: &str, to: JobState) -> bool {
    let mut inner = state.jobs.inner.lock();
    let now = state.clock.now_ms();
    match inner.jobs.get_mut(id) {
        Some(job) if !job.state.terminal() => {
            job.state = to;
            job.modstamp_ms = now - now.rem_euclid(1000);
            true
        }
        _ => false,
    }
}

async fn run_job(state: Arc<AppState>, id: String, fmt: CsvFormat) {
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    if !set_state(&state, &id, JobState::InProgress) {
        return;
    }
    let (query, all_rows) = {
        let inner = state.jobs.inner.lock();
        let Some(job) = inner.jobs.get(&id) else { return };
        (job.query.clone(), job.operation == "queryAll")
    };
    let st = state.clone();
    let built = tokio::task::spawn_blocking(move || build_result(&st, &query, all_rows, fmt)).await;
    let knobs = state.knobs.read().bulk.clone();
    let wait = Duration::from_secs_f64(knobs.in_progress_secs).saturating_sub(started.elapsed());
    tokio::time::sleep(wait).await;
    let failure = match &built {
        Ok(Ok(r)) => {
            let rows = r.rows() as u64;
            if knobs.fail_above_rows.is_some_and(|max| rows > max) {
                Some("Retried more than 15 times".to_string())
            } else if knobs.fail_rate > 0.0 && state.rng.lock().random::<f64>() < knobs.fail_rate {
                Some("InternalServerError : Failed to write query result.".to_string())
            } else {
                None
            }
        }
        Ok(Err(e)) => Some(e.clone()),
        Err(e) => Some(format!("InternalServerError : {e}")),
    };
    let now = state.clock.now_ms();
    let mut inner = state.jobs.inner.lock();
    let Some(job) = inner.jobs.get_mut(&id) else { return };
    if job.state != JobState::InProgress {
        return;
    }
    job.modstamp_ms = now - now.rem_euclid(1000);
    job.processing_ms = started.elapsed().as_millis() as u64;
    match (failure, built) {
        (None, Ok(Ok(result))) => {
            job.records = result.rows() as u64;
            job.result = Some(Arc::new(result));
            job.state = JobState::JobComplete;
        }
        (failure, _) => {
            job.state = JobState::Failed;
            job.error = failure;
        }
    }
}

/// One thread's rendered rows and the start offset of each row in them.
type RenderedPart = (Vec<u8>, Vec<usize>);

fn build_result(state: &AppState, q: &str, all_rows: bool, fmt: CsvFormat) -> Result<JobResult, String> {
    let now = state.clock.now_ms();
    let org = state.org.read();
    let (table, bound) = compile(&org, q, now).map_err(|e| format!("{:?}", e.body()))?;
    let today = today(now);
    let rows = execute(&org, table, &bound, all_rows, today);
    let projection = Projection::of_query(&org, table, &bound);
    let mut header = Vec::new();
    for (i, name) in projection.header().iter().enumerate() {
        if i > 0 {
            header.push(fmt.delimiter);
        }
        csv_field(&mut header, Some(name));
    }
    csv_eol(&mut header, fmt);
    // Render the rows on every core; each thread's rows become one part.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let chunk = rows.len().div_ceil(threads).max(1);
    let parts: Vec<Result<RenderedPart, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                let (org, projection) = (&*org, &projection);
                scope.spawn(move || {
                    let mut body = Vec::with_capacity(part.len() * 512);
                    let mut offsets = Vec::with_capacity(part.len());
                    csv_rows(&mut body, &mut offsets, org, projection, part, today, fmt);
                    (body, offsets)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "InternalServerError : result rendering failed".to_string()))
            .collect()
    });
    let parts = parts.into_iter().collect::<Result<Vec<_>, String>>()?;
    // Keep the parts as they are (joining them would briefly hold the result twice).
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let (mut stored, mut part_starts, mut base) = (Vec::with_capacity(parts.len()), Vec::with_capacity(parts.len()), 0);
    for (part, part_offsets) in parts {
        offsets.extend(part_offsets.into_iter().map(|o| o + base));
        part_starts.push(base);
        base += part.len();
        stored.push(Bytes::from(part));
    }
    offsets.push(base);
    Ok(JobResult { header: Bytes::from(header), parts: stored, part_starts, offsets })
}

fn job_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
}

async fn get_job(State(state): State<Arc<AppState>>, Path((v, id)): Path<(String, String)>) -> ApiResult {
    parse_version(&v).ok_or_else(ApiError::not_found)?;
    let inner = state.jobs.inner.lock();
    let job = inner.jobs.get(&id).ok_or_else(job_not_found)?;
    Ok(json_response(StatusCode::OK, &job.info(true)))
}

#[derive(serde::Deserialize)]
struct AbortBody {
    state: Option<String>,
}

async fn abort(State(state): State<Arc<AppState>>, Path((v, id)): Path<(String, String)>, body: Bytes) -> ApiResult {
    parse_version(&v).ok_or_else(ApiError::not_found)?;
    let req: AbortBody = serde_json::from_slice(&body).map_err(ApiError::json_parser)?;
    if req.state.as_deref() != Some("Aborted") {
        return Err(ApiError::bad_request("INVALIDJOBSTATE", "A query job can only be changed to state Aborted"));
    }
    let current = state.jobs.inner.lock().jobs.get(&id).map(|j| j.state).ok_or_else(job_not_found)?;
    if !set_state(&state, &id, JobState::Aborted) {
        return Err(ApiError::bad_request(
            "INVALIDJOBSTATE",
            format!("Aborting already {} Job not allowed", current.as_str().trim_start_matches("Job")),
        ));
    }
    let inner = state.jobs.inner.lock();
    Ok(json_response(StatusCode::OK, &inner.jobs[&id].info(true)))
}

async fn delete_job(State(state): State<Arc<AppState>>, Path((v, id)): Path<(String, String)>) -> ApiResult {
    parse_version(&v).ok_or_else(ApiError::not_found)?;
    let mut inner = state.jobs.inner.lock();
    let job = inner.jobs.get(&id).ok_or_else(job_not_found)?;
    if !job.state.terminal() {
        return Err(ApiError::bad_request(
            "API_ERROR",
            "Error encountered when deleting the job because the job is not terminated",
        ));
    }
    inner.jobs.remove(&id);
    inner.order.retain(|j| *j != id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    query_locator: Option<String>,
}

async fn list(State(state): State<Arc<AppState>>, Path(v): Path<String>, Query(p): Query<ListParams>) -> ApiResult {
    let version = parse_version(&v).ok_or_else(ApiError::not_found)?;
    let start: usize = match p.query_locator.as_deref() {
        None | Some("") => 0,
        Some(loc) => loc
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .ok_or_else(|| ApiError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator"))?,
    };
    let inner = state.jobs.inner.lock();
    let end = (start + 1000).min(inner.order.len());
    let records: Vec<Json> = inner.order[start.min(end)..end].iter().map(|id| inner.jobs[id].info(true)).collect();
    let done = end >= inner.order.len();
    let next =
        (!done).then(|| format!("/services/data/v{version}.0/jobs/query?queryLocator={}-{end}", ids::make("01g", 0)));
    Ok(json_response(StatusCode::OK, &json!({"done": done, "records": records, "nextRecordsUrl": next})))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultParams {
    locator: Option<String>,
    max_records: Option<String>,
}

/// Rows in a page when the client gives no `maxRecords`: Salesforce bounds pages by
/// size, so the sandbox does too.
const DEFAULT_PAGE_BYTES: usize = 64 << 20;

async fn results(
    State(state): State<Arc<AppState>>,
    Path((v, id)): Path<(String, String)>,
    Query(p): Query<ResultParams>,
) -> ApiResult {
    let version = parse_version(&v).ok_or_else(ApiError::not_found)?;
    let result = {
        let inner = state.jobs.inner.lock();
        let job = inner.jobs.get(&id).ok_or_else(job_not_found)?;
        if job.api_version != version {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "API_ERROR",
                format!(
                    "Job {id} was created with API version {}.0; request its results with the same version",
                    job.api_version
                ),
            ));
        }
        match (&job.result, job.state) {
            (Some(r), JobState::JobComplete) => r.clone(),
            (_, s) => {
                return Err(ApiError::bad_request(
                    "API_ERROR",
                    format!("Job {id} is not complete (state {})", s.as_str()),
                ));
            }
        }
    };
    let total = result.rows();
    let invalid = || ApiError::bad_request("INVALID_LOCATOR", "The locator is invalid or has expired");
    let start: usize = match p.locator.as_deref() {
        None | Some("") => 0,
        Some(loc) => {
            let raw = STANDARD_NO_PAD.decode(loc.trim_end_matches('=')).map_err(|_| invalid())?;
            std::str::from_utf8(&raw).ok().and_then(|s| s.parse().ok()).filter(|&n| n <= total).ok_or_else(invalid)?
        }
    };
    let end = match p.max_records.as_deref() {
        Some(m) => {
            let n: usize = m.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                ApiError::bad_request("INVALIDJOB", format!("maxRecords must be a positive integer, got '{m}'"))
            })?;
            (start + n).min(total)
        }
        None => {
            let limit = result.offsets[start] + DEFAULT_PAGE_BYTES;
            let fit = result.offsets.partition_point(|&o| o <= limit).saturating_sub(1);
            fit.clamp((start + 1).min(total), total)
        }
    };
    // Header plus slices of the stored result: a page is served without copying it.
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> =
        std::iter::once(result.header.clone()).chain(result.slices(start, end)).map(Ok).collect();
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
    let locator = if end < total { STANDARD_NO_PAD.encode(end.to_string()) } else { "null".into() };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    if let Ok(v) = HeaderValue::from_str(&locator) {
        h.insert("sforce-locator", v);
    }
    h.insert("sforce-numberofrecords", HeaderValue::from(end - start));
    Ok(resp)
}

/// Routes under `/services/data/{version}`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/jobs/query", get(list).post(create))
        .route("/jobs/query/{id}", get(get_job).patch(abort).delete(delete_job))
        .route("/jobs/query/{id}/results", get(results))
        .layer(axum::middleware::map_response(bulk_error_layout))
}

/// Bulk API 2.0 writes its errors `errorCode` first
/// (`[{"errorCode":"API_ERROR","message":"…"}]`), unlike the REST API.
async fn bulk_error_layout(mut resp: axum::response::Response) -> axum::response::Response {
    let Some(e) = resp.extensions_mut().remove::<ApiError>() else { return resp };
    let body: Vec<Json> =
        e.errors.iter().map(|(code, message, _)| json!({"errorCode": code, "message": message})).collect();
    json_response(e.status, &Json::Array(body))
}
