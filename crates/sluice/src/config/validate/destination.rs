//! `[destination]`: each type's keys, checked purely (every problem recorded, see
//! [`super`]), into a [`DestinationConfig`]. Split from [`super`] to keep each file
//! readable; each destination's own pure parts (an S3 URL, a PostgreSQL URL) live in its
//! folder under `destination/` and are called from here.

use std::path::PathBuf;

use super::problems::{Bounds, Ctx, DAY, HOUR};
use crate::config::raw::RawDestination;
use crate::config::types::{
    Consolidation, DEFAULT_DUCKDB_MEMORY_MIB, DestinationConfig, FileFormat, PgTimeouts, Secret,
};
use crate::destination::files::config::{FilesRoot, S3Root};
use crate::model::Naming;
use crate::redact;
use crate::source::salesforce::soql::is_api_name;
use crate::sql::Dialect;

const STATEMENT_TIMEOUT: Bounds = Bounds { min: 1, max: DAY };
const LOCK_TIMEOUT: Bounds = Bounds { min: 1, max: HOUR };

/// DuckDB's `memory_limit`: 32 MB to 1 TB, in MiB.
const MEMORY_MIB: std::ops::RangeInclusive<u64> = 32..=1024 * 1024;

/// `[destination]`, or `None` (with the problems recorded) when it cannot be used.
pub(super) fn destination(cx: &mut Ctx<'_>, raw: Option<&RawDestination>) -> Option<DestinationConfig> {
    let Some(raw) = raw else {
        cx.err("destination", "missing [destination] table; e.g. type = \"files\", path = \"data\"");
        return None;
    };
    cx.remember(raw.url.as_ref());
    cx.remember(raw.mask_salt.as_ref());
    let kind = cx.text("destination.type", raw.kind.as_ref());
    let naming = cx
        .choice(
            "destination.naming",
            raw.naming.as_ref(),
            &[("snake_case", Naming::SnakeCase), ("original", Naming::Original)],
        )
        .unwrap_or_default();
    match kind.as_deref() {
        Some("files") => {
            unused(cx, raw, "files", "path, format, s3_region and s3_endpoint", &FILES_KEYS);
            let path = cx.required(
                "destination.path",
                raw.path.as_ref(),
                "the directory files are written under, or \"s3://bucket/prefix\"",
            );
            let formats = [("parquet", FileFormat::Parquet), ("csv", FileFormat::Csv), ("jsonl", FileFormat::Jsonl)];
            let format = cx.choice("destination.format", raw.format.as_ref(), &formats).unwrap_or(FileFormat::Parquet);
            let (region, endpoint) = s3_keys(cx, raw);
            let root = if path.starts_with("s3://") {
                match crate::destination::s3::parse_url(&path) {
                    Err(m) => {
                        cx.err("destination.path", format!("{}: {m}", quoted_url(&path)));
                        None
                    }
                    Ok(_) if redact::has_userinfo(&path) => {
                        cx.err("destination.path", aws_userinfo(&path));
                        None
                    }
                    Ok((bucket, prefix)) => Some(FilesRoot::S3(S3Root { bucket, prefix, region, endpoint })),
                }
            } else {
                for (key, set) in [("s3_region", raw.s3_region.is_some()), ("s3_endpoint", raw.s3_endpoint.is_some())] {
                    if set {
                        cx.err(
                            &format!("destination.{key}"),
                            "is used only with an S3 root (path = \"s3://bucket/prefix\"); remove it, or write to S3",
                        );
                    }
                }
                Some(FilesRoot::Local(PathBuf::from(path)))
            };
            root.map(|root| DestinationConfig::Files { root, format, naming })
        }
        Some("duckdb") => {
            unused(cx, raw, "duckdb", "path and schema", &["path", "schema", "memory_limit"]);
            let path = cx.required(
                "destination.path",
                raw.path.as_ref(),
                "the DuckDB database file, e.g. \"warehouse.duckdb\"",
            );
            let schema = warehouse_schema(cx, raw);
            let written = cx.text("destination.memory_limit", raw.memory_limit.as_ref());
            let memory_limit_mib = match written.as_deref().map(|w| (w, parse_mib(w))) {
                None => DEFAULT_DUCKDB_MEMORY_MIB,
                Some((_, Some(mib))) if MEMORY_MIB.contains(&mib) => mib,
                Some((w, Some(_))) => {
                    cx.err("destination.memory_limit", format!("{w:?} is out of range; expected 32MB to 1TB"));
                    DEFAULT_DUCKDB_MEMORY_MIB
                }
                Some((w, None)) => {
                    cx.err(
                        "destination.memory_limit",
                        format!("{w:?} is not a memory size; write e.g. \"160MB\" or \"2GB\" (32MB to 1TB)"),
                    );
                    DEFAULT_DUCKDB_MEMORY_MIB
                }
            };
            Some(DestinationConfig::DuckDb { path: PathBuf::from(path), schema, naming, memory_limit_mib })
        }
        Some("postgres") => {
            unused(
                cx,
                raw,
                "postgres",
                "url and schema",
                &["url", "schema", "consolidation", "statement_timeout", "lock_timeout"],
            );
            let url =
                pg_url(cx, raw, "the database, e.g. \"postgres://sluice:${PGPASSWORD}@db.example.com:5432/warehouse\"");
            let schema = warehouse_schema(cx, raw);
            postgres_schema(cx, &schema, Dialect::Postgres);
            let consolidation = consolidation(cx, raw);
            let timeouts = pg_timeouts(cx, raw);
            Some(DestinationConfig::Postgres { url, schema, naming, consolidation, timeouts })
        }
        Some("redshift") => {
            unused(
                cx,
                raw,
                "redshift",
                "url, schema, s3_staging and iam_role",
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
                ],
            );
            let url = pg_url(
                cx,
                raw,
                "the cluster, e.g. \"postgres://sluice:${REDSHIFT_PASSWORD}@example.abc123.us-east-1.redshift.amazonaws.com:5439/dev\"",
            );
            let schema = warehouse_schema(cx, raw);
            postgres_schema(cx, &schema, Dialect::Redshift);
            redshift_case(cx, &schema, naming);
            let consolidation = consolidation(cx, raw);
            let staging_url = cx.required(
                "destination.s3_staging",
                raw.s3_staging.as_ref(),
                "where loads are staged, e.g. \"s3://bucket/sluice\"",
            );
            if !staging_url.is_empty()
                && let Err(m) = crate::destination::redshift::config::S3Staging::parse(&staging_url)
            {
                cx.err("destination.s3_staging", format!("{}: {m}", quoted_url(&staging_url)));
            } else if redact::has_userinfo(&staging_url) {
                cx.err("destination.s3_staging", aws_userinfo(&staging_url));
            }
            let iam_role = cx.required(
                "destination.iam_role",
                raw.iam_role.as_ref(),
                "the role Redshift reads s3_staging with, e.g. \"arn:aws:iam::123456789012:role/RedshiftLoad\"",
            );
            if !iam_role.is_empty() && !iam_role.starts_with("arn:aws") {
                cx.err(
                    "destination.iam_role",
                    format!("{iam_role:?} is not an IAM role ARN; expected \"arn:aws:iam::<account>:role/<name>\""),
                );
            }
            let (region, endpoint) = s3_keys(cx, raw);
            let timeouts = pg_timeouts(cx, raw);
            let staging =
                crate::destination::redshift::config::S3Staging { url: staging_url, iam_role, region, endpoint };
            Some(DestinationConfig::Redshift { url, schema, naming, staging, consolidation, timeouts })
        }
        Some(t @ "lake") => {
            cx.err(
                "destination.type",
                format!("{t:?} is not available in this version yet; valid: {DESTINATION_TYPES}"),
            );
            None
        }
        Some(t) => {
            cx.err("destination.type", format!("{t:?} is not a destination type; valid: {DESTINATION_TYPES}"));
            None
        }
        None => {
            if raw.kind.is_none() {
                cx.err("destination.type", format!("missing; valid: {DESTINATION_TYPES}"));
            }
            None
        }
    }
}

/// The keys of `type = "files"`.
const FILES_KEYS: [&str; 4] = ["path", "format", "s3_region", "s3_endpoint"];

/// `destination.s3_region` and `destination.s3_endpoint` (an http:// or https:// URL
/// without credentials in it).
fn s3_keys(cx: &mut Ctx<'_>, raw: &RawDestination) -> (Option<String>, Option<String>) {
    let region = cx.text("destination.s3_region", raw.s3_region.as_ref());
    let endpoint = cx.text("destination.s3_endpoint", raw.s3_endpoint.as_ref());
    if let Some(e) = &endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            cx.err("destination.s3_endpoint", format!("{} is not an http:// or https:// URL", quoted_url(e)));
        } else if redact::has_userinfo(e) {
            cx.err("destination.s3_endpoint", aws_userinfo(e));
        }
    }
    (region, endpoint)
}

const DESTINATION_TYPES: &str = "\"duckdb\", \"postgres\", \"redshift\", \"files\"";

/// The type-specific keys of `[destination]` (`type`, `naming` and `mask_salt` apply to all).
const DESTINATION_KEYS: [&str; 12] = [
    "path",
    "format",
    "schema",
    "url",
    "memory_limit",
    "s3_staging",
    "iam_role",
    "s3_region",
    "s3_endpoint",
    "consolidation",
    "statement_timeout",
    "lock_timeout",
];

/// Records every key set that `kind` does not use (it uses `used`, described as `uses`).
fn unused(cx: &mut Ctx<'_>, raw: &RawDestination, kind: &str, uses: &str, used: &[&str]) {
    for key in DESTINATION_KEYS.iter().filter(|k| !used.contains(k)) {
        let set = match *key {
            "path" => raw.path.is_some(),
            "format" => raw.format.is_some(),
            "url" => raw.url.is_some(),
            "schema" => raw.schema.is_some(),
            "memory_limit" => raw.memory_limit.is_some(),
            "s3_staging" => raw.s3_staging.is_some(),
            "iam_role" => raw.iam_role.is_some(),
            "s3_region" => raw.s3_region.is_some(),
            "s3_endpoint" => raw.s3_endpoint.is_some(),
            "consolidation" => raw.consolidation.is_some(),
            "statement_timeout" => raw.statement_timeout.is_some(),
            "lock_timeout" => raw.lock_timeout.is_some(),
            _ => false,
        };
        if set {
            cx.err(&format!("destination.{key}"), format!("is not used by type = \"{kind}\" (it uses {uses})"));
        }
    }
}

/// A URL as an error quotes it: redacted ([`redact::userinfo`]); not at all when it holds
/// an `@` but no `://`, so that its user-info, if that is what it is, cannot be told apart.
pub(super) fn quoted_url(url: &str) -> String {
    if url.contains('@') && !url.contains("://") {
        "the value (not shown: it holds an `@`, perhaps credentials)".to_owned()
    } else {
        format!("{:?}", redact::userinfo(url))
    }
}

/// The message for credentials written into an S3 URL.
fn aws_userinfo(url: &str) -> String {
    format!(
        "{:?} holds credentials (before the `@`); remove them: S3 credentials come from the AWS environment \
         (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or an instance role), never from the URL",
        redact::userinfo(url)
    )
}

/// `destination.statement_timeout` and `lock_timeout` of PostgreSQL and Redshift.
fn pg_timeouts(cx: &mut Ctx<'_>, raw: &RawDestination) -> PgTimeouts {
    let default = PgTimeouts::default();
    let note = " (every statement but the load and the consolidation transaction)";
    PgTimeouts {
        statement: cx
            .duration_in("destination.statement_timeout", raw.statement_timeout.as_ref(), STATEMENT_TIMEOUT, note)
            .unwrap_or(default.statement),
        lock: cx
            .duration_in("destination.lock_timeout", raw.lock_timeout.as_ref(), LOCK_TIMEOUT, "")
            .unwrap_or(default.lock),
    }
}

/// `destination.url` of a PostgreSQL-protocol warehouse, checked without connecting.
fn pg_url(cx: &mut Ctx<'_>, raw: &RawDestination, example: &str) -> Secret {
    let url = cx.required_secret("destination.url", raw.url.as_ref(), example);
    if !url.is_empty()
        && let Err(m) = crate::destination::postgres::config::PgUrl::parse(&url)
    {
        cx.err("destination.url", m);
    }
    Secret::new(url)
}

/// `destination.schema` of a warehouse: `salesforce` unless set.
fn warehouse_schema(cx: &mut Ctx<'_>, raw: &RawDestination) -> String {
    let schema = cx.text("destination.schema", raw.schema.as_ref()).unwrap_or_else(|| "salesforce".into());
    if !is_api_name(&schema) {
        cx.err(
            "destination.schema",
            format!("{schema:?} is not a usable schema name; use letters, digits and `_`, not starting with a digit or `_sluice`"),
        );
    }
    schema
}

/// `destination.consolidation` of PostgreSQL and Redshift: `"run"` unless set.
fn consolidation(cx: &mut Ctx<'_>, raw: &RawDestination) -> Consolidation {
    cx.choice(
        "destination.consolidation",
        raw.consolidation.as_ref(),
        &[("run", Consolidation::Run), ("procedure", Consolidation::Procedure)],
    )
    .unwrap_or_default()
}

/// What PostgreSQL and Redshift refuse of a schema name that [`warehouse_schema`] allows:
/// the reserved `pg_` prefix, and a name whose staging schema (`<schema>_staging`) would
/// exceed the server's identifier length, which PostgreSQL would silently truncate.
fn postgres_schema(cx: &mut Ctx<'_>, schema: &str, dialect: Dialect) {
    let server = dialect.server();
    let max_bytes = dialect.max_identifier_bytes();
    if schema.starts_with("pg_") {
        cx.err(
            "destination.schema",
            format!("{schema:?}: {server} reserves names starting with `pg_`; choose another"),
        );
    }
    let staging = format!("{schema}_staging");
    if staging.len() > max_bytes {
        cx.err(
            "destination.schema",
            format!(
                "{schema:?} is too long: its staging schema {staging:?} would exceed {server}'s {max_bytes}-byte \
                 names; use at most {} bytes",
                max_bytes - "_staging".len()
            ),
        );
    }
}

/// Redshift folds every identifier to lower case, quoted or not (unless the cluster sets
/// `enable_case_sensitive_identifier`), so a schema or column name with capitals would not
/// be found again under the name sluice wrote: the next run would try to create it anew.
fn redshift_case(cx: &mut Ctx<'_>, schema: &str, naming: Naming) {
    if schema != schema.to_ascii_lowercase() {
        cx.err(
            "destination.schema",
            format!("{schema:?}: Redshift folds names to lower case; write it as {:?}", schema.to_ascii_lowercase()),
        );
    }
    if naming == Naming::Original {
        cx.err(
            "destination.naming",
            "\"original\" keeps capitals, which Redshift folds to lower case; use \"snake_case\" (the default)",
        );
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
