//! A query bound to the org's schema ([`Bound`]) and its parts: the field paths it
//! touches, its SELECT items and ORDER BY keys; filtering and ordering rows.

use std::cmp::Ordering;

use super::catalog::RowAccess;
use super::eval;
use crate::value::FieldType;

/// A field path the query touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundField {
    /// Canonical segments: relationship names, then the field name (`["Owner", "Name"]`,
    /// or `["Name"]`).
    pub path: Vec<String>,
    /// Type of the field the path ends at.
    pub ty: FieldType,
}

impl BoundField {
    /// The path joined with dots, e.g. `Owner.Name`.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// One item of the SELECT list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// A field, as an index into [`Bound::fields`].
    Field(usize),
    /// `COUNT()`: the answer is `totalSize`, with no records.
    CountAll,
    /// `COUNT(field) [alias]`: an aggregate row (alias `expr0`, `expr1`, ... when absent).
    Count {
        /// Index into [`Bound::fields`].
        field: usize,
        /// The alias as written.
        alias: Option<String>,
    },
}

/// One ORDER BY key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderItem {
    /// Index into [`Bound::fields`].
    pub field: usize,
    /// `DESC`.
    pub descending: bool,
    /// Where nulls go, defaults applied: first for ascending, last for descending.
    pub nulls_first: bool,
}

/// A query resolved against the schema and ready to run.
#[derive(Debug, Clone)]
pub struct Bound {
    /// Canonical name of the queried object.
    pub object: String,
    /// Every distinct field path the query touches (SELECT, WHERE, ORDER BY), in order
    /// of first use.
    pub fields: Vec<BoundField>,
    /// The SELECT list, in order.
    pub select: Vec<SelectItem>,
    /// The ORDER BY keys, in order.
    pub order_by: Vec<OrderItem>,
    /// LIMIT.
    pub limit: Option<u64>,
    /// OFFSET (at most 2000).
    pub offset: Option<u64>,
    pub(super) filter: Option<eval::Filter>,
}

impl Bound {
    /// Whether this is `SELECT COUNT()`.
    pub fn is_count(&self) -> bool {
        self.select == [SelectItem::CountAll]
    }

    /// Whether `row` satisfies the WHERE clause (always, when there is none).
    pub fn matches(&self, row: &dyn RowAccess) -> bool {
        self.filter.as_ref().is_none_or(|f| f.eval(row))
    }

    /// Orders two rows by the ORDER BY keys. Rows equal on every key compare equal, so
    /// a stable sort keeps their original order.
    pub fn compare(&self, a: &dyn RowAccess, b: &dyn RowAccess) -> Ordering {
        for key in &self.order_by {
            let (va, vb) = (a.value(key.field), b.value(key.field));
            let ord = match (va.is_null(), vb.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) if key.nulls_first => Ordering::Less,
                (true, false) => Ordering::Greater,
                (false, true) if key.nulls_first => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    let o = eval::compare_values(&va, &vb);
                    if key.descending { o.reverse() } else { o }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}
