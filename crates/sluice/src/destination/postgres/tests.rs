//! `destination.url` parsing: pure, so it runs without a server (the destination against a
//! real server is in `tests/it/postgres.rs`).

use super::*;

#[test]
fn postgres_urls_are_parsed_without_echoing_secrets() {
    let ok = PgUrl::parse("postgres://me:pw@db.example:6543/wh?sslmode=verify-full&sslrootcert=/etc/ca.pem").unwrap();
    assert_eq!(ok.shown(), "postgres://db.example:6543/wh (user me)");
    assert_eq!(ok.config.get_ssl_mode(), SslMode::Require);
    assert_eq!(ok.root_cert.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
    assert_eq!(ok.config.get_application_name(), Some("sluice"));
    assert_eq!(format!("{ok:?}"), ok.shown(), "Debug shows no more than shown()");
    for (bad, needle) in [
        ("mysql://me:pw@h/db", "expected a URL like"),
        ("postgres://me:pw@h/db?sslmode=sometimes", "sslmode=sometimes is not a TLS mode"),
        ("postgres://me:pw@h:notaport/db", "not a valid URL"),
        ("postgres:///db", "names no host"),
    ] {
        let err = PgUrl::parse(bad).unwrap_err();
        assert!(err.contains(needle), "{bad}: {err}");
        assert!(!err.contains("pw@"), "{err}");
    }
}
