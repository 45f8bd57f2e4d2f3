//! Masking: a flow's `mask` fields are stored as the hex SHA-256 of the destination's
//! salt followed by the value, so they can still be joined and counted but not read.
//! Applied to every batch before any destination sees it.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::error::{Error, Result};
use crate::model::TableSchema;

/// The stored form of one masked value.
pub fn hash(salt: &str, value: &str) -> String {
    format!("{:x}", Sha256::new_with_prefix(salt).chain_update(value).finalize())
}

/// The masking of one flow: the salt hashed once, the masked column positions found once,
/// so each value costs one SHA-256 finish written straight into the output column.
#[derive(Clone)]
pub struct Masker {
    salted: Sha256,
    columns: Vec<(usize, String)>,
}

impl Masker {
    /// The masker for `schema` with `salt`, or `None` when nothing is masked (or no salt:
    /// config validation requires one whenever a flow masks fields).
    pub fn new(schema: &TableSchema, salt: Option<&Secret>) -> Option<Self> {
        let columns: Vec<(usize, String)> =
            schema.columns.iter().enumerate().filter(|(_, c)| c.masked).map(|(i, c)| (i, c.name.clone())).collect();
        if columns.is_empty() {
            return None;
        }
        Some(Self { salted: Sha256::new_with_prefix(salt?.expose()), columns })
    }

    /// Replaces the masked columns of `batch` (laid out as the schema's columns) by their
    /// hashes; nulls stay null.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (i, name) in &self.columns {
            let values = columns
                .get(*i)
                .and_then(|a| a.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| Error::internal(format!("masked column {name} is not text in the batch")))?;
            let mut hashed = StringBuilder::with_capacity(values.len(), values.len() * 64);
            for r in 0..values.len() {
                if values.is_null(r) {
                    hashed.append_null();
                } else {
                    let digest = self.salted.clone().chain_update(values.value(r)).finalize();
                    let _ = write!(hashed, "{digest:x}");
                    hashed.append_value("");
                }
            }
            columns[*i] = Arc::new(hashed.finish());
        }
        RecordBatch::try_new(batch.schema(), columns).map_err(|e| Error::internal(format!("cannot mask a batch: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, Cursor, SluiceType};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn masked_values_are_salted_hashes_and_nulls_stay_null() {
        let col = |name: &str, masked| Column {
            name: name.into(),
            source_name: name.into(),
            ty: SluiceType::Text,
            nullable: true,
            formula: false,
            masked,
        };
        let schema = TableSchema {
            object: "Contact".into(),
            table: "contact".into(),
            columns: vec![col("id", false), col("phone", true)],
            cursor: Cursor::SystemModstamp,
            deleted_flag: None,
        };
        let arrow = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("phone", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            arrow,
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(StringArray::from(vec![Some("555-0100"), None])),
            ],
        )
        .unwrap();
        let masker = Masker::new(&schema, Some(&Secret::new("pepper"))).expect("phone is masked");
        let masked = masker.apply(&batch).unwrap();
        let phone = masked.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        // SHA-256("pepper555-0100"), computed independently.
        assert_eq!(phone.value(0), hash("pepper", "555-0100"));
        assert_eq!(hash("", "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_ne!(hash("salt-a", "x"), hash("salt-b", "x"));
        assert!(phone.is_null(1));
        assert_eq!(masked.column(0), batch.column(0), "unmasked columns are untouched");
    }
}
