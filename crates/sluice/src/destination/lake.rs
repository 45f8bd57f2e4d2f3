//! The lakehouse destination (`type = "lake"`): Delta Lake tables on local disk or S3 that
//! other engines read, kept exactly once (docs/lake.md has the design and why it is built
//! on delta_kernel).
//!
//! - [`config`]: `type = "lake"` and its keys, checked purely.
//! - [`delta`]: one Delta table: its versions (data files, the flow's mark and
//!   transaction number) and atomic commits of added and removed files with the flow's
//!   mark.
//! - `work`: the lake as a SQL destination: a DuckDB work database mirrors its tables,
//!   runs the consolidation, and publishes each transaction's changed buckets as one Delta
//!   version before committing.
//! - `compact`: small files (the raw layer's appends) rewritten together, changing no data.
//! - `export`: a query's rows written as Parquet files, one per bucket, in bounded memory.
//! - `open`: the [`crate::pipeline::target::Connector`] every command opens it through.

mod compact;
pub mod config;
pub mod delta;
mod export;
mod open;
mod work;

pub use config::{LakeConfig, LakeKind};
pub use work::LakeDb;
