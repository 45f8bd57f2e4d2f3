//! Configuration: TOML → [`RawConfig`] (serde, unknown keys refused) → [`validate`] →
//! [`Config`].
//!
//! Validation is pure: the environment comes in as a function, nothing is read from disk
//! or the network, and it reports every problem at once, each naming the file, the key
//! path (`flows[2].lookback`) and what would be valid. Values are interpolated with
//! `${ENV_VAR}` (`$${` is a literal `${`); a missing variable is an error naming the
//! variable.
//!
//! Secrets never show. The secret keys ([`SECRET_KEYS`]) are read as [`RawSecret`], which
//! accepts any TOML value, so a value of the wrong type is reported by its type alone
//! (serde would quote it: "invalid type: integer `12345`"); validated, they are held as
//! [`Secret`], which prints as `***`. No message quotes a secret key's value, not even
//! part of it: interpolation errors of secret keys name no invalid variable, and as a
//! last line of defence every message has each secret value (of 4 characters or more)
//! replaced by `***` and the user-info of every URL in it redacted ([`crate::redact`]).
//!
//! Durations and sizes are bounded: each key has a valid range, named in its error.
//! Keys that would have no effect where they are written are errors too (the files
//! destination's merge settings, `lookback` and `reconcile_every` of `mode = "full"`,
//! a `mask_salt` nothing is masked with), and so are two flows whose tables would collide.
//!
//! Enumerations (`auth`, `api`, `mode`, ...) are strings in [`RawConfig`] and checked in
//! [`validate`], so that a wrong value is reported together with every other problem
//! instead of stopping the parse at the first one.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::model::Naming;
use crate::source::salesforce::soql::is_api_name;

mod validate;

pub use validate::validate;

/// The API version used when `api_version` is not set (Winter '25).
pub const DEFAULT_API_VERSION: &str = "62.0";

/// The commented sample configuration that `sluice init` writes.
pub const SAMPLE: &str = include_str!("sample.toml");

/// The keys whose values are secret: read as [`RawSecret`], held as [`Secret`], never
/// quoted in a message.
pub const SECRET_KEYS: [&str; 5] =
    ["source.client_secret", "source.password", "source.refresh_token", "destination.url", "destination.mask_salt"];

/// `source.connect_timeout` when not set: TCP and TLS connect to Salesforce.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `source.read_timeout` when not set: the longest silence while waiting for a
/// response's next bytes.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// `source.bulk_timeout` when not set: the longest total wait for one window's Bulk jobs
/// (splits included) before the window is read through REST.
pub const DEFAULT_BULK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The longest duration any key accepts (`slice`'s bound, 3650 days): [`parse_duration`]
/// refuses longer ones, whatever the key.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// The file as written: the shape of DESIGN "Config". Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[source]`.
    pub source: Option<RawSource>,
    /// `[destination]`.
    pub destination: Option<RawDestination>,
    /// `[defaults]`: settings every flow inherits.
    #[serde(default)]
    pub defaults: RawSettings,
    /// `[[flows]]`.
    #[serde(default)]
    pub flows: Vec<RawFlow>,
}

/// `[source]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the keys are documented in DESIGN "Config" and sample.toml
pub struct RawSource {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub login_url: Option<String>,
    pub auth: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<RawSecret>,
    pub username: Option<String>,
    pub password: Option<RawSecret>,
    pub refresh_token: Option<RawSecret>,
    pub private_key_file: Option<String>,
    pub api_version: Option<String>,
    pub api: Option<String>,
    pub ca_file: Option<String>,
    pub api_budget_percent: Option<i64>,
    pub max_parallel_flows: Option<i64>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub bulk_timeout: Option<String>,
}

/// `[destination]` as written. Every destination type's keys are accepted by the parser,
/// so the error for a key of another type can say which type uses it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawDestination {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub path: Option<String>,
    pub format: Option<String>,
    pub schema: Option<String>,
    pub url: Option<RawSecret>,
    pub naming: Option<String>,
    pub mask_salt: Option<RawSecret>,
    pub memory_limit: Option<String>,
    pub s3_staging: Option<String>,
    pub iam_role: Option<String>,
    pub s3_region: Option<String>,
    pub s3_endpoint: Option<String>,
    pub consolidation: Option<String>,
    pub statement_timeout: Option<String>,
    pub lock_timeout: Option<String>,
}

/// The value of a secret key as written: its text, or, for a value that is not a string,
/// only the name of its TOML type, so that no message can quote it. Its `Debug` prints
/// `***` (or the type).
#[derive(Clone, PartialEq, Eq)]
pub enum RawSecret {
    /// A string, before `${VAR}` interpolation.
    Text(String),
    /// Another TOML value, known only by its type: "an integer", "a table", ...
    NotText(&'static str),
}

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawSecret::Text(_) => f.write_str("***"),
            RawSecret::NotText(ty) => write!(f, "<{ty}>"),
        }
    }
}

impl From<&str> for RawSecret {
    fn from(text: &str) -> Self {
        RawSecret::Text(text.to_owned())
    }
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawSecretVisitor)
    }
}

/// Takes any value; keeps the text of a string and only the type of anything else.
struct RawSecretVisitor;

impl<'de> serde::de::Visitor<'de> for RawSecretVisitor {
    type Value = RawSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSecret, E> {
        Ok(RawSecret::Text(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawSecret, E> {
        Ok(RawSecret::Text(v))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("a boolean"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("an integer"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("an integer"))
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("an integer"))
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("an integer"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RawSecret, E> {
        Ok(RawSecret::NotText("a float"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawSecret, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(RawSecret::NotText("an array"))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawSecret, A::Error> {
        // The toml crate hands a date-time over as a map with one private key.
        let mut ty = "a table";
        while let Some(key) = map.next_key::<String>()? {
            if key.starts_with("$__toml_private") {
                ty = "a date-time";
            }
            map.next_value::<serde::de::IgnoredAny>()?;
        }
        Ok(RawSecret::NotText(ty))
    }
}

/// `[defaults]` as written; also the overridable part of a flow.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawSettings {
    pub mode: Option<String>,
    pub deletes: Option<String>,
    pub history: Option<bool>,
    pub lookback: Option<String>,
    pub lag: Option<String>,
    pub reconcile_every: Option<String>,
    pub slice: Option<String>,
    pub max_delete_ratio: Option<f64>,
}

/// One `[[flows]]` entry as written. The settings keys repeat [`RawSettings`] because
/// serde cannot combine `flatten` with `deny_unknown_fields`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawFlow {
    pub object: Option<String>,
    pub fields: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    #[serde(rename = "where")]
    pub filter: Option<String>,
    pub mask: Option<Vec<String>>,
    pub api: Option<String>,
    pub mode: Option<String>,
    pub deletes: Option<String>,
    pub history: Option<bool>,
    pub lookback: Option<String>,
    pub lag: Option<String>,
    pub reconcile_every: Option<String>,
    pub slice: Option<String>,
    pub max_delete_ratio: Option<f64>,
}

impl RawFlow {
    /// The flow's overrides of `[defaults]`.
    pub fn settings(&self) -> RawSettings {
        RawSettings {
            mode: self.mode.clone(),
            deletes: self.deletes.clone(),
            history: self.history,
            lookback: self.lookback.clone(),
            lag: self.lag.clone(),
            reconcile_every: self.reconcile_every.clone(),
            slice: self.slice.clone(),
            max_delete_ratio: self.max_delete_ratio,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it came from (a file path), for messages.
    pub origin: String,
    /// The Salesforce org to read.
    pub source: SalesforceConfig,
    /// Where data lands.
    pub destination: DestinationConfig,
    /// One entry per object, defaults applied.
    pub flows: Vec<FlowConfig>,
    /// Salt of the SHA-256 that masked fields are stored as (`destination.mask_salt`);
    /// required when a flow masks a field, so hashes are stable across runs and tables.
    pub mask_salt: Option<Secret>,
}

/// `[source]` with `type = "salesforce"`.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceConfig {
    /// Login host, without a trailing `/`.
    pub login_url: String,
    /// Credentials for the chosen OAuth flow.
    pub auth: Auth,
    /// API version, like `62.0`.
    pub api_version: String,
    /// Default read API for flows.
    pub api: Api,
    /// Extra trusted root certificate (PEM).
    pub ca_file: Option<PathBuf>,
    /// Stop at a flow boundary once this share of the daily API limit is used (1..=100).
    pub api_budget_percent: u8,
    /// Flows extracted at the same time (1..=16); bounds concurrent API calls too.
    pub max_parallel_flows: usize,
    /// TCP and TLS connect to Salesforce (1 s to 5 min; [`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// The longest silence while waiting for a response's next bytes (1 s to 1 h;
    /// [`DEFAULT_READ_TIMEOUT`]).
    pub read_timeout: Duration,
    /// The longest total wait for one window's Bulk jobs, splits included, before the
    /// window is read through REST (1 min to 24 h; [`DEFAULT_BULK_TIMEOUT`]).
    pub bulk_timeout: Duration,
}

/// The OAuth flow and exactly the credentials it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// Username-password flow (the password includes the security token).
    Password {
        /// Connected app consumer key.
        client_id: String,
        /// Connected app consumer secret.
        client_secret: Secret,
        /// Salesforce username.
        username: String,
        /// Password followed by the security token.
        password: Secret,
    },
    /// Client credentials flow (the app's "run as" user).
    ClientCredentials {
        /// Connected app consumer key.
        client_id: String,
        /// Connected app consumer secret.
        client_secret: Secret,
    },
    /// Refresh token flow.
    RefreshToken {
        /// Connected app consumer key.
        client_id: String,
        /// Consumer secret, when the app requires it.
        client_secret: Option<Secret>,
        /// The refresh token.
        refresh_token: Secret,
    },
    /// JWT bearer flow.
    Jwt {
        /// Connected app consumer key (`iss`).
        client_id: String,
        /// Salesforce username (`sub`).
        username: String,
        /// PEM private key whose certificate the app holds.
        private_key_file: PathBuf,
    },
}

/// Which Salesforce API reads a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// REST `queryAll` with locator paging.
    Rest,
    /// Bulk API 2.0 `queryAll` jobs.
    Bulk,
    /// Bulk above a row count, REST below it and for objects Bulk cannot read.
    Auto,
}

/// DuckDB's default memory limit: with sluice's own buffers and code the process stays
/// under 256 MB whatever the table size (1 M Accounts: ~215 MiB at peak, against ~230 at
/// 128 MiB); DuckDB spills what does not fit. The tightest step is the sliced merge of a
/// full refresh (1 M Accounts into 1 M), which passes at 96 MiB but not at 80, so this
/// keeps some headroom for wider rows.
pub const DEFAULT_DUCKDB_MEMORY_MIB: u64 = 112;

/// `[destination]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationConfig {
    /// An embedded DuckDB database file, consolidated exactly once.
    DuckDb {
        /// The database file (created when absent; its directory must exist).
        path: PathBuf,
        /// Schema of the replicated tables; staging goes to `<schema>_staging`.
        schema: String,
        /// How table and column names are derived.
        naming: Naming,
        /// DuckDB's memory limit in MiB; larger operations spill to `<path>.tmp`.
        memory_limit_mib: u64,
    },
    /// A PostgreSQL database, consolidated exactly once.
    Postgres {
        /// `postgres://user:password@host:port/database[?sslmode=…&sslrootcert=…]`: holds
        /// the password, so it is printed as `***`.
        url: Secret,
        /// Schema of the replicated tables; staging goes to `<schema>_staging`.
        schema: String,
        /// How table and column names are derived.
        naming: Naming,
        /// Who runs the consolidation.
        consolidation: Consolidation,
        /// Bounds on statements and lock waits.
        timeouts: PgTimeouts,
    },
    /// Amazon Redshift, loaded through S3, consolidated exactly once.
    Redshift {
        /// The cluster, as a `postgres://` URL (port 5439 usually); printed as `***`.
        url: Secret,
        /// Schema of the replicated tables; staging goes to `<schema>_staging`.
        schema: String,
        /// How table and column names are derived.
        naming: Naming,
        /// Where loads are staged, and the role Redshift reads them with.
        staging: crate::destination::redshift::S3Staging,
        /// Who runs the consolidation.
        consolidation: Consolidation,
        /// Bounds on statements and lock waits.
        timeouts: PgTimeouts,
    },
    /// Plain files, one directory per object and run.
    Files {
        /// Root directory.
        path: PathBuf,
        /// File format.
        format: FileFormat,
        /// How table and column names are derived.
        naming: Naming,
    },
}

impl DestinationConfig {
    /// How table and column names are derived.
    pub fn naming(&self) -> Naming {
        match self {
            DestinationConfig::Files { naming, .. }
            | DestinationConfig::DuckDb { naming, .. }
            | DestinationConfig::Postgres { naming, .. }
            | DestinationConfig::Redshift { naming, .. } => *naming,
        }
    }

    /// Who runs the consolidation: DuckDB and files are always [`Consolidation::Run`].
    pub fn consolidation(&self) -> Consolidation {
        match self {
            DestinationConfig::Postgres { consolidation, .. } | DestinationConfig::Redshift { consolidation, .. } => {
                *consolidation
            }
            DestinationConfig::Files { .. } | DestinationConfig::DuckDb { .. } => Consolidation::Run,
        }
    }
}

/// Time bounds of a PostgreSQL or Redshift destination (`destination.statement_timeout`,
/// `destination.lock_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgTimeouts {
    /// Bound on every statement except the load (`COPY`) and the consolidation
    /// transaction (1 s to 24 h; default 5 min).
    pub statement: Duration,
    /// The longest wait for a table lock (1 s to 1 h; default 1 min).
    pub lock: Duration,
}

impl Default for PgTimeouts {
    fn default() -> Self {
        Self { statement: Duration::from_secs(5 * 60), lock: Duration::from_secs(60) }
    }
}

/// Who runs a PostgreSQL or Redshift consolidation (`destination.consolidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consolidation {
    /// The sync consolidates each load itself (the default).
    #[default]
    Run,
    /// The sync stages each load and installs its consolidation as the stored procedure
    /// `<schema>.sluice_consolidate_<table>()`, which the warehouse's scheduler calls (see
    /// [`crate::consolidate::procedure`]).
    Procedure,
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

/// One flow, with `[defaults]` applied.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowConfig {
    /// Source object API name.
    pub object: String,
    /// Only these fields (`None`: all).
    pub fields: Option<Vec<String>>,
    /// Fields left out.
    pub exclude: Vec<String>,
    /// Extra SOQL condition (`where`), parentheses and quotes balanced.
    pub filter: Option<String>,
    /// Fields stored as a salted SHA-256.
    pub mask: Vec<String>,
    /// Read API.
    pub api: Api,
    /// Window and consolidation settings.
    pub settings: FlowSettings,
}

/// The settings `[defaults]` gives and a flow may override.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowSettings {
    /// Incremental windows or a full read every run.
    pub mode: Mode,
    /// What a deleted source row becomes.
    pub deletes: Deletes,
    /// Keep an SCD type 2 history table too.
    pub history: bool,
    /// How far before the committed end each window starts.
    pub lookback: Duration,
    /// How far behind the source clock each window ends.
    pub lag: Duration,
    /// How often to reconcile Ids; `None` never.
    pub reconcile_every: Option<Duration>,
    /// Cut windows into slices of this length.
    pub slice: Option<Duration>,
    /// Largest share of a table reconciliation may delete.
    pub max_delete_ratio: f64,
}

impl Default for FlowSettings {
    fn default() -> Self {
        Self {
            mode: Mode::Incremental,
            deletes: Deletes::Soft,
            history: false,
            lookback: Duration::from_secs(600),
            lag: Duration::ZERO,
            reconcile_every: Some(Duration::from_secs(86_400)),
            slice: None,
            max_delete_ratio: 0.5,
        }
    }
}

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Windows from the committed end.
    Incremental,
    /// A full window every run.
    Full,
}

/// `deletes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deletes {
    /// Keep the row with `_sluice_deleted = true`.
    Soft,
    /// Remove the row.
    Hard,
}

/// A secret value (password, client secret, token). Its `Debug` and `Display` print
/// `***`; only [`Secret::expose`] gives the value, at the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the request that needs it. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One problem in a configuration: which file, which key, what is wrong and what would
/// be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    /// The file (or other origin).
    pub file: String,
    /// Key path, like `source.auth` or `flows[2].lookback`; `-` for the whole file.
    pub key: String,
    /// What is wrong, and what would be valid.
    pub message: String,
}

/// Parses TOML text. A syntax error, an unknown key or a value of the wrong TOML type
/// stops here, with the line and column; every other check is [`validate`]'s.
pub fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| line_col(text, s.start));
        let key = at.map_or_else(|| "-".to_owned(), |(l, c)| format!("line {l}, column {c}"));
        // toml quotes no string value in its messages, and every secret key takes any
        // value; redacting URL user-info is the last line of defence.
        let message = crate::redact::userinfo(e.message().trim()).into_owned();
        ConfigError { file: origin.to_owned(), key, message }
    })
}

/// [`parse`] then [`validate`].
pub fn load(text: &str, origin: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<ConfigError>> {
    validate(parse(text, origin).map_err(|e| vec![e])?, origin, env)
}

/// All problems as one user error, one per line (for callers that need an [`Error`]).
pub fn into_error(errors: &[ConfigError]) -> Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    Error::user(lines.join("\n"))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, col)
}

/// Replaces `${NAME}` with `env(NAME)`; `$${` is a literal `${`. Errors name the
/// variable, never a value.
pub fn interpolate(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    interpolate_as(value, env, true)
}

/// [`interpolate`]; with `quote_invalid` false, the text of a `${…}` that is not a
/// variable name is not quoted either (for secret keys, whose text it is part of).
fn interpolate_as(value: &str, env: &dyn Fn(&str) -> Option<String>, quote_invalid: bool) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or("unterminated `${` (write `$${` for a literal `${`)")?;
            let name = &tail[..end];
            if !is_env_name(name) {
                return Err(if quote_invalid {
                    format!("`${{{name}}}` is not a variable name (letters, digits, `_`)")
                } else {
                    "a `${…}` does not hold a variable name (letters, digits, `_`); write `$${` for a literal `${`"
                        .to_owned()
                });
            }
            out.push_str(&env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a duration like `30s`, `10m`, `2h`, `1d`, `1w` or `1h30m`. Whole seconds are
/// the finest unit because Salesforce timestamps have 1-second resolution. Anything
/// longer than [`MAX_DURATION`] is refused: no key means that much.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint = "expected a duration like \"30s\", \"10m\", \"2h\", \"1d\" or \"1h30m\" (units s, m, h, d, w)";
    let text = text.trim();
    if text.is_empty() {
        return Err(hint.to_owned());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(hint.to_owned()),
        };
        let too_long = || format!("longer than any setting allows ({})", format_duration(MAX_DURATION));
        // Too many digits for a u64 is a number, just too large.
        let n: u64 = match digits.parse() {
            Ok(n) => n,
            Err(_) if !digits.is_empty() => return Err(too_long()),
            Err(_) => return Err(hint.to_owned()),
        };
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(too_long)?;
        if total > MAX_DURATION.as_secs() {
            return Err(too_long());
        }
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(hint.to_owned());
    }
    Ok(Duration::from_secs(total))
}

/// A duration in the syntax [`parse_duration`] reads, in its largest whole unit among
/// `d`, `h`, `m` and `s` (`86400s` → `1d`, `90s` → `90s`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let unit = [(86_400, 'd'), (3_600, 'h'), (60, 'm')].into_iter().find(|(n, _)| secs > 0 && secs.is_multiple_of(*n));
    match unit {
        Some((n, u)) => format!("{}{u}", secs / n),
        None => format!("{secs}s"),
    }
}

/// Checks that a `where` condition keeps its parentheses and string literals balanced,
/// so that wrapping it in `( )` cannot let an `OR` widen the window.
pub fn check_where(filter: &str) -> Result<(), String> {
    let mut depth: i64 = 0;
    let mut in_string = false;
    let mut chars = filter.chars();
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '\'') | (false, '\'') => in_string = !in_string,
            (false, '(') => depth += 1,
            (false, ')') => {
                depth -= 1;
                if depth < 0 {
                    return Err("a `)` closes a parenthesis that was never opened".to_owned());
                }
            }
            _ => {}
        }
    }
    if in_string {
        Err("a string literal is not closed (quote with ', escape ' as \\')".to_owned())
    } else if depth != 0 {
        Err("a `(` is never closed".to_owned())
    } else {
        Ok(())
    }
}

/// Whether `name` can be a Salesforce object or field API name.
pub fn is_valid_api_name(name: &str) -> bool {
    is_api_name(name) && name.len() <= 255
}

#[cfg(test)]
mod tests;
