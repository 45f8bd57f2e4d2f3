//! The admin API under `/sandbox/v1/` (never under `/services`, so no Salesforce
//! client can reach it by accident): mutate data, set knobs, move the clock, expire
//! sessions, and dump the ground truth that tests compare destinations against.
//!
//! | method | path | body / answer |
//! |---|---|---|
//! | GET | `/sandbox/v1/status` | counts per object, clock, pending late writes, API usage |
//! | POST | `/sandbox/v1/mutations` | `{"mutations": [op, …]}` → `{"results": [{"op", "id"}…]}` |
//! | GET, PUT | `/sandbox/v1/knobs` | the knobs (same shape as the TOML file) |
//! | GET, POST | `/sandbox/v1/clock` | `{"advance_secs": 60}`, `{"set": "2026-01-01T00:00:00Z"}`, `{"freeze": true}` |
//! | GET | `/sandbox/v1/truth/{object}` | every row as JSON lines, recycle-bin rows with `IsDeleted: true` |
//! | POST | `/sandbox/v1/sessions/expire` | every access token becomes invalid (refresh tokens stay) |
//! | POST | `/sandbox/v1/refresh-tokens` | `{"refresh_token": "…"}` for the refresh-token grant |
//! | POST | `/sandbox/v1/api-usage/reset` | starts a new daily API window |
//!
//! Mutation ops: `insert` (`fields`, or `count` generated rows), `update` (`id`,
//! `fields`, `system`), `delete`, `undelete`, `purge` (`id`, or every recycle-bin row
//! of `object`), `churn` (`inserts`/`updates`/`deletes`/`undeletes` random writes),
//! `add_field` (`field: {name, type, values?, length?}`). Any op may carry `late_secs`: it is
//! stamped now and becomes visible that many seconds later (a late commit).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::churn::{self, Ops};
use super::error::{ApiError, ApiResult, json_response};
use super::fields::add_field;
use super::render::{Projection, record};
use super::state::AppState;
use super::version::VERSIONS;
use crate::knobs::Knobs;
use crate::store::{Change, today};
use crate::value::{format_datetime_rest, parse_datetime};
use crate::write;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mutations {
    mutations: Vec<Op>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewField {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    length: Option<u32>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    Insert {
        object: String,
        #[serde(default)]
        fields: Option<Map<String, Json>>,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        late_secs: Option<f64>,
    },
    Update {
        object: String,
        id: String,
        #[serde(default)]
        fields: Map<String, Json>,
        #[serde(default)]
        system: bool,
        #[serde(default)]
        late_secs: Option<f64>,
    },
    Delete {
        object: String,
        id: String,
        #[serde(default)]
        late_secs: Option<f64>,
    },
    Undelete {
        object: String,
        id: String,
        #[serde(default)]
        late_secs: Option<f64>,
    },
    Purge {
        object: String,
        #[serde(default)]
        id: Option<String>,
    },
    Churn {
        object: String,
        #[serde(default)]
        inserts: u32,
        #[serde(default)]
        updates: u32,
        #[serde(default)]
        deletes: u32,
        #[serde(default)]
        undeletes: u32,
    },
    AddField {
        object: String,
        field: NewField,
    },
}

fn op_error(index: usize, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("INVALID_MUTATION", format!("mutations[{index}]: {message}"))
}

async fn mutations(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let req: Mutations =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("INVALID_MUTATION", e.to_string()))?;
    let now = state.tick();
    let mut results: Vec<Json> = Vec::new();
    for (i, op) in req.mutations.into_iter().enumerate() {
        if let Op::AddField { object, field } = &op {
            add_field(&state, object, &field.name, &field.ty, &field.values, field.length)
                .map_err(|e| op_error(i, e))?;
            results.push(json!({"op": "add_field", "object": object, "field": field.name}));
            continue;
        }
        let mut org = state.org.write();
        let user = org.user_id.clone();
        let table_of = |org: &crate::store::Org, object: &str| {
            org.table_index(object).ok_or_else(|| op_error(i, format!("unknown object `{object}`")))
        };
        let number_of = |org: &crate::store::Org, t: usize, id: &str| {
            let row = org.tables[t]
                .row_of_id(id)
                .ok_or_else(|| op_error(i, format!("no record {id} in {}", org.tables[t].def.name)))?;
            Ok::<u64, ApiError>(org.tables[t].numbers[row as usize])
        };
        let mut rng = state.rng.lock();
        let (change, late, op_name) = match op {
            Op::Insert { object, fields, count, late_secs } => {
                let t = table_of(&org, &object)?;
                if let Some(n) = count {
                    let late = late_secs.map(|s| (1.0, (s * 1000.0) as i64));
                    let done = churn::step(
                        &mut org,
                        t,
                        Ops { inserts: n, ..Ops::default() },
                        now,
                        state.seed,
                        state.anchor_ms,
                        late,
                        &mut rng,
                    );
                    results.extend(done.into_iter().map(|(op, id)| json!({"op": op, "id": id})));
                    continue;
                }
                let fields = fields.ok_or_else(|| op_error(i, "insert needs `fields` or `count`"))?;
                let values = write::prepare(&org, &org.tables[t], &fields, true)
                    .map_err(|e| op_error(i, ApiError::from(e).body()))?;
                let number = org.tables[t].allocate_number();
                (Change::Insert { table: t, number, values }, late_secs, "insert")
            }
            Op::Update { object, id, fields, system, late_secs } => {
                let t = table_of(&org, &object)?;
                let number = number_of(&org, t, &id)?;
                let values = write::prepare(&org, &org.tables[t], &fields, false)
                    .map_err(|e| op_error(i, ApiError::from(e).body()))?;
                (Change::Update { table: t, number, values, system }, late_secs, "update")
            }
            Op::Delete { object, id, late_secs } => {
                let t = table_of(&org, &object)?;
                (Change::Delete { table: t, number: number_of(&org, t, &id)? }, late_secs, "delete")
            }
            Op::Undelete { object, id, late_secs } => {
                let t = table_of(&org, &object)?;
                (Change::Undelete { table: t, number: number_of(&org, t, &id)? }, late_secs, "undelete")
            }
            Op::Purge { object, id: Some(id) } => {
                let t = table_of(&org, &object)?;
                (Change::Purge { table: t, number: number_of(&org, t, &id)? }, None, "purge")
            }
            Op::Purge { object, id: None } => {
                let t = table_of(&org, &object)?;
                let bin: Vec<u64> = (0..org.tables[t].len() as u32)
                    .filter(|&r| org.tables[t].is_deleted(r) && !org.tables[t].purged[r as usize])
                    .map(|r| org.tables[t].numbers[r as usize])
                    .collect();
                for number in bin {
                    org.apply(&Change::Purge { table: t, number }, now, &user).map_err(|e| op_error(i, e))?;
                    results.push(json!({"op": "purge", "id": crate::ids::make(&org.tables[t].def.key_prefix, number)}));
                }
                continue;
            }
            Op::Churn { object, inserts, updates, deletes, undeletes } => {
                let t = table_of(&org, &object)?;
                let done = churn::step(
                    &mut org,
                    t,
                    Ops { inserts, updates, deletes, undeletes },
                    now,
                    state.seed,
                    state.anchor_ms,
                    None,
                    &mut rng,
                );
                results.extend(done.into_iter().map(|(op, id)| json!({"op": op, "id": id})));
                continue;
            }
            Op::AddField { .. } => continue,
        };
        let (t, number) = match &change {
            Change::Insert { table, number, .. }
            | Change::Update { table, number, .. }
            | Change::Delete { table, number }
            | Change::Undelete { table, number }
            | Change::Purge { table, number } => (*table, *number),
        };
        let id = crate::ids::make(&org.tables[t].def.key_prefix, number);
        match late_secs_ms(late) {
            Some(delay) => org.apply_late(change, now, &user, now + delay),
            None => org.apply(&change, now, &user).map_err(|e| op_error(i, format!("{id}: {e}")))?,
        }
        results.push(json!({"op": op_name, "id": id}));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"results": results, "stamp": format_datetime_rest(now - now.rem_euclid(1000))}),
    ))
}

fn late_secs_ms(late: Option<f64>) -> Option<i64> {
    late.filter(|s| *s > 0.0).map(|s| (s * 1000.0) as i64)
}

async fn get_knobs(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, &serde_json::to_value(&*state.knobs.read()).unwrap_or(Json::Null))
}

async fn put_knobs(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let knobs: Knobs =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("INVALID_KNOBS", e.to_string()))?;
    knobs.validate().map_err(|e| ApiError::bad_request("INVALID_KNOBS", e.join("; ")))?;
    {
        let mut org = state.org.write();
        org.retention_ms = (knobs.recycle_bin_days * 86_400_000.0) as i64;
        org.changes.retention_ms = (knobs.pubsub.retention_hours * 3_600_000.0) as i64;
    }
    *state.knobs.write() = knobs;
    state.tick();
    Ok(get_knobs(State(state)).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_secs: Option<f64>,
    set: Option<String>,
    freeze: Option<bool>,
}

fn clock_json(state: &AppState) -> Json {
    json!({"now": format_datetime_rest(state.clock.now_ms()), "frozen": state.clock.is_frozen(), "offset_ms": state.clock.offset_ms()})
}

async fn get_clock(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, &clock_json(&state))
}

async fn post_clock(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let req: ClockBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("INVALID_CLOCK", e.to_string()))?;
    if let Some(freeze) = req.freeze {
        state.clock.freeze(freeze);
    }
    if let Some(set) = req.set {
        let ms = parse_datetime(&set)
            .ok_or_else(|| ApiError::bad_request("INVALID_CLOCK", format!("`{set}` is not an ISO-8601 datetime")))?;
        state.clock.set(ms);
    }
    if let Some(secs) = req.advance_secs {
        state.clock.advance((secs * 1000.0) as i64);
    }
    state.tick();
    Ok(json_response(StatusCode::OK, &clock_json(&state)))
}

async fn truth(State(state): State<Arc<AppState>>, Path(object): Path<String>) -> ApiResult {
    let now = state.tick();
    let table = state.org.read().table_index(&object).ok_or_else(|| ApiError::unknown_object(&object))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        // One snapshot under one read lock, sent in chunks so a big table streams.
        let org = state.org.read();
        let projection = Projection::all_fields(&org, table, None);
        let t = &org.tables[table];
        let mut chunk = Vec::with_capacity(1 << 20);
        for r in 0..t.len() as u32 {
            if t.purged[r as usize] {
                continue;
            }
            let rec = record(&org, &projection, r, *VERSIONS.end(), today(now));
            let mut rec = rec;
            if let Json::Object(m) = &mut rec {
                m.shift_remove("attributes"); // keeps the fields in describe order
            }
            let _ = serde_json::to_writer(&mut chunk, &rec);
            chunk.push(b'\n');
            if chunk.len() >= 1 << 20 && tx.blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk)))).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
    });
    // Fused: the gzip layer polls the body once more after its end, and a bare `unfold`
    // panics when polled after it returned `None`.
    let stream = futures_util::StreamExt::fuse(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(resp)
}

async fn status(State(state): State<Arc<AppState>>) -> Response {
    let now = state.tick();
    let org = state.org.read();
    let mut objects = Map::new();
    for t in &org.tables {
        let purged = t.purged.iter().filter(|p| **p).count();
        let deleted = (0..t.len() as u32).filter(|&r| !t.purged[r as usize] && t.is_deleted(r)).count();
        objects.insert(
            t.def.name.clone(),
            json!({"live": t.len() - purged - deleted, "recycle_bin": deleted, "purged": purged, "fields": t.def.fields.len(), "bytes": t.heap_bytes()}),
        );
    }
    let body = json!({
        "instance_url": state.base_url,
        "pubsub_url": state.pubsub_url,
        "change_events": org.changes.len(),
        "now": format_datetime_rest(now),
        "clock_frozen": state.clock.is_frozen(),
        "objects": objects,
        "pending_late_writes": org.pending_count(),
        "api_usage": state.api.used(),
        "bulk_jobs": state.jobs.len(),
    });
    json_response(StatusCode::OK, &body)
}

async fn expire_sessions(State(state): State<Arc<AppState>>) -> Response {
    state.oauth.store().revoke_all_access_tokens();
    StatusCode::NO_CONTENT.into_response()
}

async fn refresh_token(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, &json!({"refresh_token": state.oauth.store().issue_refresh_token()}))
}

async fn reset_usage(State(state): State<Arc<AppState>>) -> Response {
    state.api.reset(state.clock.now_ms());
    StatusCode::NO_CONTENT.into_response()
}

/// Admin routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/sandbox/v1/status", get(status))
        .route("/sandbox/v1/mutations", post(mutations))
        .route("/sandbox/v1/knobs", get(get_knobs).put(put_knobs))
        .route("/sandbox/v1/clock", get(get_clock).post(post_clock))
        .route("/sandbox/v1/truth/{object}", get(truth))
        .route("/sandbox/v1/sessions/expire", post(expire_sessions))
        .route("/sandbox/v1/refresh-tokens", post(refresh_token))
        .route("/sandbox/v1/api-usage/reset", post(reset_usage))
}
