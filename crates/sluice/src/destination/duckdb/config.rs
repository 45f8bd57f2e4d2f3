//! The DuckDB destination's configuration, pure: `type = "duckdb"` ([`DuckDbKind`]) and
//! its checked settings ([`DuckDbConfig`]).

use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::config::{DestinationKeys, DestinationKind, DestinationSettings, NameRules};

/// DuckDB's default memory limit: with sluice's own buffers and code the process stays
/// under 256 MB whatever the table size (1 M Accounts: ~215 MiB at peak, against ~230 at
/// 128 MiB); DuckDB spills what does not fit. The tightest step is the sliced merge of a
/// full refresh (1 M Accounts into 1 M), which passes at 96 MiB but not at 80, so this
/// keeps some headroom for wider rows.
pub const DEFAULT_DUCKDB_MEMORY_MIB: u64 = 112;

/// DuckDB's `memory_limit`: 32 MB to 1 TB, in MiB.
const MEMORY_MIB: RangeInclusive<u64> = 32..=1024 * 1024;

/// `type = "duckdb"`: an embedded DuckDB database file, consolidated exactly once.
pub struct DuckDbKind;

/// `type = "duckdb"`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuckDbConfig {
    /// The database file (created when absent; its directory must exist).
    pub path: PathBuf,
    /// Schema of the replicated tables; staging goes to `<schema>_staging`.
    pub schema: String,
    /// DuckDB's memory limit in MiB; larger operations spill to `<path>.tmp`.
    pub memory_limit_mib: u64,
}

impl DestinationKind for DuckDbKind {
    fn name(&self) -> &'static str {
        "duckdb"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path", "schema", "memory_limit"]
    }

    fn uses(&self) -> &'static str {
        "path and schema"
    }

    fn settings(&self, keys: &mut DestinationKeys<'_, '_>) -> Option<Box<dyn DestinationSettings>> {
        let path = keys.required("path", "the DuckDB database file, e.g. \"warehouse.duckdb\"");
        let schema = keys.warehouse_schema();
        let memory_limit_mib = memory_limit(keys);
        Some(Box::new(DuckDbConfig { path: PathBuf::from(path), schema, memory_limit_mib }))
    }
}

impl DestinationSettings for DuckDbConfig {
    /// DuckDB resolves even quoted names ignoring case.
    fn names(&self) -> NameRules {
        NameRules { case_insensitive: true, server: "DuckDB", folds_case: false }
    }
}

/// `memory_limit`: DuckDB's memory limit in MiB, [`DEFAULT_DUCKDB_MEMORY_MIB`] unless set
/// (the lake's work database reads the same key).
pub fn memory_limit(keys: &mut DestinationKeys<'_, '_>) -> u64 {
    let written = keys.text("memory_limit");
    match written.as_deref().map(|w| (w, parse_mib(w))) {
        None => DEFAULT_DUCKDB_MEMORY_MIB,
        Some((_, Some(mib))) if MEMORY_MIB.contains(&mib) => mib,
        Some((w, Some(_))) => {
            keys.err("memory_limit", format!("{w:?} is out of range; expected 32MB to 1TB"));
            DEFAULT_DUCKDB_MEMORY_MIB
        }
        Some((w, None)) => {
            keys.err(
                "memory_limit",
                format!("{w:?} is not a memory size; write e.g. \"160MB\" or \"2GB\" (32MB to 1TB)"),
            );
            DEFAULT_DUCKDB_MEMORY_MIB
        }
    }
}

/// A memory size (`"160MB"`, `"2 GB"`, `"512MiB"`, `"1TB"`; MB and MiB both count as 2^20
/// bytes) in MiB, or `None` when it is not one (or too large to count).
fn parse_mib(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "mb" | "mib" | "m" => 1,
        "gb" | "gib" | "g" => 1024,
        "tb" | "tib" | "t" => 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(factor)
}
