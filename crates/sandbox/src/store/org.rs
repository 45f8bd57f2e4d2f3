//! The whole org ([`Org`]): its tables, and the writes ([`Change`]) it applies with
//! Salesforce's semantics, late commits and the recycle bin included. Each write is
//! captured as it commits ([`ChangeLog`]), for change events.

use std::collections::{BTreeSet, HashMap};

use super::changes::{ChangeKind, ChangeLog};
use super::column::Column;
use super::derive::{auto_number, derive};
use super::table::Table;
use crate::ids;
use crate::schema::{Formula, ObjectDef};
use crate::value::{FieldType, Value};

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
    /// Every committed write, for change events.
    pub changes: ChangeLog,
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
            changes: ChangeLog::default(),
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

    /// Applies a write stamped at `stamp` (ms; truncated to the second) by `user`, committed
    /// at once.
    pub fn apply(&mut self, change: &Change, stamp: i64, user: &str) -> Result<(), ChangeError> {
        self.commit(change, stamp, user, stamp)
    }

    /// Applies a write stamped at `stamp` by `user` that commits at `commit_ms`, and
    /// captures it (one transaction of its own).
    fn commit(&mut self, change: &Change, stamp: i64, user: &str, commit_ms: i64) -> Result<(), ChangeError> {
        let Some((table, row, kind, values)) = self.write(change, stamp, user)? else { return Ok(()) };
        let record = self.tables[table].id(row).into_owned();
        let mut tx = self.changes.begin(commit_ms);
        self.changes.push(&mut tx, table, record, kind, values, user);
        self.changes.expire(commit_ms);
        Ok(())
    }

    /// Every value of `row` that a create or undelete event carries: the fields stored
    /// with a value (formula fields are computed on read and carried by no event).
    fn carried(&self, table: usize, row: u32) -> Vec<(usize, Value<'static>)> {
        let t = &self.tables[table];
        (0..t.def.fields.len())
            .filter(|&c| !matches!(t.columns[c], Column::Virtual) && t.def.fields[c].formula.is_none())
            .map(|c| (c, t.stored(row, c).into_owned()))
            .filter(|(_, v)| !v.is_null())
            .collect()
    }

    /// Applies a write; returns what change events capture of it (`None`: nothing, as for
    /// the purge of a record already in the recycle bin).
    fn write(&mut self, change: &Change, stamp: i64, user: &str) -> Result<Option<Captured>, ChangeError> {
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
                let row = t.push_row(*number, &row);
                Ok(Some((*table, row, ChangeKind::Create, self.carried(*table, row))))
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
                // The stamps the write sets are changed fields even when the second is
                // the same, as Salesforce lists them in every update event.
                let sys = t.sys;
                let stamped = if *system {
                    vec![sys.modstamp]
                } else {
                    vec![sys.modstamp, sys.last_modified, sys.last_modified_by]
                };
                let mut changed = Vec::new();
                for (c, v) in full.iter().enumerate() {
                    let differs = !matches!(t.columns[c], Column::Virtual) && *v != t.stored(row, c);
                    if differs {
                        t.columns[c].set(row as usize, v);
                    }
                    if (differs || stamped.contains(&c)) && t.def.fields[c].formula.is_none() {
                        changed.push((c, v.clone()));
                    }
                }
                Ok(Some((*table, row, ChangeKind::Update, changed)))
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
                Ok(Some((*table, row, ChangeKind::Delete, Vec::new())))
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
                Ok(Some((*table, row, ChangeKind::Undelete, self.carried(*table, row))))
            }
            Change::Purge { table, number } => {
                let t = &mut self.tables[*table];
                let row = t.row_of_number(*number).filter(|&r| !t.purged[r as usize]).ok_or(ChangeError::NotFound)?;
                if !t.def.deletable || t.sys.is_deleted.is_none() {
                    return Err(ChangeError::NotDeletable);
                }
                let was = t.deleted_at[row as usize];
                let captured = if was == i64::MIN {
                    // A hard delete of a live row: it still appears in the delete log, and
                    // subscribers get a delete event.
                    t.deleted_at[row as usize] = stamp;
                    let sys = t.sys;
                    t.columns[sys.is_deleted.unwrap_or(sys.id)].set(row as usize, &Value::Bool(true));
                    t.columns[sys.modstamp].set(row as usize, &Value::DateTime(stamp));
                    Some((*table, row, ChangeKind::Delete, Vec::new()))
                } else {
                    self.recycle.remove(&(was, *table, row));
                    None
                };
                t.purged[row as usize] = true;
                Ok(captured)
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
            let _ = self.commit(&p.change, p.stamp, &p.user, p.visible_at);
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

/// What change capture keeps of one write: table, row, what happened, and the values
/// the event carries.
type Captured = (usize, u32, ChangeKind, Vec<(usize, Value<'static>)>);

/// A key prefix as the bytes [`ids::parse`] returns.
fn prefix_key(prefix: &str) -> [u8; 3] {
    let b = prefix.as_bytes();
    [b[0], b[1], b[2]]
}
