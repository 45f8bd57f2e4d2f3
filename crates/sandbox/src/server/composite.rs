//! sObject Collections (API 42.0+): up to 200 records per call, one result per record
//! in request order. jsforce uses these for every multi-record create, retrieve,
//! update and destroy.
//!
//! ```text
//! POST   /composite/sobjects                 {"allOrNone", "records": [{"attributes": {"type"}, …}]}  → [SaveResult]
//! PATCH  /composite/sobjects                 same, each record with its "id"                          → [SaveResult]
//! DELETE /composite/sobjects?ids=a,b[&allOrNone=true]                                                 → [DeleteResult]
//! POST   /composite/sobjects/{O}             {"ids": […], "fields": […]}                              → [record | null]
//! GET    /composite/sobjects/{O}?ids=…&fields=…                                                       → [record | null]
//! ```
//!
//! A well-formed request answers 200 even when records fail; each failed record has
//! `success: false` and `errors: [{"statusCode", "message", "fields"}]`. With
//! `allOrNone`, nothing is written unless every record is valid, and the valid ones
//! report `ALL_OR_NONE_OPERATION_ROLLED_BACK`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Map, Value as Json, json};

use super::error::{ApiError, ApiResult, json_response};
use super::render::{Projection, record};
use super::state::AppState;
use super::version::parse_version;
use crate::store::{Change, ChangeError, Org, today};
use crate::write::{self, WriteError};

/// Most records (or ids) one collection call takes.
const MAX_RECORDS: usize = 200;

/// One record's error, as a SaveResult / DeleteResult carries it.
#[derive(Debug, Clone)]
struct ItemError {
    code: String,
    message: String,
    fields: Vec<String>,
}

impl ItemError {
    fn new(code: &str, message: impl Into<String>) -> Self {
        ItemError { code: code.into(), message: message.into(), fields: Vec::new() }
    }

    fn json(&self) -> Json {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }
}

impl From<WriteError> for ItemError {
    fn from(e: WriteError) -> Self {
        ItemError { code: e.code.into(), message: e.message, fields: e.fields }
    }
}

fn change_errors(e: ChangeError) -> Vec<ItemError> {
    let api = super::rest::change_error(e);
    api.errors.into_iter().map(|(code, message, fields)| ItemError { code, message, fields }).collect()
}

fn rolled_back() -> ItemError {
    ItemError::new(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
    )
}

fn ok_result(id: &str) -> Json {
    json!({"id": id, "success": true, "errors": []})
}

fn failed_result(id: Option<&str>, errors: &[ItemError]) -> Json {
    let errors: Vec<Json> = errors.iter().map(ItemError::json).collect();
    match id {
        Some(id) => json!({"id": id, "success": false, "errors": errors}),
        None => json!({"success": false, "errors": errors}),
    }
}

fn too_many(n: usize) -> ApiError {
    ApiError::bad_request(
        "EXCEEDED_ID_LIMIT",
        format!("record limit reached. cannot submit more than {MAX_RECORDS} records into this call (got {n})"),
    )
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SaveBody {
    #[serde(default)]
    all_or_none: bool,
    records: Vec<Json>,
}

fn parse_save_body(body: &Bytes) -> ApiResult<SaveBody> {
    let req: SaveBody = serde_json::from_slice(body).map_err(ApiError::json_parser)?;
    if req.records.len() > MAX_RECORDS {
        return Err(too_many(req.records.len()));
    }
    Ok(req)
}

/// The object a collection record names in `attributes.type`.
fn record_table(org: &Org, rec: &Map<String, Json>) -> Result<usize, ItemError> {
    let ty = rec.get("attributes").and_then(|a| a.get("type")).and_then(Json::as_str).ok_or_else(|| {
        ItemError::new("INVALID_TYPE", "No SObject Type defined in the attributes of the record: set attributes.type")
    })?;
    org.table_index(ty).ok_or_else(|| ItemError::new("INVALID_TYPE", format!("sObject type '{ty}' is not supported.")))
}

/// A planned write of one record, or why it cannot be made.
type Planned = Result<(Option<String>, Change), (Option<String>, Vec<ItemError>)>;

/// Writes every planned change (or none, with `all_or_none`, if any failed) and
/// renders the results in request order.
fn commit(org: &mut Org, planned: Vec<Planned>, all_or_none: bool, now: i64) -> Vec<Json> {
    let user = org.user_id.clone();
    if all_or_none && planned.iter().any(Result::is_err) {
        return planned
            .into_iter()
            .map(|p| match p {
                Ok((id, _)) => failed_result(id.as_deref(), &[rolled_back()]),
                Err((id, errors)) => failed_result(id.as_deref(), &errors),
            })
            .collect();
    }
    planned
        .into_iter()
        .map(|p| match p {
            Ok((id, change)) => {
                let id = id.unwrap_or_else(|| match &change {
                    Change::Insert { table, number, .. } => {
                        crate::ids::make(&org.tables[*table].def.key_prefix, *number)
                    }
                    _ => String::new(),
                });
                match org.apply(&change, now, &user) {
                    Ok(()) => ok_result(&id),
                    Err(e) => failed_result(Some(&id), &change_errors(e)),
                }
            }
            Err((id, errors)) => failed_result(id.as_deref(), &errors),
        })
        .collect()
}

async fn create_many(State(state): State<Arc<AppState>>, Path(v): Path<String>, body: Bytes) -> ApiResult {
    parse_version(&v).ok_or_else(ApiError::not_found)?;
    let req = parse_save_body(&body)?;
    let now = state.clock.now_ms();
    let mut org = state.org.write();
    let mut planned: Vec<Planned> = Vec::with_capacity(req.records.len());
    for raw in &req.records {
        let Json::Object(rec) = raw else {
            planned.push(Err((None, vec![ItemError::new("JSON_PARSER_ERROR", "a record must be a JSON object")])));
            continue;
        };
        let ti = match record_table(&org, rec) {
            Ok(t) => t,
            Err(e) => {
                planned.push(Err((None, vec![e])));
                continue;
            }
        };
        match write::prepare(&org, &org.tables[ti], rec, true) {
            Ok(values) => {
                let number = org.tables[ti].allocate_number();
                planned.push(Ok((None, Change::Insert { table: ti, number, values })));
            }
            Err(errors) => planned.push(Err((None, errors.into_iter().map(ItemError::from).collect()))),
        }
    }
    let results = commit(&mut org, planned, req.all_or_none, now);
    Ok(json_response(StatusCode::OK, &Json::Array(results)))
}

async fn update_many(State(state): State<Arc<AppState>>, Path(v): Path<String>, body: Bytes) -> ApiResult {
    parse_version(&v).ok_or_else(ApiError::not_found)?;
    let req = parse_save_body(&body)?;
    let now = state.clock.now_ms();
    let mut org = state.org.write();
    let mut planned: Vec<Planned> = Vec::with_capacity(req.records.len());
    for raw in &req.records {
        let Json::Object(rec) = raw else {
            planned.push(Err((None, vec![ItemError::new("JSON_PARSER_ERROR", "a record must be a JSON object")])));
            continue;
        };
        // The id travels in the record (`id` in Salesforce's examples; any case works).
        let mut fields = rec.clone();
        let id_key = fields.keys().find(|k| k.eq_ignore_ascii_case("id")).cloned();
        let Some(id) = id_key.and_then(|k| fields.remove(&k)).and_then(|v| v.as_str().map(str::to_string)) else {
            planned.push(Err((
                None,
                vec![ItemError {
                    code: "MISSING_ARGUMENT".into(),
                    message: "Id not specified in an update call".into(),
                    fields: vec!["Id".into()],
                }],
            )));
            continue;
        };
        let ti = match record_table(&org, rec) {
            Ok(t) => t,
            Err(e) => {
                planned.push(Err((Some(id), vec![e])));
                continue;
            }
        };
        let t = &org.tables[ti];
        let row = match t.row_of_id(&id) {
            Some(r) if t.is_deleted(r) => {
                planned.push(Err((Some(id), change_errors(ChangeError::Deleted))));
                continue;
            }
            Some(r) => r,
            None => {
                let e = ItemError {
                    code: "MALFORMED_ID".into(),
                    message: format!("{} ID: id value of incorrect type: {id}", t.def.name),
                    fields: vec!["Id".into()],
                };
                planned.push(Err((Some(id), vec![e])));
                continue;
            }
        };
        match write::prepare(&org, t, &fields, false) {
            Ok(values) => {
                let number = t.numbers[row as usize];
                let id = t.id(row).into_owned();
                planned.push(Ok((Some(id), Change::Update { table: ti, number, values, system: false })));
            }
            Err(errors) => planned.push(Err((Some(id), errors.into_iter().map(ItemError::from).collect()))),
        }
    }
    let results = commit(&mut org, planned, req.all_or_none, now);
    Ok(json_response(StatusCode::OK, &Json::Array(results)))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteParams {
    ids: Option<String>,
    all_or_none: Option<String>,
}

async fn delete_many(
    State(state): State<Arc<AppState>>,
    Path(v): Path<String>,
    Query(p): Query<DeleteParams>,
) -> ApiResult {
    parse_version(&v).ok_or_else(ApiError::not_found)?;
    let ids: Vec<String> = p
        .ids
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Err(ApiError::bad_request("MISSING_ARGUMENT", "ids parameter is required"));
    }
    if ids.len() > MAX_RECORDS {
        return Err(too_many(ids.len()));
    }
    let all_or_none = p.all_or_none.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let now = state.clock.now_ms();
    let mut org = state.org.write();
    let planned: Vec<Planned> = ids
        .into_iter()
        .map(|id| {
            let malformed = || {
                vec![ItemError {
                    code: "MALFORMED_ID".into(),
                    message: format!("malformed id {id}"),
                    fields: Vec::new(),
                }]
            };
            let Some((ti, row)) = org.locate(&id) else {
                return Err((Some(id.clone()), malformed()));
            };
            let t = &org.tables[ti];
            if !t.def.deletable || t.sys.is_deleted.is_none() {
                return Err((Some(id), change_errors(ChangeError::NotDeletable)));
            }
            if t.is_deleted(row) {
                return Err((Some(id), change_errors(ChangeError::Deleted)));
            }
            Ok((Some(t.id(row).into_owned()), Change::Delete { table: ti, number: t.numbers[row as usize] }))
        })
        .collect();
    let results = commit(&mut org, planned, all_or_none, now);
    Ok(json_response(StatusCode::OK, &Json::Array(results)))
}

#[derive(serde::Deserialize)]
struct RetrieveBody {
    ids: Vec<String>,
    fields: Vec<String>,
}

#[derive(serde::Deserialize)]
struct RetrieveParams {
    ids: Option<String>,
    fields: Option<String>,
}

fn retrieve_rows(state: &AppState, version: &str, object: &str, ids: &[String], fields: &[String]) -> ApiResult {
    let v = parse_version(version).ok_or_else(ApiError::not_found)?;
    if ids.len() > 2000 {
        return Err(too_many(ids.len()));
    }
    if fields.is_empty() {
        return Err(ApiError::bad_request("MISSING_ARGUMENT", "fields parameter is required"));
    }
    let now = state.clock.now_ms();
    let org = state.org.read();
    let ti = org.table_index(object).ok_or_else(|| ApiError::unknown_object(object))?;
    let def = &org.tables[ti].def;
    let mut chosen = Vec::with_capacity(fields.len());
    for name in fields {
        let (_, f) = def.field_ci(name.trim()).ok_or_else(|| {
            ApiError::bad_request("INVALID_FIELD", format!("No such column '{name}' on sobject of type {}", def.name))
        })?;
        chosen.push(f);
    }
    let projection = Projection::all_fields(&org, ti, Some(&chosen));
    let t = &org.tables[ti];
    let records: Vec<Json> = ids
        .iter()
        .map(|id| match t.row_of_id(id.trim()) {
            Some(row) if !t.is_deleted(row) => record(&org, &projection, row, v, today(now)),
            _ => Json::Null,
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Json::Array(records)))
}

async fn retrieve_post(
    State(state): State<Arc<AppState>>,
    Path((v, object)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let req: RetrieveBody = serde_json::from_slice(&body).map_err(ApiError::json_parser)?;
    retrieve_rows(&state, &v, &object, &req.ids, &req.fields)
}

async fn retrieve_get(
    State(state): State<Arc<AppState>>,
    Path((v, object)): Path<(String, String)>,
    Query(p): Query<RetrieveParams>,
) -> ApiResult {
    let split = |s: Option<String>| -> Vec<String> {
        s.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    };
    retrieve_rows(&state, &v, &object, &split(p.ids), &split(p.fields))
}

/// Routes under `/services/data/{version}`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/composite/sobjects", post(create_many).patch(update_many).delete(delete_many))
        .route("/composite/sobjects/{object}", post(retrieve_post).get(retrieve_get))
}
