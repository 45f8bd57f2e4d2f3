//! The files destination: each run of a flow lands as
//! `<path>/<table>/run=<run id>/part-NNNNN.<ext>` plus a `manifest.json`, the way a
//! managed connector lands SaaS data in a bucket. Append only, partitioned by run. The
//! root is a local directory or an S3 prefix (`path = "s3://bucket/prefix"`; see
//! [`store`] for what each guarantees).
//!
//! Crash safety comes from ordering: part files are written first, the manifest last and
//! atomically, so a run that dies leaves a directory without a manifest. Readers (and
//! [`FilesDestination::runs`]) ignore such directories, and the next run of the same table
//! removes them.
//!
//! One run at a time writes a root: a run holds a [`RunLock`] for its whole life (a file
//! lock locally, a lease object on S3; see [`lock`]). A second run is told who holds it, so
//! two runs never interleave their manifests and the state file, nor remove each other's
//! unfinished runs.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{TableSchema, Window};

pub mod config;
mod lock;
mod open;
mod sink;
mod store;

pub use config::{FileFormat, FilesConfig, FilesKind, FilesRoot, S3Root};
pub use lock::{HEARTBEAT, LEASE, LeaseRecord, RunLock};
pub use store::write_atomically;
use store::{Store, io_error};

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

/// A tree of runs, under a local directory or an S3 prefix.
#[derive(Debug, Clone)]
pub struct FilesDestination {
    store: Store,
    format: FileFormat,
}

fn extension(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Parquet => "parquet",
        FileFormat::Csv => "csv",
        FileFormat::Jsonl => "jsonl",
    }
}

impl FilesDestination {
    /// A destination in the local directory `root` writing `format`.
    pub fn new(root: impl Into<PathBuf>, format: FileFormat) -> Self {
        FilesDestination { store: Store::Local(root.into()), format }
    }

    /// A destination at `root` writing `format`; for S3, a client from the environment's
    /// credentials (nothing is sent yet).
    pub fn open(root: &FilesRoot, format: FileFormat) -> Result<Self> {
        Ok(FilesDestination { store: Store::open(root)?, format })
    }

    /// The root, for messages: a path or `s3://bucket/prefix`.
    pub fn root_shown(&self) -> String {
        self.store.shown("")
    }

    /// Checks that the root can be created and written (for `sluice check`).
    pub async fn check(&self) -> Result<()> {
        self.store.ensure_dir("")?;
        let probe = format!(".sluice-probe-{}", std::process::id());
        self.store.write(&probe, b"probe").await?;
        self.store.remove(&probe).await
    }

    /// Takes the root's run lock, creating the root if needed; a busy error naming the
    /// holder when another run has it.
    pub async fn lock(&self, command: &str) -> Result<RunLock> {
        RunLock::take(&self.store, command).await
    }

    /// Starts a run of `table`: removes what crashed runs of the table left behind,
    /// then opens the run's directory.
    pub async fn begin(&self, table: &TableSchema, run_id: &str, window: Window) -> Result<RunWriter> {
        self.store.ensure_dir(&table.table)?;
        self.remove_uncommitted(&table.table).await?;
        let dir = format!("{}/run={run_id}", table.table);
        if let Some(path) = self.store.local(&dir) {
            std::fs::create_dir(&path).map_err(|e| io_error("create", &path, e))?;
        }
        Ok(RunWriter {
            store: self.store.clone(),
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

    async fn remove_uncommitted(&self, table: &str) -> Result<()> {
        for child in self.store.children(table).await? {
            if !child.starts_with("run=") {
                continue;
            }
            let run = format!("{table}/{child}");
            if !self.store.exists(&format!("{run}/{MANIFEST}")).await? {
                self.store.remove_dir(&run).await.map_err(|e| Error {
                    message: format!("removing the crashed run {}: {}", self.store.shown(&run), e.message),
                    ..e
                })?;
            }
        }
        Ok(())
    }

    /// The committed window of every flow (empty before the first run).
    pub async fn state(&self) -> Result<std::collections::BTreeMap<String, FlowState>> {
        match self.store.read(STATE).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::user(format!(
                    "{} is damaged ({e}); remove it to start every flow with a full run",
                    self.state_shown()
                ))
            }),
            None => Ok(Default::default()),
        }
    }

    /// Where the committed windows are kept, for messages.
    pub fn state_shown(&self) -> String {
        self.store.shown(STATE)
    }

    /// Records a flow's committed window. Called after the run's manifest is written,
    /// so the state never points past data that exists.
    pub async fn save_state(&self, object: &str, state: FlowState) -> Result<()> {
        let mut all = self.state().await?;
        all.insert(object.to_string(), state);
        self.write_state(&all).await
    }

    async fn write_state(&self, all: &std::collections::BTreeMap<String, FlowState>) -> Result<()> {
        let text =
            serde_json::to_vec_pretty(all).map_err(|e| Error::internal(format!("cannot encode the state: {e}")))?;
        self.store.write(STATE, &text).await
    }

    /// Forgets the committed windows of `objects` (`sluice reset`); their runs stay.
    pub async fn forget(&self, objects: &[&str]) -> Result<()> {
        let mut all = self.state().await?;
        let before = all.len();
        all.retain(|object, _| !objects.contains(&object.as_str()));
        if all.len() == before {
            return Ok(());
        }
        self.write_state(&all).await
    }

    /// The tables the root holds (its directories; sluice's own files start with `_` or `.`).
    pub async fn tables(&self) -> Result<Vec<String>> {
        let mut tables: Vec<String> =
            self.store.children("").await?.into_iter().filter(|n| !n.starts_with(['_', '.'])).collect();
        tables.sort();
        Ok(tables)
    }

    /// The object `key` under the root (`<table>/run=<id>/<part>`), or `None`: what a
    /// reader of the root sees.
    pub async fn read_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.store.read(key).await
    }

    /// Whether `table` holds a committed run: the first manifest found answers, none is read.
    pub async fn has_committed_run(&self, table: &str) -> Result<bool> {
        for child in self.store.children(table).await? {
            if child.starts_with("run=") && self.store.exists(&format!("{table}/{child}/{MANIFEST}")).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The committed runs of a table, oldest first (by window end, then run id).
    pub async fn runs(&self, table: &str) -> Result<Vec<Manifest>> {
        let mut runs = Vec::new();
        for child in self.store.children(table).await? {
            let key = format!("{table}/{child}/{MANIFEST}");
            let Some(bytes) = self.store.read(&key).await? else { continue };
            let manifest: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("{} is not a sluice manifest: {e}", self.store.shown(&key))))?;
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
    /// Where it is written (in place, or a spool file: see [`store`]).
    path: PathBuf,
    rows: u64,
    writer: PartWriter,
}

/// Writes one run; nothing is visible until [`RunWriter::finish`].
pub struct RunWriter {
    store: Store,
    /// The run's key under the root: `<table>/run=<id>`.
    dir: String,
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
    /// The run's directory, on a local root.
    pub fn dir(&self) -> Option<PathBuf> {
        self.store.local(&self.dir)
    }

    fn open_part(&self, schema: &Arc<Schema>) -> Result<OpenPart> {
        let file = format!("part-{:05}.{}", self.parts.len(), extension(self.format));
        let path = self.store.part_path(&format!("{}/{file}", self.dir))?;
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
        Ok(OpenPart { file, path, rows: 0, writer })
    }

    /// Appends a batch; every batch of a run must have the same schema.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
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
        let shown = self.store.shown(&format!("{}/{}", self.dir, part.file));
        let write_err = |e: &dyn std::fmt::Display| Error::user(format!("cannot write {shown}: {e}"));
        match &mut part.writer {
            PartWriter::Parquet(w) => w.write(batch).map_err(|e| write_err(&e))?,
            PartWriter::Csv(w) => w.write(batch).map_err(|e| write_err(&e))?,
            PartWriter::Jsonl(w) => w.write(batch).map_err(|e| write_err(&e))?,
        }
        part.rows += batch.num_rows() as u64;
        if part.rows >= ROWS_PER_PART {
            self.close_part().await?;
        }
        Ok(())
    }

    async fn close_part(&mut self) -> Result<()> {
        let Some(part) = self.current.take() else { return Ok(()) };
        let key = format!("{}/{}", self.dir, part.file);
        let shown = self.store.shown(&key);
        let close_err = |e: &dyn std::fmt::Display| Error::user(format!("cannot finish {shown}: {e}"));
        let file = match part.writer {
            PartWriter::Parquet(w) => w.into_inner().map_err(|e| close_err(&e))?,
            PartWriter::Csv(w) => w.into_inner().into_inner().map_err(|e| close_err(&e))?,
            PartWriter::Jsonl(mut w) => {
                w.finish().map_err(|e| close_err(&e))?;
                w.into_inner().into_inner().map_err(|e| close_err(&e))?
            }
        };
        let bytes = self.store.commit_part(&key, &part.path, file).await?;
        self.parts.push(Part { file: part.file, rows: part.rows, bytes });
        Ok(())
    }

    /// Closes the last part and writes the manifest, atomically and last: from here on
    /// the run is visible.
    pub async fn finish(mut self) -> Result<Manifest> {
        self.close_part().await?;
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
        self.store.write(&format!("{}/{MANIFEST}", self.dir), &text).await?;
        Ok(manifest)
    }

    /// Drops the run: removes what it wrote (a run that fails must leave nothing).
    pub async fn abort(mut self) -> Result<()> {
        if let Some(part) = self.current.take() {
            drop(part.writer);
            self.store.discard_spool(&part.path);
        }
        self.store.remove_dir(&self.dir).await
    }
}

#[cfg(test)]
mod tests;
