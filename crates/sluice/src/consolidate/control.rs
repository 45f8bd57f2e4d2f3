//! The control tables (`_sluice.flows`, `_sluice.runs`, `_sluice.flow_runs`,
//! `_sluice.schedule` and `_sluice.layout`; DESIGN "Control tables"), their migration from older layouts, and the
//! writes that commit a flow's new window end and its flow-run row in the same transaction
//! as the data.
//!
//! Everything is keyed by the *target* (schema, table), never by the object alone: two
//! configs writing one object into two schemas of one database have a window each, and a
//! run only ever sees (and marks abandoned) the runs of its own schema.
//!
//! Upserts are written as `UPDATE` then `INSERT ... WHERE NOT EXISTS` (flows) and `DELETE`
//! then `INSERT` (flow-run rows): the one form all three dialects share, Redshift having no
//! `ON CONFLICT`. A flow's rows are written by the run holding the flow's lock, so nothing
//! interleaves between the two; `schedule` rows are saved by whichever serve changed them,
//! and two saving one row at once collide on its key, the loser saving again later.
//!
//! Layouts: version 1 (before `_sluice.layout` existed) keyed flows by object; version 2
//! keys them by target; 3 adds each flow's `selection_fingerprint`, 4 its `write_mode`, 5
//! the `schedule` table, 6 each flow's `last_formula_refresh` ([`LAYOUT_VERSION`]).
//!
//! `sluice serve`'s schedule state (next due, paused, failures in a row, last error) is a
//! table of its own, `_sluice.schedule`, keyed by target like `flows`, rather than columns of
//! `flows` (as DESIGN first sketched): a flow that has never committed has no `flows` row
//! yet its failures must persist, and `sluice reset` deletes the `flows` row but must not
//! unpause a flow. [`layout_of`] reads which one a destination holds, [`migrate_v1`]
//! and [`migrate_added`] upgrade an older one in one transaction on first use, and a layout
//! newer than this binary knows is refused ([`check_layout`]).
//!
//! The file is long on purpose: it is the one place that spells the control tables'
//! layouts, status words and migrations, so nothing persisted is written anywhere else.

use std::time::Duration;

pub mod lake;

use super::merge::{changes_name, count_exprs};
use super::spec::{FlowRun, MergeSpec, ident_list};
use crate::config::WriteMode;
use crate::model::{SluiceType, Timestamp};
use crate::serve::schedule::Clock;
use crate::sql::{Dialect, RunLock, TableRef};
use crate::{Error, Result};

/// The control schema.
pub const CONTROL_SCHEMA: &str = "_sluice";

/// Advisory-lock class of sluice's locks (any constant; it keeps them apart from an
/// application's own advisory locks on other keys).
pub const LOCK_CLASS: i32 = 0x51_1CE;

/// Advisory-lock class of the locks by which live runs show they live (see [`run_alive`]).
pub const RUN_LOCK_CLASS: i32 = LOCK_CLASS + 1;

/// The advisory-lock key of `schema` as a whole, as an SQL expression: taken only around
/// the set-up of the control schema ([`setup_lock`]).
pub fn lock_key(schema: &str) -> String {
    format!("hashtext({})", Dialect::Postgres.quote_literal(schema))
}

/// The advisory-lock key of the flow writing `target`, as an SQL expression: a run's
/// session lock on the flow and the consolidation procedure's transaction lock must be the
/// same lock. Keyed by the quoted qualified name, so no two tables share a key but by a
/// hash collision (which only makes two flows take turns).
pub fn flow_lock_key(target: &TableRef) -> String {
    let d = Dialect::Postgres;
    format!("hashtext({})", d.quote_literal(&d.table(target)))
}

/// The statement by which a run shows it lives, where runs of one schema may write side by
/// side (PostgreSQL, whose run lock is one advisory lock per flow): a session advisory lock
/// on the run id, held until the run's session ends, which [`abandon_runs`] looks for.
/// `None` where a run holds the whole schema (DuckDB's file, Redshift's lease).
pub fn run_alive(dialect: Dialect, run_id: &str) -> Option<String> {
    (dialect.caps().run_lock == RunLock::Advisory)
        .then(|| format!("SELECT pg_try_advisory_lock({RUN_LOCK_CLASS}, hashtext({}))", dialect.quote_literal(run_id)))
}

/// The lease table, `_sluice.locks`: one row per schema: Redshift has no advisory locks, so a run's
/// lock is a lease row there (see `destination/redshift.rs`).
pub fn locks_table() -> TableRef {
    TableRef::new(CONTROL_SCHEMA, "locks")
}

/// The longest a Redshift lease outlives its last refresh (`serve.lease_timeout` chooses
/// how long, up to this): a handed-off procedure treats a lease this old as dead.
pub const LEASE: Duration = Duration::from_secs(600);

/// The control-table layout this binary writes (see the module docs).
pub const LAYOUT_VERSION: i64 = 6;

/// A flow-run row's phase, as `_sluice.flow_runs.phase` spells it. Earlier steps of a flow
/// (planning, staging) leave no row: they changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowPhase {
    /// The load committed with its window end.
    Consolidated,
    /// The load waits for its stored procedure (`consolidation = "procedure"`).
    HandedOff,
    /// Source and destination counts were compared.
    Verified,
    /// Staging was dropped; nothing is left to do.
    Done,
    /// The flow failed; the row carries the error.
    Failed,
}

impl FlowPhase {
    /// The persisted word.
    pub fn word(self) -> &'static str {
        match self {
            FlowPhase::Consolidated => "consolidated",
            FlowPhase::HandedOff => "handed_off",
            FlowPhase::Verified => "verified",
            FlowPhase::Done => "done",
            FlowPhase::Failed => "failed",
        }
    }
}

/// A run's status, as `_sluice.runs.status` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Still going, or dead without finishing (until the next run of the schema says so).
    Running,
    /// Every flow committed.
    Ok,
    /// Some flows committed.
    Partial,
    /// No flow committed.
    Failed,
    /// Found still `running` by a later run of the same schema: it died.
    Abandoned,
}

impl RunState {
    /// The persisted word.
    pub fn word(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Ok => "ok",
            RunState::Partial => "partial",
            RunState::Failed => "failed",
            RunState::Abandoned => "abandoned",
        }
    }
}

/// What started a run, as `_sluice.runs.trigger` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// `sluice sync` (or `reset`) by hand.
    #[default]
    Manual,
    /// `sluice demo`.
    Demo,
    /// `sluice verify`.
    Verify,
    /// `sluice serve`, on a flow's schedule.
    Schedule,
    /// `sluice serve`, asked through its API (`POST /api/v1/runs`).
    Api,
}

impl Trigger {
    /// The persisted word.
    pub fn word(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Demo => "demo",
            Trigger::Verify => "verify",
            Trigger::Schedule => "schedule",
            Trigger::Api => "api",
        }
    }
}

/// How `_sluice.flows.write_mode` spells a flow's write mode.
pub fn write_word(write: WriteMode) -> &'static str {
    match write {
        WriteMode::Merge => "merge",
        WriteMode::Append => "append",
    }
}

/// The write mode `_sluice.flows.write_mode` records: NULL in rows from layouts before 4,
/// which only merged; `None` for a word this binary does not know.
pub fn write_of(word: Option<&str>) -> Option<WriteMode> {
    match word {
        None | Some("merge") => Some(WriteMode::Merge),
        Some("append") => Some(WriteMode::Append),
        Some(_) => None,
    }
}

fn table(name: &str) -> TableRef {
    TableRef::new(CONTROL_SCHEMA, name)
}

/// A control table of the current layout: name, columns, key.
struct Layout {
    name: &'static str,
    columns: &'static [(&'static str, SluiceType)],
    key: &'static [&'static str],
}

use SluiceType::{Boolean, Int, Long, Text, Timestamp as Ts};

const LAYOUT: Layout = Layout { name: "layout", columns: &[("version", Long), ("migrated_at", Ts)], key: &["version"] };

const FLOWS: Layout = Layout {
    name: "flows",
    columns: &[
        ("target_schema", Text),
        ("target_table", Text),
        ("flow", Text),
        ("object", Text),
        ("window_end", Ts),
        ("last_full_refresh", Ts),
        ("last_reconciliation", Ts),
        ("last_formula_refresh", Ts),
        ("schema_fingerprint", Text),
        ("selection_fingerprint", Text),
        ("write_mode", Text),
        ("rows_present", Boolean),
        ("updated_at", Ts),
    ],
    key: &["target_schema", "target_table"],
};

const RUNS: Layout = Layout {
    name: "runs",
    columns: &[
        ("run_id", Text),
        ("target_schema", Text),
        ("trigger", Text),
        ("started_at", Ts),
        ("finished_at", Ts),
        ("status", Text),
        ("config_fingerprint", Text),
    ],
    key: &["run_id"],
};

const FLOW_RUNS: Layout = Layout {
    name: "flow_runs",
    columns: &[
        ("run_id", Text),
        ("target_schema", Text),
        ("target_table", Text),
        ("flow", Text),
        ("phase", Text),
        ("attempts", Int),
        ("window_start", Ts),
        ("window_end", Ts),
        ("rows_extracted", Long),
        ("rows_inserted", Long),
        ("rows_updated", Long),
        ("rows_deleted", Long),
        ("api_calls", Long),
        ("bytes", Long),
        ("api_remaining", Long),
        ("error", Text),
        ("finished_at", Ts),
    ],
    key: &["run_id", "target_schema", "target_table"],
};

const SCHEDULE: Layout = Layout {
    name: "schedule",
    columns: &[
        ("target_schema", Text),
        ("target_table", Text),
        ("flow", Text),
        ("next_due", Ts),
        ("paused", Boolean),
        ("failures", Int),
        ("last_error", Text),
        ("last_started", Ts),
        ("last_finished", Ts),
        ("updated_at", Ts),
    ],
    key: &["target_schema", "target_table"],
};

fn create_table(d: Dialect, layout: &Layout, if_not_exists: bool) -> String {
    let mut defs: Vec<String> =
        layout.columns.iter().map(|(n, ty)| format!("{} {}", d.quote_ident(n), d.sql_type(*ty))).collect();
    defs.push(format!("PRIMARY KEY ({})", ident_list(d, layout.key)));
    let exists = if if_not_exists { "IF NOT EXISTS " } else { "" };
    format!("CREATE TABLE {exists}{} (\n  {}\n)", d.table(&table(layout.name)), defs.join(",\n  "))
}

/// The layout row, written once, when the tables are created or migrated.
fn layout_row(d: Dialect, at: Timestamp) -> String {
    let layout = d.table(&table(LAYOUT.name));
    format!(
        "INSERT INTO {layout} ({}) SELECT {LAYOUT_VERSION}, {} WHERE NOT EXISTS (SELECT 1 FROM {layout})",
        ident_list(d, &["version", "migrated_at"]),
        d.timestamp_literal(at)
    )
}

/// `CREATE SCHEMA` and `CREATE TABLE IF NOT EXISTS` for the control tables of the current
/// layout, and its layout row: what a destination without control tables gets (and a no-op
/// where they exist). Run only after [`check_layout`] said the layout is current or absent.
pub fn control_ddl(dialect: Dialect, at: Timestamp) -> Vec<String> {
    let mut out = vec![format!("CREATE SCHEMA IF NOT EXISTS {}", dialect.quote_ident(CONTROL_SCHEMA))];
    out.extend([&LAYOUT, &FLOWS, &RUNS, &FLOW_RUNS, &SCHEDULE].map(|l| create_table(dialect, l, true)));
    out.push(layout_row(dialect, at));
    out
}

/// The statements taking and giving back the lock that serialises control-table set-up
/// (layout check, migration, creation) among runs of different schemas sharing a database:
/// a PostgreSQL session advisory lock on the control schema's name. `None` where the
/// destination's run lock covers the whole database already (DuckDB's file lock) or there
/// is no such lock (Redshift: a run that loses the race to create them tries again, and
/// the set-up is one transaction, so no run sees half of it).
pub fn setup_lock(dialect: Dialect) -> Option<[String; 2]> {
    match dialect.caps().run_lock {
        RunLock::Advisory => {
            let class = LOCK_CLASS;
            let key = lock_key(CONTROL_SCHEMA);
            Some([
                format!("SELECT pg_advisory_lock({class}, {key})"),
                format!("SELECT pg_advisory_unlock({class}, {key})"),
            ])
        }
        RunLock::File | RunLock::Lease => None,
    }
}

/// Which control-table layout a destination holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutState {
    /// No control tables yet.
    Absent,
    /// Version 1: flows keyed by object (no `_sluice.layout`).
    V1,
    /// Written by this or another binary: its version.
    Version(i64),
}

/// The tables [`layout_of`] looks at: `_sluice.layout` and `_sluice.flows`.
pub fn layout_tables() -> [TableRef; 2] {
    [table(LAYOUT.name), table(FLOWS.name)]
}

/// The query reading the layout version, once [`layout_tables`] showed `_sluice.layout`.
pub fn layout_query(dialect: Dialect) -> String {
    format!("SELECT MAX({}) FROM {}", dialect.quote_ident("version"), dialect.table(&table(LAYOUT.name)))
}

/// The layout, from whether `_sluice.layout` and `_sluice.flows` exist and the version the
/// former holds.
pub fn layout_of(has_layout: bool, has_flows: bool, version: Option<i64>) -> LayoutState {
    match (has_layout, has_flows, version) {
        (true, _, Some(v)) => LayoutState::Version(v),
        (false, true, _) => LayoutState::V1,
        _ => LayoutState::Absent,
    }
}

/// Refuses a layout this binary cannot read or write (one a newer sluice wrote).
pub fn check_layout(state: LayoutState, location: &str) -> Result<()> {
    match state {
        LayoutState::Version(v) if v > LAYOUT_VERSION => Err(Error::user(format!(
            "the control tables in {location} ({CONTROL_SCHEMA}.*) have layout {v}, written by a newer sluice; this \
             one knows up to layout {LAYOUT_VERSION}: upgrade sluice"
        ))),
        _ => Ok(()),
    }
}

/// `SELECT DISTINCT flow` over the version-1 tables: the flows [`migrate_v1`] needs table
/// names for.
pub fn v1_flows_query(dialect: Dialect) -> String {
    let flow = dialect.quote_ident("flow");
    format!(
        "SELECT {flow} FROM {} UNION SELECT {flow} FROM {}",
        dialect.table(&table(FLOWS.name)),
        dialect.table(&table(FLOW_RUNS.name))
    )
}

/// The `_sluice.flows` columns each layout after 2 added, with the layout that added them.
/// Existing rows get NULL: for `selection_fingerprint` "unknown" (a flow's next run records
/// it and reloads nothing), for `write_mode` "merge", all those layouts could write, for
/// `last_formula_refresh` "never" (the last full refresh stands for one).
const FLOWS_ADDED: &[(i64, &str, SluiceType)] =
    &[(3, "selection_fingerprint", Text), (4, "write_mode", Text), (6, "last_formula_refresh", Ts)];

/// One transaction upgrading layout `from` (2 or later) to the current one: the columns
/// added since ([`FLOWS_ADDED`]), and the layout row saying the new version. Tables added
/// since (`schedule`, in 5) are created by [`control_ddl`], which follows.
pub fn migrate_added(dialect: Dialect, from: i64, at: Timestamp) -> Vec<String> {
    let d = dialect;
    let mut out: Vec<String> = FLOWS_ADDED
        .iter()
        .filter(|(added_in, _, _)| *added_in > from)
        .map(|(_, column, ty)| {
            format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                d.table(&table(FLOWS.name)),
                d.quote_ident(column),
                d.sql_type(*ty)
            )
        })
        .collect();
    out.push(update(
        d,
        LAYOUT.name,
        &[("version", LAYOUT_VERSION.to_string()), ("migrated_at", d.timestamp_literal(at))],
        &format!("{} = {from}", d.quote_ident("version")),
    ));
    out
}

/// One transaction upgrading version-1 control tables to the current layout. Version 1 had
/// no notion of target: its rows are given to `schema`, the schema of the run that
/// migrates, each flow's table being `tables` (flow name → table name, from the config's
/// naming). A second schema sharing those rows is exactly the defect the new key fixes: its
/// flows start afresh with a full load.
pub fn migrate_v1(dialect: Dialect, schema: &str, tables: &[(String, String)], at: Timestamp) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let lit = |s: &str| d.quote_literal(s);
    let table_of = if tables.is_empty() {
        q("flow")
    } else {
        let arms: Vec<String> = tables.iter().map(|(f, t)| format!("WHEN {} THEN {}", lit(f), lit(t))).collect();
        format!("CASE {} {} ELSE {} END", q("flow"), arms.join(" "), q("flow"))
    };
    let null = |ty: SluiceType| d.null_of(ty);
    // Per table of the new layout: the expression filling each column from the old row.
    let fill = |layout: &Layout| -> Vec<String> {
        layout
            .columns
            .iter()
            .map(|(name, ty)| match *name {
                "target_schema" => lit(schema),
                "target_table" => table_of.clone(),
                "rows_present" | "api_remaining" | "selection_fingerprint" | "write_mode" | "last_formula_refresh" => {
                    null(*ty)
                }
                other => q(other),
            })
            .collect()
    };
    let mut out = Vec::new();
    for layout in [&FLOWS, &RUNS, &FLOW_RUNS] {
        let old = q(&format!("_sluice_v1_{}", layout.name));
        let current = d.table(&table(layout.name));
        let names: Vec<&str> = layout.columns.iter().map(|(n, _)| *n).collect();
        // Copy aside, drop, create anew, copy back: DuckDB can neither rename a keyed table
        // nor change its key, and this form is the same in all three dialects.
        out.push(format!("CREATE TEMP TABLE {old} AS SELECT * FROM {current}"));
        out.push(format!("DROP TABLE {current}"));
        out.push(create_table(d, layout, false));
        out.push(format!(
            "INSERT INTO {current} ({})\nSELECT {}\nFROM {old}",
            ident_list(d, &names),
            fill(layout).join(", ")
        ));
        out.push(format!("DROP TABLE {old}"));
    }
    out.push(create_table(d, &LAYOUT, true));
    out.push(layout_row(d, at));
    out
}

/// `"target_schema" = '…' AND "target_table" = '…'` (qualified by `alias` when given).
fn target_key(d: Dialect, target: &TableRef, alias: Option<&str>) -> String {
    let col = |n: &str| match alias {
        Some(a) => format!("{}.{}", d.quote_ident(a), d.quote_ident(n)),
        None => d.quote_ident(n),
    };
    format!(
        "{} = {} AND {} = {}",
        col("target_schema"),
        d.quote_literal(&target.schema),
        col("target_table"),
        d.quote_literal(&target.name)
    )
}

/// The key of a flow-run row: the run and the target.
fn run_key(d: Dialect, run_id: &str, target: &TableRef) -> String {
    format!("{} = {} AND {}", d.quote_ident("run_id"), d.quote_literal(run_id), target_key(d, target, None))
}

/// A derived table of one row and one column, `"present"`: whether `table` holds a row,
/// reading at most one row (never a count of the table). What
/// `_sluice.flows.rows_present` records at each commit; joined with `FROM` rather than
/// written as a subquery in `SET`, which Redshift refuses.
fn has_rows(d: Dialect, table: &TableRef) -> String {
    format!(
        "(SELECT COUNT(*) > 0 AS {} FROM (SELECT 1 AS {} FROM {} LIMIT 1) AS {}) AS {}",
        d.quote_ident("present"),
        d.quote_ident("one"),
        d.table(table),
        d.quote_ident("probe"),
        d.quote_ident("x")
    )
}

/// `"x"."present"`: the value of [`has_rows`].
fn present(d: Dialect) -> String {
    format!("{}.{}", d.quote_ident("x"), d.quote_ident("present"))
}

/// The query answering whether `table` holds any row: one value, 1 or 0 (see [`has_rows`]).
pub fn has_rows_query(dialect: Dialect, table: &TableRef) -> String {
    format!("SELECT CASE WHEN {} THEN 1 ELSE 0 END FROM {}", present(dialect), has_rows(dialect, table))
}

/// The statements that commit the flow: its new window end in `_sluice.flows`, and the
/// flow-run row with the merge counts computed from the changes table (so they must run
/// before it is dropped). `rows_at` is where the target's rows are at this point of the
/// transaction (staging, for a load promoted to the target later in it).
pub fn control_writes(dialect: Dialect, spec: &MergeSpec, run: &FlowRun, rows_at: &TableRef) -> Vec<String> {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let lit = |s: &str| d.quote_literal(s);
    let flows = d.table(&table(FLOWS.name));
    let flow_runs = d.table(&table(FLOW_RUNS.name));
    let now = d.timestamp_literal(spec.synced_at);
    let window_end = d.timestamp_literal(run.window.end);
    let window_start = d.timestamp_or_null(run.window.start);
    let flow = lit(&run.flow);
    let rows = has_rows(d, rows_at);
    let present = present(d);
    let key = target_key(d, &spec.target, None);

    let mut set = vec![
        format!("{} = {flow}", q("flow")),
        format!("{} = {}", q("object"), lit(&run.object)),
        format!("{} = {window_end}", q("window_end")),
        format!("{} = {}", q("schema_fingerprint"), lit(&run.schema_fingerprint)),
        format!("{} = {}", q("selection_fingerprint"), lit(&run.selection_fingerprint)),
        format!("{} = {}", q("write_mode"), lit(write_word(spec.write))),
        format!("{} = {present}", q("rows_present")),
        format!("{} = {now}", q("updated_at")),
    ];
    if run.full_refresh {
        set.push(format!("{} = {now}", q("last_full_refresh")));
    }
    // A read from the beginning (a first load, a reload, a full read) read every formula
    // value just now: it stands for a formula refresh.
    let formulas_read = run.full_refresh || run.window.start.is_none();
    if formulas_read {
        set.push(format!("{} = {now}", q("last_formula_refresh")));
    }
    let update_flow = format!("UPDATE {flows} SET {}\nFROM {rows}\nWHERE {key}", set.join(", "));
    let insert_flow = format!(
        "INSERT INTO {flows} ({})\nSELECT {}, {}, {flow}, {}, {window_end}, {}, {}, {}, {}, {}, {present}, {now}\nFROM \
         {rows}\nWHERE NOT EXISTS (SELECT 1 FROM {flows} WHERE {key})",
        ident_list(
            d,
            &[
                "target_schema",
                "target_table",
                "flow",
                "object",
                "window_end",
                "last_full_refresh",
                "last_formula_refresh",
                "schema_fingerprint",
                "selection_fingerprint",
                "write_mode",
                "rows_present",
                "updated_at"
            ]
        ),
        lit(&spec.target.schema),
        lit(&spec.target.name),
        lit(&run.object),
        if run.full_refresh { now.clone() } else { d.null_of(SluiceType::Timestamp) },
        if formulas_read { now.clone() } else { d.null_of(SluiceType::Timestamp) },
        lit(&run.schema_fingerprint),
        lit(&run.selection_fingerprint),
        lit(write_word(spec.write)),
    );

    let delete_run = format!("DELETE FROM {flow_runs} WHERE {}", run_key(d, &spec.run_id, &spec.target));
    let [ins, upd, del] = count_exprs(d);
    // Rows a full refresh removed (or flagged) because the source no longer has them are
    // deletes too; they were counted before the transaction, under the same lock.
    let del = if run.removed > 0 { format!("{del} + {}", run.removed) } else { del };
    let cols = [
        "run_id",
        "target_schema",
        "target_table",
        "flow",
        "phase",
        "attempts",
        "window_start",
        "window_end",
        "rows_extracted",
        "rows_inserted",
        "rows_updated",
        "rows_deleted",
        "api_calls",
        "bytes",
        "api_remaining",
        "error",
        "finished_at",
    ];
    let values = [
        lit(&spec.run_id),
        lit(&spec.target.schema),
        lit(&spec.target.name),
        flow.clone(),
        lit(FlowPhase::Consolidated.word()),
        run.attempts.to_string(),
        window_start,
        window_end.clone(),
        run.rows_extracted.to_string(),
        ins,
        upd,
        del,
        run.api_calls.to_string(),
        run.bytes.to_string(),
        run.api_remaining.map_or_else(|| d.null_of(SluiceType::Long), |n| n.to_string()),
        d.null_of(SluiceType::Text),
        now.clone(),
    ];
    let insert_run = format!(
        "INSERT INTO {flow_runs} ({})\nSELECT {}\nFROM {} AS {}",
        ident_list(d, &cols),
        values.join(", "),
        q(&changes_name(spec)),
        q("s"),
    );
    vec![update_flow, insert_flow, delete_run, insert_run]
}

/// After a statement that may have removed every row of the target (reconciliation), the
/// flow's `rows_present` follows.
pub fn rows_present_update(dialect: Dialect, target: &TableRef) -> String {
    let d = dialect;
    format!(
        "UPDATE {} SET {} = {}\nFROM {}\nWHERE {}",
        d.table(&table(FLOWS.name)),
        d.quote_ident("rows_present"),
        present(d),
        has_rows(d, target),
        target_key(d, target, None)
    )
}

/// A run's row in `_sluice.runs` as it starts: status `running`. A run that dies keeps this
/// status; a later run of the same schema marks it `abandoned` ([`abandon_runs`]).
pub fn run_started(
    dialect: Dialect,
    run_id: &str,
    schema: &str,
    trigger: Trigger,
    started_at: Timestamp,
    config_fp: &str,
) -> Vec<String> {
    let d = dialect;
    let runs = d.table(&table(RUNS.name));
    vec![
        format!("DELETE FROM {runs} WHERE {} = {}", d.quote_ident("run_id"), d.quote_literal(run_id)),
        format!(
            "INSERT INTO {runs} ({}) VALUES ({}, {}, {}, {}, {}, {}, {})",
            ident_list(
                d,
                &["run_id", "target_schema", "trigger", "started_at", "finished_at", "status", "config_fingerprint"]
            ),
            d.quote_literal(run_id),
            d.quote_literal(schema),
            d.quote_literal(trigger.word()),
            d.timestamp_literal(started_at),
            d.null_of(SluiceType::Timestamp),
            d.quote_literal(RunState::Running.word()),
            d.quote_literal(config_fp),
        ),
    ]
}

/// Runs of `schema` still `running` that died without finishing: where a run holds the
/// whole schema (DuckDB's file, Redshift's lease), every one a new run finds; where runs
/// lock flow by flow (PostgreSQL), those whose [`run_alive`] lock is gone with their
/// session. Runs of other schemas are left alone.
pub fn abandon_runs(dialect: Dialect, schema: &str) -> String {
    let d = dialect;
    let mut cond = format!(
        "{} = {} AND {} = {}",
        d.quote_ident("status"),
        d.quote_literal(RunState::Running.word()),
        d.quote_ident("target_schema"),
        d.quote_literal(schema)
    );
    if d.caps().run_lock == RunLock::Advisory {
        cond.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = {RUN_LOCK_CLASS}::oid \
             AND objid = hashtext({})::oid AND objsubid = 2)",
            d.quote_ident("run_id")
        ));
    }
    update(d, RUNS.name, &[("status", d.quote_literal(RunState::Abandoned.word()))], &cond)
}

/// The run's final status (`ok`, `partial`, `failed`).
pub fn run_finished(dialect: Dialect, run_id: &str, status: RunState, finished_at: Timestamp) -> String {
    let d = dialect;
    let set = [("status", d.quote_literal(status.word())), ("finished_at", d.timestamp_literal(finished_at))];
    update(d, RUNS.name, &set, &format!("{} = {}", d.quote_ident("run_id"), d.quote_literal(run_id)))
}

/// Moves a flow-run row to a later phase (`verified`, `done`).
pub fn flow_phase(dialect: Dialect, run_id: &str, target: &TableRef, phase: FlowPhase) -> String {
    let d = dialect;
    update(d, FLOW_RUNS.name, &[("phase", d.quote_literal(phase.word()))], &run_key(d, run_id, target))
}

/// Records a flow's failure in its flow-run row: phase `failed` and the error. A row that a
/// committed consolidation wrote keeps its counts (the failure came later, in reconciliation
/// or verification); otherwise a row is inserted. The window end is not touched.
pub fn flow_failed(
    dialect: Dialect,
    run_id: &str,
    target: &TableRef,
    flow: &str,
    error: &str,
    at: Timestamp,
) -> Vec<String> {
    let d = dialect;
    let flow_runs = d.table(&table(FLOW_RUNS.name));
    let key = run_key(d, run_id, target);
    vec![
        update(
            d,
            FLOW_RUNS.name,
            &[
                ("phase", d.quote_literal(FlowPhase::Failed.word())),
                ("error", d.quote_literal(error)),
                ("finished_at", d.timestamp_literal(at)),
            ],
            &key,
        ),
        format!(
            "INSERT INTO {flow_runs} ({})\nSELECT {}, {}, {}, {}, {}, {}, {}\nWHERE NOT EXISTS (SELECT 1 FROM {flow_runs} \
             WHERE {key})",
            ident_list(d, &["run_id", "target_schema", "target_table", "flow", "phase", "error", "finished_at"]),
            d.quote_literal(run_id),
            d.quote_literal(&target.schema),
            d.quote_literal(&target.name),
            d.quote_literal(flow),
            d.quote_literal(FlowPhase::Failed.word()),
            d.quote_literal(error),
            d.timestamp_literal(at),
        ),
    ]
}

/// The flow-run row of a load handed to its stored procedure (see `procedure`): phase
/// `handed_off`, the window and what was read; the procedure's consolidation rewrites it
/// with the merge counts.
pub fn flow_handed_off(dialect: Dialect, spec: &MergeSpec, run: &FlowRun) -> Vec<String> {
    let d = dialect;
    let flow_runs = d.table(&table(FLOW_RUNS.name));
    let cols = [
        "run_id",
        "target_schema",
        "target_table",
        "flow",
        "phase",
        "attempts",
        "window_start",
        "window_end",
        "rows_extracted",
        "api_calls",
        "bytes",
        "finished_at",
    ];
    let values = [
        d.quote_literal(&spec.run_id),
        d.quote_literal(&spec.target.schema),
        d.quote_literal(&spec.target.name),
        d.quote_literal(&run.flow),
        d.quote_literal(FlowPhase::HandedOff.word()),
        run.attempts.to_string(),
        d.timestamp_or_null(run.window.start),
        d.timestamp_literal(run.window.end),
        run.rows_extracted.to_string(),
        run.api_calls.to_string(),
        run.bytes.to_string(),
        d.timestamp_literal(spec.synced_at),
    ];
    vec![
        format!("DELETE FROM {flow_runs} WHERE {}", run_key(d, &spec.run_id, &spec.target)),
        format!("INSERT INTO {flow_runs} ({}) VALUES ({})", ident_list(d, &cols), values.join(", ")),
    ]
}

/// `SELECT 1` when the flow-run row of `run_id` and `target` is still waiting for its
/// procedure ([`flow_handed_off`]).
pub(super) fn handed_off_query(d: Dialect, run_id: &str, target: &TableRef) -> String {
    format!(
        "SELECT 1 FROM {} WHERE {} AND {} = {}",
        d.table(&table(FLOW_RUNS.name)),
        run_key(d, run_id, target),
        d.quote_ident("phase"),
        d.quote_literal(FlowPhase::HandedOff.word())
    )
}

/// `UPDATE <control table> SET a = x, ... WHERE cond`.
fn update(d: Dialect, name: &str, set: &[(&str, String)], cond: &str) -> String {
    let set: Vec<String> = set.iter().map(|(column, value)| format!("{} = {value}", d.quote_ident(column))).collect();
    format!("UPDATE {} SET {} WHERE {cond}", d.table(&table(name)), set.join(", "))
}

/// Forgets the flow writing `target` (`sluice reset`): its `_sluice.flows` row goes, so its
/// next read is a full one. Its table and its run history stay.
pub fn forget_flow(dialect: Dialect, target: &TableRef) -> String {
    format!("DELETE FROM {} WHERE {}", dialect.table(&table(FLOWS.name)), target_key(dialect, target, None))
}

/// One row or none: the flow's window end, last reconciliation and last full refresh, as
/// epoch milliseconds, whether its table held rows at the last commit (1, 0 or NULL), and
/// the fingerprint of its selection at the last commit (NULL: not recorded), its write
/// mode ([`write_of`]) and its last formula refresh (epoch milliseconds).
pub fn read_flow(dialect: Dialect, target: &TableRef) -> String {
    let d = dialect;
    let ms = |c: &str| d.epoch_ms(&d.quote_ident(c));
    let present = d.quote_ident("rows_present");
    format!(
        "SELECT {}, {}, {}, CASE WHEN {present} THEN 1 WHEN NOT {present} THEN 0 END, {}, {}, {} FROM {} WHERE {}",
        ms("window_end"),
        ms("last_reconciliation"),
        ms("last_full_refresh"),
        d.quote_ident("selection_fingerprint"),
        d.quote_ident("write_mode"),
        ms("last_formula_refresh"),
        d.table(&table(FLOWS.name)),
        target_key(d, target, None),
    )
}

/// One row: the inserted, updated and deleted counts a consolidation recorded.
pub fn read_merge_counts(dialect: Dialect, run_id: &str, target: &TableRef) -> String {
    let d = dialect;
    format!(
        "SELECT {} FROM {} WHERE {}",
        ident_list(d, &["rows_inserted", "rows_updated", "rows_deleted"]),
        d.table(&table(FLOW_RUNS.name)),
        run_key(d, run_id, target)
    )
}

/// After a sliced window, the flow-run row (which each slice's consolidation rewrote) gets
/// the totals over all slices and the first slice's start.
pub fn flow_totals(
    dialect: Dialect,
    run_id: &str,
    target: &TableRef,
    extracted: u64,
    [inserted, updated, deleted]: [u64; 3],
    window_start: Option<Timestamp>,
) -> String {
    let d = dialect;
    let set = [
        ("rows_extracted", extracted.to_string()),
        ("rows_inserted", inserted.to_string()),
        ("rows_updated", updated.to_string()),
        ("rows_deleted", deleted.to_string()),
        ("window_start", d.timestamp_or_null(window_start)),
    ];
    update(d, FLOW_RUNS.name, &set, &run_key(d, run_id, target))
}

/// The statement stamping the flow's `last_reconciliation` (inside reconciliation's
/// transaction).
pub fn reconciled(dialect: Dialect, target: &TableRef, at: Timestamp) -> String {
    let d = dialect;
    update(d, FLOWS.name, &[("last_reconciliation", d.timestamp_literal(at))], &target_key(d, target, None))
}

/// The statement stamping the flow's `last_formula_refresh` (inside the formula refresh's
/// transaction).
pub fn formulas_refreshed(dialect: Dialect, target: &TableRef, at: Timestamp) -> String {
    let d = dialect;
    update(d, FLOWS.name, &[("last_formula_refresh", d.timestamp_literal(at))], &target_key(d, target, None))
}

/// What `sluice status` reads: per flow of `schema`, its state and its latest flow-run row.
/// Columns: flow, table, window end (ms), run id, phase, error, finished (ms), rows
/// extracted, last reconciliation (ms), last formula refresh (ms).
pub fn status_query(dialect: Dialect, schema: &str) -> String {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let fl = |n: &str| format!("{}.{}", q("f"), q(n));
    let fr = |n: &str| format!("{}.{}", q("r"), q(n));
    format!(
        "SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}\nFROM {} AS {}\nLEFT JOIN (SELECT *, ROW_NUMBER() OVER (PARTITION BY \
         {}, {} ORDER BY {} DESC) AS {} FROM {}) AS {} ON {} = {} AND {} = {} AND {} = 1\nWHERE {} = {}\nORDER BY {}",
        fl("flow"),
        fl("target_table"),
        d.epoch_ms(&fl("window_end")),
        fr("run_id"),
        fr("phase"),
        fr("error"),
        d.epoch_ms(&fr("finished_at")),
        fr("rows_extracted"),
        d.epoch_ms(&fl("last_reconciliation")),
        d.epoch_ms(&fl("last_formula_refresh")),
        d.table(&table(FLOWS.name)),
        q("f"),
        q("target_schema"),
        q("target_table"),
        q("run_id"),
        q("rn"),
        d.table(&table(FLOW_RUNS.name)),
        q("r"),
        fr("target_schema"),
        fl("target_schema"),
        fr("target_table"),
        fl("target_table"),
        fr("rn"),
        fl("target_schema"),
        d.quote_literal(schema),
        fl("flow"),
    )
}

/// What `sluice history` reads first: the newest `limit` runs of `schema`. Columns: run id,
/// status, started (ms), finished (ms).
pub fn runs_query(dialect: Dialect, schema: &str, limit: usize) -> String {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    format!(
        "SELECT {}, {}, {}, {} FROM {} WHERE {} = {} ORDER BY {} DESC LIMIT {limit}",
        q("run_id"),
        q("status"),
        d.epoch_ms(&q("started_at")),
        d.epoch_ms(&q("finished_at")),
        d.table(&table(RUNS.name)),
        q("target_schema"),
        d.quote_literal(schema),
        q("run_id"),
    )
}

/// What `sluice history` reads second: the flow-run rows of `schema` from run `oldest` on.
/// Columns: run id, flow, phase, extracted, inserted, updated, deleted, error.
pub fn flow_runs_query(dialect: Dialect, schema: &str, oldest: &str) -> String {
    let d = dialect;
    let q = |n: &str| d.quote_ident(n);
    let n = |c: &str| format!("CAST(COALESCE({}, 0) AS BIGINT)", q(c));
    format!(
        "SELECT {}, {}, {}, {}, {}, {}, {}, {} FROM {} WHERE {} = {} AND {} >= {} ORDER BY {}, {}",
        q("run_id"),
        q("flow"),
        q("phase"),
        n("rows_extracted"),
        n("rows_inserted"),
        n("rows_updated"),
        n("rows_deleted"),
        q("error"),
        d.table(&table(FLOW_RUNS.name)),
        q("target_schema"),
        d.quote_literal(schema),
        q("run_id"),
        d.quote_literal(oldest),
        q("run_id"),
        q("flow"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_told_apart_and_a_newer_one_is_refused() {
        assert_eq!(layout_of(false, false, None), LayoutState::Absent);
        assert_eq!(layout_of(false, true, None), LayoutState::V1);
        assert_eq!(layout_of(true, true, Some(2)), LayoutState::Version(2));
        assert!(check_layout(LayoutState::V1, "x").is_ok());
        assert!(check_layout(LayoutState::Version(LAYOUT_VERSION), "x").is_ok());
        let err = check_layout(LayoutState::Version(LAYOUT_VERSION + 1), "w.duckdb").unwrap_err();
        assert_eq!(err.kind, crate::Kind::User);
        assert!(err.message.contains("newer sluice") && err.message.contains("w.duckdb"), "{}", err.message);
    }

    #[test]
    fn every_key_names_the_target() {
        let d = Dialect::Postgres;
        let t = TableRef::new("sales", "account");
        let key = "\"target_schema\" = 'sales' AND \"target_table\" = 'account'";
        assert!(read_flow(d, &t).ends_with(key));
        assert!(flow_phase(d, "r1", &t, FlowPhase::Done).ends_with(&format!("\"run_id\" = 'r1' AND {key}")));
        assert!(read_merge_counts(d, "r1", &t).ends_with(key));
        assert!(abandon_runs(Dialect::DuckDb, "sales").ends_with("\"target_schema\" = 'sales'"));
        assert!(
            abandon_runs(d, "sales").contains("\"target_schema\" = 'sales' AND NOT EXISTS (SELECT 1 FROM pg_locks")
        );
        assert!(status_query(d, "sales").contains("WHERE \"f\".\"target_schema\" = 'sales'"));
        assert!(runs_query(d, "sales", 5).contains("WHERE \"target_schema\" = 'sales'"));
    }
}

/// A flow's schedule state as `_sluice.schedule` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    /// The flow's table (in the schema asked for).
    pub table: String,
    /// The flow (object) name.
    pub flow: String,
    /// Its state.
    pub clock: Clock,
}

/// Every schedule row of `schema`. Columns: table, flow, next due (ms), paused (1 or 0),
/// failures, last error, last started (ms), last finished (ms).
pub fn schedule_query(dialect: Dialect, schema: &str) -> String {
    let d = dialect;
    let ms = |c: &str| d.epoch_ms(&d.quote_ident(c));
    let paused = d.quote_ident("paused");
    format!(
        "SELECT {}, {}, {}, CASE WHEN {paused} THEN 1 ELSE 0 END, {}, {}, {}, {} FROM {} WHERE {} = {} ORDER BY 1",
        d.quote_ident("target_table"),
        d.quote_ident("flow"),
        ms("next_due"),
        d.quote_ident("failures"),
        d.quote_ident("last_error"),
        ms("last_started"),
        ms("last_finished"),
        d.table(&table(SCHEDULE.name)),
        d.quote_ident("target_schema"),
        d.quote_literal(schema),
    )
}

/// Per flow of `schema`, its table and its last full read (ms): when a periodic full
/// refresh is due.
pub fn full_refresh_query(dialect: Dialect, schema: &str) -> String {
    let d = dialect;
    format!(
        "SELECT {}, {} FROM {} WHERE {} = {}",
        d.quote_ident("target_table"),
        d.epoch_ms(&d.quote_ident("last_full_refresh")),
        d.table(&table(FLOWS.name)),
        d.quote_ident("target_schema"),
        d.quote_literal(schema),
    )
}

/// One transaction's statements replacing the schedule rows of `rows` in `schema`.
pub fn schedule_writes(dialect: Dialect, schema: &str, rows: &[ScheduleRow], at: Timestamp) -> Vec<String> {
    let d = dialect;
    let schedule = d.table(&table(SCHEDULE.name));
    let columns = ident_list(d, &SCHEDULE.columns.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    let mut out = Vec::with_capacity(rows.len() * 2);
    for row in rows {
        let target = TableRef::new(schema, &row.table);
        let c = &row.clock;
        out.push(format!("DELETE FROM {schedule} WHERE {}", target_key(d, &target, None)));
        let values = [
            d.quote_literal(schema),
            d.quote_literal(&row.table),
            d.quote_literal(&row.flow),
            d.timestamp_or_null(c.next_due),
            if c.paused { "TRUE".into() } else { "FALSE".into() },
            c.failures.to_string(),
            c.last_error.as_deref().map_or_else(|| "NULL".into(), |e| d.quote_literal(e)),
            d.timestamp_or_null(c.last_started),
            d.timestamp_or_null(c.last_finished),
            d.timestamp_literal(at),
        ];
        out.push(format!("INSERT INTO {schedule} ({columns}) VALUES ({})", values.join(", ")));
    }
    out
}
