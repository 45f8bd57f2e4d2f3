//! Gives the `sluice` binary an rpath to the directory of the DuckDB library that the
//! `sluice` crate's build script provided (`crates/sluice/build.rs`), so the binary runs
//! on its own, not only under `cargo run`. Nothing to do when DuckDB is linked statically.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=DEP_SLUICE_DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_SLUICE_DUCKDB_LIB_DIR") {
        println!("cargo::rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
