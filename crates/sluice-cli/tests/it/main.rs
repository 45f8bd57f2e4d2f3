//! The binary's integration-test binary: one module per suite, so the test harness and
//! DuckDB are linked once for all of them. The suites run the built `sluice` binary
//! (`CARGO_BIN_EXE_sluice`) as a user would.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../../sluice/tests/common/postgres.rs"]
mod pg;
#[path = "../../../sluice/tests/common/s3.rs"]
mod s3;
#[path = "../../../sluice/tests/common/target.rs"]
mod target;

mod bad_input;
mod cli;
mod crash;
mod demo;
mod serve;
