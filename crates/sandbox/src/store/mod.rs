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

pub mod column;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

pub use column::Column;

use crate::ids;
use crate::schema::{FieldDef, Formula, ObjectDef};
use crate::soql::{Catalog, CatalogField, RowAccess};
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
        if prefix != self.def.key_prefix {
            return None;
        }
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
    by_prefix: HashMap<String, usize>,
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
        let by_prefix = tables.iter().enumerate().map(|(i, t)| (t.def.key_prefix.clone(), i)).collect();
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
        let (prefix, _) = ids::parse(id)?;
        let t = *self.by_prefix.get(&prefix)?;
        Some((t, self.tables[t].row_of_id(id)?))
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

    /// Readers of one query's field paths, resolved once.
    pub fn accessors(&self, table: usize, paths: &[Vec<String>]) -> Vec<Accessor> {
        paths
            .iter()
            .map(|path| {
                let mut hops = Vec::new();
                let mut t = table;
                for rel in &path[..path.len().saturating_sub(1)] {
                    let def = &self.tables[t].def;
                    let Some((col, f)) = def
                        .fields
                        .iter()
                        .enumerate()
                        .find(|(_, f)| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(rel)))
                    else {
                        return Accessor { hops: Vec::new(), table: t, col: None };
                    };
                    hops.push(col);
                    t = f.reference_to.first().and_then(|n| self.table_index(n)).unwrap_or(t);
                }
                let col = path.last().and_then(|n| self.tables[t].def.field_ci(n)).map(|(c, _)| c);
                Accessor { hops, table: t, col }
            })
            .collect()
    }

    /// Follows an accessor's lookups from `row` of `table` to the row it reads.
    pub fn follow(&self, table: usize, row: u32, acc: &Accessor) -> Option<(usize, u32)> {
        let (mut t, mut r) = (table, row);
        for &col in &acc.hops {
            let Value::Str(id) = self.tables[t].stored(r, col) else { return None };
            let (nt, nr) = self.locate(&id)?;
            t = nt;
            r = nr;
        }
        Some((t, r))
    }
}

/// How to read one field path (`Owner.Manager.Name`) from a row: the lookup columns to
/// follow, then the column to read in the table reached.
#[derive(Debug, Clone)]
pub struct Accessor {
    /// Reference columns to follow, in order.
    pub hops: Vec<usize>,
    /// The table the path ends in.
    pub table: usize,
    /// The column read there (`None` if the path no longer resolves).
    pub col: Option<usize>,
}

/// One row seen through a query's accessors: what the SOQL evaluator reads.
pub struct RowView<'a> {
    /// The org.
    pub org: &'a Org,
    /// The queried table.
    pub table: usize,
    /// The row.
    pub row: u32,
    /// Accessors parallel to the query's fields.
    pub accessors: &'a [Accessor],
    /// Today in days since the epoch (for formulas).
    pub today: i32,
}

impl RowAccess for RowView<'_> {
    fn value(&self, field: usize) -> Value<'_> {
        let acc = &self.accessors[field];
        let Some(col) = acc.col else { return Value::Null };
        if acc.hops.is_empty() {
            return self.org.cell(self.table, self.row, col, self.today);
        }
        match self.org.follow(self.table, self.row, acc) {
            Some((t, r)) => self.org.cell(t, r, col, self.today),
            None => Value::Null,
        }
    }
}

impl Catalog for Org {
    fn object(&self, name: &str) -> Option<String> {
        self.table(name).map(|t| t.def.name.clone())
    }

    fn field(&self, object: &str, name: &str) -> Option<CatalogField> {
        let (_, f) = self.table(object)?.def.field_ci(name)?;
        Some(CatalogField { name: f.name.clone(), ty: f.ty, filterable: f.filterable, sortable: f.sortable })
    }

    fn relationship(&self, object: &str, name: &str) -> Option<(String, String)> {
        let t = self.table(object)?;
        t.def.fields.iter().find_map(|f| {
            let rel = f.relationship_name.as_deref()?;
            if !rel.eq_ignore_ascii_case(name) {
                return None;
            }
            let target = self.table(f.reference_to.first()?)?.def.name.clone();
            Some((rel.to_string(), target))
        })
    }
}

/// Today in days since the epoch at `now_ms`.
pub fn today(now_ms: i64) -> i32 {
    days_from_ms(now_ms)
}

fn auto_number(object: &str, n: u64) -> String {
    match object {
        "Case" => format!("{n:08}"),
        _ => format!("INV-{n:06}"),
    }
}

/// Server-maintained fields derived from others, as real orgs keep them.
fn derive(def: &ObjectDef, row: &mut [Value<'_>]) {
    let idx = |n: &str| def.field_index(n);
    let text = |row: &[Value<'_>], n: &str| match idx(n).map(|i| &row[i]) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    if matches!(def.name.as_str(), "Contact" | "Lead" | "User")
        && let Some(name) = idx("Name")
    {
        let full = match (text(row, "FirstName"), text(row, "LastName")) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (None, Some(l)) => l,
            (Some(f), None) => f,
            (None, None) => String::new(),
        };
        row[name] = if full.is_empty() { Value::Null } else { Value::Str(full.into()) };
    }
    if def.name == "Opportunity" {
        let stage = text(row, "StageName").unwrap_or_default();
        let closed = stage.starts_with("Closed");
        let won = stage == "Closed Won";
        if let Some(i) = idx("IsClosed") {
            row[i] = Value::Bool(closed);
        }
        if let Some(i) = idx("IsWon") {
            row[i] = Value::Bool(won);
        }
        if let Some(i) = idx("ForecastCategory") {
            let cat = if won {
                "Closed"
            } else if closed {
                "Omitted"
            } else {
                "Pipeline"
            };
            row[i] = Value::Str(cat.into());
        }
        if let (Some(i), Some(Value::Date(d))) = (idx("FiscalYear"), idx("CloseDate").map(|c| row[c].clone())) {
            let date = crate::value::date_from_days(d);
            row[i] = Value::Int(i64::from(chrono::Datelike::year(&date)));
            if let Some(q) = idx("FiscalQuarter") {
                row[q] = Value::Int(i64::from(chrono::Datelike::month0(&date) / 3 + 1));
            }
        }
    }
    if def.name == "Case"
        && let Some(i) = idx("IsClosed")
    {
        row[i] = Value::Bool(text(row, "Status").as_deref() == Some("Closed"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::objects;

    fn org() -> Org {
        Org::new(objects::all(), 15 * 86_400_000)
    }

    fn insert(org: &mut Org, object: &str, values: &[(&str, Value<'static>)], stamp: i64) -> u64 {
        let t = org.table_index(object).unwrap();
        let number = org.tables[t].allocate_number();
        let values = values.iter().map(|(n, v)| (org.tables[t].def.field_index(n).unwrap(), v.clone())).collect();
        let user = org.user_id.clone();
        org.apply(&Change::Insert { table: t, number, values }, stamp, &user).unwrap();
        number
    }

    #[test]
    fn writes_stamp_modstamp_to_the_second() {
        let mut org = org();
        let n = insert(&mut org, "Account", &[("Name", Value::Str("Acme".into()))], 1_700_000_000_123);
        let t = &org.tables[0];
        let row = t.row_of_number(n).unwrap();
        assert_eq!(t.modstamp(row), 1_700_000_000_000);
        assert_eq!(t.stored(row, t.sys.is_deleted.unwrap()), Value::Bool(false));
        let user = org.user_id.clone();
        org.apply(&Change::Update { table: 0, number: n, values: vec![], system: true }, 1_700_000_005_000, &user)
            .unwrap();
        let t = &org.tables[0];
        assert_eq!(t.modstamp(row), 1_700_000_005_000);
        assert_eq!(t.stored(row, t.sys.last_modified), Value::DateTime(1_700_000_000_000));
    }

    #[test]
    fn deleted_rows_are_purged_after_retention() {
        let mut org = org();
        let n = insert(&mut org, "Account", &[("Name", Value::Str("Acme".into()))], 0);
        let user = org.user_id.clone();
        org.apply(&Change::Delete { table: 0, number: n }, 1_000, &user).unwrap();
        assert_eq!(org.apply(&Change::Delete { table: 0, number: n }, 2_000, &user), Err(ChangeError::Deleted));
        org.tick(1_000 + org.retention_ms - 1);
        assert!(!org.tables[0].purged[0]);
        org.tick(1_000 + org.retention_ms);
        assert!(org.tables[0].purged[0]);
        assert_eq!(org.tables[0].row_of_id(&ids::make("001", n)), None);
    }

    #[test]
    fn late_writes_appear_only_when_due_with_their_old_stamp() {
        let mut org = org();
        let t = org.table_index("Account").unwrap();
        let number = org.tables[t].allocate_number();
        let name = org.tables[t].def.field_index("Name").unwrap();
        let user = org.user_id.clone();
        org.apply_late(
            Change::Insert { table: t, number, values: vec![(name, Value::Str("Late".into()))] },
            10_000,
            &user,
            70_000,
        );
        org.tick(69_999);
        assert!(org.tables[t].is_empty());
        org.tick(70_000);
        assert_eq!(org.tables[t].modstamp(0), 10_000);
    }

    #[test]
    fn formulas_are_computed_at_read_time() {
        let mut org = org();
        let acct = insert(&mut org, "Account", &[("Name", Value::Str("Parent Co".into()))], 0);
        let inv = insert(
            &mut org,
            "Invoice__c",
            &[
                ("Account__c", Value::Str(ids::make("001", acct).into())),
                ("Due_Date__c", Value::Date(100)),
                ("Amount__c", Value::Float(200.0)),
                ("Tax_Rate__c", Value::Float(10.0)),
            ],
            0,
        );
        let t = org.table_index("Invoice__c").unwrap();
        let row = org.tables[t].row_of_number(inv).unwrap();
        let col = |n: &str| org.tables[t].def.field_index(n).unwrap();
        assert_eq!(org.cell(t, row, col("Days_Overdue__c"), 110), Value::Float(10.0));
        assert_eq!(org.cell(t, row, col("Days_Overdue__c"), 111), Value::Float(11.0));
        assert_eq!(org.cell(t, row, col("Account_Name__c"), 0), Value::Str("Parent Co".into()));
        assert_eq!(org.cell(t, row, col("Total_With_Tax__c"), 0), Value::Float(20.0));
        assert_eq!(org.tables[t].stored(row, col("Name")), Value::Str("INV-000001".into()));
    }

    #[test]
    fn users_cannot_be_deleted() {
        let mut org = org();
        let n = insert(&mut org, "User", &[("LastName", Value::Str("Ng".into()))], 0);
        let t = org.table_index("User").unwrap();
        let user = org.user_id.clone();
        assert_eq!(org.apply(&Change::Delete { table: t, number: n }, 0, &user), Err(ChangeError::NotDeletable));
    }
}
