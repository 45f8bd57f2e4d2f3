//! Bulk API 2.0 query jobs: every job's result set is every record, rendered as CSV in
//! the describe field order and served in pages chained by `Sforce-Locator`.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::script::{Endpoint, Field};
use crate::shared::{Job, Shared, error, json, not_found, set};

/// Prefix of the fake's results locators; the row offset follows.
const LOCATOR: &str = "RkFLRQ-";

/// `POST …/jobs/query`: any body; the job starts `UploadComplete`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, Path(version): Path<String>, body: Bytes) -> Response {
    if let Some(hung) = shared.hang(Endpoint::BulkCreate).await {
        return hung;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let operation = body.get("operation").and_then(Value::as_str).unwrap_or("queryAll").to_owned();
    let info = {
        let mut jobs = shared.jobs.lock();
        let created = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
        let job =
            Job { id: format!("750FAKE{:09}", jobs.len() + 1), operation, created, aborted: false, deleted: false };
        let info = info(&shared, &version, &job, "UploadComplete");
        jobs.push(job);
        info
    };
    json(StatusCode::OK, Value::Object(info))
}

/// The job's state as the script decides it.
fn state(shared: &Shared, job: &Job) -> &'static str {
    if job.aborted {
        "Aborted"
    } else if shared.script.misbehave.bulk_stuck {
        "InProgress"
    } else {
        "JobComplete"
    }
}

/// Job info as create returns it (no counters).
fn info(shared: &Shared, version: &str, job: &Job, state: &str) -> Map<String, Value> {
    let api_version: f64 = version.trim_start_matches('v').parse().unwrap_or(62.0);
    let info = json!({
        "id": job.id,
        "operation": job.operation,
        "object": shared.script.object,
        "createdById": "005FAKE00000001AAA",
        "createdDate": job.created,
        "systemModstamp": job.created,
        "state": state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": api_version,
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    });
    match info {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Runs `f` on the live job `id`, or answers 404.
fn with_job(shared: &Shared, id: &str, f: impl FnOnce(&mut Job) -> Response) -> Response {
    let mut jobs = shared.jobs.lock();
    match jobs.iter_mut().find(|j| j.id == id && !j.deleted) {
        Some(job) => f(job),
        None => not_found(),
    }
}

/// `GET …/jobs/query/{id}`.
pub(crate) async fn status(State(shared): State<Arc<Shared>>, Path((version, id)): Path<(String, String)>) -> Response {
    if let Some(hung) = shared.hang(Endpoint::BulkStatus).await {
        return hung;
    }
    with_job(&shared, &id, |job| {
        let state = state(&shared, job);
        let mut info = info(&shared, &version, job, state);
        info.insert("jobType".into(), "V2Query".into());
        if !shared.script.misbehave.bulk_omit_processed {
            let processed = if state == "JobComplete" { shared.script.records.len() } else { 0 };
            info.insert("numberRecordsProcessed".into(), processed.into());
        }
        info.insert("retries".into(), 0.into());
        info.insert("totalProcessingTime".into(), 0.into());
        info.insert("isPkChunkingSupported".into(), true.into());
        json(StatusCode::OK, Value::Object(info))
    })
}

/// `PATCH …/jobs/query/{id}` with `{"state":"Aborted"}`.
pub(crate) async fn abort(
    State(shared): State<Arc<Shared>>,
    Path((version, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    if body.get("state").and_then(Value::as_str) != Some("Aborted") {
        return error(StatusCode::BAD_REQUEST, "INVALIDJOBSTATE", "Only a state of Aborted can be set on a query job.");
    }
    with_job(&shared, &id, |job| {
        job.aborted = true;
        json(StatusCode::OK, Value::Object(info(&shared, &version, job, "Aborted")))
    })
}

/// `DELETE …/jobs/query/{id}`.
pub(crate) async fn delete(State(shared): State<Arc<Shared>>, Path((_, id)): Path<(String, String)>) -> Response {
    with_job(&shared, &id, |job| {
        job.deleted = true;
        StatusCode::NO_CONTENT.into_response()
    })
}

/// The query string of `…/results`.
#[derive(Deserialize)]
pub(crate) struct ResultsParams {
    #[serde(rename = "maxRecords")]
    max_records: Option<usize>,
    locator: Option<String>,
}

/// `GET …/jobs/query/{id}/results?maxRecords=M&locator=L`.
pub(crate) async fn results(
    State(shared): State<Arc<Shared>>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ResultsParams>,
) -> Response {
    if let Some(hung) = shared.hang(Endpoint::BulkResults).await {
        return hung;
    }
    let complete = with_job(&shared, &id, |job| match state(&shared, job) {
        "JobComplete" => StatusCode::OK.into_response(),
        _ => error(StatusCode::BAD_REQUEST, "JOB_NOT_COMPLETE", "The job is not complete."),
    });
    if complete.status() != StatusCode::OK {
        return complete;
    }
    let offset = match params.locator.as_deref().filter(|l| !l.is_empty()) {
        None => Some(0),
        Some(l) => l.strip_prefix(LOCATOR).and_then(|n| n.parse::<usize>().ok()),
    };
    let Some(offset) = offset else {
        return error(StatusCode::BAD_REQUEST, "INVALIDLOCATOR", "The locator is not valid for this job.");
    };
    let script = &shared.script;
    let last = script.misbehave.truncate_bulk_after.map_or(script.records.len(), |n| n.min(script.records.len()));
    let size = params.max_records.filter(|&m| m > 0).map_or(script.page_size, |m| m.min(script.page_size)).max(1);
    let start = offset.min(last);
    let end = start.saturating_add(size).min(last);
    let mut csv = String::new();
    push_row(&mut csv, script.fields.iter().map(|f| Cow::Borrowed(f.name.as_str())));
    for record in &script.records[start..end] {
        push_row(&mut csv, script.fields.iter().map(|f| cell(f, record.get(&f.name))));
    }
    let mut resp = ([(header::CONTENT_TYPE, "text/csv")], csv).into_response();
    let headers: &mut HeaderMap = resp.headers_mut();
    set(headers, "sforce-numberofrecords", &(end - start).to_string());
    let next = if end < last { format!("{LOCATOR}{end}") } else { "null".to_owned() };
    set(headers, "sforce-locator", &next);
    resp
}

/// One CSV cell: null → empty, strings as they are (datetimes from REST's `+0000` to Bulk's
/// `Z`), booleans `true`/`false`, numbers as written, anything else as its JSON.
fn cell<'a>(field: &Field, value: Option<&'a Value>) -> Cow<'a, str> {
    match value {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) if field.ty == "datetime" => match s.strip_suffix("+0000") {
            Some(stem) => Cow::Owned(format!("{stem}Z")),
            None => Cow::Borrowed(s),
        },
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

/// Appends one LF-terminated row, quoting cells that hold a comma, quote, CR or LF.
fn push_row<'a>(csv: &mut String, cells: impl Iterator<Item = Cow<'a, str>>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            csv.push(',');
        }
        if cell.contains([',', '"', '\r', '\n']) {
            csv.push('"');
            csv.push_str(&cell.replace('"', "\"\""));
            csv.push('"');
        } else {
            csv.push_str(&cell);
        }
    }
    csv.push('\n');
}
