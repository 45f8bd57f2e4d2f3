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

mod control;
mod ddl;
mod merge;
pub mod procedure;
mod reconcile;

use std::collections::HashSet;

use crate::config::Deletes;
use crate::model::{Column, SluiceType, TableSchema, Timestamp, Window};
use crate::{Error, Result};

pub use control::{
    CONTROL_SCHEMA, LAYOUT_VERSION, LayoutState, abandon_runs, check_layout, control_ddl, control_writes, flow_failed,
    flow_phase, flow_runs_query, flow_totals, has_rows_query, layout_of, layout_query, layout_tables, migrate_v1,
    read_flow, read_merge_counts, run_finished, run_started, runs_query, setup_lock, status_query, v1_flows_query,
};
pub use ddl::{SchemaChanges, schema_changes, staging_ddl, widens};
use merge::Rows;
pub use merge::{DUCKDB_SLICE_ROWS, absent_counts, changes_table, stats_query};
pub use reconcile::{ids_ddl, ids_table, live_condition, live_count, reconcile_apply, reconcile_counts};

/// Column the loader fills with the order rows arrived in, breaking ties among equal cursor
/// values (many rows share one `SystemModstamp` second; a later page holds the later read).
pub const STAGE_SEQ: &str = "_sluice_stage_seq";
/// When the row was last written by sluice.
pub const SYNCED_AT: &str = "_sluice_synced_at";
/// Which run last wrote the row.
pub const RUN_ID: &str = "_sluice_run_id";
/// Soft-delete flag (soft-delete mode only).
pub const DELETED: &str = "_sluice_deleted";
/// History: when this version became true (the source cursor of the version).
pub const VALID_FROM: &str = "_sluice_valid_from";
/// History: when the next version replaced it; NULL while current.
pub const VALID_TO: &str = "_sluice_valid_to";
/// History: whether this is the current version.
pub const CURRENT: &str = "_sluice_current";

/// PostgreSQL's `work_mem` for a consolidation transaction (see [`consolidate`]).
const WORK_MEM: &str = "64MB";

/// The SQL dialects consolidation is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// DuckDB 2.0 (has `MERGE INTO`).
    DuckDb,
    /// PostgreSQL 15 or newer (has `MERGE`).
    Postgres,
    /// Amazon Redshift (no `ON CONFLICT`; a restricted `MERGE`).
    Redshift,
}

impl Dialect {
    /// All dialects, for tests and golden files.
    pub const ALL: [Dialect; 3] = [Dialect::DuckDb, Dialect::Postgres, Dialect::Redshift];

    /// Lower-case name, as used for golden-file directories.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DuckDb => "duckdb",
            Dialect::Postgres => "postgres",
            Dialect::Redshift => "redshift",
        }
    }

    /// An identifier, always double-quoted with embedded quotes doubled, so keywords
    /// (`select`, `order`), mixed case (`naming = "original"`) and quotes survive. All three
    /// dialects follow the SQL standard here.
    pub fn quote_ident(self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// A string literal. Single quotes are doubled everywhere; Redshift also treats a
    /// backslash in a literal as an escape character, so it is doubled there (DuckDB and
    /// PostgreSQL with `standard_conforming_strings`, the default, keep it as it is).
    pub fn quote_literal(self, value: &str) -> String {
        let mut s = value.replace('\'', "''");
        if self == Dialect::Redshift {
            s = s.replace('\\', "\\\\");
        }
        format!("'{s}'")
    }

    /// A `timestamp with time zone` literal in UTC. `CAST` rather than a typed literal
    /// because all three dialects accept it the same way.
    pub fn timestamp_literal(self, ts: Timestamp) -> String {
        format!("CAST('{}' AS {})", ts.format("%Y-%m-%d %H:%M:%S%.6f+00"), self.sql_type(SluiceType::Timestamp))
    }

    /// `DROP TABLE IF EXISTS` for a table: staging, Id snapshots, leftovers of a crashed run.
    pub fn drop_table(self, table: &TableRef) -> String {
        format!("DROP TABLE IF EXISTS {}", self.table(table))
    }

    /// The server's name, for messages.
    pub fn server(self) -> &'static str {
        match self {
            Dialect::DuckDb => "DuckDB",
            Dialect::Postgres => "PostgreSQL",
            Dialect::Redshift => "Redshift",
        }
    }

    /// The longest identifier the server keeps, in bytes: PostgreSQL silently cuts longer
    /// ones, Redshift refuses them; DuckDB has no limit that matters here.
    pub fn max_identifier_bytes(self) -> usize {
        match self {
            Dialect::Postgres => 63,
            Dialect::Redshift => 127,
            Dialect::DuckDb => usize::MAX,
        }
    }

    /// The table kind for data a crash may lose (staging, Id snapshots), with its trailing
    /// space: PostgreSQL's `UNLOGGED` skips the write-ahead log, which halves a load's
    /// writes; a crash empties such a table, and the next load discards it anyway.
    pub fn transient(self) -> &'static str {
        match self {
            Dialect::Postgres => "UNLOGGED ",
            Dialect::DuckDb | Dialect::Redshift => "",
        }
    }

    /// A typed NULL: `CAST(NULL AS <type>)`, where a bare NULL would leave the type open.
    pub fn null_of(self, ty: SluiceType) -> String {
        format!("CAST(NULL AS {})", self.sql_type(ty))
    }

    /// [`Dialect::timestamp_literal`], or a typed NULL for `None`.
    pub fn timestamp_or_null(self, ts: Option<Timestamp>) -> String {
        ts.map_or_else(|| self.null_of(SluiceType::Timestamp), |t| self.timestamp_literal(t))
    }

    /// `expr` (a `timestamp with time zone`) as milliseconds since the Unix epoch, a `BIGINT`:
    /// how control-table instants are read back, the same in every dialect's result.
    pub fn epoch_ms(self, expr: &str) -> String {
        match self {
            // The bundled DuckDB has no ICU; its TIMESTAMPTZ → TIMESTAMP cast is the UTC instant.
            Dialect::DuckDb => format!("epoch_ms(CAST({expr} AS TIMESTAMP))"),
            Dialect::Postgres | Dialect::Redshift => format!("CAST(EXTRACT(EPOCH FROM {expr}) * 1000 AS BIGINT)"),
        }
    }

    /// `"schema"."table"`.
    pub fn table(self, table: &TableRef) -> String {
        format!("{}.{}", self.quote_ident(&table.schema), self.quote_ident(&table.name))
    }

    /// The destination column type of a [`SluiceType`] (DESIGN "Destinations").
    ///
    /// Redshift measures VARCHAR in bytes, not characters: text gets the maximum, 65535
    /// bytes (Salesforce long text areas beyond that need SUPER, not done yet); an Id is
    /// ASCII, so 18 bytes hold it.
    pub fn sql_type(self, ty: SluiceType) -> String {
        use Dialect::*;
        match (self, ty) {
            (_, SluiceType::Id) => "VARCHAR(18)".into(),
            (DuckDb, SluiceType::Text) => "VARCHAR".into(),
            (Postgres, SluiceType::Text) => "TEXT".into(),
            (Redshift, SluiceType::Text) => "VARCHAR(65535)".into(),
            (_, SluiceType::Boolean) => "BOOLEAN".into(),
            (_, SluiceType::Int) => "INTEGER".into(),
            (_, SluiceType::Long) => "BIGINT".into(),
            (_, SluiceType::Decimal { precision, scale }) => format!("DECIMAL({precision},{scale})"),
            (DuckDb, SluiceType::Double) => "DOUBLE".into(),
            (Postgres | Redshift, SluiceType::Double) => "DOUBLE PRECISION".into(),
            (_, SluiceType::Date) => "DATE".into(),
            (_, SluiceType::Timestamp) => "TIMESTAMPTZ".into(),
            (_, SluiceType::Time) => "TIME".into(),
            (DuckDb, SluiceType::Binary) => "BLOB".into(),
            (Postgres, SluiceType::Binary) => "BYTEA".into(),
            // VARBYTE's maximum is 1,024,000 bytes.
            (Redshift, SluiceType::Binary) => "VARBYTE(1024000)".into(),
        }
    }
}

/// A schema-qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// Schema (`salesforce`, `salesforce_staging`, `_sluice`).
    pub schema: String,
    /// Table (`account`).
    pub name: String,
}

impl TableRef {
    /// A table reference from its two parts.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self { schema: schema.into(), name: name.into() }
    }
}

/// Everything one consolidation needs to know, with destination column names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSpec {
    /// The consolidated table.
    pub target: TableRef,
    /// The staging table the run loaded (source columns plus [`STAGE_SEQ`]).
    pub staging: TableRef,
    /// Source columns, in describe order.
    pub columns: Vec<Column>,
    /// Destination name of the record Id column.
    pub id: String,
    /// Destination name of the cursor column (`system_modstamp`); `None` when the object has
    /// no usable cursor, and then the staged row always wins (a full refresh).
    pub cursor: Option<String>,
    /// Destination name of the soft-delete flag (`is_deleted`), when the object has one.
    pub deleted_flag: Option<String>,
    /// Soft or hard deletes.
    pub deletes: Deletes,
    /// Keep `<table>_history` (SCD type 2).
    pub history: bool,
    /// This run's id, written to [`RUN_ID`].
    pub run_id: String,
    /// Written to [`SYNCED_AT`]: one instant for the whole transaction, chosen by the caller so
    /// the SQL is deterministic (and golden-testable) rather than `now()`.
    pub synced_at: Timestamp,
    /// The load is (a slice of) a full read: the truth at its window end. Its rows replace
    /// the target's whatever their stamps (a target row with a newer stamp but wrong
    /// values can be repaired); an incremental re-read never lets an older version win.
    pub full: bool,
}

impl MergeSpec {
    /// A spec for `schema` consolidated into `dest_schema` (staging in `<dest_schema>_staging`),
    /// resolving the Id, cursor and delete-flag columns by their source names.
    pub fn new(
        schema: &TableSchema,
        dest_schema: &str,
        deletes: Deletes,
        history: bool,
        run_id: &str,
        synced_at: Timestamp,
    ) -> Result<Self> {
        let by_source = |source: &str, what: &str| {
            schema.column_by_source(source).map(|c| c.name.clone()).ok_or_else(|| {
                Error::internal(format!("{}: the {what} field `{source}` is not among the columns", schema.object))
            })
        };
        let id = by_source("Id", "Id")?;
        let cursor = schema.cursor.field().map(|f| by_source(f, "cursor")).transpose()?;
        let deleted_flag = schema.deleted_flag.as_deref().map(|f| by_source(f, "delete flag")).transpose()?;
        Ok(Self {
            target: TableRef::new(dest_schema, &schema.table),
            staging: TableRef::new(format!("{dest_schema}_staging"), &schema.table),
            columns: schema.columns.clone(),
            id,
            cursor,
            deleted_flag,
            deletes,
            history,
            run_id: run_id.to_owned(),
            synced_at,
            full: false,
        })
    }

    /// `<table>_history` beside the target.
    pub fn history_table(&self) -> TableRef {
        TableRef::new(&self.target.schema, format!("{}_history", self.target.name))
    }

    /// Checks the invariants the generators rely on: the key columns are among the columns,
    /// no column name is used twice or collides with sluice's own `_sluice_` names.
    pub fn validate(&self) -> Result<()> {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let mut seen = HashSet::new();
        for name in &names {
            if !seen.insert(*name) {
                return Err(Error::internal(format!("{}: column `{name}` appears twice", self.target.name)));
            }
            if name.starts_with("_sluice_") {
                return Err(Error::user(format!(
                    "{}: column `{name}` uses the `_sluice_` prefix reserved for sluice's own columns",
                    self.target.name
                )));
            }
        }
        let keys = [Some(&self.id), self.cursor.as_ref(), self.deleted_flag.as_ref()];
        for key in keys.into_iter().flatten() {
            if !names.contains(&key.as_str()) {
                return Err(Error::internal(format!(
                    "{}: key column `{key}` is not among the columns",
                    self.target.name
                )));
            }
        }
        Ok(())
    }

    /// The metadata columns of the target table, after the source columns.
    fn metadata(&self) -> Vec<(&'static str, SluiceType)> {
        let mut meta = vec![(SYNCED_AT, SluiceType::Timestamp), (RUN_ID, SluiceType::Text)];
        if self.deletes == Deletes::Soft {
            meta.push((DELETED, SluiceType::Boolean));
        }
        meta
    }

    /// The extra columns of the history table, after the target's metadata.
    fn history_metadata() -> [(&'static str, SluiceType); 3] {
        [(VALID_FROM, SluiceType::Timestamp), (VALID_TO, SluiceType::Timestamp), (CURRENT, SluiceType::Boolean)]
    }
}

/// A column that exists in the destination, as read from its catalog and mapped back to a
/// [`SluiceType`] by the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingColumn {
    /// Column name.
    pub name: String,
    /// Its type.
    pub ty: SluiceType,
}

/// What the destination holds before the transaction: `None` for a table that does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    /// Columns of the target table.
    pub target: Option<Vec<ExistingColumn>>,
    /// Columns of the history table (looked at only in history mode).
    pub history: Option<Vec<ExistingColumn>>,
}

/// What the flow-run row and the flow's control row record besides the merge counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRun {
    /// Flow name (the key of `_sluice.flows`).
    pub flow: String,
    /// Source object API name.
    pub object: String,
    /// The window this run read; its end becomes the flow's committed window end.
    pub window: Window,
    /// Whether this was a full refresh (recorded as the flow's last full refresh).
    pub full_refresh: bool,
    /// Fingerprint of the table schema the run used.
    pub schema_fingerprint: String,
    /// Attempts this flow took in this run.
    pub attempts: u32,
    /// Rows the extract phase read: this load's staged rows, numbered `0..rows_extracted`
    /// in [`STAGE_SEQ`] (DuckDB inserts them in slices of that order).
    pub rows_extracted: u64,
    /// Source API calls made.
    pub api_calls: u64,
    /// Bytes read from the source.
    pub bytes: u64,
    /// The org's API calls left today after this flow (`Sforce-Limit-Info`), when known.
    pub api_remaining: Option<u64>,
    /// This is the last slice of a full read (see [`MergeSpec::full`]): target rows it did
    /// not return, whose `_sluice_run_id` is therefore not this run's, are gone at the source
    /// and are removed (hard) or flagged (soft) in the same transaction. Set only once the
    /// `max_delete_ratio` guard passed ([`absent_counts`]).
    pub remove_absent: bool,
    /// How many rows that removes (from [`absent_counts`]); they count as deleted.
    pub removed: u64,
}

/// How a load into a target the catalog says is absent is consolidated; every other load
/// merges.
///
/// Ranking staging by Id and joining it back cost a 1 M-row first load most of its
/// consolidation (PostgreSQL: 5.6 s of 5.8 s; promoting staging instead costs 1.0 s), yet a
/// first load's staging nearly always holds each Id once. What proves that differs:
/// [`direct_check`] says how, per dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstLoad {
    /// Through the changes table, like every other load: right whatever staging holds.
    Merge,
    /// Straight from staging into the new target. Only when staging holds each Id once: on
    /// PostgreSQL, whose staging must then have been created for it ([`staging_ddl`]), the
    /// key built on staging fails the transaction otherwise (the caller then merges
    /// instead, [`crate::Error::is_duplicate_key`]); elsewhere the caller has run
    /// [`DirectCheck::Query`]. Ignored where the target exists, and on Redshift, which has
    /// no temp views and enforces no key.
    Direct,
}

/// How a dialect establishes that staging holds each Id once, for [`FirstLoad::Direct`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectCheck {
    /// The key built on staging inside the transaction (PostgreSQL).
    Key,
    /// This query returns one row, the number of Ids staged more than once; direct when 0
    /// (DuckDB, whose targets carry no key; its grouping spills to disk, unlike the join).
    Query(String),
    /// The dialect always merges (Redshift).
    Never,
}

/// How one consolidation writes the target: the one place that says which dialect does
/// what for a direct first load ([`direct_write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Through the changes table: every load but a direct first load.
    Merge,
    /// Staging copied into the new target (DuckDB).
    Copy,
    /// Staging made the target (PostgreSQL).
    Promote,
}

/// How `dialect` writes a direct first load; [`Write::Merge`] where it cannot (Redshift).
fn direct_write(dialect: Dialect) -> Write {
    match dialect {
        Dialect::DuckDb => Write::Copy,
        Dialect::Postgres => Write::Promote,
        Dialect::Redshift => Write::Merge,
    }
}

impl Write {
    /// How `dialect` writes a load asked to go `first_load` (staging is created for this
    /// too, before the consolidation knows the target's state: see [`staging_ddl`]).
    fn of(dialect: Dialect, first_load: FirstLoad) -> Write {
        match first_load {
            FirstLoad::Direct => direct_write(dialect),
            FirstLoad::Merge => Write::Merge,
        }
    }
}

/// Whether `dialect` can consolidate a first load with [`FirstLoad::Direct`] at all.
pub fn loads_directly(dialect: Dialect) -> bool {
    direct_write(dialect) != Write::Merge
}

/// How `dialect` establishes, for [`FirstLoad::Direct`], that `spec`'s staging holds each Id once.
pub fn direct_check(dialect: Dialect, spec: &MergeSpec) -> DirectCheck {
    match direct_write(dialect) {
        Write::Promote => DirectCheck::Key,
        Write::Copy => {
            let id = dialect.quote_ident(&spec.id);
            DirectCheck::Query(format!(
                "SELECT COUNT(*) FROM (SELECT {id} FROM {} GROUP BY {id} HAVING COUNT(*) > 1) AS {}",
                dialect.table(&spec.staging),
                dialect.quote_ident("_sluice_twice")
            ))
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
    let new_target = existing.target.is_none();
    let write = if new_target { Write::of(dialect, first_load) } else { Write::Merge };
    let rows = match write {
        Write::Merge => Rows::Changes { staged: run.rows_extracted },
        Write::Copy | Write::Promote => Rows::Staged,
    };
    let promoted = write == Write::Promote;
    let schema = schema_changes(dialect, spec, existing, promoted)?;
    let mut statements = Vec::new();
    if dialect == Dialect::Postgres {
        // PostgreSQL's default 4 MB spilled a full load's sort and hash joins to disk
        // (measured: the 1 M-row insert took 5.7 s against 4.5 s with 64 MB). Raised for
        // this transaction only, and never lowered where the server allows more.
        statements.push(format!(
            "SELECT set_config('work_mem', '{WORK_MEM}', TRUE) WHERE pg_size_bytes(current_setting('work_mem')) < \
             pg_size_bytes('{WORK_MEM}')"
        ));
    }
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

/// The column list `"a", "b", ...` of `names`.
fn ident_list(dialect: Dialect, names: &[&str]) -> String {
    names.iter().map(|n| dialect.quote_ident(n)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
