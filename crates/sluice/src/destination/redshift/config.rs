//! The Redshift destination's configuration, pure: where loads are staged in S3
//! ([`S3Staging`]), parsed without touching S3.

/// Where and how loads are staged in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Staging {
    /// `s3://bucket/prefix`.
    pub url: String,
    /// The role Redshift assumes to read the bucket.
    pub iam_role: String,
    /// The bucket's region, when it differs from the environment's.
    pub region: Option<String>,
    /// An S3-compatible endpoint instead of AWS (tests, MinIO-like servers).
    pub endpoint: Option<String>,
}

impl S3Staging {
    /// The bucket and the key prefix (no slashes at either end) of `s3://bucket/prefix`.
    pub fn parse(url: &str) -> std::result::Result<(String, String), String> {
        crate::destination::s3::parse_url(url)
    }
}
