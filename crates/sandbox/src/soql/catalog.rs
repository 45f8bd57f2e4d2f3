//! What the SOQL engine needs from the store: schema lookups for binding ([`Catalog`],
//! [`CatalogField`]) and row reads for evaluation ([`RowAccess`]).

use crate::value::{FieldType, Value};

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
    /// The value of the field at `field`, an index into [`Bound::fields`](super::Bound::fields).
    fn value(&self, field: usize) -> Value<'_>;
}
