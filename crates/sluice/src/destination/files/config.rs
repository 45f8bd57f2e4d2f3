//! The files destination's configuration, pure: `type = "files"` ([`FilesKind`]) and its
//! checked settings ([`FilesConfig`]): where its root lives ([`FilesRoot`]), a local
//! directory or a prefix in an S3 bucket, parsed without touching either, and the format.

use std::path::PathBuf;

use crate::config::{DestinationKeys, DestinationKind, DestinationSettings, NameRules, quoted_url};
use crate::destination::s3::{aws_userinfo, parse_url, s3_keys};
use crate::redact;

/// `type = "files"`: plain files, one directory per object and run, append-only.
pub struct FilesKind;

/// `type = "files"`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesConfig {
    /// The root: a local directory or an S3 prefix.
    pub root: FilesRoot,
    /// File format.
    pub format: FileFormat,
}

/// Format of the files destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl DestinationKind for FilesKind {
    fn name(&self) -> &'static str {
        "files"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["path", "format", "s3_region", "s3_endpoint"]
    }

    fn uses(&self) -> &'static str {
        "path, format, s3_region and s3_endpoint"
    }

    fn settings(&self, keys: &mut DestinationKeys<'_, '_>) -> Option<Box<dyn DestinationSettings>> {
        let path = keys.required("path", "the directory files are written under, or \"s3://bucket/prefix\"");
        let formats = [("parquet", FileFormat::Parquet), ("csv", FileFormat::Csv), ("jsonl", FileFormat::Jsonl)];
        let format = keys.choice("format", &formats).unwrap_or(FileFormat::Parquet);
        let root = parse_root(keys, &path, "root");
        Some(Box::new(FilesConfig { root: root?, format }))
    }
}

impl DestinationSettings for FilesConfig {
    /// Directory names that differ only in case are one on a case-insensitive file system.
    fn names(&self) -> NameRules {
        NameRules { case_insensitive: true, server: "a case-insensitive file system", folds_case: false }
    }

    fn append_only(&self) -> bool {
        true
    }
}

/// `path` (a local directory or `s3://bucket/prefix`) with `s3_region` and `s3_endpoint`,
/// which only an S3 `path` takes; `what` names the place in messages (`"root"`, `"lake"`).
/// `None`, with the problems recorded, when it cannot be used.
pub fn parse_root(keys: &mut DestinationKeys<'_, '_>, path: &str, what: &str) -> Option<FilesRoot> {
    let (region, endpoint) = s3_keys(keys);
    if path.starts_with("s3://") {
        return match parse_url(path) {
            Err(m) => {
                keys.err("path", format!("{}: {m}", quoted_url(path)));
                None
            }
            Ok(_) if redact::has_userinfo(path) => {
                keys.err("path", aws_userinfo(path));
                None
            }
            Ok((bucket, prefix)) => Some(FilesRoot::S3(S3Root { bucket, prefix, region, endpoint })),
        };
    }
    for key in ["s3_region", "s3_endpoint"] {
        if keys.is_set(key) {
            keys.err(
                key,
                format!("is used only with an S3 {what} (path = \"s3://bucket/prefix\"); remove it, or write to S3"),
            );
        }
    }
    Some(FilesRoot::Local(PathBuf::from(path)))
}

/// Where a files root lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesRoot {
    /// A local directory.
    Local(PathBuf),
    /// A prefix in an S3 bucket (or an S3-compatible server's).
    S3(S3Root),
}

/// `path = "s3://bucket/prefix"` with the keys that reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Root {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, no slashes at either end (empty: the bucket's top).
    pub prefix: String,
    /// The bucket's region, when it differs from the environment's (`s3_region`).
    pub region: Option<String>,
    /// An S3-compatible endpoint instead of AWS (`s3_endpoint`).
    pub endpoint: Option<String>,
}

impl FilesRoot {
    /// The root as `path` spells it: `data/`, or `s3://bucket/prefix`.
    pub fn shown(&self) -> String {
        match self {
            FilesRoot::Local(path) => path.display().to_string(),
            FilesRoot::S3(s3) if s3.prefix.is_empty() => format!("s3://{}", s3.bucket),
            FilesRoot::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.prefix),
        }
    }
}
