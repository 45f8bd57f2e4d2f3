//! The DuckDB destination: one embedded database file holding the replicated tables, their
//! staging schema and the `_sluice` control tables (DESIGN "Destinations").
//!
//! DuckDB allows one read-write process per file and locks it, so an open [`DuckDb`] is
//! the run's lock: a second `sluice sync` on the same file fails at open, naming the
//! holder. Inside the process, DDL and transactions go through one connection behind a
//! mutex (DuckDB reports concurrent catalog changes as conflicts rather than waiting).
//!
//! Staging is a Parquet file, not rows in the database. Each load writes its batches to
//! `<file>.staging/<schema>/<table>/` from a thread of its own, so extraction, loading and
//! another flow's consolidation overlap; when the load ends, a view over the file takes the
//! staging table's place, with the table's column names and types, and the consolidation
//! reads it like a table. Measured at 1 M Accounts, DuckDB's appender took 6 s on one core
//! and its rows were then compressed twice (into staging, then into the target); the
//! Parquet writer takes a third of that, DuckDB reads the file with every core, and the
//! rows are compressed into the database once. The file is transient: a crash leaves it
//! for the next load of the table to remove, and [`Destination::discard`] removes it with
//! the view.

pub mod config;
mod error;
mod memory;
mod open;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use duckdb::Connection;
// Query results arrive in DuckDB's own Arrow, which need not be the version the rest of
// sluice writes Parquet with: they become [`Value`]s or text here and never cross over.
use arrow::record_batch::RecordBatch;
use duck_arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use duck_arrow::datatypes::DataType;
use duck_arrow::record_batch::RecordBatch as ResultBatch;
use duckdb::arrow as duck_arrow;

pub use self::config::{DEFAULT_DUCKDB_MEMORY_MIB, DuckDbConfig, DuckDbKind};
use self::error::open_error;
pub(crate) use self::error::sql_error;
use super::{Changed, Destination, QueryResult, Stage, Value};
use crate::consolidate::{Dialect, ExistingColumn, TableRef};
use crate::model::SluiceType;
use crate::{Error, Result};

/// An open DuckDB file (see the module docs).
#[derive(Clone)]
pub struct DuckDb {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// The buffer pool's limit, which a write raises for its transaction alone.
    memory_limit_mib: u64,
}

impl std::fmt::Debug for DuckDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuckDb").field("path", &self.path).finish()
    }
}

/// Makes the session's time zone UTC. DuckDB with ICU (the prebuilt library has it) takes
/// the machine's zone otherwise, and casts between `TIMESTAMPTZ` and `TIMESTAMP` (how a
/// window end is read back, [`crate::sql::Dialect::epoch_ms`]) would shift by its offset:
/// east of UTC the next window would start hours late and miss every change. Without ICU
/// (DuckDB built from source) there are no zones and the casts are UTC already.
fn in_utc(conn: &Connection) -> Result<()> {
    let icu: bool = conn
        .query_row("SELECT count(*) > 0 FROM duckdb_extensions() WHERE extension_name = 'icu' AND loaded", [], |r| {
            r.get(0)
        })
        .map_err(|e| Error::internal(format!("DuckDB extensions: {e}")))?;
    if icu {
        conn.execute_batch("SET TimeZone = 'UTC'").map_err(|e| Error::internal(format!("DuckDB time zone: {e}")))?;
    }
    Ok(())
}

impl DuckDb {
    /// Opens (creating if needed) the database file, taking its write lock. The parent
    /// directory must exist: a typo in `path` should not silently create directories.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, DEFAULT_DUCKDB_MEMORY_MIB)
    }

    /// [`DuckDb::open`] with DuckDB's memory limit set to `memory_limit_mib`: DuckDB's
    /// default (80% of RAM) lets its buffer pool grow with the table, so a 1 M-row load
    /// would hold gigabytes; under a limit it evicts, and spills to `<path>.tmp`.
    pub fn open_with(path: &Path, memory_limit_mib: u64) -> Result<Self> {
        let shown = path.display();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(Error::user(format!(
                "destination.path: the directory {} of {shown} does not exist; create it or choose another path",
                parent.display()
            )));
        }
        let conn = Connection::open(path).map_err(|e| open_error(path, &e))?;
        in_utc(&conn)?;
        // Row order in a table means nothing to sluice (staging carries its own order
        // column), and keeping it makes DuckDB buffer whole inserts. A commit's checkpoint
        // compacts row groups that have deleted rows ("vacuum"), holding each task's rows in
        // memory: with its default of 100 tasks the commit of a full refresh of 10 M Accounts
        // ran out of memory at 112 MiB, which invalidates the database until it is reopened;
        // with 2 it passed in 1.6 s, and later checkpoints compact what this one left.
        // Extensions sluice needs are compiled in; a sync must never download code.
        conn.execute_batch(&format!(
            "SET memory_limit = '{memory_limit_mib}MiB'; SET preserve_insertion_order = false; \
             SET max_vacuum_tasks = 2; SET autoinstall_known_extensions = false"
        ))
        .map_err(|e| Error::internal(format!("DuckDB settings: {e}")))?;
        Ok(Self { path: path.to_owned(), conn: Arc::new(Mutex::new(conn)), memory_limit_mib })
    }

    /// Opens an existing database file read-only (`status`, `history`): nothing is
    /// created, and other readers may share it.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::user(format!(
                "destination.path: {} does not exist yet; `sluice sync` creates it",
                path.display()
            )));
        }
        let config = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .map_err(|e| Error::internal(format!("DuckDB config: {e}")))?;
        let conn = Connection::open_with_flags(path, config).map_err(|e| open_error(path, &e))?;
        in_utc(&conn)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
            memory_limit_mib: DEFAULT_DUCKDB_MEMORY_MIB,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the load of staging table `table` writes its file: beside the database, as
    /// DuckDB's own spill directory is, in `<file>.staging/<schema>/<table>` with every
    /// byte outside `[A-Za-z0-9_-]` written as `%XX`, so any name maps to one directory.
    fn stage_dir(&self, table: &TableRef) -> PathBuf {
        let safe = |name: &str| -> String {
            name.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let mut base = self.path.clone().into_os_string();
        base.push(".staging");
        PathBuf::from(base).join(safe(&table.schema)).join(safe(&table.name))
    }

    fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: DuckDB rolls back an
        // unfinished transaction when the next one begins, so poisoning carries no meaning.
        conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`Destination::transaction`], with `before_commit` run on the open transaction after
    /// the statements (and after the `before-commit` failpoint, so that a crash there leaves
    /// nothing done anywhere), on the same blocking thread: its error rolls everything back (the lake
    /// publishes the transaction's rows there, committing here only once they are published).
    pub async fn transaction_then<T: Send + 'static>(
        &self,
        statements: Vec<String>,
        before_commit: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.with_conn(move |conn| transact(conn, &statements, before_commit)).await
    }

    /// [`DuckDb::transaction_then`] for statements that write `changed`'s rows of `target`
    /// ([`Destination::write_rows`]): the memory limit is raised by what DuckDB cannot
    /// spill for such a write ([`memory::allowance_mib`]) until the transaction ends.
    pub async fn write_then<T: Send + 'static>(
        &self,
        target: &TableRef,
        changed: &Changed,
        statements: Vec<String>,
        before_commit: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let base = self.memory_limit_mib;
        let target = target.clone();
        // Often one table (the staging table lists the Ids and holds the rows read): counted once.
        let mut listed: Vec<TableRef> = changed.ids.iter().chain(&changed.read).cloned().collect();
        listed.dedup();
        let any_row = changed.ids.is_none();
        self.with_conn(move |conn| {
            let extra = memory::write_allowance_mib(conn, &target, &listed, any_row)?;
            memory::set_limit(conn, base + extra)?;
            let out = transact(conn, &statements, before_commit);
            let reset = memory::set_limit(conn, base);
            let out = out?;
            reset?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` on the shared connection, off the async threads.
    pub(crate) async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut Self::lock(&conn)))
            .await
            .map_err(|e| Error::internal(format!("DuckDB task failed: {e}")))?
    }
}

/// Runs `statements` and `before_commit` in one transaction (see
/// [`DuckDb::transaction_then`]).
fn transact<T>(
    conn: &mut Connection,
    statements: &[String],
    before_commit: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction().map_err(|e| sql_error(e, "BEGIN"))?;
    for sql in statements {
        crate::failpoint::hit("consolidate-statement");
        tx.execute_batch(sql).map_err(|e| sql_error(e, sql))?;
    }
    crate::failpoint::hit("before-commit");
    let out = before_commit(&tx)?;
    // Dropping `tx` on an error above rolls everything back.
    tx.commit().map_err(|e| sql_error(e, "COMMIT"))?;
    Ok(out)
}

/// DuckDB's catalog type name → the [`SluiceType`] sluice created it from.
pub fn parse_type(name: &str) -> Option<SluiceType> {
    let upper = name.trim().to_ascii_uppercase();
    Some(match upper.as_str() {
        "VARCHAR" | "TEXT" => SluiceType::Text,
        "BOOLEAN" => SluiceType::Boolean,
        "INTEGER" => SluiceType::Int,
        "BIGINT" => SluiceType::Long,
        "DOUBLE" => SluiceType::Double,
        "DATE" => SluiceType::Date,
        "TIMESTAMP WITH TIME ZONE" | "TIMESTAMPTZ" => SluiceType::Timestamp,
        "TIME" => SluiceType::Time,
        "BLOB" => SluiceType::Binary,
        _ => {
            let inner = upper.strip_prefix("DECIMAL(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            SluiceType::Decimal { precision: p.trim().parse().ok()?, scale: s.trim().parse().ok()? }
        }
    })
}

/// Query results (Arrow) → rows of [`Value`]s.
fn rows_of(batches: &[ResultBatch]) -> Result<Vec<Vec<Value>>> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Int64 | DataType::Utf8 => Ok(c.clone()),
                d if d.is_integer() => duck_arrow::compute::cast(c, &DataType::Int64),
                _ => duck_arrow::compute::cast(c, &DataType::Utf8),
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::internal(format!("DuckDB result: {e}")))?;
        for row in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|c| {
                        if c.is_null(row) {
                            Value::Null
                        } else if let Some(ints) = c.as_any().downcast_ref::<Int64Array>() {
                            Value::Int(ints.value(row))
                        } else if let Some(text) = c.as_any().downcast_ref::<StringArray>() {
                            Value::Text(text.value(row).to_owned())
                        } else {
                            Value::Null
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// A result batch's rows as text, each value as Arrow displays it (no thousands separators,
/// nothing cut short), appended to `rows`.
fn text_rows(batch: &ResultBatch, rows: &mut Vec<Vec<Option<String>>>) -> Result<()> {
    let options = duck_arrow::util::display::FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| duck_arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::internal(format!("DuckDB result: {e}")))?;
    for row in 0..batch.num_rows() {
        rows.push(
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| (!c.is_null(row)).then(|| f.value(row).to_string()))
                .collect(),
        );
    }
    Ok(())
}

impl Destination for DuckDb {
    type Stage = DuckStage;

    fn dialect(&self) -> Dialect {
        Dialect::DuckDb
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn execute(&self, statements: Vec<String>) -> Result<()> {
        self.with_conn(move |conn| {
            for sql in &statements {
                conn.execute_batch(sql).map_err(|e| sql_error(e, sql))?;
            }
            Ok(())
        })
        .await
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<()> {
        self.transaction_then(statements, |_| Ok(())).await
    }

    async fn write_rows(&self, target: &TableRef, changed: Changed, statements: Vec<String>) -> Result<()> {
        self.write_then(target, &changed, statements, |_| Ok(())).await
    }

    async fn query(&self, sql: String) -> Result<Vec<Vec<Value>>> {
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare(&sql).map_err(|e| sql_error(e, &sql))?;
            let batches: Vec<ResultBatch> = stmt.query_arrow([]).map_err(|e| sql_error(e, &sql))?.collect();
            rows_of(&batches)
        })
        .await
    }

    async fn read_only(&self, sql: String) -> Result<QueryResult> {
        self.with_conn(move |conn| {
            let failed = |e: duckdb::Error| Error::user(format!("the query failed: DuckDB: {e}"));
            // Opened read-only by `sluice query`; rolled back whatever opened it.
            let tx = conn.transaction().map_err(|e| sql_error(e, "BEGIN"))?;
            let mut stmt = tx.prepare(&sql).map_err(failed)?;
            let arrow = stmt.query_arrow([]).map_err(failed)?;
            let columns = arrow.get_schema().fields().iter().map(|f| f.name().clone()).collect();
            let mut rows = Vec::new();
            for batch in arrow {
                text_rows(&batch, &mut rows)?;
            }
            drop(stmt);
            tx.rollback().map_err(|e| sql_error(e, "ROLLBACK"))?;
            Ok(QueryResult { columns, rows })
        })
        .await
    }

    async fn columns(&self, table: TableRef) -> Result<Option<Vec<ExistingColumn>>> {
        self.with_conn(move |conn| {
            let mut cols = Vec::new();
            for (name, ty) in catalog_columns(conn, &table)? {
                let Some(parsed) = parse_type(&ty) else {
                    return Err(Error::user(format!(
                        "{}.{}.{name}: has type {ty}, which sluice did not create and cannot merge into; restore \
                         the column's type or drop the table and run with --full-refresh",
                        table.schema, table.name
                    )));
                };
                cols.push(ExistingColumn { name, ty: parsed });
            }
            Ok(if cols.is_empty() { None } else { Some(cols) })
        })
        .await
    }

    async fn stage(&self, table: TableRef) -> Result<DuckStage> {
        // `discard` removed whatever an earlier load left here.
        let dir = self.stage_dir(&table);
        std::fs::create_dir_all(&dir).map_err(|e| stage_io_error(&dir, &e))?;
        DuckStage::start(self.clone(), table, dir)
    }

    async fn discard(&self, table: TableRef) -> Result<()> {
        let dir = self.stage_dir(&table);
        self.with_conn(move |conn| {
            let sql = "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?";
            let kind: Option<String> = conn
                .prepare(sql)
                .and_then(|mut stmt| stmt.query_row([&table.schema, &table.name], |row| row.get(0)))
                .map(Some)
                .or_else(|e| match e {
                    duckdb::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(sql_error(e, sql)),
                })?;
            let d = Dialect::DuckDb;
            let drop = match kind.as_deref() {
                Some("VIEW") => format!("DROP VIEW {}", d.table(&table)),
                Some(_) => format!("DROP TABLE {}", d.table(&table)),
                None => return Ok(()),
            };
            conn.execute_batch(&drop).map_err(|e| sql_error(e, &drop))
        })
        .await?;
        // Only once no view points at them.
        remove_dir(&dir)
    }
}

/// Removes a staging directory, if there is one.
fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::external_fatal(format!(
            "destination.path: cannot remove the staging directory {} ({e})",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// A load into one staging table (see the module docs): a thread of its own writes the
/// batches to a Parquet file, and [`Stage::finish`] puts a view over that file in the
/// table's place.
pub struct DuckStage {
    db: DuckDb,
    table: TableRef,
    tx: Option<tokio::sync::mpsc::Sender<RecordBatch>>,
    thread: Option<JoinHandle<Result<Staged>>>,
}

/// What the loader thread wrote.
struct Staged {
    rows: u64,
    /// The file and its columns, unless no row came.
    file: Option<(PathBuf, arrow::datatypes::SchemaRef)>,
}

impl DuckStage {
    /// Batches in flight between the extraction and the writer: enough to overlap the two,
    /// few enough to bound memory.
    const QUEUE: usize = 2;

    fn start(db: DuckDb, table: TableRef, dir: PathBuf) -> Result<Self> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(Self::QUEUE);
        let thread = std::thread::Builder::new()
            .name(format!("stage-{}", table.name))
            .spawn(move || -> Result<Staged> {
                let path = dir.join("part-00000.parquet");
                let io = |e: &dyn std::fmt::Display| stage_io_error(&path, e);
                let mut batches = std::iter::from_fn(|| rx.blocking_recv()).filter(|b| b.num_rows() > 0);
                // The first batch with rows gives the file its schema; none, no file.
                let Some(first) = batches.next() else { return Ok(Staged { rows: 0, file: None }) };
                let schema = first.schema();
                let file = std::fs::File::create(&path).map_err(|e| io(&e))?;
                let mut writer =
                    super::parquet::writer(file, schema.clone(), super::parquet::RowGroups::STAGING, &path.display())?;
                let mut rows = 0u64;
                for batch in std::iter::once(first).chain(batches) {
                    writer.write(&batch).map_err(|e| io(&e))?;
                    rows += batch.num_rows() as u64;
                }
                // No fsync: a crash discards staging anyway, and DuckDB reads the file
                // back through the same page cache.
                writer.close().map_err(|e| io(&e))?;
                Ok(Staged { rows, file: Some((path, schema)) })
            })
            .map_err(|e| Error::internal(format!("cannot start a loader thread: {e}")))?;
        Ok(Self { db, table, tx: Some(tx), thread: Some(thread) })
    }

    /// Waits for the thread; its error, if it stopped early.
    async fn join(&mut self) -> Result<Staged> {
        self.tx = None;
        let Some(thread) = self.thread.take() else { return Ok(Staged { rows: 0, file: None }) };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| Error::internal(format!("loader task failed: {e}")))?
            .map_err(|_| Error::internal("the DuckDB loader thread panicked"))?
    }
}

/// A staging file that cannot be written: most often a full disk.
fn stage_io_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::external_fatal(format!(
        "destination.path: cannot write the staging file {} ({e}); free space next to the database file",
        path.display()
    ))
}

impl Stage for DuckStage {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let Some(tx) = &self.tx else { return Err(Error::internal("write after the load ended")) };
        if tx.send(batch).await.is_err() {
            // The thread stopped: it has the reason.
            self.join().await?;
            return Err(Error::internal("the DuckDB loader stopped without an error"));
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64> {
        let staged = self.join().await?;
        let Some((file, schema)) = staged.file else {
            // Nothing loaded: the empty table stays.
            return Ok(0);
        };
        let table = self.table.clone();
        self.db
            .with_conn(move |conn| {
                let columns = catalog_columns(conn, &table)?;
                if columns.len() != schema.fields().len() {
                    return Err(Error::internal(format!(
                        "{}.{}: {} staged columns for {} in the table",
                        table.schema,
                        table.name,
                        schema.fields().len(),
                        columns.len()
                    )));
                }
                let d = Dialect::DuckDb;
                // By position, cast to the table's types: the view reads exactly like the
                // table it replaces, whatever Arrow type a column was staged as.
                let select: Vec<String> = schema
                    .fields()
                    .iter()
                    .zip(&columns)
                    .map(|(f, (name, ty))| {
                        format!("CAST({} AS {ty}) AS {}", d.quote_ident(f.name()), d.quote_ident(name))
                    })
                    .collect();
                let statements = [
                    format!("DROP TABLE {}", d.table(&table)),
                    format!(
                        "CREATE VIEW {} AS SELECT {} FROM read_parquet({})",
                        d.table(&table),
                        select.join(", "),
                        d.quote_literal(&file.display().to_string())
                    ),
                ];
                let tx = conn.transaction().map_err(|e| sql_error(e, "BEGIN"))?;
                for sql in &statements {
                    tx.execute_batch(sql).map_err(|e| sql_error(e, sql))?;
                }
                tx.commit().map_err(|e| sql_error(e, "COMMIT"))
            })
            .await?;
        Ok(staged.rows)
    }
}

/// The columns of a table or view, in order, with DuckDB's names for their types.
pub(crate) fn catalog_columns(conn: &Connection, table: &TableRef) -> Result<Vec<(String, String)>> {
    let sql = "SELECT column_name, data_type FROM information_schema.columns \
               WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position";
    let mut stmt = conn.prepare(sql).map_err(|e| sql_error(e, sql))?;
    let rows = stmt
        .query_map([&table.schema, &table.name], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
        .map_err(|e| sql_error(e, sql))?;
    rows.collect::<std::result::Result<_, _>>().map_err(|e| sql_error(e, sql))
}

// Dropping a `DuckStage` unfinished closes the queue, which ends the thread; an abandoned
// load is discarded before the next load of the same table, so nothing waits for it.

#[cfg(test)]
mod tests;
