//! Writing a query's rows as the lake's Parquet files in bounded memory: DuckDB streams the
//! rows as Arrow batches and sluice writes them ([`crate::destination::parquet`]), one file
//! per bucket when the query's last column is the bucket ([`export`]).
//!
//! Not DuckDB's own `COPY … TO … (PARTITION_BY …)`: it buffers about 256 KiB per column
//! for every open partition, so four buckets of Accounts (48 columns) exhausted the work
//! database's default memory limit (112 MB) at 1 M rows, as did one plain `COPY` with its
//! default row groups (measured 2026-12-07, `scripts/bench`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::array::{Array, Int32Array, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use duckdb::Connection;

use crate::destination::duckdb::sql_error;
use crate::destination::parquet::{RowGroups, Writer, writer};
use crate::{Error, Result};

/// What the open files of one export hold in memory together, about (their row groups
/// close early to stay within it).
const BUDGET: usize = 48 << 20;

/// One file written.
pub(super) struct Exported {
    /// The bucket its rows belong to (0 for an export without buckets).
    pub bucket: u32,
    /// Where it was written.
    pub path: PathBuf,
    /// Rows it holds.
    pub rows: u64,
}

/// Writes the rows of `sql` into `dir`: with `buckets` (at most this many distinct values
/// of the query's last column, an INTEGER, which is not written), one file per bucket
/// present; without, one file. No file when there are no rows.
pub(super) fn export(conn: &Connection, sql: &str, dir: &Path, buckets: Option<usize>) -> Result<Vec<Exported>> {
    let mut stmt = conn.prepare(sql).map_err(|e| sql_error(e, sql))?;
    drop(stmt.stream_arrow([]).map_err(|e| sql_error(e, sql))?);
    let open = buckets.unwrap_or(1).max(1);
    let bounds = RowGroups { rows: 128 * 1024, bytes: (BUDGET / open).clamp(1 << 20, 20 << 20) };
    let mut files: BTreeMap<u32, (PathBuf, Writer<BufWriter<File>>, u64)> = BTreeMap::new();
    // `step`, not the iterator: the iterator panics where fetching fails.
    while let Some(array) = stmt.step().map_err(|e| sql_error(e, sql))? {
        let batch = ours(&array)?;
        if batch.num_rows() == 0 {
            continue;
        }
        let parts = match buckets {
            None => vec![(0, batch)],
            Some(_) => split(&batch)?,
        };
        for (bucket, part) in parts {
            let (path, out, rows) = match files.entry(bucket) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let path = dir.join(format!("{bucket}.parquet"));
                    let file = File::create(&path).map_err(|e| scratch_error(&path, &e))?;
                    let out = writer(BufWriter::new(file), part.schema(), bounds, &path.display())?;
                    v.insert((path, out, 0))
                }
            };
            out.write(&part).map_err(|e| scratch_error(path, &e))?;
            *rows += part.num_rows() as u64;
        }
    }
    let mut written = Vec::new();
    for (bucket, (path, out, rows)) in files {
        out.close().map_err(|e| scratch_error(&path, &e))?;
        written.push(Exported { bucket, path, rows });
    }
    Ok(written)
}

/// A batch of DuckDB's Arrow as one of ours, through Arrow IPC (a copy: both versions speak
/// it, and no `unsafe` FFI is needed).
fn ours(array: &duckdb::arrow::array::StructArray) -> Result<RecordBatch> {
    let failed =
        |e: &dyn std::fmt::Display| Error::internal(format!("passing DuckDB's rows to the Parquet writer: {e}"));
    let batch = duckdb::arrow::record_batch::RecordBatch::from(array);
    let mut bytes = Vec::new();
    let mut ipc =
        duckdb_arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema()).map_err(|e| failed(&e))?;
    ipc.write(&batch).map_err(|e| failed(&e))?;
    ipc.finish().map_err(|e| failed(&e))?;
    drop(ipc);
    let mut reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(|e| failed(&e))?;
    match reader.next() {
        Some(batch) => batch.map_err(|e| failed(&e)),
        None => Err(failed(&"no batch")),
    }
}

/// The rows of `batch` by the bucket in its last column, without that column.
fn split(batch: &RecordBatch) -> Result<Vec<(u32, RecordBatch)>> {
    let last = batch.num_columns() - 1;
    let column = batch.column(last);
    let bucket = column.as_any().downcast_ref::<Int32Array>().filter(|b| b.null_count() == 0).ok_or_else(|| {
        Error::internal(format!("an export's last column must be its bucket, an INTEGER: {}", column.data_type()))
    })?;
    let data = batch.project(&(0..last).collect::<Vec<_>>()).map_err(|e| Error::internal(e.to_string()))?;
    let mut rows_of: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (row, b) in bucket.values().iter().enumerate() {
        rows_of.entry(*b as u32).or_default().push(row as u32);
    }
    if rows_of.len() == 1 {
        return Ok(rows_of.into_keys().map(|b| (b, data.clone())).collect());
    }
    rows_of
        .into_iter()
        .map(|(b, rows)| {
            take_record_batch(&data, &UInt32Array::from(rows))
                .map(|part| (b, part))
                .map_err(|e| Error::internal(format!("splitting an export by bucket: {e}")))
        })
        .collect()
}

/// A local file of the work directory could not be written.
pub(super) fn scratch_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::external_fatal(format!(
        "destination.work_dir: cannot write {} ({e}); free space there or choose another work_dir",
        path.display()
    ))
}
