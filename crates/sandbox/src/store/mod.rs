//! The org's records: one columnar [`Table`] per object, and the [`Org`] that applies
//! writes with Salesforce's semantics.
//!
//! Invariants the rest of the sandbox relies on:
//! - every write stamps `SystemModstamp` (and, for user writes, `LastModifiedDate`) with
//!   the server clock truncated to the second, as real orgs do (samples always end in
//!   `.000`), so many rows share a timestamp;
//! - a delete keeps the row with `IsDeleted = true` in the recycle bin until it is
//!   purged (retention, or an explicit purge); purged rows vanish from every query;
//! - rows are never physically removed, so a row number stays valid for a query
//!   cursor's lifetime;
//! - a late commit is a write whose stamp is taken now but which is applied (made
//!   visible) only at `visible_at`, with its original stamp.

mod access;
pub mod column;
mod derive;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

pub use access::{Accessor, RowView};
pub use column::Column;
use derive::{auto_number, derive};

use crate::ids;
use crate::schema::{FieldDef, Formula, ObjectDef};
use crate::value::{FieldType, Value, days_from_ms};

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
    next_auto_number: u64,
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
    fn live_row(&self, number: u64) -> Option<u32> {
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

    /// The stored value of a field (null for calculated fields; see [`Org::cell`]).
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

/// A write, as applied by [`Org::apply`].
#[derive(Debug, Clone)]
pub enum Change {
    /// A new record with a pre-allocated number. `values` are (field position, value).
    Insert {
        /// Table position.
        table: usize,
        /// Record number (the Id was handed out already).
        number: u64,
        /// Field values set by the writer; server fields are filled by `apply`.
        values: Vec<(usize, Value<'static>)>,
    },
    /// Field changes to an existing record.
    Update {
        /// Table position.
        table: usize,
        /// Record number.
        number: u64,
        /// Field values.
        values: Vec<(usize, Value<'static>)>,
        /// A system write (trigger, recalculation) bumps SystemModstamp only.
        system: bool,
    },
    /// Move to the recycle bin.
    Delete {
        /// Table position.
        table: usize,
        /// Record number.
        number: u64,
    },
    /// Restore from the recycle bin.
    Undelete {
        /// Table position.
        table: usize,
        /// Record number.
        number: u64,
    },
    /// Remove for good (recycle bin emptied, or hard delete).
    Purge {
        /// Table position.
        table: usize,
        /// Record number.
        number: u64,
    },
}

#[derive(Debug)]
struct Pending {
    visible_at: i64,
    stamp: i64,
    user: String,
    change: Change,
}

/// The whole org: tables plus what happens to rows over time.
#[derive(Debug)]
pub struct Org {
    /// Tables in describeGlobal order.
    pub tables: Vec<Table>,
    /// 18-character org Id.
    pub org_id: String,
    /// 18-character Id of the integration user every API write runs as.
    pub user_id: String,
    /// How long deleted rows stay in the recycle bin.
    pub retention_ms: i64,
    by_name: HashMap<String, usize>,
    by_prefix: HashMap<[u8; 3], usize>,
    recycle: BTreeSet<(i64, usize, u32)>,
    pending: Vec<Pending>,
}

/// Applying a write failed because the record is not in the state the write needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// No such record (or it was purged).
    #[error("entity not found")]
    NotFound,
    /// The record is in the recycle bin.
    #[error("entity is deleted")]
    Deleted,
    /// Undelete of a record that is not deleted.
    #[error("entity is not in the recycle bin")]
    NotDeleted,
    /// The object does not allow the operation (e.g. deleting a User).
    #[error("entity type cannot be deleted")]
    NotDeletable,
}

impl Org {
    /// An org with the given objects and no records.
    pub fn new(objects: Vec<ObjectDef>, retention_ms: i64) -> Self {
        let tables: Vec<Table> = objects.into_iter().map(Table::new).collect();
        let by_name = tables.iter().enumerate().map(|(i, t)| (t.def.name.to_ascii_lowercase(), i)).collect();
        let by_prefix = tables.iter().enumerate().map(|(i, t)| (prefix_key(&t.def.key_prefix), i)).collect();
        Org {
            tables,
            org_id: ids::make("00D", 1),
            user_id: ids::make("005", 1),
            retention_ms,
            by_name,
            by_prefix,
            recycle: BTreeSet::new(),
            pending: Vec::new(),
        }
    }

    /// A table position by object name, case-insensitively.
    pub fn table_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// A table by object name, case-insensitively.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.table_index(name).map(|i| &self.tables[i])
    }

    /// Table position and row of any record Id.
    pub fn locate(&self, id: &str) -> Option<(usize, u32)> {
        // One parse: `by_prefix` maps a prefix only to the table with that key prefix.
        let (prefix, number) = ids::parse(id)?;
        let t = *self.by_prefix.get(&prefix)?;
        Some((t, self.tables[t].live_row(number)?))
    }

    /// The value of a field as a reader sees it: stored, or computed for formulas and
    /// compounds (compounds read as null here; renderers build them from components).
    pub fn cell(&self, table: usize, row: u32, col: usize, today: i32) -> Value<'_> {
        let t = &self.tables[table];
        let Some(formula) = &t.def.fields[col].formula else {
            return t.stored(row, col);
        };
        let get = |name: &str| t.def.field_index(name).map(|c| t.stored(row, c)).unwrap_or(Value::Null);
        match formula {
            Formula::DaysSince { date, unless } => match (get(date), get(unless)) {
                (_, Value::Bool(true)) => Value::Null,
                (Value::Date(d), _) => Value::Float(f64::from(today - d)),
                _ => Value::Null,
            },
            Formula::ParentField { reference, field } => {
                let Value::Str(id) = get(reference) else { return Value::Null };
                let Some((pt, prow)) = self.locate(&id) else { return Value::Null };
                let parent = &self.tables[pt];
                match parent.def.field_index(field) {
                    Some(c) => parent.stored(prow, c),
                    None => Value::Null,
                }
            }
            Formula::Product { a, b, divisor } => match (get(a), get(b)) {
                (Value::Float(x), Value::Float(y)) => Value::Float((x * y / divisor * 100.0).round() / 100.0),
                _ => Value::Null,
            },
        }
    }

    /// Applies a write stamped at `stamp` (ms; truncated to the second) by `user`.
    pub fn apply(&mut self, change: &Change, stamp: i64, user: &str) -> Result<(), ChangeError> {
        let stamp = stamp - stamp.rem_euclid(1000);
        match change {
            Change::Insert { table, number, values } => {
                let t = &mut self.tables[*table];
                let mut row: Vec<Value<'_>> = vec![Value::Null; t.def.fields.len()];
                for (c, v) in values {
                    row[*c] = v.clone();
                }
                let sys = t.sys;
                row[sys.id] = Value::Str(ids::make(&t.def.key_prefix, *number).into());
                if let Some(c) = sys.is_deleted {
                    row[c] = Value::Bool(false);
                }
                for c in [sys.created, sys.last_modified, sys.modstamp] {
                    row[c] = Value::DateTime(stamp);
                }
                for c in [sys.created_by, sys.last_modified_by] {
                    row[c] = Value::Str(user.to_string().into());
                }
                for (i, f) in t.def.fields.iter().enumerate() {
                    if f.ty == FieldType::Boolean && row[i].is_null() && !f.calculated() {
                        row[i] = Value::Bool(false);
                    }
                    if f.name == "OwnerId" && row[i].is_null() {
                        row[i] = Value::Str(user.to_string().into());
                    }
                    if f.auto_number && row[i].is_null() {
                        row[i] = Value::Str(auto_number(&t.def.name, t.next_auto_number).into());
                        t.next_auto_number += 1;
                    }
                }
                derive(&t.def, &mut row);
                t.push_row(*number, &row);
                Ok(())
            }
            Change::Update { table, number, values, system } => {
                let t = &mut self.tables[*table];
                let row = t.row_of_number(*number).filter(|&r| !t.purged[r as usize]).ok_or(ChangeError::NotFound)?;
                if t.is_deleted(row) {
                    return Err(ChangeError::Deleted);
                }
                let mut full: Vec<Value<'static>> =
                    (0..t.def.fields.len()).map(|c| t.stored(row, c).into_owned()).collect();
                for (c, v) in values {
                    full[*c] = v.clone();
                }
                derive(&t.def, &mut full);
                full[t.sys.modstamp] = Value::DateTime(stamp);
                if !system {
                    full[t.sys.last_modified] = Value::DateTime(stamp);
                    full[t.sys.last_modified_by] = Value::Str(user.to_string().into());
                }
                for (c, v) in full.iter().enumerate() {
                    if !matches!(t.columns[c], Column::Virtual) && *v != t.stored(row, c) {
                        t.columns[c].set(row as usize, v);
                    }
                }
                Ok(())
            }
            Change::Delete { table, number } => {
                let t = &mut self.tables[*table];
                if !t.def.deletable || t.sys.is_deleted.is_none() {
                    return Err(ChangeError::NotDeletable);
                }
                let row = t.row_of_number(*number).filter(|&r| !t.purged[r as usize]).ok_or(ChangeError::NotFound)?;
                if t.is_deleted(row) {
                    return Err(ChangeError::Deleted);
                }
                let sys = t.sys;
                t.columns[sys.is_deleted.unwrap_or(sys.id)].set(row as usize, &Value::Bool(true));
                t.columns[sys.modstamp].set(row as usize, &Value::DateTime(stamp));
                t.columns[sys.last_modified].set(row as usize, &Value::DateTime(stamp));
                t.columns[sys.last_modified_by].set(row as usize, &Value::Str(user.into()));
                t.deleted_at[row as usize] = stamp;
                self.recycle.insert((stamp, *table, row));
                Ok(())
            }
            Change::Undelete { table, number } => {
                let t = &mut self.tables[*table];
                let row = t.row_of_number(*number).filter(|&r| !t.purged[r as usize]).ok_or(ChangeError::NotFound)?;
                if !t.is_deleted(row) {
                    return Err(ChangeError::NotDeleted);
                }
                let sys = t.sys;
                let was = t.deleted_at[row as usize];
                t.columns[sys.is_deleted.unwrap_or(sys.id)].set(row as usize, &Value::Bool(false));
                t.columns[sys.modstamp].set(row as usize, &Value::DateTime(stamp));
                t.columns[sys.last_modified].set(row as usize, &Value::DateTime(stamp));
                t.columns[sys.last_modified_by].set(row as usize, &Value::Str(user.into()));
                t.deleted_at[row as usize] = i64::MIN;
                self.recycle.remove(&(was, *table, row));
                Ok(())
            }
            Change::Purge { table, number } => {
                let t = &mut self.tables[*table];
                let row = t.row_of_number(*number).filter(|&r| !t.purged[r as usize]).ok_or(ChangeError::NotFound)?;
                if !t.def.deletable || t.sys.is_deleted.is_none() {
                    return Err(ChangeError::NotDeletable);
                }
                let was = t.deleted_at[row as usize];
                if was == i64::MIN {
                    // A hard delete of a live row: it still appears in the delete log.
                    t.deleted_at[row as usize] = stamp;
                    let sys = t.sys;
                    t.columns[sys.is_deleted.unwrap_or(sys.id)].set(row as usize, &Value::Bool(true));
                    t.columns[sys.modstamp].set(row as usize, &Value::DateTime(stamp));
                } else {
                    self.recycle.remove(&(was, *table, row));
                }
                t.purged[row as usize] = true;
                Ok(())
            }
        }
    }

    /// Queues a write that becomes visible at `visible_at` with the stamp it has now.
    pub fn apply_late(&mut self, change: Change, stamp: i64, user: &str, visible_at: i64) {
        self.pending.push(Pending { visible_at, stamp, user: user.to_string(), change });
        self.pending.sort_by_key(|p| p.visible_at);
    }

    /// The earliest instant at which [`Org::tick`] has work to do.
    pub fn next_due(&self) -> i64 {
        let pending = self.pending.first().map_or(i64::MAX, |p| p.visible_at);
        let purge = self.recycle.first().map_or(i64::MAX, |(at, _, _)| at.saturating_add(self.retention_ms));
        pending.min(purge)
    }

    /// Commits due late writes and purges the recycle bin past its retention.
    pub fn tick(&mut self, now: i64) {
        while self.pending.first().is_some_and(|p| p.visible_at <= now) {
            let p = self.pending.remove(0);
            // A late write whose record changed meanwhile still commits; if the record
            // is gone the write is lost, as a rolled-back transaction would be.
            let _ = self.apply(&p.change, p.stamp, &p.user);
        }
        while let Some(&(at, table, row)) = self.recycle.first() {
            if at.saturating_add(self.retention_ms) > now {
                break;
            }
            self.recycle.pop_first();
            self.tables[table].purged[row as usize] = true;
        }
    }

    /// Re-indexes the recycle bin from the tables (after bulk generation).
    pub fn rebuild_recycle_bin(&mut self) {
        self.recycle.clear();
        for (ti, t) in self.tables.iter().enumerate() {
            for (r, &at) in t.deleted_at.iter().enumerate() {
                if at != i64::MIN && !t.purged[r] {
                    self.recycle.insert((at, ti, r as u32));
                }
            }
        }
    }

    /// The stamp of the oldest write to `table` still waiting to commit (the start of
    /// an open long-running transaction), if any.
    pub fn pending_since(&self, table: usize) -> Option<i64> {
        self.pending
            .iter()
            .filter(|p| match &p.change {
                Change::Insert { table: t, .. }
                | Change::Update { table: t, .. }
                | Change::Delete { table: t, .. }
                | Change::Undelete { table: t, .. }
                | Change::Purge { table: t, .. } => *t == table,
            })
            .map(|p| p.stamp)
            .min()
    }

    /// Number of writes waiting to become visible.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Rows currently in the recycle bin, across all tables.
    pub fn recycle_bin_len(&self) -> usize {
        self.recycle.len()
    }
}

/// A key prefix as the bytes [`ids::parse`] returns.
fn prefix_key(prefix: &str) -> [u8; 3] {
    let b = prefix.as_bytes();
    [b[0], b[1], b[2]]
}

/// Today in days since the epoch at `now_ms`.
pub fn today(now_ms: i64) -> i32 {
    days_from_ms(now_ms)
}

#[cfg(test)]
mod tests;
