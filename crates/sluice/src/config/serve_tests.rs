//! `[serve]` and the schedule keys (`every`, `cron`, `timezone`, `full_refresh_every`,
//! `pause_after_failures`): defaults, inheritance, and every problem at once.

use std::time::Duration;

use super::*;
use crate::pipeline::load_config as load;

const SOURCE: &str = "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x.my.salesforce.com\"\n\
                      auth = \"client_credentials\"\nclient_id = \"id\"\nclient_secret = \"s\"\n";
const TOKEN: &str = "a-long-random-serve-token";

fn text(rest: &str) -> String {
    format!("{SOURCE}[destination]\ntype = \"duckdb\"\npath = \"w.duckdb\"\n{rest}")
}

fn env(name: &str) -> Option<String> {
    (name == "SLUICE_TOKEN").then(|| TOKEN.to_owned())
}

fn ok(rest: &str) -> Config {
    load(&text(rest), "sluice.toml", &env).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn problems(rest: &str) -> Vec<(String, String)> {
    let errs = load(&text(rest), "sluice.toml", &env).expect_err("should be invalid");
    errs.into_iter().map(|e| (e.key, e.message)).collect()
}

#[test]
fn defaults_when_nothing_is_written() {
    let config = ok("[[flows]]\nobject = \"Account\"\n");
    assert_eq!(config.serve, ServeConfig::default());
    assert_eq!(config.serve.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.serve.shutdown_grace, Duration::from_secs(60));
    assert_eq!(config.serve.lease_timeout, Duration::from_secs(60));
    assert!(config.serve.token.is_none());
    let schedule = &config.flows[0].schedule;
    assert_eq!(schedule.cadence, Cadence::Every(Duration::from_secs(900)));
    assert_eq!(schedule.full_refresh_every, Some(Duration::from_secs(7 * 86_400)));
    assert_eq!((schedule.pause_after_failures, schedule.timezone), (5, chrono_tz::UTC));
}

#[test]
fn flows_inherit_and_override() {
    let config = ok(r#"
[serve]
listen = "0.0.0.0:9000"
token = "${SLUICE_TOKEN}"
shutdown_grace = "10s"
lease_timeout = "15s"

[defaults]
cron = "*/5 * * * *"
timezone = "Europe/Paris"
full_refresh_every = "1d"
pause_after_failures = 3

[[flows]]
object = "Account"

[[flows]]
object = "Contact"
every = "2s"
full_refresh_every = "never"

[[flows]]
object = "Lead"
timezone = "America/New_York"
"#);
    assert_eq!(config.serve.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.serve.token.as_ref().map(Secret::expose), Some(TOKEN));
    assert_eq!(config.serve.shutdown_grace, Duration::from_secs(10));
    assert_eq!(config.serve.lease_timeout, Duration::from_secs(15));
    let [account, contact, lead] = [0, 1, 2].map(|i| config.flows[i].schedule.clone());
    assert_eq!(account.cadence, Cadence::Cron("*/5 * * * *".into()));
    assert_eq!(account.timezone, chrono_tz::Europe::Paris);
    assert_eq!(account.full_refresh_every, Some(Duration::from_secs(86_400)));
    assert_eq!(account.pause_after_failures, 3);
    assert_eq!(contact.cadence, Cadence::Every(Duration::from_secs(2)));
    assert_eq!(contact.full_refresh_every, None);
    assert_eq!(lead.cadence, account.cadence);
    assert_eq!(lead.timezone, chrono_tz::America::New_York);
    // The token never prints.
    assert!(!format!("{config:?}").contains(TOKEN));
}

#[test]
fn every_problem_at_once() {
    let found = problems(
        r#"
[serve]
listen = "0.0.0.0:7870"
shutdown_grace = "2h"
lease_timeout = "1h"

[defaults]
every = "0s"
timezone = "Mars/Olympus"
pause_after_failures = 0

[[flows]]
object = "Account"
every = "1m"
cron = "*/5 * * * *"

[[flows]]
object = "Contact"
cron = "not a pattern"

[[flows]]
object = "Lead"
mode = "full"
full_refresh_every = "1d"

[[flows]]
object = "Case"
full_refresh_every = "1m"
timezone = "UTC"
"#,
    );
    let want = [
        ("serve.token", "is required because serve.listen (0.0.0.0:7870) is not a loopback address"),
        ("serve.shutdown_grace", "out of range"),
        ("serve.lease_timeout", "out of range; expected 10s to 10m"),
        ("defaults.every", "out of range; expected 1s to 365d"),
        ("defaults.timezone", "not an IANA time zone"),
        ("defaults.pause_after_failures", "0 is out of range; expected 1 to 1000"),
        ("flows[0].cron", "set either `every` or `cron`, not both"),
        ("flows[1].cron", "is not a cron pattern"),
        ("flows[2].full_refresh_every", "has no effect with mode = \"full\""),
        ("flows[3].full_refresh_every", "out of range; expected 1h to 3650d"),
        ("flows[3].timezone", "has no effect: the flow runs on `every`"),
    ];
    for (key, needle) in want {
        assert!(found.iter().any(|(k, m)| k == key && m.contains(needle)), "no {key}: {needle:?} in {found:#?}");
    }
    assert_eq!(found.len(), want.len(), "{found:#?}");
}

#[test]
fn listen_and_token_problems() {
    let cases: &[(&str, &str, &str)] = &[
        ("listen = \"localhost\"", "serve.listen", "is not an address and port"),
        ("token = \"tiny-tkn\"", "serve.token", "shorter than 16 characters"),
        ("token = 42", "serve.token", "must be a string (got an integer)"),
        ("notify_url = \"ftp://tiny-tkn.example\"", "serve.notify_url", "is not an http:// or https:// URL"),
        ("tls = true", "line 11, column 1", "unknown field `tls`"),
        ("tls_cert = \"c.pem\"", "serve.tls_key", "is required with serve.tls_cert"),
        ("tls_key = \"k.pem\"", "serve.tls_cert", "is required with serve.tls_key"),
    ];
    for (line, key, needle) in cases {
        let found = problems(&format!("[serve]\n{line}\n[[flows]]\nobject = \"Account\"\n"));
        assert!(found.iter().any(|(k, m)| k == key && m.contains(needle)), "{line}: {found:#?}");
        assert!(!found.iter().any(|(_, m)| m.contains("tiny-tkn")), "a token was quoted: {found:#?}");
    }
    // Loopback needs no token, on IPv6 too.
    assert!(ok("[serve]\nlisten = \"[::1]:7870\"\n[[flows]]\nobject = \"Account\"\n").serve.token.is_none());
    // A defaults' time zone is fine when some flow uses a pattern.
    ok("[defaults]\ntimezone = \"Asia/Tokyo\"\n[[flows]]\nobject = \"Account\"\ncron = \"@daily\"\n");
}
