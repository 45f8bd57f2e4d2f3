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
mod bound;
mod catalog;
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

pub use ast::{
    Comparison, Condition, DateUnit, FieldRef, Literal, LiteralKind, Name, Operator, OrderExpr, Pos, Query,
    RelativeDate, SelectExpr, Spanned,
};
pub use bind::bind;
pub use bound::{Bound, BoundField, OrderItem, SelectItem};
pub use catalog::{Catalog, CatalogField, RowAccess};
pub use error::SoqlError;
pub use parse::parse;

/// Parses and binds `soql` in one step.
pub fn compile(soql: &str, catalog: &dyn Catalog, now_ms: i64) -> Result<Bound, SoqlError> {
    bind(parse(soql)?, catalog, now_ms)
}
