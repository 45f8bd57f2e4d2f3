//! Consolidation SQL: the one transaction that turns a run's staging rows into exactly one
//! current row per record (DESIGN "One flow, one run", step 4).
//!
//! Everything here is a pure function from a [`MergeSpec`] and a [`Dialect`] to SQL text:
//! no I/O, no connection, so every dialect's output is golden-tested
//! (`tests/golden/merge/<dialect>/<case>.sql`) and the destinations only execute it.
//!
//! [`consolidate`] returns one transaction's statements, in order:
//!
//! 0. on PostgreSQL, `work_mem` raised for this transaction (see [`consolidate`]);
//! 1. schema changes (`ddl`): `CREATE TABLE` for a table the catalog says does not exist
//!    yet, `ALTER TABLE ... ADD COLUMN` for new source fields, a type change only where it is
//!    a safe widening the dialect can do inside a transaction, else an [`Error`] and no SQL;
//!    In history mode, a history table created beside an existing target is seeded with
//!    the target's rows as their current versions;
//! 2. the *changes* temp table (`merge`): staging de-duplicated to the newest version per
//!    Id, joined to the target and filtered to rows not older than the target's (a re-read
//!    never regresses a row), with flags `_sluice_is_new`, `_sluice_advanced`,
//!    `_sluice_is_deleted` computed once, before anything changes (and, on PostgreSQL,
//!    analysed, as autovacuum never analyses temp tables);
//! 3. the upsert of those rows, soft or hard deletes included (MERGE on PostgreSQL,
//!    `DELETE ... USING` + `INSERT` on DuckDB and Redshift — see `merge` for why; a plain
//!    `INSERT` into a target created in step 1);
//! 4. in history mode, the SCD type 2 update of `<table>_history`;
//! 5. the control-table writes (`control`): the flow's new window end and the flow-run row,
//!    whose inserted / updated / deleted counts are computed in SQL from the changes table, so
//!    they commit with the data they describe;
//! 6. dropping the changes table.
//!
//! A first load whose staging holds each Id once needs no ranking and no join: with
//! [`FirstLoad::Direct`], step 2 becomes a view over staging, and step 3 a plain copy of
//! staging into the new target on DuckDB, while PostgreSQL makes staging itself the target
//! (keyed, which is what proves the Ids unique there, then moved into place).
//!
//! Values (run id, timestamps, flow names) are rendered as literals by
//! [`Dialect::quote_literal`] rather than bound as parameters: Redshift is spoken to with the
//! simple query protocol only (DESIGN "Dependencies"), so one rendering serves all three.
//! Identifiers are always quoted by [`Dialect::quote_ident`].

mod append;
mod control;
mod ddl;
mod formulas;
mod merge;
pub mod procedure;
mod reconcile;
mod spec;

use crate::Result;
use crate::config::WriteMode;

pub use crate::sql::{Dialect, TableRef};

pub use crate::sql::DUCKDB_SLICE_ROWS;
pub use control::lake::{self, LAKE_MARK_DOMAIN, lake_app_id};
pub use control::{
    CONTROL_SCHEMA, FlowPhase, LAYOUT_VERSION, LEASE, LOCK_CLASS, LayoutState, RunState, ScheduleRow, Trigger,
    abandon_runs, check_layout, control_ddl, control_writes, flow_failed, flow_lock_key, flow_phase, flow_runs_query,
    flow_totals, forget_flow, full_refresh_query, has_rows_query, layout_of, layout_query, layout_tables, lock_key,
    locks_table, migrate_added, migrate_v1, read_flow, read_merge_counts, run_alive, run_finished, run_started,
    runs_query, schedule_query, schedule_writes, setup_lock, status_query, v1_flows_query, write_of, write_word,
};
pub use ddl::{SchemaChanges, schema_changes, staging_ddl, widens};
pub use formulas::{formula_counts, formulas_apply, formulas_ddl, formulas_table};
use merge::Rows;
pub use merge::{absent_counts, changes_table, stats_query};
pub use reconcile::{
    append_live_count, ids_ddl, ids_table, live_condition, live_count, reconcile_apply, reconcile_counts,
};
pub use spec::{
    CURRENT, DELETED, DirectCheck, Existing, ExistingColumn, FirstLoad, FlowRun, MergeSpec, RUN_ID, STAGE_SEQ,
    SYNCED_AT, VALID_FROM, VALID_TO,
};
use spec::{Write, direct_write};

/// PostgreSQL's `work_mem` for a consolidation transaction (see [`consolidate`]).
const WORK_MEM: &str = "64MB";

/// Whether `dialect` can consolidate a first load with [`FirstLoad::Direct`] at all.
pub fn loads_directly(dialect: Dialect) -> bool {
    direct_write(dialect) != Write::Merge
}

/// Staged rows one Id check query groups at most on DuckDB ([`direct_check`]). Its
/// grouping spills to disk, but not reliably near the memory limit: grouping the Ids of
/// 10 M staged Accounts at the default 112 MiB failed in 2 of 3 tries (and failed a first
/// load), while each quarter of them (by a hash of the Id) passed in 5 of 5, in 0.65 s
/// (measured 2026-12-07).
pub const DUCKDB_CHECK_ROWS: u64 = 2_000_000;

/// How `dialect` establishes, for [`FirstLoad::Direct`], that `spec`'s staging (`staged`
/// rows) holds each Id once.
pub fn direct_check(dialect: Dialect, spec: &MergeSpec, staged: u64) -> DirectCheck {
    match direct_write(dialect) {
        Write::Promote => DirectCheck::Key,
        Write::Copy => {
            let id = dialect.quote_ident(&spec.id);
            let parts = staged.div_ceil(DUCKDB_CHECK_ROWS).max(1);
            let queries = (0..parts)
                .map(|part| {
                    let only = if parts == 1 { String::new() } else { format!(" WHERE hash({id}) % {parts} = {part}") };
                    format!(
                        "SELECT COUNT(*) FROM (SELECT {id} FROM {}{only} GROUP BY {id} HAVING COUNT(*) > 1) AS {}",
                        dialect.table(&spec.staging),
                        dialect.quote_ident("_sluice_twice")
                    )
                })
                .collect();
            DirectCheck::Query(queries)
        }
        Write::Merge => DirectCheck::Never,
    }
}

/// One consolidation transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consolidation {
    /// Statements to execute in order inside one transaction.
    pub statements: Vec<String>,
    /// Things the user should know that do not stop the flow (a removed source field).
    pub warnings: Vec<String>,
}

/// The whole consolidation transaction for one flow (see the module docs for the order).
///
/// Fails, producing no SQL at all, when the spec is inconsistent or the destination's
/// columns cannot follow the source's types in this dialect.
pub fn consolidate(
    dialect: Dialect,
    spec: &MergeSpec,
    existing: &Existing,
    run: &FlowRun,
    first_load: FirstLoad,
) -> Result<Consolidation> {
    spec.validate()?;
    if spec.write == WriteMode::Append {
        return append_consolidation(dialect, spec, existing, run);
    }
    let new_target = existing.target.is_none();
    let write = if new_target { Write::of(dialect, first_load) } else { Write::Merge };
    let rows = match write {
        Write::Merge => Rows::Changes { staged: run.rows_extracted },
        Write::Copy | Write::Promote => Rows::Staged,
    };
    let promoted = write == Write::Promote;
    let schema = schema_changes(dialect, spec, existing, promoted)?;
    let mut statements = work_mem(dialect);
    statements.extend(schema.statements);
    if spec.history && existing.history.is_none() && existing.target.is_some() {
        statements.push(merge::seed_history(dialect, spec));
    }
    match write {
        Write::Merge => {
            statements.extend(changes_table(dialect, spec));
            statements.extend(merge::upsert(dialect, spec, rows, new_target));
        }
        Write::Copy => {
            statements.push(merge::direct_changes(dialect, spec));
            statements.extend(merge::upsert(dialect, spec, rows, new_target));
        }
        Write::Promote => {
            statements.push(merge::promote_key(dialect, spec));
            statements.push(merge::direct_changes(dialect, spec));
        }
    }
    if spec.history {
        statements.extend(merge::history(dialect, spec, rows));
    }
    if run.remove_absent && !new_target {
        statements.extend(merge::remove_absent(dialect, spec, run.window.end));
    }
    if promoted {
        statements.extend(merge::promote_rows(dialect, spec));
    }
    // A promoted load's rows are still in staging here; it becomes the target at the end.
    let rows_at = if promoted { &spec.staging } else { &spec.target };
    statements.extend(control_writes(dialect, spec, run, rows_at));
    statements.push(merge::drop_changes(dialect, spec, rows));
    if promoted {
        statements.extend(merge::promote_table(dialect, spec));
    }
    Ok(Consolidation { statements, warnings: schema.warnings })
}

/// PostgreSQL's default 4 MB `work_mem` spilled a full load's sort and hash joins to disk
/// (measured: the 1 M-row insert took 5.7 s against 4.5 s with 64 MB). Raised for the
/// consolidation's transaction only, and never lowered where the server allows more.
fn work_mem(dialect: Dialect) -> Vec<String> {
    if !dialect.caps().work_mem {
        return Vec::new();
    }
    vec![format!(
        "SELECT set_config('work_mem', '{WORK_MEM}', TRUE) WHERE pg_size_bytes(current_setting('work_mem')) < \
         pg_size_bytes('{WORK_MEM}')"
    )]
}

/// The transaction of an append flow (see [`append`]): schema changes, the new versions
/// appended, the control writes, the changes table dropped. No history, no removals: an
/// append table only grows.
fn append_consolidation(
    dialect: Dialect,
    spec: &MergeSpec,
    existing: &Existing,
    run: &FlowRun,
) -> Result<Consolidation> {
    if spec.history || run.remove_absent {
        return Err(crate::Error::internal(format!(
            "{}: an append flow keeps no history and removes nothing",
            spec.target.name
        )));
    }
    let schema = schema_changes(dialect, spec, existing, false)?;
    let mut statements = work_mem(dialect);
    statements.extend(schema.statements);
    // A new table holds nothing to compare with.
    let start = if existing.target.is_none() { None } else { run.window.start };
    statements.extend(append::changes_table(dialect, spec, start));
    statements.extend(append::insert(dialect, spec, run.rows_extracted));
    statements.extend(control_writes(dialect, spec, run, &spec.target));
    statements.push(merge::drop_changes(dialect, spec, Rows::Changes { staged: run.rows_extracted }));
    Ok(Consolidation { statements, warnings: schema.warnings })
}

#[cfg(test)]
mod tests;
