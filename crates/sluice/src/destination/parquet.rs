//! Parquet writing shared by the files destination (its output) and DuckDB (its staging),
//! so both hold the same bounded buffers and the same codec.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::{Error, Result};

/// Rows per row group. The writer holds a whole row group in memory until it is flushed,
/// so this caps its footprint whatever the object's size; readers (DuckDB among them)
/// split their work by row group, so it also sets their parallelism.
pub const ROWS_PER_ROW_GROUP: usize = 128 * 1024;

/// A writer of `schema` into `sink` (`what` names it in messages). Snappy: it costs
/// little to write and to read, and a quarter of the bytes of uncompressed text.
pub fn writer<W: Write + Send>(sink: W, schema: SchemaRef, what: &dyn std::fmt::Display) -> Result<ArrowWriter<W>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROWS_PER_ROW_GROUP))
        .build();
    ArrowWriter::try_new(sink, schema, Some(props)).map_err(|e| Error::internal(format!("cannot start {what}: {e}")))
}
