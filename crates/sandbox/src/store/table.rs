//! One object's records as a columnar [`Table`], with the positions of the system
//! fields every write touches ([`SystemColumns`]).

use std::borrow::Cow;
use std::collections::HashMap;

use super::column::Column;
use crate::ids;
use crate::schema::{FieldDef, ObjectDef};
use crate::value::Value;

/// Positions of the system fields every write touches.
#[derive(Debug, Clone, Copy)]
pub struct SystemColumns {
    /// `Id`.
    pub id: usize,
    /// `IsDeleted`, absent on objects without a recycle bin (User).
    pub is_deleted: Option<usize>,
    /// `CreatedDate`.
    pub created: usize,
    /// `CreatedById`.
    pub created_by: usize,
    /// `LastModifiedDate`.
    pub last_modified: usize,
    /// `LastModifiedById`.
    pub last_modified_by: usize,
    /// `SystemModstamp`.
    pub modstamp: usize,
}

/// One object's records.
#[derive(Debug)]
pub struct Table {
    /// The object's metadata (grows when a field is added at run time).
    pub def: ObjectDef,
    /// One column per field of `def.fields`, same order.
    pub columns: Vec<Column>,
    /// Positions of system fields.
    pub sys: SystemColumns,
    /// Record number (decoded from the Id) of each row.
    pub numbers: Vec<u64>,
    /// When each row was deleted (`i64::MIN` when live).
    pub deleted_at: Vec<i64>,
    /// Whether each row has been purged from the recycle bin (gone from every query).
    pub purged: Vec<bool>,
    index: HashMap<u64, u32>,
    next_number: u64,
    pub(super) next_auto_number: u64,
}

impl Table {
    /// An empty table for `def`.
    pub fn new(def: ObjectDef) -> Self {
        let col = |n: &str| def.field_index(n).unwrap_or_else(|| panic!("{} lacks {n}", def.name));
        let sys = SystemColumns {
            id: col("Id"),
            is_deleted: def.field_index("IsDeleted"),
            created: col("CreatedDate"),
            created_by: col("CreatedById"),
            last_modified: col("LastModifiedDate"),
            last_modified_by: col("LastModifiedById"),
            modstamp: col("SystemModstamp"),
        };
        let columns = def.fields.iter().map(|f| Column::new(f.ty, f.calculated(), 0)).collect();
        Table {
            def,
            columns,
            sys,
            numbers: Vec::new(),
            deleted_at: Vec::new(),
            purged: Vec::new(),
            index: HashMap::new(),
            next_number: 1,
            next_auto_number: 1,
        }
    }

    /// Number of physical rows, purged ones included.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Reserves room for `n` more rows in every column.
    pub fn reserve(&mut self, n: usize) {
        for c in &mut self.columns {
            c.reserve(n);
        }
        self.numbers.reserve(n);
        self.deleted_at.reserve(n);
        self.purged.reserve(n);
        self.index.reserve(n);
    }

    /// Takes the next record number (for an Id handed out before the row exists).
    pub fn allocate_number(&mut self) -> u64 {
        let n = self.next_number;
        self.next_number += 1;
        n
    }

    /// Takes the next auto-number value.
    pub fn allocate_auto_number(&mut self) -> u64 {
        let n = self.next_auto_number;
        self.next_auto_number += 1;
        n
    }

    /// Appends a full row; `values` is parallel to the fields.
    pub fn push_row(&mut self, number: u64, values: &[Value<'_>]) -> u32 {
        let row = self.numbers.len() as u32;
        for (c, v) in self.columns.iter_mut().zip(values) {
            c.push(v);
        }
        for c in self.columns.iter_mut().skip(values.len()) {
            c.push(&Value::Null);
        }
        self.numbers.push(number);
        self.deleted_at.push(i64::MIN);
        self.purged.push(false);
        self.index.insert(number, row);
        self.next_number = self.next_number.max(number + 1);
        row
    }

    /// The row holding record `number`.
    pub fn row_of_number(&self, number: u64) -> Option<u32> {
        self.index.get(&number).copied()
    }

    /// The row of an Id of this object (15 or 18 characters), purged rows excluded.
    pub fn row_of_id(&self, id: &str) -> Option<u32> {
        let (prefix, number) = ids::parse(id)?;
        if self.def.key_prefix.as_bytes() != prefix {
            return None;
        }
        self.live_row(number)
    }

    /// The row of record `number` unless it was purged.
    pub(super) fn live_row(&self, number: u64) -> Option<u32> {
        self.row_of_number(number).filter(|&r| !self.purged[r as usize])
    }

    /// The 18-character Id of a row.
    pub fn id(&self, row: u32) -> Cow<'_, str> {
        match self.columns[self.sys.id].get(row as usize) {
            Value::Str(s) => s,
            _ => Cow::Owned(ids::make(&self.def.key_prefix, self.numbers[row as usize])),
        }
    }

    /// Whether a row is in the recycle bin.
    pub fn is_deleted(&self, row: u32) -> bool {
        self.deleted_at[row as usize] != i64::MIN
    }

    /// The stored value of a field (null for calculated fields; see [`Org::cell`](super::Org::cell)).
    pub fn stored(&self, row: u32, col: usize) -> Value<'_> {
        self.columns[col].get(row as usize)
    }

    /// `SystemModstamp` of a row in ms.
    pub fn modstamp(&self, row: u32) -> i64 {
        match self.stored(row, self.sys.modstamp) {
            Value::DateTime(t) => t,
            _ => i64::MIN,
        }
    }

    /// Adds a field at run time; existing rows read null.
    pub fn add_field(&mut self, field: FieldDef) {
        self.columns.push(Column::new(field.ty, field.calculated(), self.len()));
        self.def.fields.push(field);
    }

    /// Approximate bytes held by the table's data.
    pub fn heap_bytes(&self) -> usize {
        self.columns.iter().map(Column::heap_bytes).sum::<usize>()
            + self.numbers.capacity() * 8
            + self.deleted_at.capacity() * 8
            + self.purged.capacity()
            + self.index.capacity() * 16
    }
}
