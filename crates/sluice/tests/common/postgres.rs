//! A database of its own per test on the PostgreSQL server `./scripts/test` starts on
//! loopback. `SLUICE_TEST_POSTGRES_URL` names the server (as a superuser, on its
//! `postgres` database); without it the tests fail and say how to get one.

// Each suite uses its own subset.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use sluice::destination::Destination;
use sluice::destination::postgres::{PgUrl, Postgres};

/// A fresh, empty database on the test server.
pub struct TestDb {
    /// Its URL, credentials included.
    pub url: String,
    /// The server's port.
    pub port: u16,
    /// The database's name.
    pub name: String,
}

impl TestDb {
    /// The parsed URL.
    pub fn pg(&self) -> PgUrl {
        PgUrl::parse(&self.url).expect("test database URL")
    }
}

/// The server's URL.
pub fn server_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "SLUICE_TEST_POSTGRES_URL is not set: run ./scripts/test, which starts a PostgreSQL server on loopback \
             and sets it"
        )
    })
}

/// Creates a database named after the time, the process and a counter.
pub async fn fresh_database() -> TestDb {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = server_url();
    // The start time too: process ids are reused, and a killed run leaves its databases.
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let name = format!("sluice_t{started}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let admin = Postgres::connect(&PgUrl::parse(&server).expect("SLUICE_TEST_POSTGRES_URL")).await.unwrap();
    admin.execute(vec![format!("CREATE DATABASE \"{name}\"")]).await.expect("create a test database");
    let (base, query) = server.split_once('?').unwrap_or((&server, ""));
    let base = &base[..base.rfind('/').expect("a database in the server URL")];
    let host_port = &base[base.rfind('@').map_or(0, |i| i + 1)..];
    let port = host_port.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(5432);
    let url = if query.is_empty() { format!("{base}/{name}") } else { format!("{base}/{name}?{query}") };
    TestDb { url, port, name }
}
