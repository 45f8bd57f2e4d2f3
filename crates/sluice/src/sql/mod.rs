//! SQL, pure: the dialects and what differs between them ([`Dialect`], with one table of
//! capabilities, [`Caps`]), and schema-qualified table names ([`TableRef`]). The
//! generators that use them (consolidation, control tables) are golden-tested per dialect.

pub mod dialect;

pub use dialect::{Caps, DUCKDB_SLICE_ROWS, Dialect, FirstLoadWrite, RunLock, TableRef, Upsert};
