//! Configuration: TOML → [`RawConfig`] (serde, unknown keys refused) → [`validate`] →
//! [`Config`].
//!
//! Validation is pure: the environment comes in as a function, nothing is read from disk
//! or the network, and it reports every problem at once, each naming the file, the key
//! path (`flows[2].lookback`) and what would be valid. Values are interpolated with
//! `${ENV_VAR}` (`$${` is a literal `${`); a missing variable is an error naming the
//! variable. Secrets are held as [`Secret`], which prints as `***`, and no error ever
//! quotes the value of a secret key.
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
    pub client_secret: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub refresh_token: Option<String>,
    pub private_key_file: Option<String>,
    pub api_version: Option<String>,
    pub api: Option<String>,
    pub ca_file: Option<String>,
    pub api_budget_percent: Option<i64>,
    pub max_parallel_flows: Option<i64>,
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
    pub url: Option<String>,
    pub naming: Option<String>,
    pub mask_salt: Option<String>,
    pub memory_limit: Option<String>,
    pub s3_staging: Option<String>,
    pub iam_role: Option<String>,
    pub s3_region: Option<String>,
    pub s3_endpoint: Option<String>,
    pub consolidation: Option<String>,
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
        ConfigError { file: origin.to_owned(), key, message: e.message().trim().to_owned() }
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
                return Err(format!("`${{{name}}}` is not a variable name (letters, digits, `_`)"));
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
/// the finest unit because Salesforce timestamps have 1-second resolution.
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
        let n: u64 = digits.parse().map_err(|_| hint.to_owned())?;
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or("duration too large")?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(hint.to_owned());
    }
    Ok(Duration::from_secs(total))
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
