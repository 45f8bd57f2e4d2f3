//! Comparing a warehouse table with the sandbox's ground truth, row by row and value by
//! value. Values are brought to one canonical text per sluice type on both sides (instants
//! as epoch milliseconds, numbers compared as numbers), so a difference is a real one.

use std::collections::{BTreeMap, HashMap};

use sandbox::Running;
use serde_json::Value as Json;
use sluice::consolidate::{DELETED, Dialect, RUN_ID, TableRef};
use sluice::model::{SluiceType, TableSchema};

use crate::target::{Warehouse, bool_text};

/// The sandbox's rows of `object` (recycle bin included, purged rows not), by Id.
pub async fn truth(sb: &Running, object: &str) -> HashMap<String, Json> {
    crate::common::truth(sb, object)
        .await
        .into_iter()
        .map(|r| (r["Id"].as_str().expect("Id").to_owned(), Json::Object(r)))
        .collect()
}

/// A column value in canonical form: `None` for null.
pub type Canon = Option<String>;

/// The canonical form of a truth value for a column of type `ty`.
pub fn canon_truth(ty: SluiceType, v: &Json) -> Canon {
    match v {
        Json::Null => None,
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(match ty {
            SluiceType::Int | SluiceType::Long => n.as_i64().expect("integer").to_string(),
            _ => format_f64(n.as_f64().expect("number")),
        }),
        Json::String(s) => Some(match ty {
            SluiceType::Timestamp => {
                let t = chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").expect("datetime");
                t.timestamp_millis().to_string()
            }
            SluiceType::Time => time_ms(s.trim_end_matches('Z')).to_string(),
            SluiceType::Decimal { .. } | SluiceType::Double => format_f64(s.parse().expect("numeric text")),
            _ => s.clone(),
        }),
        other => panic!("unexpected truth value {other}"),
    }
}

fn format_f64(f: f64) -> String {
    // Ten significant digits after rounding away binary noise: both sides went through f64.
    format!("{:.6e}", f)
}

fn time_ms(s: &str) -> i64 {
    let t = chrono::NaiveTime::parse_from_str(s, "%H:%M:%S%.f").expect("time");
    i64::from(chrono::Timelike::num_seconds_from_midnight(&t)) * 1000
        + i64::from(chrono::Timelike::nanosecond(&t) / 1_000_000)
}

/// The SQL expression reading column `name` of type `ty` as canonical text.
fn canon_sql(d: Dialect, name: &str, ty: SluiceType) -> String {
    let c = d.quote_ident(name);
    let text = |e: String| format!("CAST({e} AS VARCHAR)");
    match ty {
        SluiceType::Timestamp => text(d.epoch_ms(&c)),
        SluiceType::Time => match d {
            Dialect::DuckDb => text(format!("epoch_ms(DATE '1970-01-01' + {c})")),
            _ => text(format!("CAST(ROUND(EXTRACT(EPOCH FROM {c}) * 1000) AS BIGINT)")),
        },
        // A decimal as its exact text: DuckDB 1.5's cast of DECIMAL to DOUBLE can be one ulp
        // off (33.778575 became 33.778575000000004), enough to flip the comparison's rounding.
        SluiceType::Decimal { .. } => text(c),
        SluiceType::Double => text(format!("CAST({c} AS {})", d.sql_type(SluiceType::Double))),
        SluiceType::Boolean => bool_text(&c),
        _ => text(c),
    }
}

/// Every row of `schema.table` in `wh`, by Id. Panics on a duplicate Id.
pub async fn rows(wh: &Warehouse, dest_schema: &str, schema: &TableSchema) -> HashMap<String, Row> {
    let d = wh.dialect();
    let has_deleted = wh
        .query_i64(&format!(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = {} AND table_name = {} AND \
             column_name = {}",
            d.quote_literal(dest_schema),
            d.quote_literal(&schema.table),
            d.quote_literal(DELETED)
        ))
        .await
        > 0;
    let mut select: Vec<String> = schema.columns.iter().map(|c| canon_sql(d, &c.name, c.ty)).collect();
    select.push(if has_deleted {
        bool_text(&format!("COALESCE({}, FALSE)", d.quote_ident(DELETED)))
    } else {
        "'false'".into()
    });
    select.push(d.quote_ident(RUN_ID));
    let table = d.table(&TableRef::new(dest_schema, &schema.table));
    let n = schema.columns.len();
    let id_col = schema.column_by_source("Id").expect("Id").name.clone();
    let mut out = HashMap::new();
    for r in wh.query(&format!("SELECT {} FROM {table}", select.join(", "))).await {
        let values: BTreeMap<String, Canon> =
            schema.columns.iter().enumerate().map(|(i, c)| (c.name.clone(), r[i].clone())).collect();
        let row =
            Row { values, deleted: r[n].as_deref() == Some("true"), run_id: r[n + 1].clone().unwrap_or_default() };
        let id = row.values[&id_col].clone().expect("Id is never null");
        assert!(out.insert(id.clone(), row).is_none(), "duplicate Id {id} in {}", schema.table);
    }
    out
}

/// One destination row: canonical values by column name, plus sluice's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Source columns.
    pub values: BTreeMap<String, Canon>,
    /// `_sluice_deleted` (false in hard mode, which has no such column).
    pub deleted: bool,
    /// `_sluice_run_id`.
    pub run_id: String,
}

/// What the destination must hold, given the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Soft deletes: every truth row, recycle-bin rows flagged; rows gone from the truth
    /// (purged) may stay only flagged.
    Soft,
    /// Hard deletes: exactly the live truth rows.
    Hard,
}

/// Asserts the destination equals the truth, value by value, for every column of
/// `schema`; returns how many rows were compared.
pub fn assert_matches(
    rows: &HashMap<String, Row>,
    truth: &HashMap<String, Json>,
    schema: &TableSchema,
    expect: Expect,
) -> usize {
    let mut problems = Vec::new();
    let mut compared = 0;
    for (id, t) in truth {
        let deleted = t.get("IsDeleted").and_then(Json::as_bool).unwrap_or(false);
        let Some(row) = rows.get(id) else {
            if !(expect == Expect::Hard && deleted) {
                problems.push(format!("{id}: missing from the destination"));
            }
            continue;
        };
        if expect == Expect::Hard && deleted {
            problems.push(format!("{id}: deleted at the source but present (hard mode)"));
            continue;
        }
        if row.deleted != deleted {
            problems.push(format!("{id}: _sluice_deleted = {} but IsDeleted = {deleted}", row.deleted));
        }
        for c in &schema.columns {
            let want = canon_truth(c.ty, t.get(&c.source_name).unwrap_or(&Json::Null));
            let got = row.values[&c.name].clone().map(|v| match c.ty {
                SluiceType::Decimal { .. } | SluiceType::Double => format_f64(v.parse().expect("number")),
                _ => v,
            });
            if got != want {
                problems.push(format!("{id}.{} ({}): destination {got:?}, source {want:?}", c.name, c.source_name));
            }
        }
        compared += 1;
    }
    for (id, row) in rows {
        let kept_tombstone = expect == Expect::Soft && row.deleted;
        if !(truth.contains_key(id) || kept_tombstone) {
            problems.push(format!("{id}: in the destination but not at the source"));
        }
    }
    problems.sort();
    assert!(
        problems.is_empty(),
        "{} differences, first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(15)].join("\n")
    );
    compared
}
