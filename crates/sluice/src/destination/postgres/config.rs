//! The PostgreSQL destination's configuration, pure: a `destination.url` parsed and
//! checked without connecting ([`PgUrl`]), so `sluice check` and config validation can
//! call it.

use std::path::PathBuf;
use std::str::FromStr;

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
