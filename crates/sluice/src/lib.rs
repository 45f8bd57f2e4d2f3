//! sluice: exactly-once replication of SaaS objects into warehouses and lakehouses.
//!
//! This crate holds every decision; the `sluice` binary is a thin shell around it. The
//! modules so far:
//!
//! - [`error`]: the one error type, [`Error`], with who must act ([`Kind`]) and what to
//!   do next ([`Retry`]).
//! - [`config`]: TOML → [`config::RawConfig`] → [`config::validate`] → [`config::Config`],
//!   reporting every problem at once; [`load_config`] checks it against every destination
//!   type ([`pipeline::DESTINATIONS`]).
//! - [`model`]: [`model::TableSchema`], [`model::SluiceType`], [`model::Cursor`],
//!   [`model::Window`], and API name → table/column naming.
//! - [`source`]: [`source::plan_windows`], and for Salesforce the describe → schema
//!   mapping, the SOQL builder, the error classifier, and the I/O edges: OAuth login, the
//!   one request path, REST and Bulk 2.0 extraction decoded into Arrow batches
//!   ([`source::salesforce::SalesforceSource`]).
//! - [`destination`]: the [`destination::Destination`] trait and the DuckDB warehouse, and
//!   the files destination (Parquet, CSV, JSON lines; one directory and manifest per run).
//! - [`sql`]: the dialects ([`sql::Dialect`]) and what differs between them.
//! - [`consolidate`]: the merge SQL per dialect (pure, golden-tested): staging, dedup,
//!   upsert, deletes, history, schema changes, reconciliation, and the control tables
//!   (`consolidate/control.rs`, the one place that spells what sluice persists: layouts,
//!   status words, lock keys, migrations).
//! - [`pipeline`]: one run of the configured flows, source to destination: planning,
//!   parallel flows with retries, reconciliation and verification, status and history,
//!   with a [`pipeline::RunSummary`] and progress reported to a [`pipeline::Observer`].
//! - [`serve`]: `sluice serve`, the pipeline on schedules, with an HTTP API.
//!
//! ```
//! use sluice::config;
//!
//! let env = |name: &str| Some(format!("value-of-{name}"));
//! let config = sluice::load_config(config::SAMPLE, "sluice.toml", &env).expect("the sample is valid");
//! assert_eq!(config.flows[0].object, "Account");
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod consolidate;
pub mod destination;
pub mod error;
pub mod failpoint;
pub mod mask;
pub mod model;
pub mod pipeline;
pub mod redact;
pub mod serve;
pub mod source;
pub mod sql;

pub use error::{Error, Kind, Result, Retry};
pub use pipeline::load_config;
