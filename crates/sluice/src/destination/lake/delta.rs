//! One Delta Lake table, as the lake destination keeps it: its versions read
//! ([`DeltaTable::version`]: the data files of the snapshot, never a glob; the flow's mark;
//! the flow's transaction number) and its changes committed ([`DeltaTable::commit`]).
//!
//! A commit is one Delta version holding, together: the files it adds and the files it
//! removes (copy-on-write: a file is replaced whole, no deletion vectors), the flow's
//! application transaction (`txn`: app id and the next number, so a commit that landed
//! before a crash is recognised and not applied twice), and the flow's mark, a JSON
//! document in the table's domain metadata ([`LAKE_MARK_DOMAIN`]) (window end, run id): what the flow
//! committed is in the same atomic step as the data. Two writers that commit on the same
//! version are told apart by the store's put-if-absent; the loser gets [`Error::busy`]
//! and changes nothing.
//!
//! The protocol written is what delta_kernel writes for a new table plus the
//! `domainMetadata` writer feature: readers need no table feature (reader version 3 with
//! none listed), so the Python `deltalake` package, Polars, DuckDB, Spark and Trino read it.
//!
//! delta_kernel's API is blocking; each call here runs on a blocking thread, and its I/O
//! on one multi-thread runtime the process keeps for Delta ([`executor`]), so it works
//! from any async caller.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, Int64Array, MapBuilder, StringArray, StringBuilder, StructArray};
use arrow::datatypes::{DataType as ArrowType, Field, Fields, Schema};
use arrow::record_batch::RecordBatch;
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::schema::{DataType, StructField, StructType};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::{CommitResult, Transaction, UpdateTableOperation};
use delta_kernel::{FilteredEngineData, Snapshot, SnapshotRef};
use delta_kernel_default_engine::DefaultEngine;
use delta_kernel_default_engine::DefaultEngineBuilder;
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
pub use url::Url;

use super::export::scratch_error;
use crate::consolidate::{LAKE_MARK_DOMAIN, TableRef, lake_app_id};
use crate::destination::s3::{UploadError, upload_file};
use crate::model::SluiceType;
use crate::{Error, Result};

/// Pieces in which data files are uploaded.
const UPLOAD_CHUNK: usize = 8 << 20;

/// What delta_kernel writes into `commitInfo.engineInfo`.
const ENGINE_INFO: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

/// Where Delta's I/O runs: one multi-thread runtime for the whole process, made on first
/// use and never dropped (a runtime may not be dropped inside an async context).
fn executor() -> Result<Arc<TokioMultiThreadExecutor>> {
    // `get_or_init` runs one initializer: no second runtime is made and dropped.
    static EXECUTOR: OnceLock<std::result::Result<Arc<TokioMultiThreadExecutor>, String>> = OnceLock::new();
    EXECUTOR
        .get_or_init(|| {
            TokioMultiThreadExecutor::new_owned_runtime(Some(2), None).map(Arc::new).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| Error::internal(format!("starting the runtime for Delta I/O: {e}")))
}

/// The Delta type of a column of `ty`. Delta has no time of day: a time is its text
/// (`HH:MM:SS.mmm`), which sorts as the time does.
pub fn delta_type(ty: SluiceType) -> Result<DataType> {
    Ok(match ty {
        SluiceType::Id | SluiceType::Text | SluiceType::Time => DataType::STRING,
        SluiceType::Boolean => DataType::BOOLEAN,
        SluiceType::Int => DataType::INTEGER,
        SluiceType::Long => DataType::LONG,
        SluiceType::Decimal { precision, scale } => DataType::decimal(precision, scale)
            .map_err(|e| Error::internal(format!("decimal({precision},{scale}) as a Delta type: {e}")))?,
        SluiceType::Double => DataType::DOUBLE,
        SluiceType::Date => DataType::DATE,
        SluiceType::Timestamp => DataType::TIMESTAMP,
        SluiceType::Binary => DataType::BINARY,
    })
}

/// A column of a Delta table: its name and type (every column may hold null).
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaColumn {
    /// The column's name.
    pub name: String,
    /// Its type.
    pub ty: DataType,
}

/// A data file of a version: its path relative to the table's root, and its size.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataFile {
    /// Relative to the table's root (`part-….parquet`).
    pub path: String,
    /// Bytes.
    pub size: i64,
}

/// A file written for a commit to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// Relative to the table's root; written already.
    pub path: String,
    /// Bytes.
    pub size: i64,
    /// Rows it holds (the add action's `stats.numRecords`).
    pub rows: i64,
}

/// One version of the table, as read.
#[derive(Clone)]
pub struct TableVersion {
    snapshot: SnapshotRef,
    /// The Delta version number.
    pub number: u64,
    /// The data files of the version, by path.
    pub files: Vec<DataFile>,
    /// The table's columns.
    pub columns: Vec<DeltaColumn>,
    /// The flow's mark at this version ([`LAKE_MARK_DOMAIN`]), if one was committed.
    pub mark: Option<String>,
    /// The flow's last transaction number (its `txn` version), if any.
    pub txn: Option<i64>,
}

impl std::fmt::Debug for TableVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableVersion")
            .field("number", &self.number)
            .field("files", &self.files)
            .field("mark", &self.mark)
            .field("txn", &self.txn)
            .finish_non_exhaustive()
    }
}

/// What one commit changes.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// The table's columns when it is created; on an existing table, columns to add
    /// (schema evolution: a new source field is a new nullable column).
    pub columns: Vec<DeltaColumn>,
    /// Files of the base version to remove (relative paths).
    pub remove: Vec<String>,
    /// Files to add, written already.
    pub add: Vec<NewFile>,
    /// The flow's new mark ([`LAKE_MARK_DOMAIN`]).
    pub mark: String,
    /// Whether the commit changes data (`dataChange`): false for a compaction, which
    /// rewrites rows without changing them.
    pub data_change: bool,
}

/// What [`DeltaTable::expire`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Data files deleted.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// A Delta table at a URL (`file:///…/` or `s3://bucket/prefix/`), written by the flow of
/// one target (its application id: [`lake_app_id`]).
pub struct DeltaTable {
    root: Url,
    store: Arc<dyn ObjectStore>,
    engine: Arc<DefaultEngine<TokioMultiThreadExecutor>>,
    app_id: String,
}

impl DeltaTable {
    /// The table at `root` (a directory URL: it ends with `/`), read and written through
    /// `store`, which must resolve `root`'s path (a local file system, or the bucket's
    /// client), holding `target`.
    pub fn new(root: Url, store: Arc<dyn ObjectStore>, target: &TableRef) -> Result<Self> {
        if !root.path().ends_with('/') {
            return Err(Error::internal(format!("a Delta table's root must end with '/': {root}")));
        }
        let engine = DefaultEngineBuilder::new(store.clone()).with_task_executor(executor()?).build();
        Ok(Self { root, store, engine: Arc::new(engine), app_id: lake_app_id(target) })
    }

    /// The table's root URL.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The object path of `relative` (plain text, not URL-encoded) under the root, for
    /// writing a data file there.
    pub fn object_path(&self, relative: &str) -> Result<ObjectPath> {
        let root = ObjectPath::from_url_path(self.root.path())
            .map_err(|e| Error::user(format!("Delta table {}: the path is not usable: {e}", self.root)))?;
        Ok(relative.split('/').filter(|part| !part.is_empty()).fold(root, |path, part| path.join(part)))
    }

    /// Whether the table has a log at all (a first commit).
    async fn exists(&self) -> Result<bool> {
        let log = self.object_path("_delta_log")?;
        let mut listing = self.store.list(Some(&log));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.io_error("listing its log", e))?;
            let name = meta.location.filename().unwrap_or_default();
            if name.ends_with(".json") || name.contains(".checkpoint") {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Version `at` of the table (the newest when `None`); `None` when the table has no
    /// commit yet.
    pub async fn version(&self, at: Option<u64>) -> Result<Option<TableVersion>> {
        if !self.exists().await? {
            return Ok(None);
        }
        let (root, engine, app_id) = (self.root.clone(), self.engine.clone(), self.app_id.clone());
        let shown = self.root.to_string();
        blocking(move || {
            let mut builder = Snapshot::builder_for(root.as_str());
            if let Some(at) = at {
                builder = builder.at_version(at);
            }
            let snapshot = builder.build(engine.as_ref()).map_err(|e| read_error(&shown, at, e))?;
            read_version(snapshot, engine.as_ref(), &app_id).map(Some).map_err(|e| read_error(&shown, at, e))
        })
        .await
    }

    /// Commits `change` on `base` (`None`: creates the table). The flow's transaction
    /// number becomes one more than `base`'s. Returns the version committed. Another
    /// writer's commit on the same version makes it [`Error::busy`], with nothing changed,
    /// unless that version is this very commit (its transaction number and its mark, which
    /// names the run), landed by an earlier attempt whose answer was lost: then it is
    /// returned as committed.
    /// Any other error may come after the commit landed (a reply lost on the way back):
    /// the newest version's [`TableVersion::txn`] tells whether it did.
    pub async fn commit(&self, base: Option<&TableVersion>, change: Change) -> Result<TableVersion> {
        let (root, engine, app_id) = (self.root.clone(), self.engine.clone(), self.app_id.clone());
        let base = base.cloned();
        let shown = self.root.to_string();
        blocking(move || commit(&root, engine.as_ref(), &app_id, base, change, &shown)).await
    }

    /// Writes a checkpoint of `version` (so that readers replay no more than the commits
    /// after it).
    pub async fn checkpoint(&self, version: &TableVersion) -> Result<()> {
        let (snapshot, engine) = (version.snapshot.clone(), self.engine.clone());
        let shown = self.root.to_string();
        blocking(move || {
            snapshot
                .checkpoint(engine.as_ref(), None)
                .map(|_| ())
                .map_err(|e| Error::external(format!("Delta table {shown}: writing a checkpoint: {e}")))
        })
        .await
    }

    /// Deletes the data files that no version a reader may still ask for references: the
    /// versions committed within `retention` before now, and the one current when it began
    /// (`newest` is the table's newest version). Files a failed or unfinished commit left
    /// go too, once older than `retention` (younger ones may be an in-flight writer's).
    /// Hidden paths (`_delta_log`, names starting with `_` or `.`) are never touched.
    pub async fn expire(&self, retention: std::time::Duration, newest: &TableVersion) -> Result<Expired> {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let log = self.object_path("_delta_log")?;
        let mut commits = Vec::new();
        let mut listing = self.store.list(Some(&log));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.io_error("listing its log", e))?;
            let name = meta.location.filename().unwrap_or_default();
            if let Some(number) =
                name.strip_suffix(".json").filter(|n| n.len() == 20).and_then(|n| n.parse::<u64>().ok())
                && number <= newest.number
            {
                commits.push((number, meta.last_modified, meta.location));
            }
        }
        commits.sort_by_key(|c| c.0);
        // The version current at the cutoff: readable for the whole retention.
        let boundary = commits.iter().filter(|c| c.1 <= cutoff).map(|c| c.0).max();
        let mut needed: HashSet<String> = newest.files.iter().map(|f| f.path.clone()).collect();
        if let Some(at) = boundary {
            let old = self.version(Some(at)).await?.ok_or_else(|| {
                Error::external(format!("Delta table {}: version {at} is listed but cannot be read", self.root))
            })?;
            needed.extend(old.files.into_iter().map(|f| f.path));
        }
        for (number, _, location) in &commits {
            if boundary.is_some_and(|at| *number <= at) {
                continue;
            }
            let bytes = self.store.get(location).await.map_err(|e| self.io_error("reading a commit", e))?;
            let bytes = bytes.bytes().await.map_err(|e| self.io_error("reading a commit", e))?;
            for line in String::from_utf8_lossy(&bytes).lines() {
                let action: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                if let Some(path) = action["add"]["path"].as_str() {
                    needed.insert(path.to_owned());
                }
            }
        }
        let root = self.object_path("")?;
        let prefix = format!("{}/", root.as_ref());
        let mut expired = Expired::default();
        let mut listing = self.store.list(Some(&root));
        let mut doomed = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.io_error("listing its files", e))?;
            let relative = meta.location.as_ref().strip_prefix(&prefix).unwrap_or_default();
            let hidden = relative.is_empty() || relative.split('/').any(|p| p.starts_with('_') || p.starts_with('.'));
            if !hidden && !needed.contains(relative) && meta.last_modified < cutoff {
                expired.files += 1;
                expired.bytes += meta.size;
                doomed.push(meta.location);
            }
        }
        for location in doomed {
            self.store.delete(&location).await.map_err(|e| self.io_error("deleting an expired file", e))?;
        }
        Ok(expired)
    }

    /// A local path of the data file `relative`: the file itself on a local table, else a
    /// download into `dir` named `<n>.parquet`.
    pub async fn local_copy(&self, relative: &str, dir: &std::path::Path, n: usize) -> Result<std::path::PathBuf> {
        use std::io::Write;
        let url = self.root.join(relative).map_err(|e| Error::internal(format!("{relative}: {e}")))?;
        if url.scheme() == "file" {
            return url.to_file_path().map_err(|()| Error::internal(format!("{url} is not a local path")));
        }
        let location = self.object_path(relative)?;
        let local = dir.join(format!("{n}.parquet"));
        let got = self.store.get(&location).await.map_err(|e| self.io_error(&format!("reading {relative}"), e))?;
        let mut stream = got.into_stream();
        let mut file = std::fs::File::create(&local).map_err(|e| scratch_error(&local, &e))?;
        while let Some(bytes) = stream.next().await {
            let bytes = bytes.map_err(|e| self.io_error(&format!("reading {relative}"), e))?;
            file.write_all(&bytes).map_err(|e| scratch_error(&local, &e))?;
        }
        Ok(local)
    }

    /// Uploads the local `file` of `rows` rows as the data file `relative`, for a commit
    /// to add.
    pub async fn upload(&self, file: &std::path::Path, relative: &str, rows: u64) -> Result<NewFile> {
        let location = self.object_path(relative)?;
        let size = std::fs::metadata(file).map_err(|e| scratch_error(file, &e))?.len() as i64;
        match upload_file(self.store.as_ref(), &location, file, UPLOAD_CHUNK).await {
            Ok(()) => Ok(NewFile { path: relative.to_owned(), size, rows: rows as i64 }),
            Err(UploadError::Read(e)) => Err(scratch_error(file, &e)),
            Err(UploadError::Store(e)) => Err(Error::external(format!("writing {}{relative}: {e}", self.root))),
        }
    }

    fn io_error(&self, doing: &str, e: object_store::Error) -> Error {
        Error::external(format!("Delta table {}: {doing}: {e}", self.root))
    }
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("a Delta task failed: {e}")))?
}

fn read_error(shown: &str, at: Option<u64>, e: delta_kernel::KernelError) -> Error {
    match at {
        Some(at) => Error::external(format!("Delta table {shown}: reading version {at}: {e}")),
        None => Error::external(format!("Delta table {shown}: reading its newest version: {e}")),
    }
}

/// Everything the lake needs of a snapshot, read once.
fn read_version(
    snapshot: SnapshotRef,
    engine: &DefaultEngine<TokioMultiThreadExecutor>,
    app_id: &str,
) -> delta_kernel::KernelResult<TableVersion> {
    let mut files = Vec::new();
    for metadata in snapshot.clone().scan_builder().build()?.scan_metadata(engine)? {
        files = metadata?.visit_scan_files(files, |files: &mut Vec<DataFile>, file| {
            files.push(DataFile { path: file.path, size: file.size });
        })?;
    }
    files.sort();
    let columns =
        snapshot.schema().fields().map(|f| DeltaColumn { name: f.name().clone(), ty: f.data_type().clone() }).collect();
    Ok(TableVersion {
        number: snapshot.version(),
        files,
        columns,
        mark: snapshot.get_domain_metadata(LAKE_MARK_DOMAIN, engine)?,
        txn: snapshot.get_app_id_version(app_id, engine)?,
        snapshot,
    })
}

fn commit(
    root: &Url,
    engine: &DefaultEngine<TokioMultiThreadExecutor>,
    app_id: &str,
    base: Option<TableVersion>,
    change: Change,
    shown: &str,
) -> Result<TableVersion> {
    let failed = |e: delta_kernel::KernelError| Error::external(format!("Delta table {shown}: committing: {e}"));
    let txn_number = base.as_ref().and_then(|b| b.txn).unwrap_or(0) + 1;
    let mark = change.mark.clone();
    let adds = add_actions(&change.add).map_err(|e| Error::internal(format!("Delta add actions: {e}")))?;
    let result = match &base {
        None => {
            let fields = change.columns.iter().map(|c| StructField::nullable(c.name.clone(), c.ty.clone()));
            let schema = Arc::new(StructType::try_new(fields).map_err(failed)?);
            let txn = create_table(root.as_str(), schema, ENGINE_INFO, change.data_change)
                .with_table_properties([("delta.feature.domainMetadata", "supported")])
                .with_transaction_id(app_id, txn_number)
                .with_domain_metadata(LAKE_MARK_DOMAIN, change.mark)
                .build(engine, Box::new(FileSystemCommitter::new()))
                .map_err(failed)?;
            add_and_commit(txn, adds, engine).map_err(failed)?
        }
        Some(base) => {
            let operation =
                if change.data_change { UpdateTableOperation::Merge } else { UpdateTableOperation::Optimize };
            let mut builder = base
                .snapshot
                .clone()
                .update_table(operation, ENGINE_INFO, change.data_change)
                .with_transaction_id(app_id, txn_number)
                .with_domain_metadata(LAKE_MARK_DOMAIN, change.mark);
            for column in &change.columns {
                builder = builder.add_column(StructField::nullable(column.name.clone(), column.ty.clone()));
            }
            let mut txn = builder.build(engine, Box::new(FileSystemCommitter::new())).map_err(failed)?;
            let mut remove: HashSet<&str> = change.remove.iter().map(String::as_str).collect();
            for metadata in
                base.snapshot.clone().scan_builder().build().map_err(failed)?.scan_metadata(engine).map_err(failed)?
            {
                let files = metadata.map_err(failed)?.scan_files;
                if let Some(selected) = select(files, &mut remove).map_err(failed)? {
                    txn.remove_files(selected);
                }
            }
            if let Some(missing) = remove.iter().next() {
                return Err(Error::internal(format!(
                    "Delta table {shown}: file {missing} to remove is not in version {}",
                    base.number
                )));
            }
            add_and_commit(txn, adds, engine).map_err(failed)?
        }
    };
    match result {
        Ok(version) => {
            let read_back = |e| {
                Error::external(format!(
                    "Delta table {shown}: committed version {version}, then could not read it: {e}"
                ))
            };
            let snapshot = Snapshot::builder_for(root.as_str()).at_version(version).build(engine).map_err(read_back)?;
            read_version(snapshot, engine, app_id).map_err(read_back)
        }
        // This very commit, landed by an attempt whose answer was lost: the version holds
        // its transaction number and its mark (which names its run).
        Err(version) => match landed(root, engine, app_id, version, txn_number, &mark) {
            Some(ours) => Ok(ours),
            None => Err(Error::busy(format!(
                "Delta table {shown}: another writer committed version {version} first; nothing of this commit \
                 was applied (one run at a time writes a flow)"
            ))),
        },
    }
}

/// Adds `adds` to `txn` and commits it: `Ok` with the version committed, `Err` with the
/// version another writer committed first.
fn add_and_commit<S>(
    mut txn: Transaction<S>,
    adds: Option<Box<ArrowEngineData>>,
    engine: &DefaultEngine<TokioMultiThreadExecutor>,
) -> delta_kernel::KernelResult<std::result::Result<u64, u64>> {
    if let Some(adds) = adds {
        txn.add_files(adds);
    }
    Ok(match txn.commit(engine)? {
        CommitResult::Committed(c) => Ok(c.commit_version()),
        CommitResult::Conflicted(c) => Err(c.conflict_version()),
        CommitResult::Retryable(r) => return Err(r.error),
    })
}

/// Version `version`, if it is the commit of transaction `txn` with `mark` (that is, this
/// flow's commit, landed already).
fn landed(
    root: &Url,
    engine: &DefaultEngine<TokioMultiThreadExecutor>,
    app_id: &str,
    version: u64,
    txn: i64,
    mark: &str,
) -> Option<TableVersion> {
    let snapshot = Snapshot::builder_for(root.as_str()).at_version(version).build(engine).ok()?;
    let read = read_version(snapshot, engine, app_id).ok()?;
    (read.txn == Some(txn) && read.mark.as_deref() == Some(mark)).then_some(read)
}

/// The rows of `files` (scan files) whose path is in `remove`, taken out of it; `None`
/// when there are none.
fn select(
    files: FilteredEngineData,
    remove: &mut HashSet<&str>,
) -> delta_kernel::KernelResult<Option<FilteredEngineData>> {
    let (data, selection) = files.into_parts();
    let arrow = ArrowEngineData::try_from_engine_data(data)?;
    let batch = arrow.record_batch();
    let paths = batch
        .column_by_name("path")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| delta_kernel::KernelError::generic("scan files carry no path column"))?;
    let chosen: Vec<bool> = (0..batch.num_rows())
        .map(|i| selection.get(i).copied().unwrap_or(true) && !paths.is_null(i) && remove.remove(paths.value(i)))
        .collect();
    if !chosen.contains(&true) {
        return Ok(None);
    }
    FilteredEngineData::try_new(arrow, chosen).map(Some)
}

/// The add actions of `files` (without `dataChange`, which the transaction sets), with
/// their row counts as stats; `None` when there are none.
fn add_actions(files: &[NewFile]) -> std::result::Result<Option<Box<ArrowEngineData>>, arrow::error::ArrowError> {
    if files.is_empty() {
        return Ok(None);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut partitions = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for _ in files {
        partitions.append(true)?;
    }
    let partitions = partitions.finish();
    let stats_fields = Fields::from(vec![Field::new("numRecords", ArrowType::Int64, true)]);
    let rows: ArrayRef = Arc::new(Int64Array::from_iter_values(files.iter().map(|f| f.rows)));
    let stats = StructArray::try_new(stats_fields.clone(), vec![rows], None)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("path", ArrowType::Utf8, false),
        Field::new("partitionValues", partitions.data_type().clone(), false),
        Field::new("size", ArrowType::Int64, false),
        Field::new("modificationTime", ArrowType::Int64, false),
        Field::new("stats", ArrowType::Struct(stats_fields), true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(files.iter().map(|f| f.path.as_str()))),
            Arc::new(partitions),
            Arc::new(Int64Array::from_iter_values(files.iter().map(|f| f.size))),
            Arc::new(Int64Array::from_iter_values(files.iter().map(|_| now))),
            Arc::new(stats),
        ],
    )?;
    Ok(Some(Box::new(ArrowEngineData::new(batch))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sluice_type_has_a_delta_type() {
        let cases = [
            (SluiceType::Id, "string"),
            (SluiceType::Text, "string"),
            (SluiceType::Time, "string"),
            (SluiceType::Boolean, "boolean"),
            (SluiceType::Int, "integer"),
            (SluiceType::Long, "long"),
            (SluiceType::Decimal { precision: 18, scale: 2 }, "decimal(18,2)"),
            (SluiceType::Double, "double"),
            (SluiceType::Date, "date"),
            (SluiceType::Timestamp, "timestamp"),
            (SluiceType::Binary, "binary"),
        ];
        for (ty, want) in cases {
            assert_eq!(delta_type(ty).unwrap().to_string(), want, "{ty:?}");
        }
    }
}
