//! The lake destination's configuration, pure: `type = "lake"` ([`LakeKind`]) and its
//! checked settings ([`LakeConfig`]): where the lake lives (a local directory or an S3
//! prefix, parsed without touching either), the schema its tables go under, and where its
//! work database is kept.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{DestinationKeys, DestinationKind, DestinationSettings, NameRules};
use crate::consolidate::lake;
use crate::destination::duckdb::config::memory_limit;
use crate::destination::files::FilesRoot;
use crate::destination::files::config::parse_root;

/// `type = "lake"`: Delta Lake tables on local disk or S3, consolidated exactly once.
pub struct LakeKind;

/// `type = "lake"`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeConfig {
    /// The lake's root: a local directory or an S3 prefix.
    pub root: FilesRoot,
    /// Tables go under `<root>/<schema>/<table>/`.
    pub schema: String,
    /// The work database (`work_dir/work.duckdb`): a cache of the lake's tables that
    /// consolidation runs in, rebuilt from the lake whenever it is missing or behind.
    pub work_dir: PathBuf,
    /// The work database's memory limit in MiB.
    pub memory_limit_mib: u64,
    /// How long a version stays readable after a later one replaced it (time travel, and
    /// readers still on it): data files only older versions reference are deleted after it.
    pub retention: Duration,
    /// Whether each table keeps its raw layer (`<schema>/raw/<table>/`): every row each
    /// run read, appended.
    pub raw: bool,
}

/// `retention` unless set: a week, as Delta's own `VACUUM`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl DestinationKind for LakeKind {
    fn name(&self) -> &'static str {
        "lake"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path", "schema", "s3_region", "s3_endpoint", "work_dir", "memory_limit", "retention", "raw"]
    }

    fn uses(&self) -> &'static str {
        "path, schema, s3_region, s3_endpoint, work_dir, memory_limit, retention and raw"
    }

    fn settings(&self, keys: &mut DestinationKeys<'_, '_>) -> Option<Box<dyn DestinationSettings>> {
        let path = keys.required("path", "the lake's directory, or \"s3://bucket/prefix\"");
        let schema = keys.warehouse_schema();
        let memory_limit_mib = memory_limit(keys);
        let year = Duration::from_secs(365 * 24 * 3600);
        let note = " (0s keeps no older version readable)";
        let retention = keys.duration_in("retention", Duration::ZERO, 10 * year, note).unwrap_or(DEFAULT_RETENTION);
        let raw = keys.flag("raw").unwrap_or(true);
        let work_dir = keys.text("work_dir").map(PathBuf::from);
        let root = parse_root(keys, &path, "lake");
        let work_dir = match (&root, work_dir) {
            (_, Some(dir)) => Some(dir),
            (Some(FilesRoot::Local(local)), None) => Some(local.join("_sluice")),
            (Some(FilesRoot::S3(_)), None) => {
                keys.err(
                    "work_dir",
                    "is required with an S3 lake: a local directory for the work database, e.g. work_dir = \
                     \"lake-work\" (a cache of the lake's tables; rebuilt from the lake when lost)",
                );
                None
            }
            (None, None) => None,
        };
        Some(Box::new(LakeConfig { root: root?, schema, work_dir: work_dir?, memory_limit_mib, retention, raw }))
    }
}

impl DestinationSettings for LakeConfig {
    /// Table names are directory names (a case-insensitive file system merges them) and
    /// the work database's tables (DuckDB resolves names ignoring case).
    fn names(&self) -> NameRules {
        NameRules { case_insensitive: true, server: "a lake's directories and DuckDB", folds_case: false }
    }

    fn keeps_history(&self) -> bool {
        false
    }

    fn reserved_table(&self) -> Option<&'static str> {
        self.raw.then_some(lake::RAW_DIR)
    }
}
