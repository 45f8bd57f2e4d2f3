//! SOQL execution and the REST query resources: `query`, `queryAll` and their
//! locator pages (`/query/01g…-2000`).
//!
//! A query's matching rows are fixed when it runs (the cursor keeps their row
//! numbers) and rendered page by page when fetched. Pages hold 2,000 records unless
//! `Sforce-Query-Options: batchSize=N` asks for fewer (clamped to 200..2000).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value as Json, json};

use super::cursors::Cursor;
use super::error::{ApiError, ApiResult, json_response};
use super::render::{Projection, record};
use super::state::AppState;
use super::version::parse_version;
use crate::ids;
use crate::soql::{self, Bound, SelectItem};
use crate::store::{Org, RowView, today};

pub use super::cursors::Cursors;

/// Runs a bound query: the matching rows, ordered, after OFFSET and LIMIT.
/// `all_rows` includes the recycle bin (queryAll).
pub fn execute(org: &Org, table: usize, bound: &Bound, all_rows: bool, today: i32) -> Vec<u32> {
    let t = &org.tables[table];
    let paths: Vec<Vec<String>> = bound.fields.iter().map(|f| f.path.clone()).collect();
    let accessors = org.accessors(table, &paths);
    let mut rows: Vec<u32> = (0..t.len() as u32)
        .filter(|&r| !t.purged[r as usize] && (all_rows || !t.is_deleted(r)))
        .filter(|&r| bound.matches(&RowView { org, table, row: r, accessors: &accessors, today }))
        .collect();
    if !bound.order_by.is_empty() {
        rows.sort_by(|&a, &b| {
            bound.compare(
                &RowView { org, table, row: a, accessors: &accessors, today },
                &RowView { org, table, row: b, accessors: &accessors, today },
            )
        });
    }
    let offset = bound.offset.unwrap_or(0) as usize;
    let mut rows: Vec<u32> = rows.into_iter().skip(offset).collect();
    if let Some(limit) = bound.limit {
        rows.truncate(limit as usize);
    }
    rows
}

/// Compiles SOQL against the org, turning errors into REST error bodies.
pub fn compile(org: &Org, q: &str, now: i64) -> ApiResult<(usize, Bound)> {
    let bound = soql::compile(q, org, now).map_err(|e| ApiError::bad_request(e.code, e.message(q)))?;
    let table =
        org.table_index(&bound.object).ok_or_else(|| ApiError::bad_request("INVALID_TYPE", bound.object.clone()))?;
    Ok((table, bound))
}

const DEFAULT_BATCH: usize = 2000;
const LOCATOR_TTL_MS: i64 = 2 * 86_400_000;
const MAX_OPEN_CURSORS: usize = 500;

fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split([';', ','])
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(DEFAULT_BATCH, |n| n.clamp(200, DEFAULT_BATCH))
}

#[derive(serde::Deserialize)]
struct Q {
    q: Option<String>,
}

async fn query(state: State<Arc<AppState>>, v: Path<String>, params: QueryParams<Q>, headers: HeaderMap) -> ApiResult {
    run(state, v, params, headers, false).await
}

async fn query_all(
    state: State<Arc<AppState>>,
    v: Path<String>,
    params: QueryParams<Q>,
    headers: HeaderMap,
) -> ApiResult {
    run(state, v, params, headers, true).await
}

async fn run(
    State(state): State<Arc<AppState>>,
    Path(version): Path<String>,
    QueryParams(params): QueryParams<Q>,
    headers: HeaderMap,
    all_rows: bool,
) -> ApiResult {
    let version = parse_version(&version).ok_or_else(ApiError::not_found)?;
    let q = params
        .q
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("MALFORMED_QUERY", "A query string has to be specified"))?;
    let now = state.clock.now_ms();
    let today = today(now);
    let org = state.org.read();
    let (table, bound) = compile(&org, &q, now)?;
    let rows = execute(&org, table, &bound, all_rows, today);
    if bound.is_count() {
        return Ok(json_response(StatusCode::OK, &json!({"totalSize": rows.len(), "done": true, "records": []})));
    }
    if let Some(SelectItem::Count { alias, .. }) = bound.select.iter().find(|s| matches!(s, SelectItem::Count { .. })) {
        // COUNT(field) counts rows whose field is not null.
        let counted = match bound.select.iter().find_map(|s| match s {
            SelectItem::Count { field, .. } => Some(*field),
            _ => None,
        }) {
            Some(f) => {
                let paths = vec![bound.fields[f].path.clone()];
                let acc = org.accessors(table, &paths);
                rows.iter()
                    .filter(|&&r| {
                        !crate::soql::RowAccess::value(&RowView { org: &org, table, row: r, accessors: &acc, today }, 0)
                            .is_null()
                    })
                    .count()
            }
            None => rows.len(),
        };
        let key = alias.clone().unwrap_or_else(|| "expr0".into());
        let rec = json!({"attributes": {"type": "AggregateResult"}, key: counted});
        return Ok(json_response(StatusCode::OK, &json!({"totalSize": 1, "done": true, "records": [rec]})));
    }
    let projection = Arc::new(Projection::of_query(&org, table, &bound));
    let batch = batch_size(&headers);
    let rows = Arc::new(rows);
    Ok(page(
        &state,
        &org,
        PageOf { version, table, rows: &rows, projection: &projection, batch, locator: None },
        0,
        now,
        today,
    ))
}

/// What a page is cut from: a query's rows and how to render them.
struct PageOf<'a> {
    version: u32,
    table: usize,
    rows: &'a Arc<Vec<u32>>,
    projection: &'a Arc<Projection>,
    batch: usize,
    /// The cursor's locator id, once it has one (first pages mint it).
    locator: Option<&'a str>,
}

fn page(state: &AppState, org: &Org, of: PageOf<'_>, offset: usize, now: i64, today: i32) -> Response {
    let PageOf { version, table, rows, projection, batch, locator } = of;
    let end = (offset + batch).min(rows.len());
    let records: Vec<Json> =
        rows[offset.min(end)..end].iter().map(|&r| record(org, projection, r, version, today)).collect();
    let mut body = serde_json::Map::new();
    body.insert("totalSize".into(), json!(rows.len()));
    body.insert("done".into(), json!(end >= rows.len()));
    if end < rows.len() {
        let locator = match locator {
            Some(id) => id.to_string(),
            None => {
                let n = state.cursors.next.fetch_add(1, Ordering::Relaxed) + 1;
                let id = ids::make("01g", n);
                let mut open = state.cursors.open.lock();
                // A long-lived org must not keep every cursor it ever opened: drop the
                // oldest beyond a bound (Salesforce also caps open cursors per user).
                if open.len() >= MAX_OPEN_CURSORS
                    && let Some(oldest) = open.iter().min_by_key(|(_, c)| c.created).map(|(k, _)| k.clone())
                {
                    open.remove(&oldest);
                }
                open.insert(
                    id.clone(),
                    Cursor { table, rows: rows.clone(), projection: projection.clone(), batch, created: now },
                );
                id
            }
        };
        body.insert("nextRecordsUrl".into(), json!(format!("/services/data/v{version}.0/query/{locator}-{end}")));
    }
    body.insert("records".into(), Json::Array(records));
    json_response(StatusCode::OK, &Json::Object(body))
}

async fn more(State(state): State<Arc<AppState>>, Path((version, locator)): Path<(String, String)>) -> ApiResult {
    let version = parse_version(&version).ok_or_else(ApiError::not_found)?;
    let invalid = || ApiError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    let now = state.clock.now_ms();
    let ttl = state.knobs.read().query_locator_ttl_secs.map_or(LOCATOR_TTL_MS, |s| s as i64 * 1000);
    let (table, rows, projection, batch) = {
        let mut open = state.cursors.open.lock();
        open.retain(|_, c| now - c.created < ttl);
        let c = open.get(id).ok_or_else(invalid)?;
        (c.table, c.rows.clone(), c.projection.clone(), c.batch)
    };
    if offset > rows.len() {
        return Err(invalid());
    }
    let org = state.org.read();
    let of = PageOf { version, table, rows: &rows, projection: &projection, batch, locator: Some(id) };
    Ok(page(&state, &org, of, offset, now, today(now)))
}

/// Routes under `/services/data/{version}`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/query", get(query))
        .route("/queryAll", get(query_all))
        .route("/query/{locator}", get(more))
        .route("/queryAll/{locator}", get(more))
}
