//! The files destination: each run of a flow lands as
//! `<path>/<table>/run=<run id>/part-NNNNN.<ext>` plus a `manifest.json`, the way a
//! managed connector lands SaaS data in a bucket. Append only, partitioned by run.
//!
//! Crash safety comes from ordering: part files are written first, the manifest last and
//! atomically (a temporary file renamed into place), so a run that dies leaves a directory
//! without a manifest. Readers (and [`FilesDestination::runs`]) ignore such directories, and
//! the next run of the same table removes them.
//!
//! One run at a time writes a root: a run holds [`RunLock`], an exclusive lock on
//! `<path>/.sluice.lock` that also says who holds it, for its whole life. A second run is
//! told who (so two runs never interleave their manifests and the state file, nor remove
//! each other's unfinished runs). The operating system drops the lock when the holder dies,
//! however it dies.

use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::FileFormat;
use crate::error::{Error, Result};
use crate::model::{TableSchema, Window};

/// Rows per part file: large enough for efficient Parquet row groups, small enough
/// that a part's buffers stay far below the memory budget.
const ROWS_PER_PART: u64 = 500_000;
const MANIFEST: &str = "manifest.json";

/// One part file of a run, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// File name inside the run directory.
    pub file: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// One column of the run's schema, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestColumn {
    /// Column name in the files.
    pub name: String,
    /// Source API name.
    pub source_name: String,
    /// Arrow type of the column.
    pub arrow_type: String,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

/// What a committed run contains. Its presence is what makes a run visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Source object.
    pub object: String,
    /// Table (directory) name.
    pub table: String,
    /// The run's id.
    pub run_id: String,
    /// File format of the parts.
    pub format: String,
    /// Window start (`None` for a full window).
    pub window_start: Option<DateTime<Utc>>,
    /// Window end (exclusive).
    pub window_end: DateTime<Utc>,
    /// Rows across all parts.
    pub rows: u64,
    /// Part files in order.
    pub parts: Vec<Part>,
    /// Columns of every part.
    pub columns: Vec<ManifestColumn>,
    /// When the manifest was written.
    pub committed_at: DateTime<Utc>,
}

/// The committed window of one flow, kept next to the data until the warehouse
/// destinations' control tables exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    /// End of the last committed window; the next run starts from it (minus lookback).
    pub window_end: DateTime<Utc>,
    /// The run that committed it.
    pub run_id: String,
    /// The fingerprint of what the flow's config selected then (`fields`, `exclude`,
    /// `rename`, `mask`); absent in state written before sluice recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
}

const STATE: &str = "_sluice_state.json";
const LOCK: &str = ".sluice.lock";

/// The run lock of a files root (see the module docs); released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// A directory tree of runs.
#[derive(Debug, Clone)]
pub struct FilesDestination {
    root: PathBuf,
    format: FileFormat,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => " (permission denied: choose a writable `destination.path`)",
        std::io::ErrorKind::StorageFull => " (the disk is full)",
        std::io::ErrorKind::ReadOnlyFilesystem => " (the file system is read-only)",
        _ => "",
    };
    Error::user(format!("cannot {what} {}: {e}{hint}", path.display()))
}

fn extension(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Parquet => "parquet",
        FileFormat::Csv => "csv",
        FileFormat::Jsonl => "jsonl",
    }
}

impl FilesDestination {
    /// A destination rooted at `root` writing `format`.
    pub fn new(root: impl Into<PathBuf>, format: FileFormat) -> Self {
        FilesDestination { root: root.into(), format }
    }

    /// Checks that the root can be created and written (for `sluice check`).
    pub fn check(&self) -> Result<()> {
        fs::create_dir_all(&self.root).map_err(|e| io_error("create", &self.root, e))?;
        let probe = self.root.join(format!(".sluice-probe-{}", std::process::id()));
        fs::write(&probe, b"probe").map_err(|e| io_error("write to", &self.root, e))?;
        fs::remove_file(&probe).map_err(|e| io_error("remove", &probe, e))?;
        Ok(())
    }

    /// Takes the root's run lock, creating the root if needed; a user error naming the holder
    /// when another run has it.
    pub fn lock(&self, command: &str) -> Result<RunLock> {
        use std::io::{Read as _, Seek as _};
        fs::create_dir_all(&self.root).map_err(|e| io_error("create", &self.root, e))?;
        let path = self.root.join(LOCK);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "another process".to_owned() } else { holder.to_owned() };
                return Err(Error::busy(format!(
                    "destination {} is in use by another sluice run ({holder}); wait for it to finish",
                    self.root.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error("lock", &path, e)),
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let who = format!(
            "`sluice {command}`, pid {} on {}, since {}",
            std::process::id(),
            if host.trim().is_empty() { "this machine" } else { host.trim() },
            Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(who.as_bytes()))
            .and_then(|()| file.flush());
        written.map_err(|e| io_error("write", &path, e))?;
        Ok(RunLock { _file: file })
    }

    /// Starts a run of `table`: removes what crashed runs of the table left behind,
    /// then opens the run's directory.
    pub fn begin(&self, table: &TableSchema, run_id: &str, window: Window) -> Result<RunWriter> {
        let table_dir = self.root.join(&table.table);
        fs::create_dir_all(&table_dir).map_err(|e| io_error("create", &table_dir, e))?;
        self.remove_uncommitted(&table_dir)?;
        let dir = table_dir.join(format!("run={run_id}"));
        fs::create_dir(&dir).map_err(|e| io_error("create", &dir, e))?;
        Ok(RunWriter {
            dir,
            format: self.format,
            object: table.object.clone(),
            table: table.table.clone(),
            run_id: run_id.to_string(),
            window,
            source_names: table.columns.iter().map(|c| (c.name.clone(), c.source_name.clone())).collect(),
            schema: None,
            current: None,
            parts: Vec::new(),
        })
    }

    fn remove_uncommitted(&self, table_dir: &Path) -> Result<()> {
        let entries = fs::read_dir(table_dir).map_err(|e| io_error("list", table_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", table_dir, e))?;
            let path = entry.path();
            let is_run = entry.file_name().to_string_lossy().starts_with("run=");
            if is_run && path.is_dir() && !path.join(MANIFEST).exists() {
                fs::remove_dir_all(&path).map_err(|e| io_error("remove the crashed run", &path, e))?;
            }
        }
        Ok(())
    }

    /// The committed window of every flow (empty before the first run).
    pub fn state(&self) -> Result<std::collections::BTreeMap<String, FlowState>> {
        let path = self.root.join(STATE);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::user(format!(
                    "{} is damaged ({e}); remove it to start every flow with a full run",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(io_error("read", &path, e)),
        }
    }

    /// The file the committed windows are kept in.
    pub fn state_path(&self) -> PathBuf {
        self.root.join(STATE)
    }

    /// Records a flow's committed window. Called after the run's manifest is written,
    /// so the state never points past data that exists.
    pub fn save_state(&self, object: &str, state: FlowState) -> Result<()> {
        let mut all = self.state()?;
        all.insert(object.to_string(), state);
        self.write_state(&all)
    }

    fn write_state(&self, all: &std::collections::BTreeMap<String, FlowState>) -> Result<()> {
        let text =
            serde_json::to_vec_pretty(all).map_err(|e| Error::internal(format!("cannot encode the state: {e}")))?;
        write_atomically(&self.state_path(), &text)
    }

    /// Forgets the committed windows of `objects` (`sluice reset`); their runs stay.
    pub fn forget(&self, objects: &[&str]) -> Result<()> {
        let mut all = self.state()?;
        let before = all.len();
        all.retain(|object, _| !objects.contains(&object.as_str()));
        if all.len() == before {
            return Ok(());
        }
        self.write_state(&all)
    }

    /// The committed runs of a table, oldest first (by window end, then run id).
    pub fn runs(&self, table: &str) -> Result<Vec<Manifest>> {
        let table_dir = self.root.join(table);
        let Ok(entries) = fs::read_dir(&table_dir) else { return Ok(Vec::new()) };
        let mut runs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join(MANIFEST);
            let Ok(text) = fs::read_to_string(&path) else { continue };
            let manifest: Manifest = serde_json::from_str(&text)
                .map_err(|e| Error::internal(format!("{} is not a sluice manifest: {e}", path.display())))?;
            runs.push(manifest);
        }
        runs.sort_by(|a, b| (a.window_end, &a.run_id).cmp(&(b.window_end, &b.run_id)));
        Ok(runs)
    }
}

enum PartWriter {
    Parquet(super::parquet::Writer<File>),
    Csv(arrow::csv::Writer<BufWriter<File>>),
    Jsonl(arrow::json::LineDelimitedWriter<BufWriter<File>>),
}

struct OpenPart {
    file: String,
    rows: u64,
    writer: PartWriter,
}

/// Writes one run; nothing is visible until [`RunWriter::finish`].
pub struct RunWriter {
    dir: PathBuf,
    format: FileFormat,
    object: String,
    table: String,
    run_id: String,
    window: Window,
    source_names: Vec<(String, String)>,
    schema: Option<Arc<Schema>>,
    current: Option<OpenPart>,
    parts: Vec<Part>,
}

impl RunWriter {
    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn open_part(&self, schema: &Arc<Schema>) -> Result<OpenPart> {
        let file = format!("part-{:05}.{}", self.parts.len(), extension(self.format));
        let path = self.dir.join(&file);
        let handle = File::create(&path).map_err(|e| io_error("create", &path, e))?;
        let writer = match self.format {
            FileFormat::Parquet => PartWriter::Parquet(super::parquet::writer(
                handle,
                schema.clone(),
                super::parquet::RowGroups::OUTPUT,
                &path.display(),
            )?),
            FileFormat::Csv => PartWriter::Csv(arrow::csv::Writer::new(BufWriter::new(handle))),
            FileFormat::Jsonl => PartWriter::Jsonl(arrow::json::LineDelimitedWriter::new(BufWriter::new(handle))),
        };
        Ok(OpenPart { file, rows: 0, writer })
    }

    /// Appends a batch; every batch of a run must have the same schema.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match &self.schema {
            Some(s) if s.as_ref() != batch.schema().as_ref() => {
                return Err(Error::internal(format!(
                    "batch schema changed within run {} of {}",
                    self.run_id, self.table
                )));
            }
            Some(_) => {}
            None => self.schema = Some(batch.schema()),
        }
        if self.current.is_none() {
            let schema = batch.schema();
            self.current = Some(self.open_part(&schema)?);
        }
        let part = self.current.as_mut().ok_or_else(|| Error::internal("no open part"))?;
        let path = self.dir.join(&part.file);
        let write_err = |e: &dyn std::fmt::Display| Error::user(format!("cannot write {}: {e}", path.display()));
        match &mut part.writer {
            PartWriter::Parquet(w) => w.write(batch).map_err(|e| write_err(&e))?,
            PartWriter::Csv(w) => w.write(batch).map_err(|e| write_err(&e))?,
            PartWriter::Jsonl(w) => w.write(batch).map_err(|e| write_err(&e))?,
        }
        part.rows += batch.num_rows() as u64;
        if part.rows >= ROWS_PER_PART {
            self.close_part()?;
        }
        Ok(())
    }

    fn close_part(&mut self) -> Result<()> {
        let Some(part) = self.current.take() else { return Ok(()) };
        let path = self.dir.join(&part.file);
        let close_err = |e: &dyn std::fmt::Display| Error::user(format!("cannot finish {}: {e}", path.display()));
        let file = match part.writer {
            PartWriter::Parquet(w) => w.into_inner().map_err(|e| close_err(&e))?,
            PartWriter::Csv(w) => w.into_inner().into_inner().map_err(|e| close_err(&e))?,
            PartWriter::Jsonl(mut w) => {
                w.finish().map_err(|e| close_err(&e))?;
                w.into_inner().into_inner().map_err(|e| close_err(&e))?
            }
        };
        // The manifest may only point at bytes that are on disk.
        file.sync_all().map_err(|e| io_error("sync", &path, e))?;
        let bytes = file.metadata().map_err(|e| io_error("stat", &path, e))?.len();
        self.parts.push(Part { file: part.file, rows: part.rows, bytes });
        Ok(())
    }

    /// Closes the last part and writes the manifest, atomically and last: from here on
    /// the run is visible.
    pub fn finish(mut self) -> Result<Manifest> {
        self.close_part()?;
        let columns = match &self.schema {
            Some(schema) => schema
                .fields()
                .iter()
                .map(|f| ManifestColumn {
                    name: f.name().clone(),
                    source_name: self
                        .source_names
                        .iter()
                        .find(|(n, _)| n == f.name())
                        .map_or_else(|| f.name().clone(), |(_, s)| s.clone()),
                    arrow_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                })
                .collect(),
            None => Vec::new(),
        };
        let manifest = Manifest {
            object: self.object.clone(),
            table: self.table.clone(),
            run_id: self.run_id.clone(),
            format: extension(self.format).to_string(),
            window_start: self.window.start,
            window_end: self.window.end,
            rows: self.parts.iter().map(|p| p.rows).sum(),
            parts: self.parts.clone(),
            columns,
            committed_at: Utc::now(),
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::internal(format!("cannot encode the manifest: {e}")))?;
        write_atomically(&self.dir.join(MANIFEST), &text)?;
        Ok(manifest)
    }

    /// Drops the run: removes its directory (a run that fails must leave nothing).
    pub fn abort(self) -> Result<()> {
        drop(self.current);
        fs::remove_dir_all(&self.dir).map_err(|e| io_error("remove", &self.dir, e))
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new one:
/// a temporary file in the same directory, synced, then renamed over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = File::create(&tmp).map_err(|e| io_error("create", &tmp, e))?;
    file.write_all(bytes).map_err(|e| io_error("write", &tmp, e))?;
    file.sync_all().map_err(|e| io_error("sync", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error("rename into", path, e))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        // Make the rename itself durable.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
