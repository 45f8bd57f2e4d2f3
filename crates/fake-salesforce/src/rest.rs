//! REST: describe, and a query endpoint that recognises `COUNT()` and `LIMIT 1` and
//! otherwise lists every record, paged (`WHERE` is never evaluated).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::script::Endpoint;
use crate::shared::{Shared, error, json, not_found};

/// Prefix of the fake's query locators; the row offset follows.
const LOCATOR: &str = "01gFAKE-";

/// `GET …/sobjects/{object}/describe`.
pub(crate) async fn describe(State(shared): State<Arc<Shared>>, Path((_, object)): Path<(String, String)>) -> Response {
    if let Some(hung) = shared.hang(Endpoint::Describe).await {
        return hung;
    }
    let script = &shared.script;
    if !object.eq_ignore_ascii_case(&script.object) {
        return not_found();
    }
    let fields: Vec<Value> = script
        .fields
        .iter()
        .map(|f| {
            let (length, precision, scale, digits) = match f.ty.as_str() {
                "id" | "reference" => (18, 0, 0, 0),
                "string" | "textarea" | "picklist" | "multipicklist" | "combobox" | "phone" | "url" | "email"
                | "encryptedstring" => (255, 0, 0, 0),
                "double" | "currency" | "percent" => (0, 18, 2, 0),
                "int" => (0, 0, 0, 9),
                "long" => (0, 0, 0, 18),
                _ => (0, 0, 0, 0),
            };
            json!({
                "name": f.name,
                "label": label(&f.name),
                "type": f.ty,
                "filterable": f.filterable,
                "nillable": f.nillable,
                "length": length,
                "byteLength": length * 3,
                "precision": precision,
                "scale": scale,
                "digits": digits,
                "calculated": false,
                "custom": f.name.ends_with("__c"),
            })
        })
        .collect();
    json(
        StatusCode::OK,
        json!({
            "name": script.object,
            "label": label(&script.object),
            "custom": script.object.ends_with("__c"),
            "queryable": true,
            "retrieveable": true,
            "replicateable": true,
            "fields": fields,
        }),
    )
}

/// `Widget__c` → `Widget`, `Happened_At__c` → `Happened At`.
fn label(name: &str) -> String {
    name.strip_suffix("__c").unwrap_or(name).replace('_', " ")
}

/// The query string of `…/query` and `…/queryAll`.
#[derive(Deserialize)]
pub(crate) struct QueryParams {
    q: Option<String>,
}

/// `GET …/query?q=` and `…/queryAll?q=`.
pub(crate) async fn query(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    Query(params): Query<QueryParams>,
    headers: HeaderMap,
) -> Response {
    if let Some(hung) = shared.hang(Endpoint::Query).await {
        return hung;
    }
    let Some(soql) = params.q else {
        return error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", "A query string has to be specified");
    };
    let words: Vec<&str> = soql.split_whitespace().collect();
    let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let records = &shared.script.records;
    if is(0, "SELECT") && words.get(1).is_some_and(|w| w.to_ascii_uppercase().starts_with("COUNT()")) {
        return json(StatusCode::OK, json!({"totalSize": records.len(), "done": true, "records": []}));
    }
    if (0..words.len()).any(|i| is(i, "LIMIT") && is(i + 1, "1")) {
        let order = (0..words.len()).find(|&i| is(i, "ORDER") && is(i + 1, "BY"));
        let first = match order {
            None => records.first(),
            Some(i) => {
                let field = words.get(i + 2).map_or("", |w| w.trim_end_matches(','));
                let key = |r: &&Map<String, Value>| sort_key(r, field);
                if is(i + 3, "DESC") { records.iter().max_by_key(key) } else { records.iter().min_by_key(key) }
            }
        };
        let page: Vec<Value> = first.iter().map(|r| present(&shared, &version, r)).collect();
        return json(StatusCode::OK, json!({"totalSize": page.len(), "done": true, "records": page}));
    }
    page(&shared, &version, 0, batch_size(&shared, &headers), true)
}

/// `GET …/query/01gFAKE-<offset>`: the next page of a listing.
pub(crate) async fn more(
    State(shared): State<Arc<Shared>>,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(hung) = shared.hang(Endpoint::Query).await {
        return hung;
    }
    match locator.strip_prefix(LOCATOR).and_then(|n| n.parse().ok()) {
        Some(offset) => page(&shared, &version, offset, batch_size(&shared, &headers), false),
        None => error(StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR", "invalid query locator"),
    }
}

/// A field's value for `ORDER BY`: null first, then by string (non-strings by their JSON).
fn sort_key(record: &Map<String, Value>, field: &str) -> Option<String> {
    match record.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)).map(|(_, v)| v) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// The script's page size, lowered by `Sforce-Query-Options: batchSize=N`.
fn batch_size(shared: &Shared, headers: &HeaderMap) -> usize {
    let asked = headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|o| o.trim().strip_prefix("batchSize=")?.trim().parse::<usize>().ok()));
    asked.map_or(shared.script.page_size, |n| n.min(shared.script.page_size)).max(1)
}

/// The listing page starting at `offset`; `first` marks the query's own response.
fn page(shared: &Shared, version: &str, offset: usize, batch: usize, first: bool) -> Response {
    let records = &shared.script.records;
    let misbehave = &shared.script.misbehave;
    let last = misbehave.truncate_rest_after.map_or(records.len(), |n| n.min(records.len()));
    let start = offset.min(last);
    let end = start.saturating_add(batch).min(last);
    let next = match &misbehave.foreign_next_url {
        Some(base) if first => {
            Some(format!("{}/services/data/{version}/query/{LOCATOR}{end}", base.trim_end_matches('/')))
        }
        _ if end < last => Some(format!("/services/data/{version}/query/{LOCATOR}{end}")),
        _ => None,
    };
    let mut body = Map::new();
    body.insert("totalSize".into(), records.len().into());
    body.insert("done".into(), next.is_none().into());
    if let Some(next) = next {
        body.insert("nextRecordsUrl".into(), next.into());
    }
    let page: Vec<Value> = records[start..end].iter().map(|r| present(shared, version, r)).collect();
    body.insert("records".into(), page.into());
    json(StatusCode::OK, Value::Object(body))
}

/// A record as REST returns it: Salesforce's `attributes` first, unless it has its own.
fn present(shared: &Shared, version: &str, record: &Map<String, Value>) -> Value {
    if record.contains_key("attributes") {
        return Value::Object(record.clone());
    }
    let object = &shared.script.object;
    let id = record.get("Id").and_then(Value::as_str).unwrap_or_default();
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": object, "url": format!("/services/data/{version}/sobjects/{object}/{id}")}),
    );
    out.extend(record.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(out)
}
