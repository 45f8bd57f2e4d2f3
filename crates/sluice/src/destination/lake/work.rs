//! The lake as a [`Destination`] ([`LakeDb`]): a DuckDB work database that mirrors the
//! lake's tables runs sluice's consolidation SQL, as the DuckDB destination does, and each
//! transaction that changes a target's rows is published as one Delta version before the
//! work database commits it.
//!
//! Publishing ([`publish`]), inside the open work transaction, after its statements:
//! the buckets holding the Ids the transaction may have changed (every bucket for a
//! reconciliation, a full read's removals or a table's first version) are written as
//! Parquet by DuckDB, uploaded, and committed in one Delta version that removes the files
//! they replace, carrying the flow's mark (its `_sluice.flows` row: the window end) and its
//! transaction number. Only then does the work database commit, recording the version it
//! now mirrors. So the lake is the truth and the work database a cache of it:
//!
//! - a crash before the Delta commit leaves the lake as it was (and unreferenced files);
//!   the work transaction never committed;
//! - a crash after it leaves the work database a version behind: when the lake is next
//!   opened ([`LakeDb::refresh`]) every table whose mirrored version is not the lake's
//!   newest is rebuilt from that version's data files and mark. A lost work database is
//!   rebuilt the same way, and a table removed from the lake is forgotten, so its flow
//!   reads in full;
//! - another writer's commit on the same version refuses this one (put-if-absent); the
//!   work transaction rolls back, the table is rebuilt from the lake, and the flow's next
//!   attempt starts from what the other writer committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use duckdb::Connection;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use super::compact::compact;
use super::config::LakeConfig;
use super::delta::{Change, DeltaColumn, DeltaTable, NewFile, TableVersion, delta_type};
use super::export::{export, scratch_error};
use crate::consolidate::{self, Dialect, ExistingColumn, TableRef, lake};
use crate::destination::duckdb::{DuckDb, DuckStage, catalog_columns, parse_type, sql_error};
use crate::destination::files::FilesRoot;
use crate::destination::s3::client;
use crate::destination::{Changed, Destination, QueryResult, Value};
use crate::model::SluiceType;
use crate::{Error, Result};

/// Buckets exported by one scan of the work table, each into its own open Parquet file.
const OPEN_FILES: usize = 4;

/// A checkpoint is written every this many versions, so readers replay few commits.
const CHECKPOINT_EVERY: u64 = 10;

/// Where the lake's tables live and how they are reached.
struct Lake {
    /// The root as the config writes it, for messages.
    shown: String,
    /// The root as a directory URL (ends with `/`).
    root: Url,
    store: Arc<dyn ObjectStore>,
    /// Where exports and downloads are written before they are uploaded or read.
    scratch: PathBuf,
    /// Files only versions older than this reference are deleted ([`DeltaTable::expire`]).
    retention: std::time::Duration,
}

impl Lake {
    fn open(config: &LakeConfig) -> Result<Self> {
        let scratch = config.work_dir.join("scratch");
        let (root, store): (Url, Arc<dyn ObjectStore>) = match &config.root {
            FilesRoot::Local(path) => {
                std::fs::create_dir_all(path).map_err(|e| {
                    Error::user(format!("destination.path: cannot create the lake's directory {}: {e}", path.display()))
                })?;
                let absolute = std::fs::canonicalize(path)
                    .map_err(|e| Error::user(format!("destination.path: cannot resolve {}: {e}", path.display())))?;
                let root = Url::from_directory_path(&absolute).map_err(|()| {
                    Error::user(format!("destination.path: {} is not usable as a directory", path.display()))
                })?;
                (root, Arc::new(object_store::local::LocalFileSystem::new()))
            }
            FilesRoot::S3(s3) => {
                let prefix = if s3.prefix.is_empty() { String::new() } else { format!("{}/", s3.prefix) };
                let root = Url::parse(&format!("s3://{}/{prefix}", s3.bucket))
                    .map_err(|e| Error::user(format!("destination.path: {e}")))?;
                let store = client(&s3.bucket, s3.region.as_deref(), s3.endpoint.as_deref(), "destination.path")?;
                (root, Arc::new(store))
            }
        };
        Ok(Self { shown: config.root.shown(), root, store, scratch, retention: config.retention })
    }

    /// The Delta table of `target`: `<root>/<schema>/<table>/`.
    fn table(&self, target: &TableRef) -> Result<DeltaTable> {
        self.table_at(target, &format!("{}/{}/", target.schema, target.name))
    }

    /// The raw layer of `target`: `<root>/<schema>/raw/<table>/`.
    fn raw_table(&self, target: &TableRef) -> Result<DeltaTable> {
        self.table_at(target, &format!("{}/{}/{}/", target.schema, lake::RAW_DIR, target.name))
    }

    fn table_at(&self, target: &TableRef, relative: &str) -> Result<DeltaTable> {
        let url = self
            .root
            .join(relative)
            .map_err(|e| Error::internal(format!("the lake's URL for {}.{}: {e}", target.schema, target.name)))?;
        DeltaTable::new(url, self.store.clone(), target)
    }

    /// A new scratch directory, empty.
    fn scratch_dir(&self, what: &str) -> Result<PathBuf> {
        let dir = self.scratch.join(format!("{what}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).map_err(|e| scratch_error(&dir, &e))?;
        Ok(dir)
    }
}

/// The lake open for a command: its work database (whose file lock is the run lock of
/// this machine's runs) and the lake it mirrors.
pub struct LakeDb {
    work: DuckDb,
    lake: Arc<Lake>,
    /// Whether the rows each transaction read are appended to the raw layer.
    raw: bool,
}

impl LakeDb {
    /// Opens the work database under `config.work_dir` (creating it), with its control
    /// and mirror tables.
    pub fn open(config: &LakeConfig) -> Result<Self> {
        let lake = Lake::open(config)?;
        std::fs::create_dir_all(&config.work_dir).map_err(|e| scratch_error(&config.work_dir, &e))?;
        let work = DuckDb::open_with(&config.work_dir.join("work.duckdb"), config.memory_limit_mib)?;
        // What a crashed publication left is never read again; removed only once the work
        // database's lock is held, so never under another run's feet.
        if lake.scratch.exists() {
            std::fs::remove_dir_all(&lake.scratch).map_err(|e| scratch_error(&lake.scratch, &e))?;
        }
        Ok(Self { work, lake: Arc::new(lake), raw: config.raw })
    }

    /// Brings the work tables of `targets` to the lake's newest versions (see the module
    /// docs): rebuilt where behind or missing, forgotten where the lake lost them.
    pub async fn refresh(&self, targets: &[TableRef]) -> Result<()> {
        let mut setup = consolidate::control_ddl(Dialect::DuckDb, chrono::Utc::now());
        setup.push(lake::mirror_ddl());
        self.work.transaction(setup).await?;
        for target in targets {
            self.refresh_one(target).await?;
        }
        Ok(())
    }

    async fn refresh_one(&self, target: &TableRef) -> Result<()> {
        let table = self.lake.table(target)?;
        let newest = table.version(None).await?;
        let mirrored = self.mirrored(target).await?;
        let d = Dialect::DuckDb;
        match (newest, mirrored) {
            (None, None) => Ok(()),
            (None, Some(_)) => {
                tracing::warn!(
                    table = %table.root(),
                    "the lake no longer holds this table although it was written: its flow reads in full"
                );
                let mut forget = vec![format!("DROP TABLE IF EXISTS {}", d.table(target))];
                forget.extend(lake::flow_restore(target, None));
                forget.push(lake::mirror_forget(target));
                self.work.transaction(forget).await
            }
            (Some(v), mirrored) => {
                if mirrored.map(|(at, _)| at) != Some(v.number) {
                    self.rebuild(target, &table, &v).await?;
                }
                self.settle_raw(target, Some(&v)).await.map(|_| ())
            }
        }
    }

    /// Commits to the raw layer of `target` the rows that version `v` of its table read,
    /// if a crash came between the two commits ([`lake::LakeMark::raw`]); `None`: the table
    /// has no version, so nothing is owed. Returns the raw table's newest version (read only
    /// where the raw layer is kept or was owed rows).
    async fn settle_raw(&self, target: &TableRef, v: Option<&TableVersion>) -> Result<Option<TableVersion>> {
        let mark = v.and_then(|v| v.mark.as_deref()).and_then(lake::LakeMark::parse);
        let pending = mark.as_ref().and_then(|m| m.raw.as_ref());
        if pending.is_none() && !self.raw {
            return Ok(None);
        }
        let raw = self.lake.raw_table(target)?;
        let newest = raw.version(None).await?;
        let (Some(pending), Some(v)) = (pending, v) else { return Ok(newest) };
        let held =
            newest.as_ref().is_some_and(|r| pending.files.iter().all(|p| r.files.iter().any(|f| f.path == p.path)));
        if held {
            return Ok(newest);
        }
        for file in &pending.files {
            if let Err(e) = self.lake.store.head(&raw.object_path(&file.path)?).await {
                tracing::warn!(
                    table = %raw.root(),
                    file = %file.path,
                    error = %e,
                    "the raw layer lacks the rows version {} read: their file is gone",
                    v.number
                );
                return Ok(newest);
            }
        }
        let run_id = mark.as_ref().and_then(|m| m.run_id.clone());
        let committed = commit_raw(&self.lake, &raw, newest.as_ref(), pending, v.number, run_id).await?;
        tracing::info!(table = %raw.root(), version = v.number, "the raw layer received the rows a crash kept from it");
        Ok(Some(committed))
    }

    /// The Delta version the work table of `target` holds, and its bucket count.
    async fn mirrored(&self, target: &TableRef) -> Result<Option<(u64, u32)>> {
        let rows = self.work.query(lake::mirror_read(target)).await?;
        Ok(rows.first().and_then(|r| Some((r.first()?.as_i64()? as u64, r.get(1)?.as_i64()? as u32))))
    }

    /// Replaces the work table of `target` and its flow's control row by version `v`.
    async fn rebuild(&self, target: &TableRef, table: &DeltaTable, v: &TableVersion) -> Result<()> {
        let mark = v.mark.as_deref().and_then(lake::LakeMark::parse).ok_or_else(|| {
            Error::user(format!(
                "Delta table {} (version {}) was not written by this sluice (it carries no sluice mark it can \
                 read); choose another destination.path or schema",
                table.root(),
                v.number
            ))
        })?;
        let d = Dialect::DuckDb;
        let download = self.lake.scratch_dir("rebuild")?;
        let mut paths = Vec::new();
        for (n, file) in v.files.iter().enumerate() {
            paths.push(table.local_copy(&file.path, &download, n).await?);
        }
        let columns: Vec<String> =
            mark.columns.iter().map(|(name, ty)| format!("{} {ty}", d.quote_ident(name))).collect();
        let mut statements = vec![
            format!("CREATE SCHEMA IF NOT EXISTS {}", d.quote_ident(&target.schema)),
            format!("DROP TABLE IF EXISTS {}", d.table(target)),
            format!("CREATE TABLE {} ({})", d.table(target), columns.join(", ")),
        ];
        if !paths.is_empty() {
            let list: Vec<String> = paths.iter().map(|p| d.quote_literal(&p.display().to_string())).collect();
            statements.push(format!(
                "INSERT INTO {} BY NAME SELECT * FROM read_parquet([{}], union_by_name = true)",
                d.table(target),
                list.join(", ")
            ));
        }
        statements.extend(lake::flow_restore(target, mark.flow.as_deref()));
        statements.extend(lake::mirror_write(target, v.number, mark.buckets));
        let rebuilt = self.work.transaction(statements).await;
        let _ = std::fs::remove_dir_all(&download);
        rebuilt?;
        tracing::info!(table = %table.root(), version = v.number, files = v.files.len(), "work table rebuilt from the lake");
        Ok(())
    }
}

impl Destination for LakeDb {
    type Stage = DuckStage;

    fn dialect(&self) -> Dialect {
        Dialect::DuckDb
    }

    fn location(&self) -> String {
        format!("lake {} (work database {})", self.lake.shown, self.work.path().display())
    }

    async fn execute(&self, statements: Vec<String>) -> Result<()> {
        self.work.execute(statements).await
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<()> {
        self.work.transaction(statements).await
    }

    async fn write_rows(&self, target: &TableRef, changed: Changed, statements: Vec<String>) -> Result<()> {
        let table = self.lake.table(target)?;
        let base = match self.mirrored(target).await? {
            Some((at, buckets)) => {
                let v = table.version(Some(at)).await?.ok_or_else(|| {
                    Error::busy(format!("Delta table {} lost version {at} while this run used it", table.root()))
                })?;
                Some((v, buckets))
            }
            None => None,
        };
        // The raw layer owes nothing from the version this commit builds on.
        let raw_base = self.settle_raw(target, base.as_ref().map(|(v, _)| v)).await?;
        let raw = match (&changed.read, self.raw) {
            (Some(staging), true) => {
                Some(RawTarget { table: self.lake.raw_table(target)?, base: raw_base, staging: staging.clone() })
            }
            _ => None,
        };
        let sized = changed.clone();
        let job = Publish {
            lake: self.lake.clone(),
            table,
            target: target.clone(),
            changed,
            base,
            raw,
            handle: tokio::runtime::Handle::current(),
        };
        let published = self.work.write_then(target, &sized, statements, move |conn| job.run(conn)).await;
        if published.is_err() {
            // The lake may have moved on (another writer, or this commit landed though its
            // answer was lost): the next attempt starts from what it holds.
            if let Err(e) = self.refresh_one(target).await {
                tracing::warn!(error = %e, "could not rebuild the work table from the lake after a failed commit");
            }
        }
        published
    }

    async fn query(&self, sql: String) -> Result<Vec<Vec<Value>>> {
        self.work.query(sql).await
    }

    async fn read_only(&self, sql: String) -> Result<QueryResult> {
        self.work.read_only(sql).await
    }

    async fn columns(&self, table: TableRef) -> Result<Option<Vec<ExistingColumn>>> {
        self.work.columns(table).await
    }

    async fn stage(&self, table: TableRef) -> Result<DuckStage> {
        self.work.stage(table).await
    }

    async fn discard(&self, table: TableRef) -> Result<()> {
        self.work.discard(table).await
    }
}

/// One publication of a work transaction's rows of `target` (see the module docs).
struct Publish {
    lake: Arc<Lake>,
    table: DeltaTable,
    target: TableRef,
    changed: Changed,
    /// The version the work table mirrors, and its bucket count; `None`: not in the lake yet.
    base: Option<(TableVersion, u32)>,
    /// Where the rows the transaction read are appended, when the raw layer is kept.
    raw: Option<RawTarget>,
    handle: tokio::runtime::Handle,
}

/// A table's raw layer, as a publication appends to it.
struct RawTarget {
    table: DeltaTable,
    /// Its newest version; `None`: not written yet.
    base: Option<TableVersion>,
    /// The staging table holding the rows read.
    staging: TableRef,
}

impl Publish {
    /// Runs on the work transaction's thread, before its commit.
    fn run(self, conn: &Connection) -> Result<()> {
        let d = Dialect::DuckDb;
        let work_columns = catalog_columns(conn, &self.target)?;
        if work_columns.is_empty() {
            return Err(Error::internal(format!("{}: no work table to publish", d.table(&self.target))));
        }
        let typed = typed_columns(&shown(&self.target), &work_columns)?;
        let buckets = match &self.base {
            Some((_, n)) => *n,
            None => lake::buckets_for(count(conn, &format!("SELECT count(*) FROM {}", d.table(&self.target)))?),
        };
        let id = &self.changed.id;
        let rewrite: Vec<u32> = match (&self.base, &self.changed.ids) {
            (Some(_), Some(ids)) => distinct_buckets(conn, id, buckets, ids)?,
            _ => (0..buckets).collect(),
        };
        let export = self.lake.scratch_dir("publish")?;
        let published = self.publish(conn, &typed, &work_columns, buckets, &rewrite, &export);
        let _ = std::fs::remove_dir_all(&export);
        let version = published?;
        for sql in lake::mirror_write(&self.target, version, buckets) {
            conn.execute_batch(&sql).map_err(|e| sql_error(e, &sql))?;
        }
        Ok(())
    }

    /// Exports, uploads and commits; returns the Delta version committed.
    fn publish(
        &self,
        conn: &Connection,
        typed: &[(String, SluiceType)],
        work_columns: &[(String, String)],
        buckets: u32,
        rewrite: &[u32],
        scratch: &Path,
    ) -> Result<u64> {
        let d = Dialect::DuckDb;
        let next = self.base.as_ref().map_or(0, |(v, _)| v.number + 1);
        let token = format!("{:08x}", rand::random::<u32>());
        let mut add = Vec::new();
        let started = std::time::Instant::now();
        let bucket = lake::bucket_sql(&self.changed.id, buckets);
        // At most OPEN_FILES buckets per scan: an open Parquet writer holds buffers for every
        // column, whatever its row-group bound (64 at once took 691 MB at 10 M Accounts).
        let dir = scratch.join("table");
        std::fs::create_dir_all(&dir).map_err(|e| scratch_error(&dir, &e))?;
        for group in rewrite.chunks(OPEN_FILES) {
            // Every bucket in one scan: no filter (the hash is computed once per row).
            let filter = if group.len() as u32 == buckets {
                String::new()
            } else {
                let list: Vec<String> = group.iter().map(u32::to_string).collect();
                format!(" WHERE {bucket} IN ({})", list.join(", "))
            };
            let sql = format!("SELECT {}, {bucket} FROM {}{filter}", export_list(typed), d.table(&self.target));
            for file in export(conn, &sql, &dir, Some(group.len()))? {
                let relative = lake::file_name(file.bucket, next, &token, 0);
                add.push(self.send(&self.table, &file.path, &relative, file.rows)?);
                std::fs::remove_file(&file.path).map_err(|e| scratch_error(&file.path, &e))?;
            }
        }
        let base = self.base.as_ref().map(|(v, _)| v);
        let remove = match base {
            None => Vec::new(),
            Some(v) => self.files_of(v, rewrite)?,
        };
        let columns = new_columns(&self.table, base, typed)?;
        let table_ms = started.elapsed().as_millis() as u64;
        let raw = match &self.raw {
            Some(r) => self.export_raw(conn, r, next, &token, &scratch.join("raw"))?,
            None => None,
        };
        let flow = first_text(conn, &lake::flow_json(&self.target))?;
        let run_id = Some(self.changed.run_id.clone());
        let mark =
            lake::LakeMark { flow, buckets, columns: work_columns.to_vec(), run_id: run_id.clone(), raw: raw.clone() };
        let change = Change { columns, remove, add: add.clone(), mark: mark.to_json(), data_change: true };
        let raw_ms = started.elapsed().as_millis() as u64 - table_ms;
        crate::failpoint::hit("before-publish");
        let committed = match self.handle.block_on(self.table.commit(base, change)) {
            Ok(v) => v,
            Err(e) => {
                // Files no version references; cleanup would find them too.
                for file in &add {
                    if let Ok(path) = self.table.object_path(&file.path) {
                        let _ = self.handle.block_on(self.lake.store.delete(&path));
                    }
                }
                return Err(e);
            }
        };
        // The lake holds the commit, the work database and the raw layer not yet: the next
        // opening rebuilds the one and settles the other.
        crate::failpoint::hit("after-publish");
        if committed.number % CHECKPOINT_EVERY == 0 {
            self.handle.block_on(maintain(&self.lake, &self.table, &committed));
        }
        if let (Some(r), Some(pending)) = (&self.raw, &raw) {
            let appended = commit_raw(&self.lake, &r.table, r.base.as_ref(), pending, committed.number, run_id);
            if let Err(e) = self.handle.block_on(appended) {
                // The table's version stands; its mark keeps the rows owed, settled later.
                tracing::warn!(table = %r.table.root(), error = %e, "could not append to the raw layer; retried at the next commit");
            }
        }
        tracing::info!(
            table = %self.table.root(),
            version = committed.number,
            added = add.len(),
            buckets = rewrite.len(),
            table_ms,
            raw_ms,
            commit_ms = started.elapsed().as_millis() as u64 - table_ms - raw_ms,
            "published to the lake"
        );
        Ok(committed.number)
    }

    /// The data files of `v` holding the buckets `rewrite`. A file whose name is not one
    /// sluice gives stops the flow: a bucket is replaced whole, which a foreign file would
    /// survive.
    fn files_of(&self, v: &TableVersion, rewrite: &[u32]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for file in &v.files {
            let bucket = lake::file_bucket(&file.path).ok_or_else(|| {
                Error::user(format!(
                    "Delta table {}: data file {} was not written by sluice; sluice replaces a bucket's files whole \
                     and cannot merge into it: write this flow to another path or schema",
                    self.table.root(),
                    file.path
                ))
            })?;
            if rewrite.contains(&bucket) {
                out.push(file.path.clone());
            }
        }
        Ok(out)
    }

    /// The rows staged in `r.staging` as one Parquet file written in `dir`, uploaded to the raw
    /// layer for version `version`; `None` when none were read. A column whose type the raw
    /// table cannot take is refused here, before anything is committed.
    fn export_raw(
        &self,
        conn: &Connection,
        r: &RawTarget,
        version: u64,
        token: &str,
        dir: &Path,
    ) -> Result<Option<lake::RawPending>> {
        let d = Dialect::DuckDb;
        let mut columns = catalog_columns(conn, &r.staging)?;
        if columns.is_empty() {
            return Err(Error::internal(format!(
                "{}: no staging table to append to the raw layer",
                d.table(&r.staging)
            )));
        }
        let typed = typed_columns(&shown(&r.staging), &columns)?;
        let sql = format!(
            "SELECT {}, {} FROM {}",
            export_list(&typed),
            lake::raw_extras(&self.changed.run_id, version),
            d.table(&r.staging),
        );
        std::fs::create_dir_all(dir).map_err(|e| scratch_error(dir, &e))?;
        let Some(file) = export(conn, &sql, dir, None)?.into_iter().next() else { return Ok(None) };
        columns.push((consolidate::RUN_ID.to_owned(), "VARCHAR".to_owned()));
        columns.push((lake::RAW_VERSION.to_owned(), "BIGINT".to_owned()));
        new_columns(&r.table, r.base.as_ref(), &typed_columns(&shown(&r.staging), &columns)?)?;
        let relative = lake::raw_file_name(version, token);
        let sent = self.send(&r.table, &file.path, &relative, file.rows)?;
        let file = lake::RawFile { path: sent.path, size: sent.size, rows: sent.rows };
        Ok(Some(lake::RawPending { files: vec![file], columns }))
    }

    /// Uploads the local `file` of `rows` rows as `relative` under `table`'s root.
    fn send(&self, table: &DeltaTable, file: &Path, relative: &str, rows: u64) -> Result<NewFile> {
        self.handle.block_on(table.upload(file, relative, rows))
    }
}

/// Every data file's select list of `typed`: the columns as they are, a time of day as its
/// text (Delta has no such type, see `delta_type`).
fn export_list(typed: &[(String, SluiceType)]) -> String {
    let d = Dialect::DuckDb;
    let select: Vec<String> = typed
        .iter()
        .map(|(name, ty)| match ty {
            SluiceType::Time => format!("CAST({0} AS VARCHAR) AS {0}", d.quote_ident(name)),
            _ => d.quote_ident(name),
        })
        .collect();
    select.join(", ")
}

/// Every [`CHECKPOINT_EVERY`] versions: a checkpoint, so readers replay few commits, and
/// the files no version within the retention references deleted. Best effort: the commit
/// stands either way, and the next round does what this one could not.
async fn maintain(lake: &Lake, table: &DeltaTable, committed: &TableVersion) {
    let root = table.root();
    if let Err(e) = table.checkpoint(committed).await {
        tracing::warn!(table = %root, error = %e, "could not write a checkpoint; readers replay the log");
    }
    match table.expire(lake.retention, committed).await {
        Ok(expired) if expired.files > 0 => {
            tracing::info!(table = %root, files = expired.files, bytes = expired.bytes, "expired old data files");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(table = %root, error = %e, "could not delete expired data files"),
    }
}

/// Appends `pending` to the raw table `raw` (newest version `base`) as the rows that
/// version `version` of its table read, in one Delta version.
async fn commit_raw(
    lake: &Lake,
    raw: &DeltaTable,
    base: Option<&TableVersion>,
    pending: &lake::RawPending,
    version: u64,
    run_id: Option<String>,
) -> Result<TableVersion> {
    let columns = new_columns(raw, base, &typed_columns(raw.root().as_str(), &pending.columns)?)?;
    let add = pending.files.iter().map(|f| NewFile { path: f.path.clone(), size: f.size, rows: f.rows }).collect();
    let mark = lake::RawMark { version, run_id }.to_json();
    let committed = raw.commit(base, Change { columns, remove: Vec::new(), add, mark, data_change: true }).await?;
    if committed.number % CHECKPOINT_EVERY == 0 {
        maintain(lake, raw, &committed).await;
    }
    // The files just appended stay as they are: the table's newest mark names them, and
    // the next opening looks for them by name (`settle_raw`).
    let keep: Vec<String> = pending.files.iter().map(|f| f.path.clone()).collect();
    let token = format!("{:08x}", rand::random::<u32>());
    let name = |n: usize| lake::raw_compacted_name(committed.number + 1, &token, n);
    let scratch = lake.scratch.join(format!("compact-{token}"));
    match compact(raw, &committed, &keep, &scratch, &name).await {
        Ok(Some(c)) => {
            tracing::info!(table = %raw.root(), version = c.version.number, removed = c.removed, added = c.added, "compacted small files");
            Ok(c.version)
        }
        Ok(None) => Ok(committed),
        Err(e) => {
            // The rows are appended either way; the next append tries again.
            tracing::warn!(table = %raw.root(), error = %e, "could not compact the raw layer's small files");
            Ok(committed)
        }
    }
}

/// `schema.table`, for messages.
fn shown(table: &TableRef) -> String {
    format!("{}.{}", table.schema, table.name)
}

/// The work table's columns with their types, which sluice created.
fn typed_columns(table: &str, columns: &[(String, String)]) -> Result<Vec<(String, SluiceType)>> {
    columns
        .iter()
        .map(|(name, ty)| {
            parse_type(ty)
                .map(|t| (name.clone(), t))
                .ok_or_else(|| Error::internal(format!("{table}.{name}: type {ty} has no Delta type")))
        })
        .collect()
}

/// The Delta columns to add on `base` (all of them for a new table); a column whose type
/// changed is refused: Delta tables cannot change a column's type in place.
fn new_columns(
    table: &DeltaTable,
    base: Option<&TableVersion>,
    typed: &[(String, SluiceType)],
) -> Result<Vec<DeltaColumn>> {
    let mut out = Vec::new();
    for (name, ty) in typed {
        let wanted = delta_type(*ty)?;
        match base.and_then(|v| v.columns.iter().find(|c| &c.name == name)) {
            None => out.push(DeltaColumn { name: name.clone(), ty: wanted }),
            Some(have) if have.ty == wanted => {}
            Some(have) => {
                return Err(Error::user(format!(
                    "Delta table {}: column {name} holds {:?} and the source now needs {:?}; a Delta column \
                     cannot change its type: write the flow to another schema, or remove the table and run \
                     `sluice sync --full-refresh`",
                    table.root(),
                    have.ty,
                    wanted
                )));
            }
        }
    }
    Ok(out)
}

/// The buckets of the Ids listed in column `id` of `ids`.
fn distinct_buckets(conn: &Connection, id: &str, buckets: u32, ids: &TableRef) -> Result<Vec<u32>> {
    let sql =
        format!("SELECT DISTINCT {} FROM {} ORDER BY 1", lake::bucket_sql(id, buckets), Dialect::DuckDb.table(ids));
    let mut stmt = conn.prepare(&sql).map_err(|e| sql_error(e, &sql))?;
    let rows = stmt.query_map([], |row| row.get::<_, i32>(0)).map_err(|e| sql_error(e, &sql))?;
    rows.map(|r| r.map(|b| b as u32).map_err(|e| sql_error(e, &sql))).collect()
}

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    conn.query_row(sql, [], |row| row.get::<_, i64>(0)).map(|n| n as u64).map_err(|e| sql_error(e, sql))
}

/// The first column of the first row as text, if any.
fn first_text(conn: &Connection, sql: &str) -> Result<Option<String>> {
    let mut stmt = conn.prepare(sql).map_err(|e| sql_error(e, sql))?;
    let mut rows = stmt.query([]).map_err(|e| sql_error(e, sql))?;
    match rows.next().map_err(|e| sql_error(e, sql))? {
        Some(row) => row.get::<_, Option<String>>(0).map_err(|e| sql_error(e, sql)),
        None => Ok(None),
    }
}
