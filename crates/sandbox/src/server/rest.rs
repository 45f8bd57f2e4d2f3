//! REST resources other than query: versions, describeGlobal, describe, sObject
//! create / read / update / delete, blob fields, `updated` / `deleted`, `limits`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};

use super::error::{ApiError, ApiResult, json_response};
use super::render::{Projection, record};
use super::state::AppState;
use super::version::{VERSIONS, parse_version, version_label};
use crate::schema::describe;
use crate::store::{Change, ChangeError, today};
use crate::value::{Value, format_datetime_rest, parse_datetime};
use crate::write;

/// `GET /services/data/`: the versions, oldest first; needs no session.
pub async fn versions() -> Response {
    let list: Vec<Json> = VERSIONS
        .map(|v| json!({"label": version_label(v), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")}))
        .collect();
    json_response(StatusCode::OK, &Json::Array(list))
}

fn version_of(v: &str) -> ApiResult<u32> {
    parse_version(v).ok_or_else(ApiError::not_found)
}

async fn resources(Path(v): Path<String>) -> ApiResult {
    let v = version_of(&v)?;
    let base = format!("/services/data/v{v}.0");
    let body = json!({
        "limits": format!("{base}/limits"),
        "sobjects": format!("{base}/sobjects"),
        "query": format!("{base}/query"),
        "queryAll": format!("{base}/queryAll"),
        "jobs": format!("{base}/jobs"),
    });
    Ok(json_response(StatusCode::OK, &body))
}

async fn describe_global(State(state): State<Arc<AppState>>, Path(v): Path<String>) -> ApiResult {
    let v = version_of(&v)?;
    let org = state.org.read();
    let version = format!("{v}.0");
    let sobjects: Vec<Json> = org.tables.iter().map(|t| describe::global_entry(&t.def, &version)).collect();
    Ok(json_response(StatusCode::OK, &json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})))
}

async fn describe_object(State(state): State<Arc<AppState>>, Path((v, object)): Path<(String, String)>) -> ApiResult {
    let v = version_of(&v)?;
    let org = state.org.read();
    let t = org.table(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let children: Vec<(String, String, Option<String>)> = org
        .tables
        .iter()
        .flat_map(|c| {
            c.def
                .fields
                .iter()
                .filter(|f| f.reference_to.contains(&t.def.name))
                .map(|f| {
                    let rel = match (c.def.name.as_str(), f.name.as_str()) {
                        (_, "OwnerId" | "CreatedById" | "LastModifiedById" | "MasterRecordId") => None,
                        (child, _) if child.ends_with("__c") => Some(format!("{}s__r", child.trim_end_matches("__c"))),
                        (child, _) => Some(plural(child)),
                    };
                    (c.def.name.clone(), f.name.clone(), rel)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(json_response(StatusCode::OK, &describe::object(&t.def, &format!("{v}.0"), &children)))
}

fn plural(name: &str) -> String {
    match name {
        "Opportunity" => "Opportunities".into(),
        "Case" => "Cases".into(),
        other => format!("{other}s"),
    }
}

async fn sobject_root(State(state): State<Arc<AppState>>, Path((v, object)): Path<(String, String)>) -> ApiResult {
    let v = version_of(&v)?;
    let org = state.org.read();
    let t = org.table(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let body = json!({"objectDescribe": describe::global_entry(&t.def, &format!("{v}.0")), "recentItems": []});
    Ok(json_response(StatusCode::OK, &body))
}

fn parse_body(body: &Bytes) -> ApiResult<serde_json::Map<String, Json>> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::json_parser(format!("expected an object, found {other}"))),
        Err(e) => Err(ApiError::json_parser(e)),
    }
}

async fn create(
    State(state): State<Arc<AppState>>,
    Path((v, object)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let v = version_of(&v)?;
    let fields = parse_body(&body)?;
    let now = state.clock.now_ms();
    let mut org = state.org.write();
    let ti = org.table_index(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let values = write::prepare(&org, &org.tables[ti], &fields, true)?;
    let number = org.tables[ti].allocate_number();
    let user = org.user_id.clone();
    org.apply(&Change::Insert { table: ti, number, values }, now, &user)
        .map_err(|e| ApiError::bad_request("UNKNOWN_EXCEPTION", e.to_string()))?;
    let id = crate::ids::make(&org.tables[ti].def.key_prefix, number);
    let name = org.tables[ti].def.name.clone();
    let mut resp = json_response(StatusCode::CREATED, &json!({"id": id, "success": true, "errors": []}));
    if let Ok(loc) = HeaderValue::from_str(&format!("/services/data/v{v}.0/sobjects/{name}/{id}")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

#[derive(serde::Deserialize)]
struct FieldsParam {
    fields: Option<String>,
}

/// Finds a live row by Id; deleted rows answer 404 `ENTITY_IS_DELETED`.
fn find(org: &crate::store::Org, ti: usize, id: &str) -> ApiResult<u32> {
    let t = &org.tables[ti];
    let row = t.row_of_id(id).ok_or_else(ApiError::not_found)?;
    if t.is_deleted(row) {
        return Err(ApiError::entity_deleted());
    }
    Ok(row)
}

async fn read(
    State(state): State<Arc<AppState>>,
    Path((v, object, id)): Path<(String, String, String)>,
    Query(params): Query<FieldsParam>,
) -> ApiResult {
    let v = version_of(&v)?;
    let now = state.clock.now_ms();
    let org = state.org.read();
    let ti = org.table_index(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let row = find(&org, ti, &id)?;
    let def = &org.tables[ti].def;
    let projection = match params.fields.as_deref().filter(|f| !f.trim().is_empty()) {
        None => Projection::all_fields(&org, ti, None),
        Some(list) => {
            let mut chosen = Vec::new();
            for name in list.split(',').map(str::trim) {
                let (_, f) = def.field_ci(name).ok_or_else(|| {
                    ApiError::bad_request(
                        "INVALID_FIELD",
                        format!("No such column '{name}' on sobject of type {}", def.name),
                    )
                })?;
                chosen.push(f);
            }
            Projection::all_fields(&org, ti, Some(&chosen))
        }
    };
    Ok(json_response(StatusCode::OK, &record(&org, &projection, row, v, today(now))))
}

async fn update(
    State(state): State<Arc<AppState>>,
    Path((v, object, id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    version_of(&v)?;
    let fields = parse_body(&body)?;
    let now = state.clock.now_ms();
    let mut org = state.org.write();
    let ti = org.table_index(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let row = find(&org, ti, &id)?;
    let values = write::prepare(&org, &org.tables[ti], &fields, false)?;
    let number = org.tables[ti].numbers[row as usize];
    let user = org.user_id.clone();
    org.apply(&Change::Update { table: ti, number, values, system: false }, now, &user).map_err(change_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete(
    State(state): State<Arc<AppState>>,
    Path((v, object, id)): Path<(String, String, String)>,
) -> ApiResult {
    version_of(&v)?;
    let now = state.clock.now_ms();
    let mut org = state.org.write();
    let ti = org.table_index(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let row = find(&org, ti, &id)?;
    let number = org.tables[ti].numbers[row as usize];
    let user = org.user_id.clone();
    org.apply(&Change::Delete { table: ti, number }, now, &user).map_err(change_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Maps a store refusal to Salesforce's answer.
pub fn change_error(e: ChangeError) -> ApiError {
    match e {
        ChangeError::NotFound => ApiError::not_found(),
        ChangeError::Deleted => ApiError::entity_deleted(),
        ChangeError::NotDeleted => ApiError::bad_request("UNDELETE_FAILED", "Entity is not in the recycle bin"),
        ChangeError::NotDeletable => {
            ApiError::bad_request("INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted")
        }
    }
}

async fn blob(
    State(state): State<Arc<AppState>>,
    Path((v, object, id, field)): Path<(String, String, String, String)>,
) -> ApiResult {
    version_of(&v)?;
    let org = state.org.read();
    let ti = org.table_index(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let row = find(&org, ti, &id)?;
    let t = &org.tables[ti];
    let (col, f) = t.def.field_ci(&field).ok_or_else(ApiError::not_found)?;
    if f.ty != crate::value::FieldType::Base64 {
        return Err(ApiError::not_found());
    }
    let Value::Str(b64) = t.stored(row, col) else { return Err(ApiError::not_found()) };
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).map_err(|_| ApiError::not_found())?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

#[derive(serde::Deserialize)]
struct Range {
    start: Option<String>,
    end: Option<String>,
}

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn replication_range(r: &Range) -> ApiResult<(i64, i64)> {
    let parse = |name: &str, v: &Option<String>| -> ApiResult<i64> {
        let s = v
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("MALFORMED_QUERY", format!("Missing required parameter: {name}")))?;
        parse_datetime(s).ok_or_else(|| {
            ApiError::bad_request("INVALID_REPLICATION_DATE", format!("{name}: {s} is not a valid dateTime"))
        })
    };
    // Salesforce truncates both ends to the minute.
    let (start, end) = (parse("start", &r.start)?, parse("end", &r.end)?);
    let (start, end) = (start - start.rem_euclid(MINUTE), end - end.rem_euclid(MINUTE));
    if start >= end {
        return Err(ApiError::bad_request(
            "INVALID_REPLICATION_DATE",
            "startDate must chronologically precede endDate by more than one minute",
        ));
    }
    Ok((start, end))
}

async fn updated(
    State(state): State<Arc<AppState>>,
    Path((v, object)): Path<(String, String)>,
    Query(range): Query<Range>,
) -> ApiResult {
    version_of(&v)?;
    let (start, end) = replication_range(&range)?;
    let now = state.clock.now_ms();
    if start < now - 30 * DAY {
        return Err(ApiError::bad_request("INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago"));
    }
    let org = state.org.read();
    let t = org.table(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let ids: Vec<String> = (0..t.len() as u32)
        .filter(|&r| !t.purged[r as usize] && !t.is_deleted(r))
        .filter(|&r| (start..end).contains(&t.modstamp(r)))
        .map(|r| t.id(r).into_owned())
        .collect();
    if ids.len() > 600_000 {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 600000 records in this operation",
        ));
    }
    let covered = latest_covered(&org, &object, end, now);
    Ok(json_response(StatusCode::OK, &json!({"ids": ids, "latestDateCovered": format_datetime_rest(covered)})))
}

/// `latestDateCovered`: the end of the window, at most now; an open (late) transaction
/// holds it at the transaction's start, so a client restarting from it sees the rows
/// that commit later with older stamps.
fn latest_covered(org: &crate::store::Org, object: &str, end: i64, now: i64) -> i64 {
    let covered = end.min(now - now.rem_euclid(MINUTE));
    match org.table_index(object).and_then(|t| org.pending_since(t)) {
        Some(open) => covered.min(open - open.rem_euclid(MINUTE)),
        None => covered,
    }
}

async fn deleted(
    State(state): State<Arc<AppState>>,
    Path((v, object)): Path<(String, String)>,
    Query(range): Query<Range>,
) -> ApiResult {
    version_of(&v)?;
    let (start, end) = replication_range(&range)?;
    let now = state.clock.now_ms();
    let earliest = now - 15 * DAY;
    let earliest = earliest - earliest.rem_euclid(MINUTE) + MINUTE;
    if start < earliest - MINUTE {
        return Err(ApiError::bad_request("INVALID_REPLICATION_DATE", "startDate cannot be more than 15 days ago"));
    }
    let org = state.org.read();
    let t = org.table(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let deleted: Vec<Json> = (0..t.len())
        .filter(|&r| (start..end).contains(&t.deleted_at[r]))
        .map(|r| json!({"id": t.id(r as u32), "deletedDate": format_datetime_rest(t.deleted_at[r])}))
        .collect();
    let covered = latest_covered(&org, &object, end, now);
    Ok(json_response(
        StatusCode::OK,
        &json!({"deletedRecords": deleted, "earliestDateAvailable": format_datetime_rest(earliest), "latestDateCovered": format_datetime_rest(covered)}),
    ))
}

async fn limits(State(state): State<Arc<AppState>>, Path(v): Path<String>) -> ApiResult {
    version_of(&v)?;
    let max = state.knobs.read().daily_api_limit;
    let used = state.api.used().min(max);
    let jobs_used = state.jobs.created_since_day_before(state.clock.now_ms()) as u64;
    let body = json!({
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        "DailyApiRequests": {"Max": max, "Remaining": max - used},
        "DailyAsyncApexExecutions": {"Max": 250_000, "Remaining": 250_000},
        "DailyBulkApiBatches": {"Max": 15_000, "Remaining": 15_000},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976_562, "Remaining": 976_562},
        "DailyBulkV2QueryJobs": {"Max": 10_000, "Remaining": 10_000u64.saturating_sub(jobs_used)},
        "DataStorageMB": {"Max": 1024, "Remaining": 1000},
        "FileStorageMB": {"Max": 2048, "Remaining": 2048},
        "HourlyODataCallout": {"Max": 10_000, "Remaining": 10_000},
    });
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(serde::Deserialize)]
struct RecordCountParams {
    #[serde(rename = "sObjects")]
    sobjects: Option<String>,
}

async fn record_count(
    State(state): State<Arc<AppState>>,
    Path(v): Path<String>,
    Query(p): Query<RecordCountParams>,
) -> ApiResult {
    version_of(&v)?;
    let org = state.org.read();
    let wanted: Option<Vec<String>> = p.sobjects.map(|s| s.split(',').map(|o| o.trim().to_ascii_lowercase()).collect());
    let counts: Vec<Json> = org
        .tables
        .iter()
        .filter(|t| wanted.as_ref().is_none_or(|w| w.contains(&t.def.name.to_ascii_lowercase())))
        .map(|t| {
            let live = (0..t.len() as u32).filter(|&r| !t.purged[r as usize] && !t.is_deleted(r)).count();
            json!({"count": live, "name": t.def.name})
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"sObjects": counts})))
}

/// Routes under `/services/data/{version}`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(resources))
        .route("/limits", get(limits))
        .route("/limits/recordCount", get(record_count))
        .route("/sobjects", get(describe_global))
        .route("/sobjects/{object}", get(sobject_root).post(create))
        .route("/sobjects/{object}/describe", get(describe_object))
        .route("/sobjects/{object}/updated", get(updated))
        .route("/sobjects/{object}/deleted", get(deleted))
        .route("/sobjects/{object}/{id}", get(read).patch(update).delete(delete))
        .route("/sobjects/{object}/{id}/{field}", get(blob))
}
