//! Bad input and a hostile machine, once per warehouse (DuckDB, PostgreSQL; see `suite!`
//! at the end): a destination another run holds, one sluice may not write (a read-only
//! path, a missing directory; a role without rights, a missing database), and a full disk.
//! Each gets a clear error, and nothing is half-written: the committed window end and the
//! rows stay as they were, and a later run with the problem gone completes. `sluice query`
//! with SQL that fails or would write is a clear error too, and changes nothing.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::{common, target};

use sandbox::Running;
use sandbox::server::DEFAULT_PASSWORD;
use serde_json::json;
use sluice::destination::Destination;
use sluice::destination::duckdb::DuckDb;
use sluice::destination::postgres::Postgres;
use target::{Kind, Warehouse};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

async fn start() -> Running {
    common::start(3, &[("Account", 500)]).await
}

fn write_config(dir: &Path, login_url: &str, destination: &str) -> PathBuf {
    let text = format!(
        r#"{}
{destination}
[defaults]
reconcile_every = "never"

[[flows]]
object = "Account"
"#,
        common::source_toml(login_url, DEFAULT_PASSWORD),
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `sluice sync` through `sh -c` with `prefix` before it (a `ulimit`, say).
async fn sync_with(config: &Path, prefix: &str) -> Output {
    let script = format!("{prefix} exec '{BIN}' --config '{}' sync", config.display());
    tokio::task::spawn_blocking(move || std::process::Command::new("bash").arg("-c").arg(script).output().unwrap())
        .await
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (committed window end in ms, rows in the table), or `None` before any commit.
async fn committed(wh: &Warehouse) -> Option<(i64, i64)> {
    if wh.duckdb.as_ref().is_some_and(|p| !p.exists()) {
        return None;
    }
    let exists = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'salesforce' AND table_name = \
                  'account'";
    if wh.query_i64(exists).await == 0 {
        return None;
    }
    let sql = format!(
        "SELECT {}, (SELECT COUNT(*) FROM salesforce.account) FROM _sluice.flows WHERE flow = 'Account'",
        wh.dialect().epoch_ms("window_end")
    );
    let rows = wh.query(&sql).await;
    rows.first().map(|r| (r[0].as_deref().unwrap().parse().unwrap(), r[1].as_deref().unwrap().parse().unwrap()))
}

/// Tables sluice would create, as the holder of the lock sees them.
const SLUICE_TABLES: &str = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema IN ('salesforce', 'salesforce_staging', '_sluice')";

async fn a_destination_held_by_another_run_is_named_and_untouched(kind: Kind) {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    let config = write_config(dir.path(), &sb.login_url, &wh.toml);
    // This test process holds the lock a run takes.
    let (err, tables) = match (&wh.duckdb, &wh.postgres) {
        (Some(path), _) => {
            let holder = DuckDb::open(path).unwrap();
            let out = sync_with(&config, "").await;
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            let err = stderr(&out);
            assert!(err.contains("destination.path") && err.contains("in use by another process"), "{err}");
            assert!(err.contains(&path.display().to_string()), "the file is named: {err}");
            (err, holder.query(SLUICE_TABLES.into()).await.unwrap())
        }
        (_, Some(db)) => {
            // A run of the flow (another serve, a sync by hand) holds it.
            let holder = Postgres::connect(&db.pg()).await.unwrap();
            let account = sluice::consolidate::TableRef::new("salesforce", "account");
            assert_eq!(holder.claim(vec![account]).await.unwrap(), vec![None]);
            let out = sync_with(&config, "").await;
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            let err = stderr(&out);
            assert!(err.contains("table account of schema salesforce"), "{err}");
            assert!(err.contains("in use by another sluice run"), "{err}");
            assert!(err.contains(&db.pg().shown()), "the database is named: {err}");
            assert!(err.contains("pid "), "the holder is named: {err}");
            (err, holder.query(SLUICE_TABLES.into()).await.unwrap())
        }
        _ => unreachable!(),
    };
    assert_eq!(tables[0][0].as_i64(), Some(0), "nothing was created: {err}");
    assert!(sync_with(&config, "").await.status.success(), "runs once the lock is free");
    assert_eq!(committed(&wh).await.map(|c| c.1), Some(500));
    sb.shutdown().await;
}

async fn a_destination_sluice_may_not_write_is_a_clear_error(kind: Kind) {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    let cases: Vec<(String, &str)> = match &wh.postgres {
        None => vec![
            // sysfs is read-only even for root, which ignores file permissions.
            ("/sys/sluice-test.duckdb".into(), "destination.path: cannot write"),
            (dir.path().join("no/such/dir/w.duckdb").display().to_string(), "destination.path: the directory"),
        ]
        .into_iter()
        .map(|(p, e)| (format!("[destination]\ntype = \"duckdb\"\npath = \"{p}\"\n"), e))
        .collect(),
        Some(db) => {
            // A role that may connect but not create anything, and a database that is not there.
            let admin = Postgres::connect(&db.pg()).await.unwrap();
            let reader = format!("{}_reader", db.name);
            admin
                .execute(vec![
                    format!("CREATE ROLE {reader} LOGIN PASSWORD 'reader-pw'"),
                    format!("REVOKE CREATE ON DATABASE \"{}\" FROM PUBLIC", db.name),
                ])
                .await
                .unwrap();
            let url = |password: &str, name: &str| {
                format!("postgres://{reader}:{password}@127.0.0.1:{}/{name}?sslmode=disable", db_port(&wh))
            };
            vec![
                (url("reader-pw", &db.name), "grant sluice's user the right"),
                (url("reader-pw", "no_such_database"), "check the user, password and database"),
                (url("wrong-pw", &db.name), "check the user, password and database"),
            ]
            .into_iter()
            .map(|(u, e)| (format!("[destination]\ntype = \"postgres\"\nurl = \"{u}\"\n"), e))
            .collect()
        }
    };
    for (destination, expect) in cases {
        let config = write_config(dir.path(), &sb.login_url, &destination);
        let out = sync_with(&config, "").await;
        let err = stderr(&out);
        // Something only the user can fix (a path, a role's rights, credentials): exit 2.
        assert_eq!(out.status.code(), Some(2), "{destination}: {err}");
        assert!(err.contains(expect), "{destination}: {err}");
        assert!(!err.contains("reader-pw") && !err.contains("wrong-pw"), "no password in messages: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    match &wh.duckdb {
        Some(_) => assert!(!Path::new("/sys/sluice-test.duckdb").exists()),
        None => assert_eq!(wh.query_i64(SLUICE_TABLES).await, 0, "nothing was created"),
    }
    sb.shutdown().await;
}

fn db_port(wh: &Warehouse) -> u16 {
    wh.postgres.as_ref().map(|d| d.port).unwrap()
}

/// A tablespace on a filesystem of `kib` KiB, made the database's default: PostgreSQL's
/// "disk" that can fill up. Mounting needs root, as `./scripts/test` runs. Dropping it,
/// even as a failed test unwinds, empties and removes the tablespace before unmounting,
/// so the shared server never holds buffers of files that vanished.
struct SmallDisk {
    dir: PathBuf,
    url: String,
    db: String,
}

impl SmallDisk {
    fn new(dir: PathBuf, url: &str, db: &str, kib: u32) -> Self {
        std::fs::create_dir(&dir).unwrap();
        let uid = std::process::Command::new("id").args(["-u", "postgres"]).output().unwrap();
        let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k,uid={uid},mode=0700"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "the full-disk test mounts a small tmpfs, which needs root");
        let disk = Self { dir, url: url.to_owned(), db: db.to_owned() };
        disk.psql(&format!("CREATE TABLESPACE small_{db} LOCATION '{}'", disk.dir.display()));
        disk.psql(&format!("ALTER DATABASE \"{db}\" SET default_tablespace = small_{db}"));
        disk
    }

    /// Back to the default tablespace for new sessions (tables already in it stay).
    fn restore(&self) {
        self.psql(&format!("ALTER DATABASE \"{}\" RESET default_tablespace", self.db));
    }

    fn psql(&self, sql: &str) {
        let out = std::process::Command::new("psql").arg(&self.url).args(["-v", "ON_ERROR_STOP=1", "-c", sql]).output();
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        assert!(ok || std::thread::panicking(), "psql {sql}: {out:?}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        self.restore();
        // Whatever a failed run left there, then the tablespace itself.
        let tables = format!(
            "DO $$ DECLARE t record; BEGIN FOR t IN SELECT schemaname, tablename FROM pg_tables WHERE tablespace = \
             'small_{0}' LOOP EXECUTE format('DROP TABLE %I.%I', t.schemaname, t.tablename); END LOOP; END $$",
            self.db
        );
        self.psql(&tables);
        self.psql(&format!("DROP TABLESPACE IF EXISTS small_{}", self.db));
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}

async fn a_full_disk_fails_the_run_and_loses_nothing(kind: Kind) {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    let config = write_config(dir.path(), &sb.login_url, &wh.toml);
    assert!(sync_with(&config, "").await.status.success());
    let before = committed(&wh).await.expect("first run committed");

    // Many new rows, then a run whose writes cannot fit.
    let resp = reqwest::Client::new()
        .post(format!("{}/sandbox/v1/mutations", sb.instance_url))
        .json(&json!({"mutations": [{"op": "insert", "object": "Account", "count": 5000}]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    reqwest::Client::new()
        .post(format!("{}/sandbox/v1/clock", sb.instance_url))
        .json(&json!({"advance_secs": 2.0}))
        .send()
        .await
        .unwrap();
    // New tables (staging among them) go to a tablespace on a 1 MiB filesystem.
    let disk = wh.postgres.as_ref().map(|db| SmallDisk::new(dir.path().join("disk"), &db.url, &db.name, 1024));
    let out = match &disk {
        // SIGXFSZ ignored, so writes past the limit fail with EFBIG as on a full disk.
        None => sync_with(&config, "trap '' XFSZ; ulimit -f 256;").await,
        Some(_) => sync_with(&config, "").await,
    };
    // The flow's error is in the run's summary (stdout), the run's in stderr.
    let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!out.status.success(), "the run must fail: {err}");
    assert!(!err.contains("panicked"), "a clear error, not a panic: {err}");
    if wh.postgres.is_some() {
        assert!(err.contains("No space left on device") || err.contains("could not extend"), "{err}");
    }
    assert_eq!(committed(&wh).await, Some(before), "window end and rows unchanged: {err}");

    // The failed load's staging table stays in the full tablespace until the next run
    // discards it.
    if let Some(disk) = &disk {
        disk.restore();
    }
    let out = sync_with(&config, "").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let after = committed(&wh).await.unwrap();
    assert_eq!(after.1, before.1 + 5000);
    assert!(after.0 > before.0);
    drop(disk);
    sb.shutdown().await;
}

/// Runs `sluice --config <config> query <args...>`.
async fn query(config: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--config").arg(config).arg("query").args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

async fn query_shows_the_data_and_what_it_cannot_do_changes_nothing(kind: Kind) {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    let config = write_config(dir.path(), &sb.login_url, &wh.toml);
    assert!(sync_with(&config, "").await.status.success());
    let live = wh.query_i64("SELECT count(*) FROM salesforce.account").await;
    let first = wh.query("SELECT id, name FROM salesforce.account ORDER BY id LIMIT 1").await.remove(0);
    let (first, name) = (first[0].clone().unwrap(), first[1].clone().unwrap());
    let count = "SELECT count(*) AS n FROM salesforce.account";
    let by_id = format!("SELECT id, name, NULL AS nothing FROM salesforce.account WHERE id = '{first}'");

    let out = query(&config, &[count]).await;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{table}{}", stderr(&out));
    let n = live.to_string();
    assert_eq!(table.lines().collect::<Vec<_>>(), ["n", &"-".repeat(n.len()), &n, "(1 row)"], "{table}");

    let out = query(&config, &["--csv", &by_id]).await;
    let mut csv = csv::Reader::from_reader(&out.stdout[..]);
    assert_eq!(csv.headers().unwrap(), vec!["id", "name", "nothing"], "{}", stderr(&out));
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(records, [csv::StringRecord::from(vec![first.as_str(), &name, ""])]);
    let out = query(&config, &["--json", &by_id]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!(v, json!({"columns": ["id", "name", "nothing"], "rows": [[first, name, null]]}));

    // SQL that fails, and SQL that would write: exit 2, the destination's reason, no change.
    let out = query(&config, &["SELEC 1"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the query failed") && stderr(&out).to_lowercase().contains("syntax"),
        "{}",
        stderr(&out)
    );
    for write in ["DELETE FROM salesforce.account", "DROP TABLE _sluice.flows", "CREATE TABLE salesforce.x (i INT)"] {
        let out = query(&config, &[write]).await;
        assert_eq!(out.status.code(), Some(2), "{write}: {}", stderr(&out));
        let err = stderr(&out).to_lowercase();
        assert!(err.contains("the query failed") && err.contains("read-only"), "{write}: {err}");
    }
    assert_eq!(wh.query_i64("SELECT count(*) FROM salesforce.account").await, live);
    assert_eq!(wh.query_i64("SELECT count(*) FROM _sluice.flows").await, 1);
    sb.shutdown().await;
}

target::suite!(
    query_shows_the_data_and_what_it_cannot_do_changes_nothing,
    a_destination_held_by_another_run_is_named_and_untouched,
    a_destination_sluice_may_not_write_is_a_clear_error,
    a_full_disk_fails_the_run_and_loses_nothing,
);
