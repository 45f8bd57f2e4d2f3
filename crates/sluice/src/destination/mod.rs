//! Destinations: where extracted batches land.
//!
//! - [`files`]: Parquet, CSV or JSON lines, append-only, one directory and manifest per
//!   run; its committed windows live in a state file.
//! - [`duckdb`]: an embedded DuckDB file, the default warehouse.
//! - [`postgres`]: a PostgreSQL database, staged by binary `COPY`.
//! - [`lake`]: Delta Lake tables on local disk or S3, consolidated in a DuckDB work
//!   database that mirrors them.
//!
//! Warehouses implement [`Destination`]: they stage Arrow batches and execute the SQL the
//! pure generators of [`crate::consolidate`] produce, in one transaction where it must be.
//! Everything that decides *what* happens (dedup, deletes, schema changes, control rows)
//! lives in the generators and in [`crate::pipeline`], so a new warehouse is only its I/O.

pub mod duckdb;
pub mod files;
pub mod lake;
mod parquet;
pub mod postgres;
pub mod redshift;
pub mod s3;

use std::future::Future;

use arrow::record_batch::RecordBatch;

use crate::Result;
use crate::consolidate::{Dialect, ExistingColumn, TableRef};

/// One value of a query result. Generated queries cast what they read to `BIGINT` or text,
/// so two variants (and null) cover every control-table read across dialects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (counts, epoch milliseconds).
    Int(i64),
    /// Text.
    Text(String),
}

/// The answer to a user's query (`sluice query`): its column names, and each value as the
/// destination renders it in text, unformatted (`None` for NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueryResult {
    /// The result's column names, in order.
    pub columns: Vec<String>,
    /// Its rows, each with one value per column.
    pub rows: Vec<Vec<Option<String>>>,
}

/// The first column of a query result's first row: the answer of a one-value query.
pub fn first_value(rows: &[Vec<Value>]) -> Option<&Value> {
    rows.first().and_then(|row| row.first())
}

impl Value {
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Text(t) => t.parse().ok(),
            Value::Null => None,
        }
    }

    /// An instant read back as epoch milliseconds (see [`Dialect::epoch_ms`]).
    pub fn as_timestamp(&self) -> Option<crate::model::Timestamp> {
        self.as_i64().and_then(chrono::DateTime::from_timestamp_millis)
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// A SQL warehouse sluice consolidates into (DuckDB, PostgreSQL; Redshift next).
///
/// Methods are async because network warehouses are; an embedded one runs its blocking
/// calls off the async threads. A destination value holds the destination's write lock for
/// its whole life, or the locks of the flows it claimed ([`Destination::claim`]) (DESIGN
/// "One run at a time per flow").
pub trait Destination: Send + Sync + 'static {
    /// Where staged batches go.
    type Stage: Stage;

    /// The SQL dialect the generators must produce.
    fn dialect(&self) -> Dialect;

    /// Where this is, for messages (`warehouse.duckdb`, `postgres://host/db`), without secrets.
    fn location(&self) -> String;

    /// Executes statements one after another, each committed on its own (DDL that must not
    /// be part of a consolidation: staging tables, run rows).
    fn execute(&self, statements: Vec<String>) -> impl Future<Output = Result<()>> + Send;

    /// Executes statements in ONE transaction: all of them take effect, or none.
    fn transaction(&self, statements: Vec<String>) -> impl Future<Output = Result<()>> + Send;

    /// Executes, in ONE transaction, statements that change the rows of `target` (a
    /// consolidation, a reconciliation, a formula refresh). `changed` says which rows they
    /// may change, so a destination that keeps the table elsewhere too (the lake publishes
    /// it as Delta files) rewrites only those. Elsewhere, [`Destination::transaction`].
    fn write_rows(
        &self,
        target: &TableRef,
        changed: Changed,
        statements: Vec<String>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (target, changed);
        self.transaction(statements)
    }

    /// Runs a query and returns its rows; every column must be an integer or text.
    fn query(&self, sql: String) -> impl Future<Output = Result<Vec<Vec<Value>>>> + Send;

    /// Runs a user's SQL (`sluice query`) in a transaction that is rolled back, and where the
    /// destination can, read-only: nothing it does stays. Of several statements, the last
    /// one's rows. An error of the SQL itself is the user's ([`crate::Kind::User`]).
    fn read_only(&self, sql: String) -> impl Future<Output = Result<QueryResult>> + Send;

    /// The columns of `table`, or `None` when it does not exist.
    fn columns(&self, table: TableRef) -> impl Future<Output = Result<Option<Vec<ExistingColumn>>>> + Send;

    /// Starts loading into `table`, which exists and is empty, once [`Destination::discard`]
    /// has removed whatever an earlier load of it left; batches carry the table's columns
    /// in order.
    fn stage(&self, table: TableRef) -> impl Future<Output = Result<Self::Stage>> + Send;

    /// Drops a staging table and whatever its load left beside it; nothing when it does
    /// not exist. Staging tables are dropped only through this: a destination may have
    /// replaced one with something else (DuckDB: a view over a file).
    fn discard(&self, table: TableRef) -> impl Future<Output = Result<()>> + Send;

    /// Takes the run lock of each flow writing `targets` where the destination locks flow
    /// by flow (PostgreSQL: runs of one schema then write different flows side by side, one
    /// run per flow); per target, in order, `None` when this value holds it now, or a
    /// message naming who holds it. Nothing to take where the lock taken at opening covers
    /// every flow (DuckDB's file, Redshift's schema lease). Held until
    /// [`Destination::release`] or the value is dropped.
    fn claim(&self, targets: Vec<TableRef>) -> impl Future<Output = Result<Vec<Option<String>>>> + Send {
        async move { Ok(vec![None; targets.len()]) }
    }

    /// Gives the run's lock back, at the end of a command. Dropping the value releases it
    /// too, but where the lock lives on a server that can be a while later (PostgreSQL
    /// notices a closed session a moment on; a Redshift lease expires after minutes), and
    /// the next run may already be starting. Nothing to do for DuckDB's file lock.
    fn release(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Which rows of a target a [`Destination::write_rows`] transaction may change: those whose
/// Id (column `id` of the target) is listed in column `id` of `ids` (the staging table, the
/// formula table), or any row (`ids = None`: a reconciliation, a full read's removals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The Id column's name, in the target and in `ids`.
    pub id: String,
    /// The table listing the Ids; `None`: any row may change.
    pub ids: Option<TableRef>,
    /// The run writing them (the lake records it with the version it commits).
    pub run_id: String,
    /// The staging table holding the rows the source returned for this transaction, as
    /// read (the lake appends them to its raw layer); `None`: it applies no read rows.
    pub read: Option<TableRef>,
}

/// A load into one staging table.
pub trait Stage: Send {
    /// Appends a batch. May return before the batch is durable; [`Stage::finish`] says.
    fn write(&mut self, batch: RecordBatch) -> impl Future<Output = Result<()>> + Send;

    /// Ends the load, returning the rows written once all of them are in the table.
    fn finish(self) -> impl Future<Output = Result<u64>> + Send;
}
