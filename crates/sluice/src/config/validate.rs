//! [`validate`]: [`RawConfig`] → [`Config`], pure, every problem at once.
//!
//! Each check records its problem and carries on with a placeholder value, so one run
//! finds everything; any recorded problem makes the result `Err`. Secret keys are never
//! quoted, only named, and every message is scrubbed of secret values and URL user-info
//! before it is returned (see the [`super`] docs).
//!
//! Beyond each key's own value, the config as a whole is checked: keys that would have
//! no effect where they are written ([`no_effect`]) and flows whose tables would collide
//! ([`collisions`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;

use super::raw::{RawConfig, RawDestination, RawSecret, RawSettings, RawSource};
use super::text::{check_where, is_valid_api_name};
use super::types::{
    Api, Auth, Config, ConfigError, Consolidation, DEFAULT_API_VERSION, DEFAULT_BULK_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DUCKDB_MEMORY_MIB, DEFAULT_READ_TIMEOUT, Deletes, DestinationConfig, FileFormat, FlowConfig, FlowSettings,
    Mode, PgTimeouts, SalesforceConfig, Secret, WriteMode,
};
use crate::destination::files::config::{FilesRoot, S3Root};
use crate::model::Naming;
use crate::redact;
use crate::source::salesforce::soql::is_api_name;
use crate::sql::Dialect;

mod problems;
mod whole;
use problems::{Bounds, Ctx, NOT_API_NAME, names};
use whole::{collisions, no_effect};

const MINUTE: u64 = 60;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

const LAG: Bounds = Bounds { min: 0, max: DAY };
const LOOKBACK: Bounds = Bounds { min: 0, max: 7 * DAY };
const RECONCILE_EVERY: Bounds = Bounds { min: MINUTE, max: 365 * DAY };
const SLICE: Bounds = Bounds { min: MINUTE, max: 3650 * DAY };
const CONNECT_TIMEOUT: Bounds = Bounds { min: 1, max: 5 * MINUTE };
const READ_TIMEOUT: Bounds = Bounds { min: 1, max: HOUR };
const BULK_TIMEOUT: Bounds = Bounds { min: MINUTE, max: DAY };
const STATEMENT_TIMEOUT: Bounds = Bounds { min: 1, max: DAY };
const LOCK_TIMEOUT: Bounds = Bounds { min: 1, max: HOUR };

/// DuckDB's `memory_limit`: 32 MB to 1 TB, in MiB.
const MEMORY_MIB: std::ops::RangeInclusive<u64> = 32..=1024 * 1024;

/// Checks `raw` (read from `origin`) and builds the [`Config`], or returns every problem.
/// `env` resolves `${VAR}`; pass `&|k| std::env::var(k).ok()` in the binary and a map in
/// tests.
pub fn validate(
    raw: RawConfig,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Ctx { file: origin, env, errors: Vec::new(), secrets: Vec::new() };
    let source = source(&mut cx, raw.source.as_ref());
    let destination = destination(&mut cx, raw.destination.as_ref());
    let base = settings(&mut cx, "defaults", &raw.defaults, &FlowSettings::default());
    let default_api = source.as_ref().map_or(Api::Auto, |s| s.api);
    if raw.flows.is_empty() {
        cx.err("flows", "no [[flows]]: add one per object, e.g. [[flows]] object = \"Account\"");
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut flows = Vec::with_capacity(raw.flows.len());
    // Which flows name a valid object of their own (the ones whose tables are compared).
    let mut named = Vec::with_capacity(raw.flows.len());
    for (i, f) in raw.flows.iter().enumerate() {
        let key = format!("flows[{i}]");
        let object = cx.required(&format!("{key}.object"), f.object.as_ref(), "the Salesforce object to replicate");
        let mut own = false;
        if !object.is_empty() {
            if !is_valid_api_name(&object) {
                cx.err(&format!("{key}.object"), format!("{object:?} {NOT_API_NAME}"));
            } else {
                match seen.entry(object.to_ascii_lowercase()) {
                    Entry::Occupied(first) => cx.err(
                        &format!("{key}.object"),
                        format!("{object:?} already has a flow (flows[{}]); one flow per object", first.get()),
                    ),
                    Entry::Vacant(slot) => {
                        slot.insert(i);
                        own = true;
                    }
                }
            }
        }
        named.push(own);
        let fields = f.fields.as_ref().map(|l| cx.names(&format!("{key}.fields"), l));
        if f.fields.as_ref().is_some_and(Vec::is_empty) {
            cx.err(&format!("{key}.fields"), "an empty list selects nothing; leave `fields` out to read every field");
        }
        let exclude = f.exclude.as_ref().map(|l| cx.names(&format!("{key}.exclude"), l)).unwrap_or_default();
        if fields.is_some() && f.exclude.is_some() {
            cx.err(&format!("{key}.exclude"), "use either `fields` or `exclude`, not both");
        }
        let mask = f.mask.as_ref().map(|l| cx.names(&format!("{key}.mask"), l)).unwrap_or_default();
        for (list, what) in [(&exclude, "exclude"), (&mask, "mask")] {
            if list.iter().any(|n| n.eq_ignore_ascii_case("Id")) {
                cx.err(&format!("{key}.{what}"), "cannot include Id: it is the record key every table is merged on");
            }
        }
        let rename = renames(&mut cx, &key, f.rename.as_ref());
        let filter = cx.text(&format!("{key}.where"), f.filter.as_ref()).map(|w| w.trim().to_owned());
        if let Some(w) = &filter {
            if w.is_empty() {
                cx.err(&format!("{key}.where"), "is empty; leave it out to read every row");
            } else if let Err(m) = check_where(w) {
                cx.err(&format!("{key}.where"), m);
            }
        }
        let api = cx.choice(&format!("{key}.api"), f.api.as_ref(), APIS).unwrap_or(default_api);
        let settings = settings(&mut cx, &key, &f.settings(), &base);
        flows.push(FlowConfig { object, fields, exclude, filter, mask, rename, api, settings });
    }
    let written_salt = raw.destination.as_ref().and_then(|d| d.mask_salt.as_ref());
    let mask_salt = cx.secret("destination.mask_salt", written_salt);
    if mask_salt.as_deref().is_some_and(str::is_empty) {
        cx.err("destination.mask_salt", "is empty; use a long random secret, e.g. \"${SLUICE_MASK_SALT}\"");
    }
    // As written: a `mask` whose names are all invalid (reported) still wants a salt.
    let masking = raw.flows.iter().position(|f| f.mask.as_ref().is_some_and(|m| !m.is_empty()));
    match (written_salt, masking) {
        (None, Some(i)) => cx.err(
            "destination.mask_salt",
            format!("is required because flows[{i}] masks fields; set it to a secret, e.g. \"${{SLUICE_MASK_SALT}}\""),
        ),
        (Some(_), None) if !flows.is_empty() => cx.err(
            "destination.mask_salt",
            "has no effect: no flow masks a field; remove it, or list fields to store as salted hashes in a flow's \
             `mask`",
        ),
        _ => {}
    }
    if let Some(destination) = &destination {
        no_effect(&mut cx, &raw, &flows, destination);
        collisions(&mut cx, &flows, &named, destination);
    }
    match (source, destination) {
        (Some(source), Some(destination)) if cx.errors.is_empty() => {
            Ok(Config { origin: origin.to_owned(), source, destination, flows, mask_salt: mask_salt.map(Secret::new) })
        }
        _ => Err(cx.finish()),
    }
}

const APIS: &[(&str, Api)] = &[("rest", Api::Rest), ("bulk", Api::Bulk), ("auto", Api::Auto)];

/// The auth flows and the credential keys each needs (`client_secret` is optional for
/// `refresh_token`, whose connected app may not require it).
#[derive(Clone, Copy, PartialEq)]
enum AuthKind {
    Password,
    ClientCredentials,
    RefreshToken,
    Jwt,
}

const AUTHS: &[(&str, AuthKind)] = &[
    ("password", AuthKind::Password),
    ("client_credentials", AuthKind::ClientCredentials),
    ("refresh_token", AuthKind::RefreshToken),
    ("jwt", AuthKind::Jwt),
];

impl AuthKind {
    fn needs(self) -> &'static [&'static str] {
        match self {
            AuthKind::Password => &["client_id", "client_secret", "username", "password"],
            AuthKind::ClientCredentials => &["client_id", "client_secret"],
            AuthKind::RefreshToken => &["client_id", "refresh_token"],
            AuthKind::Jwt => &["client_id", "username", "private_key_file"],
        }
    }

    fn allows(self, key: &str) -> bool {
        self.needs().contains(&key) || (self == AuthKind::RefreshToken && key == "client_secret")
    }

    fn name(self) -> &'static str {
        AUTHS.iter().find(|(_, k)| *k == self).map_or("?", |(n, _)| n)
    }
}

fn source(cx: &mut Ctx<'_>, raw: Option<&RawSource>) -> Option<SalesforceConfig> {
    let Some(raw) = raw else {
        cx.err("source", "missing [source] table; see `sluice init` for a sample");
        return None;
    };
    if raw.kind.is_none() {
        cx.err("source.type", "missing; expected \"salesforce\"");
    }
    cx.choice("source.type", raw.kind.as_ref(), &[("salesforce", ())]);
    let login_url = cx.required("source.login_url", raw.login_url.as_ref(), "e.g. \"https://login.salesforce.com\"");
    let login_url = login_url.trim_end_matches('/').to_owned();
    if !login_url.is_empty() && !is_http_url(&login_url) {
        cx.err("source.login_url", format!("{} is not an http:// or https:// URL with a host", quoted_url(&login_url)));
    } else if redact::has_userinfo(&login_url) {
        cx.err(
            "source.login_url",
            format!(
                "{:?} holds credentials (before the `@`); remove them: they belong in source.username and \
                 source.password (or client_id and client_secret), never in the URL",
                redact::userinfo(&login_url)
            ),
        );
    }
    if raw.auth.is_none() {
        cx.err("source.auth", format!("missing; expected one of {}", names(AUTHS)));
    }
    let kind = cx.choice("source.auth", raw.auth.as_ref(), AUTHS);
    // Scrubbed from every message, whether the auth uses them or not.
    for value in [&raw.client_secret, &raw.password, &raw.refresh_token] {
        cx.remember(value.as_ref());
    }
    let credentials = [
        ("client_id", raw.client_id.is_some()),
        ("client_secret", raw.client_secret.is_some()),
        ("username", raw.username.is_some()),
        ("password", raw.password.is_some()),
        ("refresh_token", raw.refresh_token.is_some()),
        ("private_key_file", raw.private_key_file.is_some()),
    ];
    if let Some(kind) = kind {
        for (key, set) in credentials {
            if set && !kind.allows(key) {
                cx.err(
                    &format!("source.{key}"),
                    format!("is not used by auth = {:?} (it needs {})", kind.name(), kind.needs().join(", ")),
                );
            }
        }
    }
    let why = format!("auth = {:?} needs it", kind.map_or("?", AuthKind::name));
    let plain = |cx: &mut Ctx<'_>, key: &str, value: &Option<String>| {
        cx.required(&format!("source.{key}"), value.as_ref(), &why)
    };
    let secret = |cx: &mut Ctx<'_>, key: &str, value: &Option<RawSecret>| {
        Secret::new(cx.required_secret(&format!("source.{key}"), value.as_ref(), &why))
    };
    let auth = kind.map(|kind| match kind {
        AuthKind::Password => Auth::Password {
            client_id: plain(cx, "client_id", &raw.client_id),
            client_secret: secret(cx, "client_secret", &raw.client_secret),
            username: plain(cx, "username", &raw.username),
            password: secret(cx, "password", &raw.password),
        },
        AuthKind::ClientCredentials => Auth::ClientCredentials {
            client_id: plain(cx, "client_id", &raw.client_id),
            client_secret: secret(cx, "client_secret", &raw.client_secret),
        },
        AuthKind::RefreshToken => Auth::RefreshToken {
            client_id: plain(cx, "client_id", &raw.client_id),
            client_secret: raw.client_secret.as_ref().map(|_| secret(cx, "client_secret", &raw.client_secret)),
            refresh_token: secret(cx, "refresh_token", &raw.refresh_token),
        },
        AuthKind::Jwt => Auth::Jwt {
            client_id: plain(cx, "client_id", &raw.client_id),
            username: plain(cx, "username", &raw.username),
            private_key_file: PathBuf::from(plain(cx, "private_key_file", &raw.private_key_file)),
        },
    });

    let api_version =
        cx.text("source.api_version", raw.api_version.as_ref()).unwrap_or_else(|| DEFAULT_API_VERSION.into());
    if !is_api_version(&api_version) {
        cx.err("source.api_version", format!("{api_version:?} is not an API version; expected like \"62.0\""));
    }
    let api = cx.choice("source.api", raw.api.as_ref(), APIS).unwrap_or(Api::Auto);
    let ca_file = cx.text("source.ca_file", raw.ca_file.as_ref()).map(PathBuf::from);
    let api_budget_percent = cx.int_in(
        "source.api_budget_percent",
        raw.api_budget_percent,
        1..=100,
        80,
        " (percent of the daily API limit)",
    ) as u8;
    let max_parallel_flows = cx.int_in("source.max_parallel_flows", raw.max_parallel_flows, 1..=16, 2, "") as usize;
    let connect_timeout = cx
        .duration_in("source.connect_timeout", raw.connect_timeout.as_ref(), CONNECT_TIMEOUT, "")
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let read_timeout = cx
        .duration_in("source.read_timeout", raw.read_timeout.as_ref(), READ_TIMEOUT, "")
        .unwrap_or(DEFAULT_READ_TIMEOUT);
    let bulk_timeout = cx
        .duration_in("source.bulk_timeout", raw.bulk_timeout.as_ref(), BULK_TIMEOUT, "")
        .unwrap_or(DEFAULT_BULK_TIMEOUT);
    Some(SalesforceConfig {
        login_url,
        auth: auth?,
        api_version,
        api,
        ca_file,
        api_budget_percent,
        max_parallel_flows,
        connect_timeout,
        read_timeout,
        bulk_timeout,
    })
}

fn destination(cx: &mut Ctx<'_>, raw: Option<&RawDestination>) -> Option<DestinationConfig> {
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
fn quoted_url(url: &str) -> String {
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

/// `[defaults]` or a flow's overrides on top of `base`.
fn settings(cx: &mut Ctx<'_>, prefix: &str, raw: &RawSettings, base: &FlowSettings) -> FlowSettings {
    let key = |k: &str| format!("{prefix}.{k}");
    let mode = cx.choice(&key("mode"), raw.mode.as_ref(), &[("incremental", Mode::Incremental), ("full", Mode::Full)]);
    let deletes = cx.choice(&key("deletes"), raw.deletes.as_ref(), &[("soft", Deletes::Soft), ("hard", Deletes::Hard)]);
    let write =
        cx.choice(&key("write"), raw.write.as_ref(), &[("merge", WriteMode::Merge), ("append", WriteMode::Append)]);
    let lookback = cx.duration_in(&key("lookback"), raw.lookback.as_ref(), LOOKBACK, "");
    let lag = cx.duration_in(&key("lag"), raw.lag.as_ref(), LAG, "");
    let reconcile_every = match raw.reconcile_every.as_ref() {
        None => base.reconcile_every,
        Some(written) => match cx.text(&key("reconcile_every"), Some(written)).as_deref() {
            Some("never") => None,
            Some(_) => cx.duration_in(
                &key("reconcile_every"),
                Some(written),
                RECONCILE_EVERY,
                ", or \"never\" to turn reconciliation off",
            ),
            None => None,
        },
    };
    let slice = match raw.slice.as_ref() {
        None => base.slice,
        Some(written) => {
            cx.duration_in(&key("slice"), Some(written), SLICE, " (leave it out to not slice windows)").or(base.slice)
        }
    };
    let max_delete_ratio = match raw.max_delete_ratio {
        Some(r) if r > 0.0 && r <= 1.0 => r,
        Some(r) => {
            cx.err(&key("max_delete_ratio"), format!("{r} is out of range; expected more than 0 and at most 1"));
            base.max_delete_ratio
        }
        None => base.max_delete_ratio,
    };
    FlowSettings {
        mode: mode.unwrap_or(base.mode),
        deletes: deletes.unwrap_or(base.deletes),
        history: raw.history.unwrap_or(base.history),
        lookback: lookback.unwrap_or(base.lookback),
        lag: lag.unwrap_or(base.lag),
        reconcile_every,
        slice,
        max_delete_ratio,
        write: write.unwrap_or(base.write),
    }
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or_default();
        !host.is_empty() && !r.chars().any(char::is_whitespace)
    })
}

fn is_api_version(v: &str) -> bool {
    v.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty()
            && !minor.is_empty()
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The longest column name `rename` accepts: PostgreSQL keeps 63 bytes of an identifier
/// and silently cuts the rest.
const MAX_COLUMN_BYTES: usize = 63;

/// A flow's `rename` table: API names to column names. Keys must be API names (Id, the
/// record key, keeps its column); values must be usable column names, not sluice's own
/// (`_sluice…`), and each used once. Whether the fields exist is known only once the object
/// is described.
fn renames(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (field, column) in raw.into_iter().flatten() {
        let at = format!("{key}.rename.{field}");
        if !is_valid_api_name(field) {
            cx.err(&at, format!("{field:?} {NOT_API_NAME}"));
            continue;
        }
        if field.eq_ignore_ascii_case("Id") {
            cx.err(&at, "cannot rename Id: it is the record key every table is merged on");
            continue;
        }
        let Some(column) = cx.text(&at, Some(column)) else { continue };
        let problem = if column.trim().is_empty() {
            Some("is empty; give the column a name, or leave the field out of `rename`".to_owned())
        } else if column.len() > MAX_COLUMN_BYTES {
            Some(format!("{column:?} is {} bytes; a column name has at most {MAX_COLUMN_BYTES}", column.len()))
        } else if column.chars().any(char::is_control) {
            Some(format!("{column:?} holds a control character; use letters, digits and `_`"))
        } else if column.to_ascii_lowercase().starts_with("_sluice") {
            Some(format!("{column:?} starts with `_sluice`, which sluice's own columns use; choose another name"))
        } else if let Some((other, _)) = out.iter().find(|(_, c)| c.eq_ignore_ascii_case(&column)) {
            Some(format!("{column:?} is also the column of `{other}`; each field needs a column of its own"))
        } else if out.iter().any(|(f, _)| f.eq_ignore_ascii_case(field)) {
            Some(format!("`{field}` is renamed twice"))
        } else {
            None
        };
        match problem {
            Some(m) => cx.err(&at, m),
            None => out.push((field.clone(), column)),
        }
    }
    out
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
