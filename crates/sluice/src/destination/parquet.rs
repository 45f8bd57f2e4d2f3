//! Parquet writing shared by the files destination (its output), DuckDB (its staging) and
//! Redshift (its S3 parts): one codec, and row groups bounded by rows and by bytes, sized
//! for who reads them ([`RowGroups`]).

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use crate::{Error, Result};

/// Where a row group closes: at `rows` rows or at about `bytes` bytes of the rows' size in
/// Arrow (close to what a reader decodes them back to; a group may pass it by about one
/// row), whichever comes first. The byte bound keeps a wide object's groups about as small
/// in memory as a narrow one's. The writer holds the open group in memory, so the bounds
/// also cap its own footprint whatever the object's size.
///
/// Not the writer's own `max_row_group_bytes`: that counts the encoded size, which
/// dictionaries and run lengths shrink far below what a reader holds once it decodes the
/// group (40 MiB of repetitive text stayed under an 8 MiB bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroups {
    /// Most rows per group.
    pub rows: usize,
    /// Most bytes per group, by the rows' size in Arrow.
    pub bytes: usize,
}

impl RowGroups {
    /// For staging that sluice's own warehouse reads back (DuckDB's staging, Redshift's S3
    /// parts). Readers hold a whole decoded row group per thread: DuckDB reading 128 Ki-row
    /// groups of Accounts in a 1 M-row merge needed more than a 96 MiB memory limit, and a
    /// 1 M-row load peaked ~25 MiB higher than with 32 Ki rows, at the same speed. 32 Ki
    /// Accounts (44 fields) take about 17 MiB, so the row bound governs them. DuckDB's
    /// merge slices (`DUCKDB_SLICE_ROWS`) span several groups, so both its threads have work.
    pub const STAGING: RowGroups = RowGroups { rows: 32 * 1024, bytes: 20 << 20 };

    /// For the files destination's output, which other engines read: groups four times
    /// larger (a 1 M-Account file was 5 % smaller than with [`RowGroups::STAGING`]), still
    /// bounded for wide objects.
    pub const OUTPUT: RowGroups = RowGroups { rows: 128 * 1024, bytes: 80 << 20 };
}

/// A Parquet writer whose row groups close at its [`RowGroups`] bounds, and whose columns
/// are encoded on several threads ([`threads`]): encoding is most of the cost of writing
/// (one thread wrote the lake's 1 M Accounts in about 13 s). Each thread encodes its
/// share of the columns as the rows come, so the open row group is held encoded, as the
/// single-threaded writer holds it, not as Arrow.
pub struct Writer<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The top-level field each leaf column belongs to, in leaf order.
    field_of_leaf: Vec<usize>,
    bounds: RowGroups,
    /// The open row group, if any.
    group: Option<Group>,
    /// Row groups closed so far.
    groups: usize,
    /// What `writer` was given to name the file in messages.
    what: String,
}

/// One open row group: its encoding threads, each with its share of the columns.
struct Group {
    workers: Vec<Worker>,
    rows: usize,
    /// Bytes in the group, by the rows' size in Arrow.
    bytes: usize,
}

/// A thread encoding some columns of one row group: it receives the group's batches and
/// returns its columns' chunks, by leaf index, when the channel closes.
struct Worker {
    rows: std::sync::mpsc::SyncSender<RecordBatch>,
    done: std::thread::JoinHandle<Encoded>,
}

/// A thread's columns, encoded, by leaf index.
type Encoded = std::result::Result<Vec<(usize, ArrowColumnChunk)>, ParquetError>;

/// Threads encoding one file's columns: this machine's cores, at most four (a writer is one
/// stage of a pipeline whose other stages need cores too).
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// A writer of `schema` into `sink` (`what` names it in messages) with row groups within
/// `bounds`. Snappy: it costs little to write and to read, and a quarter of the bytes of
/// uncompressed text.
pub fn writer<W: Write + Send>(
    sink: W,
    schema: SchemaRef,
    bounds: RowGroups,
    what: &dyn std::fmt::Display,
) -> Result<Writer<W>> {
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let cannot = |e: ParquetError| Error::internal(format!("cannot start {what}: {e}"));
    // Through `ArrowWriter`, so the file carries the Arrow schema as the usual writer's do.
    let (file, factory) = ArrowWriter::try_new(sink, schema.clone(), Some(props))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(cannot)?;
    let descr = file.schema_descr();
    let field_of_leaf = (0..descr.num_columns()).map(|leaf| descr.get_column_root_idx(leaf)).collect();
    Ok(Writer { file, factory, schema, field_of_leaf, bounds, group: None, groups: 0, what: what.to_string() })
}

impl<W: Write + Send> Writer<W> {
    /// Appends `batch`, in pieces that end where a row group must close, so one batch of
    /// very wide rows still spreads over several groups.
    pub fn write(&mut self, batch: &RecordBatch) -> std::result::Result<(), ParquetError> {
        let rows = batch.num_rows();
        let per_row = (used_bytes(batch) / rows.max(1)).max(1);
        let mut offset = 0;
        while offset < rows {
            let group = match &mut self.group {
                Some(g) => g,
                None => self.group.insert(self.start_group()?),
            };
            let room_rows = self.bounds.rows - group.rows;
            let room_bytes = self.bounds.bytes.saturating_sub(group.bytes).div_ceil(per_row).max(1);
            let len = room_rows.min(room_bytes).min(rows - offset);
            let piece = batch.slice(offset, len);
            if group.workers.iter().any(|w| w.rows.send(piece.clone()).is_err()) {
                // A thread stopped: its result says why.
                self.flush()?;
                return Err(ParquetError::General(format!("{}: an encoding thread stopped", self.what)));
            }
            group.rows += len;
            group.bytes += len * per_row;
            offset += len;
            if group.rows >= self.bounds.rows || group.bytes >= self.bounds.bytes {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Starts a row group: its column writers, shared out among the threads by field.
    fn start_group(&self) -> std::result::Result<Group, ParquetError> {
        let n = threads();
        let mut shares: Vec<Vec<(usize, ArrowColumnWriter)>> = (0..n).map(|_| Vec::new()).collect();
        for (leaf, column) in self.factory.create_column_writers(self.groups)?.into_iter().enumerate() {
            shares[self.field_of_leaf[leaf] % n].push((leaf, column));
        }
        let mut workers = Vec::with_capacity(n);
        for share in shares.into_iter().filter(|s| !s.is_empty()) {
            // Two batches in flight per thread: enough to keep it busy, few to bound memory.
            let (rows, received) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
            let field_of_leaf = self.field_of_leaf.clone();
            let schema = self.schema.clone();
            let done = std::thread::Builder::new()
                .name("parquet-encode".into())
                .spawn(move || encode(share, &field_of_leaf, &schema, received))
                .map_err(|e| ParquetError::General(format!("cannot start an encoding thread: {e}")))?;
            workers.push(Worker { rows, done });
        }
        Ok(Group { workers, rows: 0, bytes: 0 })
    }

    /// Closes the open row group, if any: waits for its threads and writes their chunks.
    fn flush(&mut self) -> std::result::Result<(), ParquetError> {
        let Some(group) = self.group.take() else { return Ok(()) };
        let mut chunks = Vec::new();
        let mut failed = None;
        for worker in group.workers {
            drop(worker.rows);
            match worker.done.join() {
                Ok(Ok(done)) => chunks.extend(done),
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => failed = failed.or(Some(ParquetError::General("an encoding thread panicked".into()))),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        chunks.sort_by_key(|(leaf, _)| *leaf);
        let mut row_group = self.file.next_row_group()?;
        for (_, chunk) in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.groups += 1;
        Ok(())
    }

    /// Writes the footer and returns the sink.
    pub fn into_inner(mut self) -> std::result::Result<W, ParquetError> {
        self.flush()?;
        self.file.into_inner()
    }

    /// Writes the footer.
    pub fn close(mut self) -> std::result::Result<(), ParquetError> {
        self.flush()?;
        self.file.close().map(|_| ())
    }
}

/// One thread's work for a row group: encodes its `share` of the leaf columns of every
/// batch received, then returns their chunks.
fn encode(
    mut share: Vec<(usize, ArrowColumnWriter)>,
    field_of_leaf: &[usize],
    schema: &SchemaRef,
    received: std::sync::mpsc::Receiver<RecordBatch>,
) -> Encoded {
    for batch in received {
        let mut at = 0;
        while at < share.len() {
            // The leaves of one field are consecutive, and all in this share.
            let field = field_of_leaf[share[at].0];
            let leaves = compute_leaves(schema.field(field), batch.column(field))?;
            for leaf in leaves {
                share[at].1.write(&leaf)?;
                at += 1;
            }
        }
    }
    share.into_iter().map(|(leaf, column)| column.close().map(|chunk| (leaf, chunk))).collect()
}

/// The bytes `batch`'s rows take in its buffers: what is used, not what was reserved for
/// them (a CSV-built batch reserves up to twice its text).
fn used_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or_else(|_| c.get_array_memory_size()))
        .sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use bytes::Bytes;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    /// Row-group sizes of a file written from `batches`.
    fn groups(bounds: RowGroups, batches: &[RecordBatch]) -> Vec<i64> {
        let mut w = writer(Vec::new(), batches[0].schema(), bounds, &"test").unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        reader.metadata().row_groups().iter().map(|g| g.num_rows()).collect()
    }

    fn batch(rows: usize, text: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("seq", DataType::Int64, false),
            Field::new("body", DataType::Utf8, false),
        ]));
        // Distinct text per row, so dictionary encoding cannot shrink it.
        let body: Vec<String> = (0..rows).map(|i| format!("{i:0>text$}")).collect();
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter_values(0..rows as i64)), Arc::new(StringArray::from(body))],
        )
        .unwrap()
    }

    #[test]
    fn narrow_rows_close_a_row_group_at_the_row_bound() {
        for bounds in [RowGroups::STAGING, RowGroups::OUTPUT] {
            let sizes = groups(bounds, &[batch(100_000, 8), batch(100_000, 8)]);
            assert_eq!(sizes.iter().sum::<i64>(), 200_000);
            assert!(sizes.iter().all(|&n| n <= bounds.rows as i64), "{sizes:?}");
            assert_eq!(sizes[0], bounds.rows as i64, "{sizes:?}");
        }
    }

    #[test]
    fn wide_rows_close_a_row_group_at_the_byte_bound_even_within_one_batch() {
        // 4 KiB per row: the byte bound is ~5,000 rows, far below the row bound; one batch
        // of 10,000 rows (40 MiB) must still come out in several groups, each under it.
        let bounds = RowGroups::STAGING;
        let sizes = groups(bounds, &[batch(10_000, 4096), batch(1_000, 4096)]);
        assert_eq!(sizes.iter().sum::<i64>(), 11_000);
        assert!(sizes.len() >= 3, "{sizes:?}");
        let bound = (bounds.bytes / 4096) as i64;
        assert!(sizes.iter().all(|&n| n <= bound), "{sizes:?}");
    }
}
