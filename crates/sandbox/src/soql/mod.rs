//! SOQL for the sandbox: the subset Salesforce's REST and Bulk query endpoints accept
//! from replication clients, with Salesforce's error codes and caret-diagram messages.
//!
//! [`parse`] turns text into a [`Query`] (syntax only), [`bind`] resolves it against the
//! org's schema through a [`Catalog`] into a [`Bound`] query, and [`compile`] does both.
//! A [`Bound`] query filters ([`Bound::matches`]) and orders ([`Bound::compare`]) rows
//! the store exposes through [`RowAccess`]; all per-query work happens in `bind`, so
//! testing a row is cheap and, for the usual filters, allocation-free.

mod ast;
mod bind;
mod error;
mod eval;
mod lex;
mod literals;
mod parse;
mod text;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bind;
#[cfg(test)]
mod tests_eval;
#[cfg(test)]
mod tests_props;

use std::cmp::Ordering;

use crate::value::{FieldType, Value};

pub use ast::{
    Comparison, Condition, DateUnit, FieldRef, Literal, LiteralKind, Name, Operator, OrderExpr, Pos, Query,
    RelativeDate, SelectExpr, Spanned,
};
pub use bind::bind;
pub use error::SoqlError;
pub use parse::parse;

/// Schema lookups the binder needs; implemented by the org's store.
pub trait Catalog {
    /// Canonical API name of an object, looked up case-insensitively.
    fn object(&self, name: &str) -> Option<String>;
    /// A field of `object` (canonical name given), looked up case-insensitively.
    fn field(&self, object: &str, name: &str) -> Option<CatalogField>;
    /// A child-to-parent relationship of `object` by relationship name (e.g. "Owner",
    /// "Account", "Account__r"), case-insensitively: returns (canonical relationship
    /// name, canonical target object).
    fn relationship(&self, object: &str, name: &str) -> Option<(String, String)>;
}

/// What the binder needs to know about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogField {
    /// Canonical API name.
    pub name: String,
    /// The field's type.
    pub ty: FieldType,
    /// Whether it may appear in WHERE (describe's `filterable`).
    pub filterable: bool,
    /// Whether it may appear in ORDER BY (describe's `sortable`).
    pub sortable: bool,
}

/// Reads one row during evaluation.
pub trait RowAccess {
    /// The value of the field at `field`, an index into [`Bound::fields`].
    fn value(&self, field: usize) -> Value<'_>;
}

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
    filter: Option<eval::Filter>,
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

/// Parses and binds `soql` in one step.
pub fn compile(soql: &str, catalog: &dyn Catalog, now_ms: i64) -> Result<Bound, SoqlError> {
    bind(parse(soql)?, catalog, now_ms)
}
