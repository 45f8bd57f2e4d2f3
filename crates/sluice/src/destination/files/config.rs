//! The files destination's configuration, pure: where its root lives ([`FilesRoot`]), a
//! local directory or a prefix in an S3 bucket, parsed without touching either.

use std::path::PathBuf;

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
