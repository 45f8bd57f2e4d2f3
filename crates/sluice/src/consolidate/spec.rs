//! What one consolidation is about, shared by every generator of [`super`]: the
//! [`MergeSpec`] (tables, columns, modes), what the destination already holds
//! ([`Existing`]), the flow-run being committed ([`FlowRun`]), the metadata column names,
//! and how each dialect writes a first load ([`Write`]). Pure data, no SQL of its own
//! beyond quoting.

use std::collections::HashSet;

use crate::config::{Deletes, WriteMode};
use crate::model::{Column, SluiceType, TableSchema, Timestamp, Window};
use crate::sql::{Dialect, FirstLoadWrite, TableRef};
use crate::{Error, Result};

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
    /// Merge into one current row per Id, or append every new version
    /// ([`super::append`]).
    pub write: WriteMode,
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
            write: WriteMode::Merge,
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
    pub(super) fn metadata(&self) -> Vec<(&'static str, SluiceType)> {
        let mut meta = vec![(SYNCED_AT, SluiceType::Timestamp), (RUN_ID, SluiceType::Text)];
        // An append table keeps the source's own delete flag on each version.
        if self.deletes == Deletes::Soft && self.write == WriteMode::Merge {
            meta.push((DELETED, SluiceType::Boolean));
        }
        meta
    }

    /// The extra columns of the history table, after the target's metadata.
    pub(super) fn history_metadata() -> [(&'static str, SluiceType); 3] {
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
    /// Fingerprint of what the flow's config selects (`fields`, `exclude`, `rename`,
    /// `mask`): a change means the table no longer reflects the rows as configured.
    pub selection_fingerprint: String,
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
    /// PostgreSQL, whose staging must then have been created for it ([`super::staging_ddl`]), the
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
    /// Each of these queries returns one row, the number of Ids staged more than once in
    /// its share of staging; direct when all are 0 (DuckDB, whose targets carry no key; its
    /// grouping spills to disk, unlike the join, in shares it does reliably).
    Query(Vec<String>),
    /// The dialect always merges (Redshift).
    Never,
}

/// How one consolidation writes the target: the one place that says which dialect does
/// what for a direct first load ([`direct_write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// Through the changes table: every load but a direct first load.
    Merge,
    /// Staging copied into the new target (DuckDB).
    Copy,
    /// Staging made the target (PostgreSQL).
    Promote,
}

/// How `dialect` writes a direct first load; [`Write::Merge`] where it cannot.
pub(super) fn direct_write(dialect: Dialect) -> Write {
    match dialect.caps().first_load {
        FirstLoadWrite::Copy => Write::Copy,
        FirstLoadWrite::Promote => Write::Promote,
        FirstLoadWrite::Merge => Write::Merge,
    }
}

impl Write {
    /// How `dialect` writes a load asked to go `first_load` (staging is created for this
    /// too, before the consolidation knows the target's state: see [`super::staging_ddl`]).
    pub(super) fn of(dialect: Dialect, first_load: FirstLoad) -> Write {
        match first_load {
            FirstLoad::Direct => direct_write(dialect),
            FirstLoad::Merge => Write::Merge,
        }
    }
}

/// The column list `"a", "b", ...` of `names`.
pub(super) fn ident_list(dialect: Dialect, names: &[&str]) -> String {
    names.iter().map(|n| dialect.quote_ident(n)).collect::<Vec<_>>().join(", ")
}
