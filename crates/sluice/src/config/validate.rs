//! [`validate`]: [`RawConfig`] → [`Config`], pure, every problem at once.
//!
//! Each check records its problem and carries on with a placeholder value, so one run
//! finds everything; any recorded problem makes the result `Err`. Secret keys are never
//! quoted, only named.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;

use super::{
    Api, Auth, Config, ConfigError, Consolidation, DEFAULT_API_VERSION, DEFAULT_DUCKDB_MEMORY_MIB, Deletes,
    DestinationConfig, FileFormat, FlowConfig, FlowSettings, Mode, RawConfig, RawDestination, RawSettings, RawSource,
    SalesforceConfig, Secret, check_where, interpolate, is_valid_api_name, parse_duration,
};
use crate::consolidate::Dialect;
use crate::model::Naming;
use crate::source::salesforce::soql::is_api_name;

/// Checks `raw` (read from `origin`) and builds the [`Config`], or returns every problem.
/// `env` resolves `${VAR}`; pass `&|k| std::env::var(k).ok()` in the binary and a map in
/// tests.
pub fn validate(
    raw: RawConfig,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Ctx { file: origin, env, errors: Vec::new() };
    let source = source(&mut cx, raw.source.as_ref());
    let destination = destination(&mut cx, raw.destination.as_ref());
    let base = settings(&mut cx, "defaults", &raw.defaults, &FlowSettings::default());
    let default_api = source.as_ref().map_or(Api::Auto, |s| s.api);
    if raw.flows.is_empty() {
        cx.err("flows", "no [[flows]]: add one per object, e.g. [[flows]] object = \"Account\"");
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut flows = Vec::with_capacity(raw.flows.len());
    for (i, f) in raw.flows.iter().enumerate() {
        let key = format!("flows[{i}]");
        let object = cx.required(&format!("{key}.object"), f.object.as_ref(), "the Salesforce object to replicate");
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
                    }
                }
            }
        }
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
        flows.push(FlowConfig { object, fields, exclude, filter, mask, api, settings });
    }
    let mask_salt = raw.destination.as_ref().and_then(|d| cx.text("destination.mask_salt", d.mask_salt.as_ref()));
    if mask_salt.as_deref().is_some_and(str::is_empty) {
        cx.err("destination.mask_salt", "is empty; use a long random secret, e.g. \"${SLUICE_MASK_SALT}\"");
    }
    if mask_salt.is_none()
        && let Some(i) = flows.iter().position(|f| !f.mask.is_empty())
    {
        cx.err(
            "destination.mask_salt",
            format!("is required because flows[{i}] masks fields; set it to a secret, e.g. \"${{SLUICE_MASK_SALT}}\""),
        );
    }
    match (source, destination) {
        (Some(source), Some(destination)) if cx.errors.is_empty() => {
            Ok(Config { origin: origin.to_owned(), source, destination, flows, mask_salt: mask_salt.map(Secret::new) })
        }
        _ => Err(cx.errors),
    }
}

const NOT_API_NAME: &str = "is not a Salesforce API name (letters, digits and `_`, starting with a letter)";
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
        cx.err("source.login_url", format!("{login_url:?} is not an http:// or https:// URL with a host"));
    }
    if raw.auth.is_none() {
        cx.err("source.auth", format!("missing; expected one of {}", names(AUTHS)));
    }
    let kind = cx.choice("source.auth", raw.auth.as_ref(), AUTHS);
    let credentials = [
        ("client_id", &raw.client_id),
        ("client_secret", &raw.client_secret),
        ("username", &raw.username),
        ("password", &raw.password),
        ("refresh_token", &raw.refresh_token),
        ("private_key_file", &raw.private_key_file),
    ];
    if let Some(kind) = kind {
        for (key, value) in credentials {
            if value.is_some() && !kind.allows(key) {
                cx.err(
                    &format!("source.{key}"),
                    format!("is not used by auth = {:?} (it needs {})", kind.name(), kind.needs().join(", ")),
                );
            }
        }
    }
    let mut cred = |key: &str| -> String {
        let value = credentials.iter().find(|(k, _)| *k == key).and_then(|(_, v)| v.as_ref());
        let why = format!("auth = {:?} needs it", kind.map_or("?", AuthKind::name));
        cx.required(&format!("source.{key}"), value, &why)
    };
    let auth = kind.map(|kind| match kind {
        AuthKind::Password => Auth::Password {
            client_id: cred("client_id"),
            client_secret: Secret::new(cred("client_secret")),
            username: cred("username"),
            password: Secret::new(cred("password")),
        },
        AuthKind::ClientCredentials => {
            Auth::ClientCredentials { client_id: cred("client_id"), client_secret: Secret::new(cred("client_secret")) }
        }
        AuthKind::RefreshToken => Auth::RefreshToken {
            client_id: cred("client_id"),
            client_secret: raw.client_secret.as_ref().map(|_| Secret::new(cred("client_secret"))),
            refresh_token: Secret::new(cred("refresh_token")),
        },
        AuthKind::Jwt => Auth::Jwt {
            client_id: cred("client_id"),
            username: cred("username"),
            private_key_file: PathBuf::from(cred("private_key_file")),
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
    Some(SalesforceConfig { login_url, auth: auth?, api_version, api, ca_file, api_budget_percent, max_parallel_flows })
}

fn destination(cx: &mut Ctx<'_>, raw: Option<&RawDestination>) -> Option<DestinationConfig> {
    let Some(raw) = raw else {
        cx.err("destination", "missing [destination] table; e.g. type = \"files\", path = \"data\"");
        return None;
    };
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
            unused(cx, raw, "files", "path and format", &["path", "format"]);
            let path = cx.required("destination.path", raw.path.as_ref(), "the directory files are written under");
            let formats = [("parquet", FileFormat::Parquet), ("csv", FileFormat::Csv), ("jsonl", FileFormat::Jsonl)];
            let format = cx.choice("destination.format", raw.format.as_ref(), &formats).unwrap_or(FileFormat::Parquet);
            Some(DestinationConfig::Files { path: PathBuf::from(path), format, naming })
        }
        Some("duckdb") => {
            unused(cx, raw, "duckdb", "path and schema", &["path", "schema", "memory_limit"]);
            let path = cx.required(
                "destination.path",
                raw.path.as_ref(),
                "the DuckDB database file, e.g. \"warehouse.duckdb\"",
            );
            let schema = warehouse_schema(cx, raw);
            let memory_limit_mib = match raw.memory_limit.as_deref().map(parse_mib) {
                None => DEFAULT_DUCKDB_MEMORY_MIB,
                Some(Some(mib)) if mib >= 32 => mib,
                Some(_) => {
                    cx.err(
                        "destination.memory_limit",
                        format!(
                            "{:?} is not a memory size of at least 32 MB; write e.g. \"160MB\" or \"2GB\"",
                            raw.memory_limit.as_deref().unwrap_or_default()
                        ),
                    );
                    DEFAULT_DUCKDB_MEMORY_MIB
                }
            };
            Some(DestinationConfig::DuckDb { path: PathBuf::from(path), schema, naming, memory_limit_mib })
        }
        Some("postgres") => {
            unused(cx, raw, "postgres", "url and schema", &["url", "schema", "consolidation"]);
            let url =
                pg_url(cx, raw, "the database, e.g. \"postgres://sluice:${PGPASSWORD}@db.example.com:5432/warehouse\"");
            let schema = warehouse_schema(cx, raw);
            postgres_schema(cx, &schema, Dialect::Postgres);
            let consolidation = consolidation(cx, raw);
            Some(DestinationConfig::Postgres { url, schema, naming, consolidation })
        }
        Some("redshift") => {
            unused(
                cx,
                raw,
                "redshift",
                "url, schema, s3_staging and iam_role",
                &["url", "schema", "s3_staging", "iam_role", "s3_region", "s3_endpoint", "consolidation"],
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
                && let Err(m) = crate::destination::redshift::S3Staging::parse(&staging_url)
            {
                cx.err("destination.s3_staging", format!("{staging_url:?}: {m}"));
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
            let region = cx.text("destination.s3_region", raw.s3_region.as_ref());
            let endpoint = cx.text("destination.s3_endpoint", raw.s3_endpoint.as_ref());
            if let Some(e) = &endpoint
                && !(e.starts_with("http://") || e.starts_with("https://"))
            {
                cx.err("destination.s3_endpoint", format!("{e:?} is not an http:// or https:// URL"));
            }
            let staging = crate::destination::redshift::S3Staging { url: staging_url, iam_role, region, endpoint };
            Some(DestinationConfig::Redshift { url, schema, naming, staging, consolidation })
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

const DESTINATION_TYPES: &str = "\"duckdb\", \"postgres\", \"redshift\", \"files\"";

/// The type-specific keys of `[destination]` (`type`, `naming` and `mask_salt` apply to all).
const DESTINATION_KEYS: [&str; 10] = [
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
            _ => false,
        };
        if set {
            cx.err(&format!("destination.{key}"), format!("is not used by type = \"{kind}\" (it uses {uses})"));
        }
    }
}

/// `destination.url` of a PostgreSQL-protocol warehouse, checked without connecting.
fn pg_url(cx: &mut Ctx<'_>, raw: &RawDestination, example: &str) -> Secret {
    let url = cx.required("destination.url", raw.url.as_ref(), example);
    if !url.is_empty()
        && let Err(m) = crate::destination::postgres::PgUrl::parse(&url)
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
    let lookback = cx.duration(&key("lookback"), raw.lookback.as_ref());
    let lag = cx.duration(&key("lag"), raw.lag.as_ref());
    let reconcile_every = match cx.text(&key("reconcile_every"), raw.reconcile_every.as_ref()).as_deref() {
        None => base.reconcile_every,
        Some("never") => None,
        Some(text) => match parse_duration(text) {
            Ok(d) if d.is_zero() => {
                cx.err(&key("reconcile_every"), "must be longer than 0s; write \"never\" to turn reconciliation off");
                None
            }
            Ok(d) => Some(d),
            Err(m) => {
                cx.err(&key("reconcile_every"), format!("{text:?}: {m}, or \"never\""));
                None
            }
        },
    };
    let slice = match cx.duration(&key("slice"), raw.slice.as_ref()) {
        Some(d) if d.is_zero() => {
            cx.err(&key("slice"), "must be longer than 0s; leave it out to not slice windows");
            None
        }
        Some(d) => Some(d),
        None => base.slice,
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

fn names<T>(options: &[(&str, T)]) -> String {
    options.iter().map(|(n, _)| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// Where problems are collected while validating.
struct Ctx<'a> {
    file: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn err(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError { file: self.file.to_owned(), key: key.to_owned(), message: message.into() });
    }

    /// The interpolated value, if given; `None` (with the problem recorded) if it fails.
    fn text(&mut self, key: &str, value: Option<&String>) -> Option<String> {
        match interpolate(value?, self.env) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(key, m);
                None
            }
        }
    }

    /// An integer in `range`, `default` when absent or out of range (recorded); `note`
    /// follows the expected range in the message.
    fn int_in(
        &mut self,
        key: &str,
        value: Option<i64>,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
        note: &str,
    ) -> i64 {
        match value {
            None => default,
            Some(n) if range.contains(&n) => n,
            Some(n) => {
                self.err(key, format!("{n} is out of range; expected {} to {}{note}", range.start(), range.end()));
                default
            }
        }
    }

    /// A value that must be given and not empty; `why` says what it is for.
    fn required(&mut self, key: &str, value: Option<&String>, why: &str) -> String {
        if value.is_none() {
            self.err(key, format!("missing; {why}"));
        }
        match self.text(key, value) {
            Some(v) if v.trim().is_empty() => {
                self.err(key, format!("is empty; {why}"));
                String::new()
            }
            v => v.unwrap_or_default(),
        }
    }

    /// One of `options`, or `None` if absent or wrong (recorded).
    fn choice<T: Copy>(&mut self, key: &str, value: Option<&String>, options: &[(&str, T)]) -> Option<T> {
        let v = self.text(key, value)?;
        let found = options.iter().find(|(n, _)| *n == v).map(|(_, t)| *t);
        if found.is_none() {
            self.err(key, format!("{v:?} is not valid; expected one of {}", names(options)));
        }
        found
    }

    fn duration(&mut self, key: &str, value: Option<&String>) -> Option<std::time::Duration> {
        let v = self.text(key, value)?;
        parse_duration(&v).map_err(|m| self.err(key, format!("{v:?}: {m}"))).ok()
    }

    /// A list of field names: valid API names, no duplicates (recorded).
    fn names(&mut self, key: &str, list: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(list.len());
        for (i, raw) in list.iter().enumerate() {
            let Some(name) = self.text(&format!("{key}[{i}]"), Some(raw)) else { continue };
            if !is_valid_api_name(&name) {
                self.err(&format!("{key}[{i}]"), format!("{name:?} {NOT_API_NAME}"));
            } else if out.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                self.err(&format!("{key}[{i}]"), format!("{name:?} is listed twice"));
            } else {
                out.push(name);
            }
        }
        out
    }
}

/// A memory size (`"160MB"`, `"2 GB"`, `"512MiB"`; MB and MiB both count as 2^20 bytes) in
/// MiB, or `None` when it is not one.
fn parse_mib(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "mb" | "mib" | "m" => 1,
        "gb" | "gib" | "g" => 1024,
        _ => return None,
    };
    number.checked_mul(factor)
}
