//! Gives the `sluice` binary a run path to the DuckDB library that the `sluice` crate's
//! build script provided (`crates/sluice/build.rs`), so the binary runs on its own, not only
//! under `cargo run`; then to its own directory, so a copy of the binary finds a
//! `libduckdb.so` placed beside it. Nothing to do when DuckDB is linked statically.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=DEP_SLUICE_DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_SLUICE_DUCKDB_LIB_DIR") {
        println!("cargo::rustc-link-arg=-Wl,-rpath,{dir}:$ORIGIN");
    }
}
