//! What `sluice status` and `sluice history` show, read from the control tables.

use serde::Serialize;

use crate::config::Deletes;
use crate::consolidate::{CONTROL_SCHEMA, TableRef};
use crate::destination::{Destination, Value};
use crate::model::Timestamp;
use crate::{Error, Result};

/// One flow's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowState {
    /// Flow (object) name.
    pub flow: String,
    /// The committed window end: everything the source changed before it is in the table.
    pub window_end: Option<Timestamp>,
    /// The flow's last run, its phase and when it finished.
    pub last_run: Option<String>,
    /// Phase the last run reached (`done`, `failed`, ...).
    pub last_phase: Option<String>,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// When the last run of the flow finished.
    pub last_finished: Option<Timestamp>,
    /// Rows the last run extracted.
    pub rows_extracted: Option<i64>,
    /// When reconciliation last ran.
    pub last_reconciliation: Option<Timestamp>,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// `ok`, `partial`, `failed`, `running`, `abandoned`.
    pub status: String,
    /// Start.
    pub started_at: Option<Timestamp>,
    /// End, when it ended.
    pub finished_at: Option<Timestamp>,
    /// Per flow: name, phase, rows extracted / inserted / updated / deleted, error.
    pub flows: Vec<FlowRecord>,
}

/// One flow in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRecord {
    /// Flow name.
    pub flow: String,
    /// Phase reached.
    pub phase: String,
    /// Rows extracted.
    pub extracted: i64,
    /// Rows inserted.
    pub inserted: i64,
    /// Rows updated.
    pub updated: i64,
    /// Rows deleted.
    pub deleted: i64,
    /// The error, if it failed.
    pub error: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// Whether the control tables exist (a destination no run has written yet has none).
async fn has_control<D: Destination>(dest: &D) -> Result<bool> {
    Ok(dest.columns(TableRef::new(CONTROL_SCHEMA, "flows")).await?.is_some())
}

/// Every flow's state, by flow name.
pub async fn status<D: Destination>(dest: &D) -> Result<Vec<FlowState>> {
    if !has_control(dest).await? {
        return Ok(Vec::new());
    }
    let d = dest.dialect();
    let q = |n: &str| d.quote_ident(n);
    let fl = |n: &str| format!("{}.{}", q("f"), q(n));
    let fr = |n: &str| format!("{}.{}", q("r"), q(n));
    let sql = format!(
        "SELECT {}, {}, {}, {}, {}, {}, {}, {}\nFROM {} AS {}\nLEFT JOIN (SELECT *, ROW_NUMBER() OVER (PARTITION BY {} \
         ORDER BY {} DESC) AS {} FROM {}) AS {} ON {} = {} AND {} = 1\nORDER BY {}",
        fl("flow"),
        d.epoch_ms(&fl("window_end")),
        fr("run_id"),
        fr("phase"),
        fr("error"),
        d.epoch_ms(&fr("finished_at")),
        fr("rows_extracted"),
        d.epoch_ms(&fl("last_reconciliation")),
        d.table(&TableRef::new(CONTROL_SCHEMA, "flows")),
        q("f"),
        q("flow"),
        q("run_id"),
        q("rn"),
        d.table(&TableRef::new(CONTROL_SCHEMA, "flow_runs")),
        q("r"),
        fr("flow"),
        fl("flow"),
        fr("rn"),
        fl("flow"),
    );
    let rows = dest.query(sql).await?;
    Ok(rows
        .iter()
        .map(|r| FlowState {
            flow: text(&r[0]).unwrap_or_default(),
            window_end: r[1].as_timestamp(),
            last_run: text(&r[2]),
            last_phase: text(&r[3]),
            last_error: text(&r[4]),
            last_finished: r[5].as_timestamp(),
            rows_extracted: r[6].as_i64(),
            last_reconciliation: r[7].as_timestamp(),
        })
        .collect())
}

/// The newest `limit` runs, newest first, with their flows.
pub async fn history<D: Destination>(dest: &D, limit: usize) -> Result<Vec<RunRecord>> {
    if !has_control(dest).await? {
        return Ok(Vec::new());
    }
    let d = dest.dialect();
    let q = |n: &str| d.quote_ident(n);
    let runs_sql = format!(
        "SELECT {}, {}, {}, {} FROM {} ORDER BY {} DESC LIMIT {limit}",
        q("run_id"),
        q("status"),
        d.epoch_ms(&q("started_at")),
        d.epoch_ms(&q("finished_at")),
        d.table(&TableRef::new(CONTROL_SCHEMA, "runs")),
        q("run_id"),
    );
    let mut runs: Vec<RunRecord> = dest
        .query(runs_sql)
        .await?
        .iter()
        .map(|r| RunRecord {
            run_id: text(&r[0]).unwrap_or_default(),
            status: text(&r[1]).unwrap_or_default(),
            started_at: r[2].as_timestamp(),
            finished_at: r[3].as_timestamp(),
            flows: Vec::new(),
        })
        .collect();
    let Some(oldest) = runs.last().map(|r| r.run_id.clone()) else { return Ok(runs) };
    let flows_sql = format!(
        "SELECT {}, {}, {}, CAST(COALESCE({}, 0) AS BIGINT), CAST(COALESCE({}, 0) AS BIGINT), CAST(COALESCE({}, 0) AS \
         BIGINT), CAST(COALESCE({}, 0) AS BIGINT), {} FROM {} WHERE {} >= {} ORDER BY {}, {}",
        q("run_id"),
        q("flow"),
        q("phase"),
        q("rows_extracted"),
        q("rows_inserted"),
        q("rows_updated"),
        q("rows_deleted"),
        q("error"),
        d.table(&TableRef::new(CONTROL_SCHEMA, "flow_runs")),
        q("run_id"),
        d.quote_literal(&oldest),
        q("run_id"),
        q("flow"),
    );
    for r in dest.query(flows_sql).await? {
        let run_id = text(&r[0]).unwrap_or_default();
        let Some(run) = runs.iter_mut().find(|x| x.run_id == run_id) else { continue };
        run.flows.push(FlowRecord {
            flow: text(&r[1]).unwrap_or_default(),
            phase: text(&r[2]).unwrap_or_default(),
            extracted: r[3].as_i64().unwrap_or(0),
            inserted: r[4].as_i64().unwrap_or(0),
            updated: r[5].as_i64().unwrap_or(0),
            deleted: r[6].as_i64().unwrap_or(0),
            error: text(&r[7]),
        });
    }
    Ok(runs)
}

/// Live rows per flow table, for `status` (`None` where the table does not exist yet).
pub async fn live_rows<D: Destination>(dest: &D, table: TableRef, soft: bool) -> Result<Option<u64>> {
    let Some(cols) = dest.columns(table.clone()).await? else { return Ok(None) };
    // A table written in hard mode has no delete flag, whatever the config says now.
    let soft = soft && cols.iter().any(|c| c.name == crate::consolidate::DELETED);
    let deletes = if soft { Deletes::Soft } else { Deletes::Hard };
    let rows = dest.query(crate::consolidate::live_count(dest.dialect(), &table, deletes, None, None)).await?;
    rows.first()
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .map(|n| Some(n as u64))
        .ok_or_else(|| Error::internal("COUNT(*) returned no row"))
}
