//! The library's integration-test binary: one module per suite, so DuckDB is linked once
//! for all of them. The suites still in files of their own beside `tests/it` move here as
//! they are next touched.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/postgres.rs"]
mod pg;
#[path = "../common/target.rs"]
mod target;
#[path = "../common/warehouse.rs"]
mod warehouse;

mod faults;
mod scenarios;
