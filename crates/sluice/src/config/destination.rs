//! A validated `[destination]` ([`DestinationConfig`]): the keys every type shares and the
//! type's own settings, behind [`DestinationSettings`] (what the rest of validation and
//! the pipeline ask of them). Each destination folder implements it in its `config.rs`,
//! beside its [`super::DestinationKind`], so configuration names no destination.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::model::Naming;

/// How a destination compares table names, for the check that two flows do not write one
/// table ([`super::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRules {
    /// Whether two names differing only in case are one table.
    pub case_insensitive: bool,
    /// Who treats them so, for messages (`"DuckDB"`).
    pub server: &'static str,
    /// Whether `naming = "original"` cannot keep capitals either (the server folds them),
    /// so it is no fix for a collision.
    pub folds_case: bool,
}

/// A validated `[destination]`'s type-specific settings. The destination's own code
/// reads its concrete type back with [`DestinationConfig::settings`].
pub trait DestinationSettings: SameAs + fmt::Debug + Send + Sync {
    /// How it compares table names.
    fn names(&self) -> NameRules;

    /// Whether it only appends (keeps every version read: no deletes, no history, no
    /// reconciliation, no `write = "merge"`).
    fn append_only(&self) -> bool {
        false
    }

    /// Whether it keeps `<table>_history` for flows with `history = true`.
    fn keeps_history(&self) -> bool {
        true
    }

    /// A table name it keeps for itself, which no flow may write.
    fn reserved_table(&self) -> Option<&'static str> {
        None
    }

    /// Who runs the consolidation.
    fn consolidation(&self) -> Consolidation {
        Consolidation::Run
    }
}

/// Equality behind `dyn` (for [`DestinationConfig`]'s `PartialEq`): every `PartialEq`
/// type has it.
pub trait SameAs: Any {
    /// Whether `other` is a `Self` equal to this one.
    fn same_as(&self, other: &dyn Any) -> bool;
}

impl<T: PartialEq + Any> SameAs for T {
    fn same_as(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// `[destination]`, validated: the keys every type shares and the type's own settings.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    /// The type (`"duckdb"`): the [`super::DestinationKind::name`] that checked it.
    pub kind: &'static str,
    /// How table and column names are derived.
    pub naming: Naming,
    /// The type's own settings.
    pub settings: Arc<dyn DestinationSettings>,
}

impl PartialEq for DestinationConfig {
    fn eq(&self, other: &Self) -> bool {
        let theirs: &dyn Any = other.settings.as_ref();
        self.kind == other.kind && self.naming == other.naming && (*self.settings).same_as(theirs)
    }
}

impl DestinationConfig {
    /// How table and column names are derived.
    pub fn naming(&self) -> Naming {
        self.naming
    }

    /// The type (`"duckdb"`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Who runs the consolidation.
    pub fn consolidation(&self) -> Consolidation {
        self.settings.consolidation()
    }

    /// The settings as the type `T` they are, if they are.
    pub fn settings<T: DestinationSettings>(&self) -> Option<&T> {
        (self.settings.as_ref() as &dyn Any).downcast_ref::<T>()
    }
}

/// Who runs a PostgreSQL or Redshift consolidation (`destination.consolidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consolidation {
    /// The sync consolidates each load itself (the default).
    #[default]
    Run,
    /// The sync stages each load and installs its consolidation as the stored procedure
    /// `<schema>.sluice_consolidate_<table>()`, which the warehouse's scheduler calls (see
    /// [`crate::consolidate::procedure`]).
    Procedure,
}
