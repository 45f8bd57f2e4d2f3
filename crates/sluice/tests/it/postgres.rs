//! The PostgreSQL destination against a real server (the one `./scripts/test` starts on
//! loopback, named by `SLUICE_TEST_POSTGRES_URL`): every type round-trips through binary
//! `COPY`, transactions are all-or-nothing, the lock names its holder, errors are clear.

use crate::pg;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    StringArray, Time32MillisecondArray, TimestampMillisecondArray,
};
use arrow::record_batch::RecordBatch;

use pg::fresh_database;
use sluice::Error;
use sluice::consolidate::{Dialect, TableRef};
use sluice::destination::postgres::{PgUrl, Postgres};
use sluice::destination::{Destination, Stage, Value};
use sluice::error::Kind;

fn batch() -> RecordBatch {
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from(vec![Some("001000000000001AAA"), None, Some("001000000000003AAA")]))),
        ("flag", Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)]))),
        ("n", Arc::new(Int32Array::from(vec![Some(-7), None, Some(i32::MAX)]))),
        ("big", Arc::new(Int64Array::from(vec![Some(1 << 40), None, Some(i64::MIN)]))),
        (
            "amount",
            Arc::new(
                Decimal128Array::from(vec![Some(123_456), None, Some(-999_999_999_999_999_999)])
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            ),
        ),
        ("ratio", Arc::new(Float64Array::from(vec![Some(0.25), None, Some(-1e300)]))),
        ("day", Arc::new(Date32Array::from(vec![Some(20_000), None, Some(-1)]))),
        (
            "ts",
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(1_700_000_000_123), None, Some(-1)]).with_timezone("UTC"),
            ),
        ),
        ("tod", Arc::new(Time32MillisecondArray::from(vec![Some(3_723_004), None, Some(0)]))),
        ("raw", Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None, Some(&b""[..])]))),
        ("note", Arc::new(StringArray::from(vec![Some("ünïcödé \"q\" 'a'\n\\"), None, Some("")]))),
    ];
    RecordBatch::try_from_iter(cols).unwrap()
}

const TABLE: &str = "CREATE TABLE s.t (id VARCHAR(18), flag BOOLEAN, n INTEGER, big BIGINT, amount DECIMAL(18,2), \
                     ratio DOUBLE PRECISION, day DATE, ts TIMESTAMPTZ, tod TIME, raw BYTEA, note TEXT)";

#[tokio::test]
async fn postgres_binary_copy_round_trips_every_type() {
    let url = fresh_database().await.pg();
    let db = Postgres::connect(&url).await.unwrap();
    db.execute(vec!["CREATE SCHEMA s".into(), TABLE.into()]).await.unwrap();
    let mut stage = db.stage(TableRef::new("s", "t")).await.unwrap();
    stage.write(batch()).await.unwrap();
    stage.write(batch()).await.unwrap();
    assert_eq!(stage.finish().await.unwrap(), 6);
    let d = Dialect::Postgres;
    let rows = db
        .query(format!(
            "SELECT id, flag::text, n, big, amount::text, ratio::text, day::text, {}, tod::text, encode(raw, 'hex'), \
             note FROM s.t ORDER BY id NULLS LAST, n",
            d.epoch_ms("ts")
        ))
        .await
        .unwrap();
    let t = |s: &str| Value::Text(s.into());
    assert_eq!(rows.len(), 6);
    assert_eq!(
        rows[0],
        vec![
            t("001000000000001AAA"),
            t("true"),
            t("-7"),
            t("1099511627776"),
            t("1234.56"),
            t("0.25"),
            t("2024-10-04"),
            t("1700000000123"),
            t("01:02:03.004"),
            t("00ff"),
            t("ünïcödé \"q\" 'a'\n\\"),
        ]
    );
    assert_eq!(rows[1], rows[0]);
    assert_eq!(
        rows[2],
        vec![
            t("001000000000003AAA"),
            t("false"),
            t("2147483647"),
            t("-9223372036854775808"),
            t("-9999999999999999.99"),
            t("-1e+300"),
            t("1969-12-31"),
            t("-1"),
            t("00:00:00"),
            t(""),
            t(""),
        ]
    );
    assert!(rows[5].iter().all(|v| *v == Value::Null), "{:?}", rows[5]);
    let cols = db.columns(TableRef::new("s", "t")).await.unwrap().unwrap();
    let types: Vec<String> = cols.iter().map(|c| c.ty.to_string()).collect();
    assert_eq!(
        types,
        [
            "varchar(18)",
            "boolean",
            "integer",
            "bigint",
            "decimal(18,2)",
            "double",
            "date",
            "timestamp with time zone",
            "time",
            "binary",
            "text"
        ]
    );
    assert_eq!(db.columns(TableRef::new("s", "missing")).await.unwrap(), None);
    // Staging tables go through `discard`, which tolerates a missing one.
    db.discard(TableRef::new("s", "t")).await.unwrap();
    db.discard(TableRef::new("s", "t")).await.unwrap();
    assert_eq!(db.columns(TableRef::new("s", "t")).await.unwrap(), None);
}

#[tokio::test]
async fn postgres_numeric_values_survive_every_scale() {
    let url = fresh_database().await.pg();
    let db = Postgres::connect(&url).await.unwrap();
    db.execute(vec![
        "CREATE SCHEMA s".into(),
        "CREATE TABLE s.n (a NUMERIC(38,0), b NUMERIC(18,5), c NUMERIC(9,4))".into(),
    ])
    .await
    .unwrap();
    let values: Vec<(i128, i128, i128)> = vec![
        (0, 0, 0),
        (1, 1, 1),
        (-1, -1, -1),
        (10_000, 100_000, 10_000),
        (99_999_999_999_999_999_999_999_999_999_999_999_999, 123_456_789_012_345, 12_340_000),
        (-10_000_000_000_000_000, -100_000, -5),
    ];
    let dec = |v: Vec<i128>, p: u8, s: i8| -> ArrayRef {
        Arc::new(Decimal128Array::from(v).with_precision_and_scale(p, s).unwrap())
    };
    let batch = RecordBatch::try_from_iter(vec![
        ("a", dec(values.iter().map(|v| v.0).collect(), 38, 0)),
        ("b", dec(values.iter().map(|v| v.1).collect(), 18, 5)),
        ("c", dec(values.iter().map(|v| v.2).collect(), 9, 4)),
    ])
    .unwrap();
    let mut stage = db.stage(TableRef::new("s", "n")).await.unwrap();
    stage.write(batch.clone()).await.unwrap();
    stage.finish().await.unwrap();
    let rows = db.query("SELECT a::text, b::text, c::text FROM s.n".into()).await.unwrap();
    let text = |v: i128, scale: u32| -> String {
        let arr = Decimal128Array::from(vec![v]).with_precision_and_scale(38, scale as i8).unwrap();
        arr.value_as_string(0)
    };
    let want: Vec<Vec<Value>> = values
        .iter()
        .map(|(a, b, c)| vec![Value::Text(text(*a, 0)), Value::Text(text(*b, 5)), Value::Text(text(*c, 4))])
        .collect();
    let mut got = rows;
    let mut want = want;
    got.sort_by_key(|r| format!("{r:?}"));
    want.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(got, want);
}

#[tokio::test]
async fn postgres_transaction_is_all_or_nothing() {
    let url = fresh_database().await.pg();
    let db = Postgres::connect(&url).await.unwrap();
    db.execute(vec!["CREATE TABLE t (x INTEGER)".into(), "INSERT INTO t VALUES (1)".into()]).await.unwrap();
    let err = db
        .transaction(vec![
            "INSERT INTO t VALUES (2)".into(),
            "ALTER TABLE t ADD COLUMN y INTEGER".into(),
            "INSERT INTO nope VALUES (3)".into(),
        ])
        .await
        .unwrap_err();
    assert!(err.message.contains("nope"), "{}", err.message);
    let rows = db
        .query(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 't') FROM t".into(),
        )
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Value::Text("1".into()), Value::Text("1".into())]], "all rolled back");
}

/// A flow's run lock: a second session claiming it is told who holds it; another flow of
/// the same schema, or a flow of another schema, is free; claiming again is idempotent;
/// `release` and the end of the session give the locks back.
#[tokio::test]
async fn postgres_a_flow_held_by_one_session_is_refused_to_another_told_who_holds_it() {
    let url = fresh_database().await.pg();
    let account = || vec![TableRef::new("salesforce", "account")];
    let held = Postgres::connect(&url).await.unwrap();
    assert_eq!(held.claim(account()).await.unwrap(), vec![None]);
    assert_eq!(held.claim(account()).await.unwrap(), vec![None], "a second claim by the holder");
    let other = Postgres::connect(&url).await.unwrap();
    let answers = other
        .claim(vec![
            TableRef::new("salesforce", "contact"),
            TableRef::new("salesforce", "account"),
            TableRef::new("other", "account"),
        ])
        .await
        .unwrap();
    assert_eq!((&answers[0], &answers[2]), (&None, &None), "{answers:?}");
    let said = answers[1].clone().expect("account is held");
    assert!(said.contains("table account of schema salesforce"), "{said}");
    assert!(said.contains("in use by another sluice run"), "{said}");
    assert!(said.contains("(sluice, from "), "the holder is named: {said}");
    held.release().await.unwrap();
    assert_eq!(other.claim(account()).await.unwrap(), vec![None], "released");
    // The locks go with the session.
    drop(other);
    let mut again = false;
    for _ in 0..50 {
        if held.claim(account()).await.unwrap() == vec![None] {
            again = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again, "the lock was released with its session");
}

#[tokio::test]
async fn postgres_connection_errors_are_clear_and_keep_the_password() {
    let test = fresh_database().await;
    let (port, db) = (test.port, &test.name);
    let wrong =
        PgUrl::parse(&format!("postgres://nobody_here:not-the-password-xyz@127.0.0.1:{port}/{db}?sslmode=disable"))
            .unwrap();
    let err: Error = Postgres::connect(&wrong).await.unwrap_err();
    assert_eq!(err.kind, Kind::User, "{err}");
    let shown = format!("destination.url: postgres://127.0.0.1:{port}/{db} (user nobody_here)");
    assert!(err.message.starts_with(&shown), "{}", err.message);
    assert!(!err.message.contains("not-the-password-xyz"), "{}", err.message);

    let closed = PgUrl::parse("postgres://u:secret-pw@127.0.0.1:1/db?sslmode=disable").unwrap();
    let err = Postgres::connect(&closed).await.unwrap_err();
    assert!(err.message.contains("cannot connect to postgres://127.0.0.1:1/db (user u)"), "{}", err.message);
    assert!(!err.message.contains("secret-pw"), "{}", err.message);
}

#[tokio::test]
async fn postgres_tls_verifies_the_server_against_sslrootcert() {
    let ca = std::env::var("SLUICE_TEST_POSTGRES_CA")
        .expect("SLUICE_TEST_POSTGRES_CA is not set: run ./scripts/test, which starts PostgreSQL with TLS");
    let test = fresh_database().await;
    let base = test.url.split_once('?').map_or(test.url.as_str(), |(b, _)| b);
    for mode in ["verify-full", "require", "prefer"] {
        let url = PgUrl::parse(&format!("{base}?sslmode={mode}&sslrootcert={ca}")).unwrap();
        let db = Postgres::connect(&url).await.unwrap();
        let ssl = db.query("SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()".into()).await.unwrap();
        assert_eq!(ssl, vec![vec![Value::Text("true".into())]], "{mode}: the session is encrypted");
    }
    // Without the certificate, the system's roots do not know this server: refused, clearly.
    let url = PgUrl::parse(&format!("{base}?sslmode=require")).unwrap();
    let err = Postgres::connect(&url).await.expect_err("an unverifiable server is refused");
    assert!(err.message.starts_with("destination.url: cannot connect to"), "{}", err.message);
    assert!(err.message.to_lowercase().contains("certificate"), "{}", err.message);
    assert!(err.message.contains("sslrootcert=<PEM file>") && err.kind == Kind::User, "{err}");
    // A certificate file that is not one.
    let url = PgUrl::parse(&format!("{base}?sslmode=require&sslrootcert=/etc/hostname")).unwrap();
    let err = Postgres::connect(&url).await.expect_err("a bad sslrootcert is an error");
    assert!(err.message.contains("sslrootcert /etc/hostname"), "{}", err.message);
}

/// Sessions are bounded: a statement past `statement_timeout` is cancelled with a message
/// naming the setting, while transactions (consolidations, whose time scales with the data)
/// and loads are exempt; a lock held by someone else is waited for `lock_timeout`, then the
/// statement fails saying so, instead of hanging.
#[tokio::test]
async fn postgres_sessions_bound_statements_and_lock_waits() {
    use sluice::destination::postgres::PgTimeouts;
    use sluice::destination::postgres::SessionSettings;
    use std::time::{Duration, Instant};
    let test_db = fresh_database().await;
    let url = test_db.pg();
    let timeouts = PgTimeouts { statement: Duration::from_secs(1), lock: Duration::from_millis(500) };
    let db = Postgres::connect_with(&url, SessionSettings { timeouts, ..Default::default() }).await.unwrap();
    let err = db.query("SELECT pg_sleep(3)".into()).await.expect_err("cancelled");
    assert!(err.message.contains("statement_timeout"), "{}", err.message);
    db.transaction(vec!["SELECT pg_sleep(1.5)".into()]).await.expect("a transaction is exempt");
    db.query("SELECT 1".into()).await.expect("the session is usable after");
    let err = db.query("SELECT pg_sleep(3)".into()).await.expect_err("bounded again after the transaction");
    assert!(err.message.contains("statement_timeout"), "{}", err.message);

    db.execute(vec!["CREATE TABLE s_t (x int)".into()]).await.unwrap();
    // Someone else's open transaction holds the table.
    let (holder, conn) = tokio_postgres::connect(&test_db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    holder.batch_execute("BEGIN; LOCK TABLE s_t IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let started = Instant::now();
    let err = db.execute(vec!["DROP TABLE s_t".into()]).await.expect_err("the lock is not granted");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.message.contains("lock_timeout") && err.message.contains("another session"), "{}", err.message);
    holder.batch_execute("ROLLBACK").await.unwrap();
    db.execute(vec!["DROP TABLE s_t".into()]).await.unwrap();

    // The server notices a dead client within the lease time-out (a flow's lock goes with
    // its session): keepalives, the user time-out and the connection check follow it.
    let lease_timeout = Duration::from_secs(40);
    let db = Postgres::connect_with(&url, SessionSettings { lease_timeout, ..Default::default() }).await.unwrap();
    let settings = db
        .query(
            "SELECT current_setting('tcp_keepalives_idle') || ' ' || current_setting('tcp_keepalives_interval') || ' ' \
             || current_setting('tcp_user_timeout') || ' ' || current_setting('client_connection_check_interval')"
                .into(),
        )
        .await
        .unwrap();
    assert_eq!(settings[0][0].as_str(), Some("10 5 20000 10s"), "{settings:?}");
}
