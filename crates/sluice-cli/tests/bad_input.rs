//! Bad input and a hostile machine, for the DuckDB destination: a file locked by another
//! process, a read-only path, a missing directory, and a full disk. Each gets a clear
//! error, and nothing is half-written: the committed window end and the rows stay as they
//! were, and a later run with the problem gone completes.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use sandbox::Running;
use sandbox::server::DEFAULT_PASSWORD;
use serde_json::json;
use sluice::destination::Destination;
use sluice::destination::duckdb::DuckDb;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

async fn start() -> Running {
    common::start(3, &[("Account", 500)]).await
}

fn write_config(dir: &Path, login_url: &str, db: &Path) -> PathBuf {
    let text = format!(
        r#"{}
[destination]
type = "duckdb"
path = "{}"

[defaults]
reconcile_every = "never"

[[flows]]
object = "Account"
"#,
        common::source_toml(login_url, DEFAULT_PASSWORD),
        db.display()
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
async fn committed(db: &Path) -> Option<(i64, i64)> {
    let dest = DuckDb::open_read_only(db).ok()?;
    dest.columns(sluice::consolidate::TableRef::new("salesforce", "account")).await.unwrap()?;
    let rows = dest
        .query(
            "SELECT epoch_ms(CAST(window_end AS TIMESTAMP)), (SELECT COUNT(*) FROM salesforce.account) FROM \
             _sluice.flows WHERE flow = 'Account'"
                .into(),
        )
        .await
        .unwrap();
    rows.first().map(|r| (r[0].as_i64().unwrap(), r[1].as_i64().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_locked_by_another_process_is_named_and_untouched() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.duckdb");
    let config = write_config(dir.path(), &sb.login_url, &db);
    let holder = DuckDb::open(&db).unwrap(); // this test process holds the write lock
    let out = sync_with(&config, "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("destination.path") && err.contains("in use by another process"), "{err}");
    assert!(err.contains(&db.display().to_string()), "the file is named: {err}");
    let tables = holder.query("SELECT COUNT(*) FROM information_schema.tables".into()).await.unwrap();
    assert_eq!(tables[0][0].as_i64(), Some(0), "nothing was created");
    drop(holder);
    assert!(sync_with(&config, "").await.status.success(), "runs once the lock is free");
    assert_eq!(committed(&db).await.map(|c| c.1), Some(500));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_path_and_a_missing_directory_are_clear_errors() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    // sysfs is read-only even for root, which ignores file permissions.
    for (db, expect) in [
        (PathBuf::from("/sys/sluice-test.duckdb"), "cannot write"),
        (dir.path().join("no/such/dir/w.duckdb"), "does not exist"),
    ] {
        let config = write_config(dir.path(), &sb.login_url, &db);
        let out = sync_with(&config, "").await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("destination.path") && err.contains(expect), "{err}");
        assert!(!db.exists());
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_run_and_loses_nothing() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.duckdb");
    let config = write_config(dir.path(), &sb.login_url, &db);
    assert!(sync_with(&config, "").await.status.success());
    let before = committed(&db).await.expect("first run committed");

    // Many new rows, then a run that may write no file beyond 256 KiB: the disk is "full".
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
    // SIGXFSZ ignored, so writes past the limit fail with EFBIG as on a full disk.
    let out = sync_with(&config, "trap '' XFSZ; ulimit -f 256;").await;
    let err = stderr(&out);
    assert!(!out.status.success(), "the run must fail: {err}");
    assert!(!err.contains("panicked"), "a clear error, not a panic: {err}");
    assert_eq!(committed(&db).await, Some(before), "window end and rows unchanged: {err}");

    let out = sync_with(&config, "").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let after = committed(&db).await.unwrap();
    assert_eq!(after.1, before.1 + 5000);
    assert!(after.0 > before.0);
    sb.shutdown().await;
}
