//! The PostgreSQL destination: replicated tables, their staging schema and the `_sluice`
//! control tables in one database (DESIGN "Destinations").
//!
//! One session runs the DDL and the consolidation transactions, and holds a PostgreSQL
//! advisory lock on each flow the run claimed ([`Destination::claim`]) for the value's
//! whole life: two runs never write one flow at once (the second is told who holds it),
//! while runs of different flows of one schema, from several processes or machines, go
//! side by side. Should a holder die, the server drops its session, and its locks, within
//! `serve.lease_timeout` ([`SessionSettings::statements`]). Each load opens a
//! session of its own and streams binary `COPY` (see [`copy`]) from a task of its own, so
//! extraction, loading and another flow's consolidation overlap.
//!
//! The connection comes from `destination.url` (`postgres://user:password@host:port/db`).
//! TLS follows libpq's `sslmode`, except that sluice always verifies the server's
//! certificate when it uses TLS: against `sslrootcert` when given, else the system's
//! roots. `sslmode=disable` turns TLS off; `prefer` (the default) uses it when the server
//! offers it; `require`, `verify-ca` and `verify-full` insist on it.

pub mod config;
pub mod copy;
pub(crate) mod open;

use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use bytes::BytesMut;
use futures_util::SinkExt;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, SimpleQueryMessage};

pub use self::config::{PgTimeouts, PgUrl, PostgresConfig, PostgresKind};
use super::{Destination, QueryResult, Stage, Value};
use crate::config::DEFAULT_LEASE_TIMEOUT;
use crate::consolidate::{Dialect, ExistingColumn, LOCK_CLASS, TableRef, flow_lock_key};
use crate::model::SluiceType;
use crate::{Error, Result};

/// TLS for the sessions, or none.
#[derive(Clone)]
enum Tls {
    Off,
    On(tokio_postgres_rustls::MakeRustlsConnect),
}

fn tls_of(url: &PgUrl) -> Result<Tls> {
    if url.config.get_ssl_mode() == SslMode::Disable {
        return Ok(Tls::Off);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
    let config = match &url.root_cert {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let bad = |e: &dyn std::fmt::Display| {
                Error::user(format!(
                    "destination.url: sslrootcert {} is not a readable PEM certificate file ({e})",
                    path.display()
                ))
            };
            for cert in rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"it holds no certificate"));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
                .with_no_client_auth()
        }
    };
    Ok(Tls::On(tokio_postgres_rustls::MakeRustlsConnect::new(config)))
}

/// A connected PostgreSQL destination (see the module docs).
#[derive(Clone)]
pub struct Postgres {
    inner: Arc<Inner>,
}

struct Inner {
    url: PgUrl,
    tls: Tls,
    session: SessionSettings,
    /// The locking session: DDL and consolidation.
    client: tokio::sync::Mutex<Client>,
    /// The advisory-lock keys (SQL expressions) of the flows this session claimed.
    claimed: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("url", &self.inner.url.shown()).finish()
    }
}

/// How sluice's sessions are bounded (the module docs of [`SessionSettings::statements`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// `destination.statement_timeout` and `destination.lock_timeout`.
    pub timeouts: PgTimeouts,
    /// Redshift knows `statement_timeout` only.
    pub redshift: bool,
    /// `serve.lease_timeout`: how soon the server must notice that a session's client died.
    pub lease_timeout: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { timeouts: PgTimeouts::default(), redshift: false, lease_timeout: DEFAULT_LEASE_TIMEOUT }
    }
}

/// A transaction left open by a stuck client is ended by the server after this long (a
/// sluice session never idles inside a transaction).
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(600);

/// How long a connection attempt may take when the URL does not say (`connect_timeout=`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keepalives: a silent peer is probed after this long idle, so a dead server or a
/// dropped route ends the session within about a minute and a half instead of hanging.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

impl SessionSettings {
    /// The `SET`s a session gets once opened: every statement is bounded by
    /// `statement_timeout` (`unbounded`: none, for the sessions that load and for
    /// consolidation transactions, which scale with the data), every lock wait by
    /// `lock_timeout`, a transaction left idle by [`IDLE_IN_TRANSACTION`]. Redshift has only
    /// the first.
    ///
    /// And the server is told to notice a dead client within `lease_timeout`, so that the
    /// flow locks of a process killed or lost go with it that soon: TCP keepalives from the
    /// server's side (a machine gone silent while idle), `tcp_user_timeout` (gone silent
    /// while the server sends), and `client_connection_check_interval` (a client killed
    /// while its statement runs: the server would otherwise notice only when it ends).
    pub fn statements(&self, unbounded: bool) -> Vec<String> {
        let ms = |d: Duration| d.as_millis().min(i32::MAX as u128);
        let statement = if unbounded { 0 } else { ms(self.timeouts.statement) };
        let mut out = vec![format!("SET statement_timeout = {statement}")];
        if !self.redshift {
            out.push(format!("SET lock_timeout = {}", ms(self.timeouts.lock)));
            out.push(format!("SET idle_in_transaction_session_timeout = {}", ms(IDLE_IN_TRANSACTION)));
            // Probes after a quarter of the lease, then 3 more an eighth apart: dead
            // within five eighths of it.
            let lease = self.lease_timeout.as_secs().max(8);
            out.push(format!("SET tcp_keepalives_idle = {}", lease / 4));
            out.push(format!("SET tcp_keepalives_interval = {}", lease / 8));
            out.push("SET tcp_keepalives_count = 3".into());
            // Each where the server has it (`tcp_user_timeout` from 12 on, on systems with
            // TCP_USER_TIMEOUT; the check interval from 14 on, where the system can tell a
            // closed socket), left unset elsewhere rather than failing the connection.
            let where_supported = |name: &str, value: u128| {
                format!("BEGIN PERFORM set_config('{name}', '{value}', false); EXCEPTION WHEN OTHERS THEN NULL; END;")
            };
            out.push(format!(
                "DO $$ BEGIN {} {} END $$",
                where_supported("tcp_user_timeout", ms(self.lease_timeout / 2)),
                where_supported("client_connection_check_interval", ms(self.lease_timeout / 4)),
            ));
        }
        out
    }
}

impl Postgres {
    /// Connects (one session; loads open more). Nothing is locked until a run claims its
    /// flows ([`Destination::claim`]).
    pub async fn connect(url: &PgUrl) -> Result<Self> {
        Self::connect_with(url, SessionSettings::default()).await
    }

    /// [`Postgres::connect`] with sessions bounded by `session`.
    pub async fn connect_with(url: &PgUrl, session: SessionSettings) -> Result<Self> {
        let tls = tls_of(url)?;
        let client = open(url, &tls, &session, false).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                url: url.clone(),
                tls,
                session,
                client: tokio::sync::Mutex::new(client),
                claimed: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// Who holds the advisory lock `key` of `what`, for the message that refuses a run.
    async fn held_by(&self, key: &str, what: &str) -> String {
        let holder = format!(
            "SELECT a.pid::text, COALESCE(a.application_name, ''), COALESCE(a.client_addr::text, 'local'), \
             a.backend_start::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = \
             'advisory' AND l.classid = {LOCK_CLASS}::oid AND l.objid = {key}::oid AND l.objsubid = 2 AND l.granted"
        );
        let who = self.query(holder).await.ok().and_then(|rows| rows.into_iter().next()).map(|r| {
            let t = |i: usize| r.get(i).and_then(Value::as_str).unwrap_or("?").to_owned();
            format!("pid {} ({}, from {}, since {})", t(0), t(1), t(2), t(3))
        });
        format!(
            "destination: {what} in {} is in use by another sluice run ({}); one run at a time writes a flow, so \
             wait for it to finish or stop it",
            self.inner.url.shown(),
            who.unwrap_or_else(|| "holder unknown".into())
        )
    }
}

/// Opens one session, its connection driven by a task of its own, bounded by `session`
/// (without a statement time-out when `unbounded`: a session that loads).
async fn open(url: &PgUrl, tls: &Tls, session: &SessionSettings, unbounded: bool) -> Result<Client> {
    let shown = url.shown();
    let fail = |e: tokio_postgres::Error| connect_error(&shown, &e);
    let mut config = url.config.clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE).keepalives_interval(Duration::from_secs(10));
    config.keepalives_retries(3);
    let client = match tls {
        Tls::Off => {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await.map_err(fail)?;
            drive(conn);
            client
        }
        Tls::On(tls) => {
            let (client, conn) = config.connect(tls.clone()).await.map_err(fail)?;
            drive(conn);
            client
        }
    };
    client.batch_execute(&session.statements(unbounded).join("; ")).await.map_err(|e| connect_error(&shown, &e))?;
    Ok(client)
}

/// Drives a session's connection on a task of its own until the server or the client ends it.
fn drive(conn: impl std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "PostgreSQL session ended");
        }
    });
}

/// A failed connection: what the user must fix, without the password.
fn connect_error(shown: &str, e: &tokio_postgres::Error) -> Error {
    let text = match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    };
    let code = e.code().map(|c| c.code().to_owned()).unwrap_or_default();
    // 28xxx: authentication; 3D000: no such database.
    if code.starts_with("28") || code == "3D000" {
        Error::user(format!("destination.url: {shown}: {text}; check the user, password and database"))
    } else if text.contains("certificate") {
        Error::user(format!(
            "destination.url: cannot connect to {shown}: {text}; sluice verifies the server's certificate whenever it \
             uses TLS: name the CA that signed it with sslrootcert=<PEM file> (or turn TLS off with sslmode=disable)"
        ))
    } else {
        Error::external(format!("destination.url: cannot connect to {shown}: {text}"))
    }
}

/// A failed statement: the server's message and detail, classified, plus the statement's
/// first line so the user can find it in the SQL sluice generated.
fn sql_error(e: &tokio_postgres::Error, sql: &str) -> Error {
    let first = sql.lines().next().unwrap_or_default();
    let Some(db) = e.as_db_error() else {
        // No server answer: the session broke.
        return Error::external(format!("PostgreSQL: {e} (in `{first}`)"));
    };
    let mut text = format!("PostgreSQL: {}", db.message());
    if let Some(detail) = db.detail() {
        text.push_str(&format!(" ({detail})"));
    }
    let text = format!("{text} (in `{first}`)");
    match db.code().code() {
        // Disk full, out of memory, too many connections, quota: the server's limits.
        c if c.starts_with("53") => Error::external_fatal(text),
        // A lock waited for longer than lock_timeout: someone else holds the table.
        "55P03" => Error::external(format!(
            "{text}; another session holds a lock on a table sluice must change (a long query or an open \
             transaction on it): sluice waited destination.lock_timeout for it. pg_locks and pg_stat_activity \
             show who holds it"
        )),
        // Canceled: statement_timeout (or an administrator).
        "57014" => Error::external(format!(
            "{text}; the statement ran longer than destination.statement_timeout allows (loads and consolidations \
             are exempt): raise it if the server is merely slow"
        )),
        // Serialization failure, deadlock.
        "40001" | "40P01" => Error::external(text),
        // Insufficient privilege, read-only transaction.
        "42501" | "25006" => Error::user(format!("destination: {text}; grant sluice's user the right to do this")),
        // Unique violation in the catalog: another session (a run of another flow of the
        // schema) created the same schema at the same moment; trying again finds it.
        "23505" if first.contains(" IF NOT EXISTS ") => {
            Error::external(format!("{text}; another session created it at the same moment"))
        }
        // Unique violation: a direct first load's key found an Id staged twice.
        "23505" => Error::internal(text).with_source(crate::error::DuplicateKey),
        _ => Error::internal(text),
    }
}

/// PostgreSQL's catalog description of a column → the [`SluiceType`] sluice created it from.
pub fn parse_type(
    data_type: &str,
    length: Option<i64>,
    precision: Option<i64>,
    scale: Option<i64>,
) -> Option<SluiceType> {
    Some(match data_type {
        "character varying" if length == Some(18) => SluiceType::Id,
        "character varying" | "text" => SluiceType::Text,
        "boolean" => SluiceType::Boolean,
        "integer" => SluiceType::Int,
        "bigint" => SluiceType::Long,
        "double precision" => SluiceType::Double,
        "numeric" => SluiceType::Decimal {
            precision: u8::try_from(precision?).ok()?,
            scale: u8::try_from(scale.unwrap_or(0)).ok()?,
        },
        "date" => SluiceType::Date,
        "timestamp with time zone" => SluiceType::Timestamp,
        "time without time zone" => SluiceType::Time,
        // Redshift's VARBYTE is `binary varying`.
        "bytea" | "binary varying" => SluiceType::Binary,
        _ => return None,
    })
}

impl Postgres {
    /// Rows of a simple-protocol query: every value arrives as text.
    async fn simple(client: &Client, sql: &str) -> Result<Vec<Vec<Value>>> {
        let messages = client.simple_query(sql).await.map_err(|e| sql_error(&e, sql))?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map_or(Value::Null, |v| Value::Text(v.to_owned())))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .collect())
    }
}

/// The last result set among a simple query's messages, with its column names.
fn result_of(messages: Vec<SimpleQueryMessage>) -> QueryResult {
    let mut result = QueryResult::default();
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(columns) => {
                result =
                    QueryResult { columns: columns.iter().map(|c| c.name().to_owned()).collect(), rows: Vec::new() };
            }
            SimpleQueryMessage::Row(row) => {
                result.rows.push((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect());
            }
            _ => {}
        }
    }
    result
}

impl Destination for Postgres {
    type Stage = PgStage;

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn location(&self) -> String {
        self.inner.url.shown()
    }

    async fn execute(&self, statements: Vec<String>) -> Result<()> {
        let client = self.inner.client.lock().await;
        for sql in &statements {
            client.batch_execute(sql).await.map_err(|e| sql_error(&e, sql))?;
        }
        Ok(())
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<()> {
        let mut client = self.inner.client.lock().await;
        // Transactions move data (consolidation, reconciliation): their time scales with it,
        // so the statement time-out is lifted for them and set back after.
        let session = self.inner.session;
        let unbounded = session.statements(true).remove(0);
        client.batch_execute(&unbounded).await.map_err(|e| sql_error(&e, &unbounded))?;
        let result = async {
            let tx = client.transaction().await.map_err(|e| sql_error(&e, "BEGIN"))?;
            for sql in &statements {
                crate::failpoint::hit("consolidate-statement");
                tx.batch_execute(sql).await.map_err(|e| sql_error(&e, sql))?;
            }
            crate::failpoint::hit("before-commit");
            // Dropping `tx` on an error above rolls everything back.
            tx.commit().await.map_err(|e| sql_error(&e, "COMMIT"))
        }
        .await;
        let bounded = session.statements(false).remove(0);
        if let Err(e) = client.batch_execute(&bounded).await
            && result.is_ok()
        {
            return Err(sql_error(&e, &bounded));
        }
        result
    }

    async fn query(&self, sql: String) -> Result<Vec<Vec<Value>>> {
        let client = self.inner.client.lock().await;
        Self::simple(&client, &sql).await
    }

    async fn read_only(&self, sql: String) -> Result<QueryResult> {
        let client = self.inner.client.lock().await;
        client.batch_execute("BEGIN READ ONLY").await.map_err(|e| sql_error(&e, "BEGIN READ ONLY"))?;
        let result = client.simple_query(&sql).await;
        // Nothing can have been written; the rollback only ends the transaction (an error
        // above already aborted it).
        let ended = client.batch_execute("ROLLBACK").await;
        let messages = result.map_err(|e| match e.as_db_error() {
            Some(_) => Error::user(format!("the query failed: {}", sql_error(&e, &sql).message)),
            None => sql_error(&e, &sql),
        })?;
        ended.map_err(|e| sql_error(&e, "ROLLBACK"))?;
        Ok(result_of(messages))
    }

    async fn columns(&self, table: TableRef) -> Result<Option<Vec<ExistingColumn>>> {
        let d = Dialect::Postgres;
        let sql = format!(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale FROM \
             information_schema.columns WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
            d.quote_literal(&table.schema),
            d.quote_literal(&table.name)
        );
        let rows = self.query(sql).await?;
        let mut cols = Vec::new();
        for row in rows {
            let text = |i: usize| row.get(i).and_then(Value::as_str).unwrap_or_default().to_owned();
            let int = |i: usize| row.get(i).and_then(Value::as_i64);
            let (name, ty) = (text(0), text(1));
            let Some(parsed) = parse_type(&ty, int(2), int(3), int(4)) else {
                return Err(Error::user(format!(
                    "{}.{}.{name}: has type {ty}, which sluice did not create and cannot merge into; restore the \
                     column's type or drop the table and run with --full-refresh",
                    table.schema, table.name
                )));
            };
            cols.push(ExistingColumn { name, ty: parsed });
        }
        Ok(if cols.is_empty() { None } else { Some(cols) })
    }

    async fn stage(&self, table: TableRef) -> Result<PgStage> {
        let client = open(&self.inner.url, &self.inner.tls, &self.inner.session, true).await?;
        PgStage::start(client, table).await
    }

    async fn discard(&self, table: TableRef) -> Result<()> {
        self.execute(vec![Dialect::Postgres.drop_table(&table)]).await
    }

    async fn claim(&self, targets: Vec<TableRef>) -> Result<Vec<Option<String>>> {
        let mut out = Vec::with_capacity(targets.len());
        for target in &targets {
            let key = flow_lock_key(target);
            if self.inner.claimed.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
                out.push(None);
                continue;
            }
            let got = self.query(format!("SELECT pg_try_advisory_lock({LOCK_CLASS}, {key})")).await?;
            if super::first_value(&got).and_then(Value::as_str) == Some("t") {
                self.inner.claimed.lock().unwrap_or_else(|p| p.into_inner()).push(key);
                out.push(None);
            } else {
                let what = format!("table {} of schema {}", target.name, target.schema);
                out.push(Some(self.held_by(&key, &what).await));
            }
        }
        Ok(out)
    }

    async fn release(&self) -> Result<()> {
        // The flows' locks, the run's own (see `consolidate::run_alive`): every session
        // lock this session holds.
        self.inner.claimed.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.execute(vec!["SELECT pg_advisory_unlock_all()".into()]).await
    }
}

/// Bytes handed to the server per `COPY` message: large enough that framing costs
/// nothing, small enough to bound memory.
const CHUNK: usize = 1 << 20;

/// A binary `COPY` into one staging table, streamed by a task of its own.
pub struct PgStage {
    tx: Option<tokio::sync::mpsc::Sender<RecordBatch>>,
    task: Option<tokio::task::JoinHandle<Result<u64>>>,
}

impl PgStage {
    /// Batches in flight between the extraction and the loader.
    const QUEUE: usize = 2;

    async fn start(client: Client, table: TableRef) -> Result<Self> {
        let d = Dialect::Postgres;
        let sql = format!("COPY {} FROM STDIN (FORMAT binary)", d.table(&table));
        let sink = client.copy_in::<_, bytes::Bytes>(&sql).await.map_err(|e| sql_error(&e, &sql))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(Self::QUEUE);
        let task = tokio::spawn(async move {
            // The session lives as long as the load.
            let _client = client;
            let mut sink = Box::pin(sink);
            let mut buf = BytesMut::with_capacity(CHUNK);
            copy::header(&mut buf);
            let mut rows = 0u64;
            while let Some(batch) = rx.recv().await {
                rows += batch.num_rows() as u64;
                // Encoding is CPU work: off the async threads, batch by batch.
                let (encoded, back) = tokio::task::spawn_blocking(move || {
                    let r = copy::rows(&batch, &mut buf);
                    (r, buf)
                })
                .await
                .map_err(|e| Error::internal(format!("COPY encoder failed: {e}")))?;
                buf = back;
                encoded?;
                while buf.len() >= CHUNK {
                    let chunk = buf.split_to(CHUNK).freeze();
                    sink.send(chunk).await.map_err(|e| sql_error(&e, &sql))?;
                }
            }
            copy::trailer(&mut buf);
            sink.send(buf.freeze()).await.map_err(|e| sql_error(&e, &sql))?;
            let copied = sink.as_mut().finish().await.map_err(|e| sql_error(&e, &sql))?;
            if copied != rows {
                return Err(Error::internal(format!("COPY took {copied} rows of {rows}")));
            }
            Ok(rows)
        });
        Ok(Self { tx: Some(tx), task: Some(task) })
    }

    async fn join(&mut self) -> Result<u64> {
        self.tx = None;
        let Some(task) = self.task.take() else { return Ok(0) };
        task.await.map_err(|e| Error::internal(format!("the PostgreSQL loader failed: {e}")))?
    }
}

impl Stage for PgStage {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let Some(tx) = &self.tx else { return Err(Error::internal("write after the load ended")) };
        if tx.send(batch).await.is_err() {
            // The task stopped: it has the reason.
            self.join().await?;
            return Err(Error::internal("the PostgreSQL loader stopped without an error"));
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64> {
        self.join().await
    }
}

impl Drop for PgStage {
    /// An unfinished load must not commit what it has: aborting the task drops the COPY
    /// unfinished, so the server discards it (and the next load drops the table anyway).
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
