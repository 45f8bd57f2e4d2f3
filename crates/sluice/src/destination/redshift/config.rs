//! The Redshift destination's configuration, pure: `type = "redshift"` ([`RedshiftKind`])
//! and its checked settings ([`RedshiftConfig`]), including where loads are staged in S3
//! ([`S3Staging`]), parsed without touching S3. The PostgreSQL keys it shares (`url`,
//! the timeouts, `consolidation`) are checked by [`crate::destination::postgres::config`].

use crate::config::{
    Consolidation, DestinationKeys, DestinationKind, DestinationSettings, NameRules, Secret, quoted_url,
};
use crate::destination::postgres::config::{PgTimeouts, consolidation, pg_timeouts, pg_url, postgres_schema};
use crate::destination::s3::{aws_userinfo, s3_keys};
use crate::model::Naming;
use crate::redact;
use crate::sql::Dialect;

/// `type = "redshift"`: Amazon Redshift, loaded through S3, consolidated exactly once.
pub struct RedshiftKind;

/// `type = "redshift"`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RedshiftConfig {
    /// The cluster, as a `postgres://` URL (port 5439 usually); printed as `***`.
    pub url: Secret,
    /// Schema of the replicated tables; staging goes to `<schema>_staging`.
    pub schema: String,
    /// Where loads are staged, and the role Redshift reads them with.
    pub staging: S3Staging,
    /// Who runs the consolidation.
    pub consolidation: Consolidation,
    /// Bounds on statements and lock waits.
    pub timeouts: PgTimeouts,
}

impl DestinationKind for RedshiftKind {
    fn name(&self) -> &'static str {
        "redshift"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "url",
            "schema",
            "s3_staging",
            "iam_role",
            "s3_region",
            "s3_endpoint",
            "consolidation",
            "statement_timeout",
            "lock_timeout",
        ]
    }

    fn uses(&self) -> &'static str {
        "url, schema, s3_staging and iam_role"
    }

    fn settings(&self, keys: &mut DestinationKeys<'_, '_>) -> Option<Box<dyn DestinationSettings>> {
        let url = pg_url(
            keys,
            "the cluster, e.g. \"postgres://sluice:${REDSHIFT_PASSWORD}@example.abc123.us-east-1.redshift.amazonaws.com:5439/dev\"",
        );
        let schema = keys.warehouse_schema();
        postgres_schema(keys, &schema, Dialect::Redshift);
        redshift_case(keys, &schema);
        let consolidation = consolidation(keys);
        let staging_url = keys.required("s3_staging", "where loads are staged, e.g. \"s3://bucket/sluice\"");
        if !staging_url.is_empty()
            && let Err(m) = S3Staging::parse(&staging_url)
        {
            keys.err("s3_staging", format!("{}: {m}", quoted_url(&staging_url)));
        } else if redact::has_userinfo(&staging_url) {
            keys.err("s3_staging", aws_userinfo(&staging_url));
        }
        let iam_role = keys.required(
            "iam_role",
            "the role Redshift reads s3_staging with, e.g. \"arn:aws:iam::123456789012:role/RedshiftLoad\"",
        );
        if !iam_role.is_empty() && !iam_role.starts_with("arn:aws") {
            keys.err(
                "iam_role",
                format!("{iam_role:?} is not an IAM role ARN; expected \"arn:aws:iam::<account>:role/<name>\""),
            );
        }
        let (region, endpoint) = s3_keys(keys);
        let timeouts = pg_timeouts(keys);
        let staging = S3Staging { url: staging_url, iam_role, region, endpoint };
        Some(Box::new(RedshiftConfig { url, schema, staging, consolidation, timeouts }))
    }
}

impl DestinationSettings for RedshiftConfig {
    /// Redshift folds every name to lower case, quoted or not.
    fn names(&self) -> NameRules {
        NameRules { case_insensitive: true, server: "Redshift", folds_case: true }
    }

    fn consolidation(&self) -> Consolidation {
        self.consolidation
    }
}

/// Redshift folds every identifier to lower case, quoted or not (unless the cluster sets
/// `enable_case_sensitive_identifier`), so a schema or column name with capitals would not
/// be found again under the name sluice wrote: the next run would try to create it anew.
fn redshift_case(keys: &mut DestinationKeys<'_, '_>, schema: &str) {
    if schema != schema.to_ascii_lowercase() {
        keys.err(
            "schema",
            format!("{schema:?}: Redshift folds names to lower case; write it as {:?}", schema.to_ascii_lowercase()),
        );
    }
    if keys.naming() == Naming::Original {
        keys.err(
            "naming",
            "\"original\" keeps capitals, which Redshift folds to lower case; use \"snake_case\" (the default)",
        );
    }
}

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
