//! Compaction of a lake table's small files ([`compact`]): the raw layer gains one file per
//! version that read rows, so a flow that runs every few minutes leaves hundreds of small
//! files a day, which every reader opens one by one. Runs of small files with the same
//! columns are rewritten as one file each, in a commit that changes no data
//! (`dataChange = false`, Delta's `OPTIMIZE`): readers of the newest version read fewer
//! files, readers of older versions (time travel) read the old ones until they expire.
//!
//! The table's buckets need none of this: a merge rewrites a bucket whole, as one file.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::delta::{Change, DataFile, DeltaTable, NewFile, TableVersion};
use super::export::scratch_error;
use crate::destination::parquet::{RowGroups, writer};
use crate::destination::s3::{UploadError, upload_file};
use crate::{Error, Result};

/// A data file under this many bytes is small.
pub(super) const SMALL: i64 = 32 << 20;

/// Compaction starts once a table holds this many small files (not counting those kept).
pub(super) const COMPACT_AT: usize = 10;

/// Bytes of small files rewritten into one file, at most.
const MOST: i64 = 256 << 20;

/// Pieces in which the compacted file is uploaded.
const CHUNK: usize = 8 << 20;

/// What [`compact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Compacted {
    /// Small files replaced.
    pub removed: usize,
    /// Files written in their place.
    pub added: usize,
    /// The version committed.
    pub version: u64,
}

/// Rewrites the small files of `newest` (the table's newest version), except those named in
/// `keep`, when there are at least [`COMPACT_AT`]: each run of files with the same columns,
/// in path order and up to [`MOST`] bytes, becomes one file named by `name` (given its
/// index), all in one commit on `newest` carrying its mark. `scratch` is an empty directory
/// for downloads and the new files. `None` when there was nothing to do.
pub(super) async fn compact(
    table: &DeltaTable,
    store: &dyn ObjectStore,
    newest: &TableVersion,
    keep: &[String],
    scratch: &Path,
    name: &(dyn Fn(usize) -> String + Sync),
) -> Result<Option<Compacted>> {
    let mut small: Vec<&DataFile> = newest.files.iter().filter(|f| f.size < SMALL && !keep.contains(&f.path)).collect();
    if small.len() < COMPACT_AT {
        return Ok(None);
    }
    small.sort_by(|a, b| a.path.cmp(&b.path));
    let mut local = Vec::with_capacity(small.len());
    for (n, file) in small.iter().enumerate() {
        local.push(Small {
            path: file.path.clone(),
            size: file.size,
            local: table.local_copy(&file.path, scratch, n).await?,
        });
    }
    let dir = scratch.to_owned();
    let names: Vec<String> = (0..local.len()).map(name).collect();
    let written = tokio::task::spawn_blocking(move || rewrite(&local, &dir, &names))
        .await
        .map_err(|e| Error::internal(format!("compaction task failed: {e}")))??;
    if written.is_empty() {
        return Ok(None);
    }
    let mut change = Change { mark: newest.mark.clone().unwrap_or_default(), data_change: false, ..Change::default() };
    for out in &written {
        let location = table.object_path(&out.name)?;
        match upload_file(store, &location, &out.path, CHUNK).await {
            Ok(()) => {}
            Err(UploadError::Read(e)) => return Err(scratch_error(&out.path, &e)),
            Err(UploadError::Store(e)) => {
                return Err(Error::external(format!("writing {}{}: {e}", table.root(), out.name)));
            }
        }
        change.add.push(NewFile { path: out.name.clone(), size: out.size, rows: out.rows });
        change.remove.extend(out.replaces.iter().cloned());
    }
    let removed = change.remove.len();
    let committed = table.commit(Some(newest), change).await?;
    Ok(Some(Compacted { removed, added: written.len(), version: committed.number }))
}

/// A small file to compact: its path under the table, its bytes, and its local copy.
struct Small {
    path: String,
    size: i64,
    local: PathBuf,
}

/// Consecutive small files with the same columns, and their bytes.
struct Run<'a> {
    schema: SchemaRef,
    files: Vec<&'a Small>,
    bytes: i64,
}

/// One file written in place of several.
struct Written {
    /// Its name under the table's root.
    name: String,
    /// Where it was written.
    path: PathBuf,
    size: i64,
    rows: i64,
    /// The files it replaces.
    replaces: Vec<String>,
}

/// Groups `files` into runs of the same columns up to [`MOST`] bytes, and writes each run
/// of two or more into `dir` as one file, named by `names` in order.
fn rewrite(files: &[Small], dir: &Path, names: &[String]) -> Result<Vec<Written>> {
    let mut runs: Vec<Run<'_>> = Vec::new();
    for file in files {
        let schema = open(&file.local)?.schema().clone();
        match runs.last_mut() {
            Some(run) if same_columns(&run.schema, &schema) && run.bytes + file.size <= MOST => {
                run.files.push(file);
                run.bytes += file.size;
            }
            _ => runs.push(Run { schema, files: vec![file], bytes: file.size }),
        }
    }
    let mut written = Vec::new();
    for (run, name) in runs.into_iter().filter(|run| run.files.len() > 1).zip(names) {
        let path = dir.join(format!("compacted-{}.parquet", written.len()));
        let out = File::create(&path).map_err(|e| scratch_error(&path, &e))?;
        let mut w = writer(BufWriter::new(out), run.schema.clone(), RowGroups::OUTPUT, &path.display())?;
        let mut rows = 0i64;
        for file in &run.files {
            let reader = open(&file.local)?.build().map_err(|e| unreadable(&file.local, &e))?;
            for batch in reader {
                let batch = batch.map_err(|e| unreadable(&file.local, &e))?;
                // Same columns, so the batch is the file's schema but for metadata.
                let batch = batch.with_schema(run.schema.clone()).map_err(|e| unreadable(&file.local, &e))?;
                w.write(&batch).map_err(|e| scratch_error(&path, &e))?;
                rows += batch.num_rows() as i64;
            }
        }
        w.close().map_err(|e| scratch_error(&path, &e))?;
        let size = std::fs::metadata(&path).map_err(|e| scratch_error(&path, &e))?.len() as i64;
        let replaces = run.files.iter().map(|f| f.path.clone()).collect();
        written.push(Written { name: name.clone(), path, size, rows, replaces });
    }
    Ok(written)
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| unreadable(path, &e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map(|b| b.with_batch_size(8192)).map_err(|e| unreadable(path, &e))
}

/// Two files' columns are the same: names, types and nullability in order.
fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type() && x.is_nullable() == y.is_nullable())
}

fn unreadable(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::external(format!("compacting the lake: cannot read {}: {e}", path.display()))
}
