//! The PostgreSQL destination's configuration, pure: `type = "postgres"`
//! ([`PostgresKind`]) and its checked settings ([`PostgresConfig`]), with what Redshift,
//! which speaks the same protocol, shares: a `destination.url` parsed and checked without
//! connecting ([`PgUrl`]), the time bounds ([`PgTimeouts`]) and their keys.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::config::{Consolidation, DestinationKeys, DestinationKind, DestinationSettings, NameRules, Secret};
use crate::sql::Dialect;

/// `type = "postgres"`: a PostgreSQL database, consolidated exactly once.
pub struct PostgresKind;

/// `type = "postgres"`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database[?sslmode=…&sslrootcert=…]`: holds the
    /// password, so it is printed as `***`.
    pub url: Secret,
    /// Schema of the replicated tables; staging goes to `<schema>_staging`.
    pub schema: String,
    /// Who runs the consolidation.
    pub consolidation: Consolidation,
    /// Bounds on statements and lock waits.
    pub timeouts: PgTimeouts,
}

impl DestinationKind for PostgresKind {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["url", "schema", "consolidation", "statement_timeout", "lock_timeout"]
    }

    fn uses(&self) -> &'static str {
        "url and schema"
    }

    fn settings(&self, keys: &mut DestinationKeys<'_, '_>) -> Option<Box<dyn DestinationSettings>> {
        let url = pg_url(keys, "the database, e.g. \"postgres://sluice:${PGPASSWORD}@db.example.com:5432/warehouse\"");
        let schema = keys.warehouse_schema();
        postgres_schema(keys, &schema, Dialect::Postgres);
        let consolidation = consolidation(keys);
        let timeouts = pg_timeouts(keys);
        Some(Box::new(PostgresConfig { url, schema, consolidation, timeouts }))
    }
}

impl DestinationSettings for PostgresConfig {
    /// sluice quotes every name, and PostgreSQL compares quoted names exactly.
    fn names(&self) -> NameRules {
        NameRules { case_insensitive: false, server: "PostgreSQL", folds_case: false }
    }

    fn consolidation(&self) -> Consolidation {
        self.consolidation
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

/// `statement_timeout` and `lock_timeout` of PostgreSQL and Redshift.
pub(crate) fn pg_timeouts(keys: &mut DestinationKeys<'_, '_>) -> PgTimeouts {
    let default = PgTimeouts::default();
    let (second, hour, day) = (Duration::from_secs(1), Duration::from_secs(3_600), Duration::from_secs(86_400));
    let note = " (every statement but the load and the consolidation transaction)";
    PgTimeouts {
        statement: keys.duration_in("statement_timeout", second, day, note).unwrap_or(default.statement),
        lock: keys.duration_in("lock_timeout", second, hour, "").unwrap_or(default.lock),
    }
}

/// `url` of a PostgreSQL-protocol warehouse, checked without connecting.
pub(crate) fn pg_url(keys: &mut DestinationKeys<'_, '_>, example: &str) -> Secret {
    let url = keys.required_secret("url", example);
    if !url.is_empty()
        && let Err(m) = PgUrl::parse(&url)
    {
        keys.err("url", m);
    }
    Secret::new(url)
}

/// `consolidation` of PostgreSQL and Redshift: `"run"` unless set.
pub(crate) fn consolidation(keys: &mut DestinationKeys<'_, '_>) -> Consolidation {
    keys.choice("consolidation", &[("run", Consolidation::Run), ("procedure", Consolidation::Procedure)])
        .unwrap_or_default()
}

/// What PostgreSQL and Redshift refuse of a schema name that
/// [`DestinationKeys::warehouse_schema`] allows: the reserved `pg_` prefix, and a name
/// whose staging schema (`<schema>_staging`) would exceed the server's identifier length,
/// which PostgreSQL would silently truncate.
pub(crate) fn postgres_schema(keys: &mut DestinationKeys<'_, '_>, schema: &str, dialect: Dialect) {
    let server = dialect.server();
    let max_bytes = dialect.max_identifier_bytes();
    if schema.starts_with("pg_") {
        keys.err("schema", format!("{schema:?}: {server} reserves names starting with `pg_`; choose another"));
    }
    let staging = format!("{schema}_staging");
    if staging.len() > max_bytes {
        keys.err(
            "schema",
            format!(
                "{schema:?} is too long: its staging schema {staging:?} would exceed {server}'s {max_bytes}-byte \
                 names; use at most {} bytes",
                max_bytes - "_staging".len()
            ),
        );
    }
}

/// A validated `destination.url`: the driver's settings plus the TLS settings the driver
/// does not parse.
#[derive(Clone)]
pub struct PgUrl {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl PgUrl {
    /// Parses a `postgres://` URL. Pure, so configuration checks can call it; messages
    /// never repeat the URL, which may hold a password.
    pub fn parse(url: &str) -> std::result::Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("expected a URL like \"postgres://user:password@host:5432/database\"".into());
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslrootcert" => root_cert = Some(PathBuf::from(value)),
                "sslmode" => {
                    let mode = match value {
                        "disable" => "disable",
                        "allow" | "prefer" => "prefer",
                        "require" | "verify-ca" | "verify-full" => "require",
                        other => {
                            return Err(format!(
                                "sslmode={other} is not a TLS mode; valid: disable, prefer, require, verify-ca, \
                                 verify-full"
                            ));
                        }
                    };
                    kept.push(format!("sslmode={mode}"));
                }
                _ => kept.push(pair.to_owned()),
            }
        }
        let rebuilt = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        let mut config = tokio_postgres::Config::from_str(&rebuilt).map_err(|e| format!("not a valid URL: {e}"))?;
        if config.get_hosts().is_empty() {
            return Err("names no host; expected \"postgres://user:password@host:5432/database\"".into());
        }
        if config.get_user().is_none() {
            return Err("names no user; expected \"postgres://user:password@host:5432/database\"".into());
        }
        if config.get_application_name().is_none() {
            // So `pg_stat_activity` shows who holds the lock.
            config.application_name("sluice");
        }
        Ok(Self { config, root_cert })
    }

    /// `postgres://host:port/database (user u)`, for messages: never the password, and the
    /// user outside the URL, where no redaction of URL credentials hides it.
    pub fn shown(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let user = self.config.get_user().unwrap_or_default();
        let db = self.config.get_dbname().unwrap_or(user);
        format!("postgres://{host}:{port}/{db} (user {user})")
    }
}
