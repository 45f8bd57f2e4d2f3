//! What `sluice status` and `sluice history` show, and `sluice serve`'s schedule state, read
//! from the control tables.

use chrono::Utc;
use serde::Serialize;

use crate::config::{Config, Deletes};
use crate::consolidate::{self, LayoutState, ScheduleRow, TableRef};
use crate::destination::{Destination, Value};
use crate::model::Timestamp;
use crate::serve::schedule::Clock;
use crate::{Error, Result};

/// One flow's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowState {
    /// Flow (object) name.
    pub flow: String,
    /// The table it writes (in the config's schema).
    pub table: String,
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
    /// When the formula fields were last read (a formula refresh, or a read from the
    /// beginning).
    pub last_formula_refresh: Option<Timestamp>,
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

/// What [`Target::load_schedule`] reads: every flow's schedule row, and when each flow
/// last read its object in full (by table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleState {
    /// The persisted schedule rows.
    pub rows: Vec<ScheduleRow>,
    /// Table → the last full read it committed.
    pub last_full_refresh: std::collections::HashMap<String, Timestamp>,
}

/// `sluice serve`'s schedule state of `schema` (the control tables must be ready).
pub async fn schedule_state<D: Destination>(dest: &D, schema: &str) -> Result<ScheduleState> {
    let d = dest.dialect();
    let rows = dest
        .query(consolidate::schedule_query(d, schema))
        .await?
        .iter()
        .map(|r| ScheduleRow {
            table: text(&r[0]).unwrap_or_default(),
            flow: text(&r[1]).unwrap_or_default(),
            clock: Clock {
                next_due: r[2].as_timestamp(),
                paused: r[3].as_i64() == Some(1),
                failures: r[4].as_i64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
                last_error: text(&r[5]),
                last_started: r[6].as_timestamp(),
                last_finished: r[7].as_timestamp(),
            },
        })
        .collect();
    let last_full_refresh = dest
        .query(consolidate::full_refresh_query(d, schema))
        .await?
        .iter()
        .filter_map(|r| Some((text(&r[0])?, r[1].as_timestamp()?)))
        .collect();
    Ok(ScheduleState { rows, last_full_refresh })
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// Whether the control tables exist in a layout these reads understand: `false` before any
/// run wrote them; an error for a layout from an older sluice (a sync upgrades it) or a
/// newer one.
async fn has_control<D: Destination>(dest: &D) -> Result<bool> {
    let state = super::context::layout_state(dest).await?;
    consolidate::check_layout(state, &dest.location())?;
    match state {
        LayoutState::Absent => Ok(false),
        LayoutState::V1 => Err(Error::user(format!(
            "the control tables in {} are from an older sluice: run `sluice sync` once to upgrade them",
            dest.location()
        ))),
        LayoutState::Version(_) => Ok(true),
    }
}

/// The state of every flow writing into `schema`, by flow name.
pub async fn status<D: Destination>(dest: &D, schema: &str) -> Result<Vec<FlowState>> {
    if !has_control(dest).await? {
        return Ok(Vec::new());
    }
    let rows = dest.query(consolidate::status_query(dest.dialect(), schema)).await?;
    Ok(rows
        .iter()
        .map(|r| FlowState {
            flow: text(&r[0]).unwrap_or_default(),
            table: text(&r[1]).unwrap_or_default(),
            window_end: r[2].as_timestamp(),
            last_run: text(&r[3]),
            last_phase: text(&r[4]),
            last_error: text(&r[5]),
            last_finished: r[6].as_timestamp(),
            rows_extracted: r[7].as_i64(),
            last_reconciliation: r[8].as_timestamp(),
            last_formula_refresh: r[9].as_timestamp(),
        })
        .collect())
}

/// The newest `limit` runs into `schema`, newest first, with their flows.
pub async fn history<D: Destination>(dest: &D, schema: &str, limit: usize) -> Result<Vec<RunRecord>> {
    if !has_control(dest).await? {
        return Ok(Vec::new());
    }
    let d = dest.dialect();
    let mut runs: Vec<RunRecord> = dest
        .query(consolidate::runs_query(d, schema, limit))
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
    for r in dest.query(consolidate::flow_runs_query(d, schema, &oldest)).await? {
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

/// One flow's state as `sluice status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusRow {
    /// The control-table state.
    #[serde(flatten)]
    pub state: FlowState,
    /// Live rows in the flow's table.
    pub live_rows: Option<u64>,
    /// How far the committed window end is behind now, in seconds; 0 when it is ahead (the
    /// org's clock runs ahead of this machine's).
    pub lag_seconds: Option<i64>,
    /// For a flow no longer in the config: what it left behind and the statements that drop
    /// it (sluice drops nothing by itself).
    pub removed: Option<Removed>,
}

/// What a flow removed from the config left in the warehouse.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removed {
    /// The tables it wrote that still exist (the target, its history).
    pub tables: Vec<String>,
    /// The SQL that drops them and forgets the flow's window.
    pub drop_sql: Vec<String>,
}

/// `sluice status` of a warehouse: every flow's committed window end, last run, live rows
/// and lag, and what flows no longer in `config` left behind.
pub async fn status_rows<D: Destination>(dest: &D, config: &Config, schema: &str) -> Result<Vec<StatusRow>> {
    let naming = config.destination.naming();
    let mut rows = Vec::new();
    for state in status(dest, schema).await? {
        let flow = config.flows.iter().find(|f| naming.apply(&f.object) == state.table);
        let soft = flow.is_none_or(|f| f.settings.deletes == Deletes::Soft);
        let table = TableRef::new(schema, &state.table);
        let live_rows = live_rows(dest, table.clone(), soft).await?;
        let lag_seconds = state.window_end.map(|e| (Utc::now() - e).num_seconds().max(0));
        let removed = match flow {
            Some(_) => None,
            None => Some(left_behind(dest, &table).await?),
        };
        rows.push(StatusRow { state, live_rows, lag_seconds, removed });
    }
    Ok(rows)
}

/// What the flow writing `table`, no longer configured, left behind, and how to drop it.
async fn left_behind<D: Destination>(dest: &D, table: &TableRef) -> Result<Removed> {
    let d = dest.dialect();
    let history = TableRef::new(&table.schema, format!("{}_history", table.name));
    let mut tables = Vec::new();
    let mut drop_sql = Vec::new();
    for t in [table, &history] {
        if dest.columns(t.clone()).await?.is_some() {
            tables.push(d.table(t));
            drop_sql.push(format!("DROP TABLE {}", d.table(t)));
        }
    }
    drop_sql.push(consolidate::forget_flow(d, table));
    Ok(Removed { tables, drop_sql })
}
