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
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::delta::{Change, DataFile, DeltaTable, TableVersion};
use super::export::scratch_error;
use crate::destination::parquet::{RowGroups, writer};
use crate::{Error, Result};

/// A data file under this many bytes is small.
pub(super) const SMALL: i64 = 32 << 20;

/// Compaction starts once a table holds this many small files (not counting those kept).
pub(super) const COMPACT_AT: usize = 10;

/// Bytes of small files rewritten into one file, at most.
const MOST: i64 = 256 << 20;

/// What [`compact`] did.
#[derive(Debug)]
pub(super) struct Compacted {
    /// Small files replaced.
    pub removed: usize,
    /// Files written in their place.
    pub added: usize,
    /// The version committed.
    pub version: TableVersion,
}

/// Rewrites the small files of `newest` (the table's newest version), except those named in
/// `keep`, when there are at least [`COMPACT_AT`]: each run of files with the same columns,
/// in path order and up to [`MOST`] bytes, becomes one file named by `name` (given its
/// index), all in one commit on `newest` carrying its mark. `scratch`, a directory that does
/// not exist yet, holds the downloads and the new files while there is work to do. `None`
/// when there was nothing to do.
pub(super) async fn compact(
    table: &DeltaTable,
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
    std::fs::create_dir_all(scratch).map_err(|e| scratch_error(scratch, &e))?;
    let compacted = rewrite_and_commit(table, newest, &small, scratch, name).await;
    let _ = std::fs::remove_dir_all(scratch);
    compacted
}

/// [`compact`]'s work on its `small` files, once `scratch` exists.
async fn rewrite_and_commit(
    table: &DeltaTable,
    newest: &TableVersion,
    small: &[&DataFile],
    scratch: &Path,
    name: &(dyn Fn(usize) -> String + Sync),
) -> Result<Option<Compacted>> {
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
        change.add.push(table.upload(&out.path, &out.name, out.rows).await?);
        change.remove.extend(out.replaces.iter().cloned());
    }
    let removed = change.remove.len();
    let version = table.commit(Some(newest), change).await?;
    Ok(Some(Compacted { removed, added: written.len(), version }))
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
    rows: u64,
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
        let mut rows = 0u64;
        for file in &run.files {
            let reader = open(&file.local)?.build().map_err(|e| unreadable(&file.local, &e))?;
            for batch in reader {
                let batch = batch.map_err(|e| unreadable(&file.local, &e))?;
                // Same columns, so the batch is the file's schema but for metadata.
                let batch = batch.with_schema(run.schema.clone()).map_err(|e| unreadable(&file.local, &e))?;
                w.write(&batch).map_err(|e| scratch_error(&path, &e))?;
                rows += batch.num_rows() as u64;
            }
        }
        w.close().map_err(|e| scratch_error(&path, &e))?;
        let replaces = run.files.iter().map(|f| f.path.clone()).collect();
        written.push(Written { name: name.clone(), path, rows, replaces });
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
