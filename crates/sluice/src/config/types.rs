//! The validated configuration ([`Config`]) and its parts, with the defaults of keys
//! left unset. Everything here has passed [`super::validate`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::destination::DestinationConfig;

/// The API version used when `api_version` is not set (Winter '25).
pub const DEFAULT_API_VERSION: &str = "62.0";

/// `source.connect_timeout` when not set: TCP and TLS connect to Salesforce.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `source.read_timeout` when not set: the longest silence while waiting for a
/// response's next bytes.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// `source.bulk_timeout` when not set: the longest total wait for one window's Bulk jobs
/// (splits included) before the window is read through REST.
pub const DEFAULT_BULK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

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
    /// `[serve]` (its defaults when the section is absent).
    pub serve: ServeConfig,
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
    /// Column names chosen for fields, `(API name, column)`, instead of the naming rule's.
    pub rename: Vec<(String, String)>,
    /// Read API.
    pub api: Api,
    /// Window and consolidation settings.
    pub settings: FlowSettings,
    /// When `sluice serve` runs it.
    pub schedule: Schedule,
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
    /// How often to re-read the flow's formula fields (whose values change without the
    /// cursor moving); `None` never.
    pub formula_refresh_every: Option<Duration>,
    /// Cut windows into slices of this length.
    pub slice: Option<Duration>,
    /// Largest share of a table reconciliation may delete.
    pub max_delete_ratio: f64,
    /// One current row per record, or every version read.
    pub write: WriteMode,
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
            formula_refresh_every: Some(Duration::from_secs(86_400)),
            slice: None,
            max_delete_ratio: 0.5,
            write: WriteMode::Merge,
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

/// `write`: how a flow's rows reach its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    /// One current row per record: the newest version wins, deletes follow the source.
    Merge,
    /// An event log: one row per version read (deleted versions included), never updated
    /// or removed. The files destination always writes so.
    Append,
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

// What `sluice serve` reads: `[serve]` and each flow's schedule (validated in
// `validate/serve.rs`).

/// `serve.listen` when not set: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7870";
/// `serve.shutdown_grace` when not set.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(60);
/// `serve.lease_timeout` when not set.
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `serve.lease_timeout`: a stored procedure handed off on Redshift treats a
/// lease this old as dead ([`crate::consolidate::LEASE`]), so no live lease may be older.
pub const MAX_LEASE_TIMEOUT: Duration = Duration::from_secs(600);
/// `every` when neither `every` nor `cron` is set.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(15 * 60);
/// `full_refresh_every` when not set.
pub const DEFAULT_FULL_REFRESH_EVERY: Duration = Duration::from_secs(7 * 86_400);
/// `pause_after_failures` when not set.
pub const DEFAULT_PAUSE_AFTER_FAILURES: u32 = 5;

/// `[serve]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// The HTTP API's address (loopback unless a token is set).
    pub listen: SocketAddr,
    /// The bearer token the API requires (on every address, once set).
    pub token: Option<Secret>,
    /// How long running flows may finish after SIGTERM/SIGINT before they are aborted.
    pub shutdown_grace: Duration,
    /// How soon the flows of a process that died (kill -9, a lost machine) can be taken
    /// by another: a PostgreSQL server drops a silent holder's session, and its flow locks,
    /// within it; a Redshift lease lapses after it.
    pub lease_timeout: Duration,
    /// Where a JSON POST goes when a flow fails, is paused, recovers or falls late (a
    /// secret: webhook URLs carry their key).
    pub notify_url: Option<Secret>,
    /// HTTPS instead of HTTP: the certificate chain and its private key (PEM files).
    pub tls: Option<ServeTls>,
}

/// `serve.tls_cert` and `serve.tls_key`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeTls {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("the default listen address parses"),
            token: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            lease_timeout: DEFAULT_LEASE_TIMEOUT,
            notify_url: None,
            tls: None,
        }
    }
}

/// When a flow runs under `sluice serve`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cadence {
    /// `every = "15m"`: this long after the previous run started.
    Every(Duration),
    /// `cron = "*/15 * * * *"`, in the schedule's time zone: 5 or 6 fields (seconds first
    /// when 6), or an alias like `@hourly`. Validation parsed it once; it is kept as written.
    Cron(String),
}

/// A flow's schedule under `sluice serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// When it runs.
    pub cadence: Cadence,
    /// Where a cron pattern's hours and days are counted (`timezone`, default UTC).
    pub timezone: chrono_tz::Tz,
    /// How often a run reads everything (removing what the source lost); `None` never.
    pub full_refresh_every: Option<Duration>,
    /// Consecutive failed runs after which the flow is paused until resumed.
    pub pause_after_failures: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            cadence: Cadence::Every(DEFAULT_EVERY),
            timezone: chrono_tz::UTC,
            full_refresh_every: Some(DEFAULT_FULL_REFRESH_EVERY),
            pause_after_failures: DEFAULT_PAUSE_AFTER_FAILURES,
        }
    }
}
