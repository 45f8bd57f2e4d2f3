//! Parquet writing shared by the files destination (its output), DuckDB (its staging) and
//! Redshift (its S3 parts): one codec, and row groups bounded by rows and by bytes, sized
//! for who reads them ([`RowGroups`]).

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

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

/// A Parquet writer whose row groups close at its [`RowGroups`] bounds.
pub struct Writer<W: Write + Send> {
    inner: ArrowWriter<W>,
    bounds: RowGroups,
    /// Bytes in the open row group (its rows the writer counts itself).
    group_bytes: usize,
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
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(bounds.rows))
        .build();
    let inner = ArrowWriter::try_new(sink, schema, Some(props))
        .map_err(|e| Error::internal(format!("cannot start {what}: {e}")))?;
    Ok(Writer { inner, bounds, group_bytes: 0 })
}

impl<W: Write + Send> Writer<W> {
    /// Appends `batch`, in pieces that end where a row group must close, so one batch of
    /// very wide rows still spreads over several groups.
    pub fn write(&mut self, batch: &RecordBatch) -> std::result::Result<(), ParquetError> {
        let rows = batch.num_rows();
        let per_row = (used_bytes(batch) / rows.max(1)).max(1);
        let mut offset = 0;
        while offset < rows {
            let room_rows = self.bounds.rows - self.inner.in_progress_rows();
            let room_bytes = self.bounds.bytes.saturating_sub(self.group_bytes).div_ceil(per_row).max(1);
            let len = room_rows.min(room_bytes).min(rows - offset);
            self.inner.write(&batch.slice(offset, len))?;
            self.group_bytes += len * per_row;
            offset += len;
            // At the row bound the writer has closed the group itself (no rows in progress).
            if self.inner.in_progress_rows() == 0 || self.group_bytes >= self.bounds.bytes {
                self.inner.flush()?;
                self.group_bytes = 0;
            }
        }
        Ok(())
    }

    /// Writes the footer and returns the sink.
    pub fn into_inner(self) -> std::result::Result<W, ParquetError> {
        self.inner.into_inner()
    }

    /// Writes the footer.
    pub fn close(self) -> std::result::Result<(), ParquetError> {
        self.inner.close().map(|_| ())
    }
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
