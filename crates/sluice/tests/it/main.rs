//! The library's integration-test binary: one module per suite, so DuckDB is linked once
//! for all of them (a binary per file linked it once each).

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/postgres.rs"]
mod pg;
#[path = "../common/s3.rs"]
mod s3;
#[path = "../common/target.rs"]
mod target;
#[path = "../common/warehouse.rs"]
mod warehouse;

mod conformance;
mod consolidate_golden;
mod faults;
mod files;
mod lake;
mod memory;
mod postgres;
mod redshift;
mod salesforce;
mod scenarios;
mod sync;
