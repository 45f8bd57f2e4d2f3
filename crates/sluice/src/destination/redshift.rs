//! The Redshift destination: PostgreSQL's protocol for SQL, S3 for loading (DESIGN
//! "Destinations", "Dependencies").
//!
//! Redshift has no `COPY FROM STDIN`, so a load writes the batches as Parquet parts to
//! `s3_staging` ([`S3Stager`]) and then runs `COPY <staging> FROM 's3://…/' IAM_ROLE '…'
//! FORMAT AS PARQUET`, which Redshift's slices read in parallel. Everything else goes
//! through a [`Postgres`] session, which speaks only the simple query protocol, as
//! Redshift requires, and runs the consolidation in Redshift's dialect (DELETE USING plus
//! INSERT) in one transaction.
//!
//! Redshift has no advisory locks, so the run's lock is a lease: a row per schema in
//! `_sluice.locks`, taken under `LOCK` in a transaction, refreshed every minute while the
//! run lives and deleted when it ends. A crashed run's lease expires after
//! `serve.lease_timeout` (at most [`LEASE`]); until then the next run is told who holds it
//! and since when.

pub mod config;
mod open;

use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub use self::config::{RedshiftConfig, RedshiftKind, S3Staging};
use super::postgres::{PgUrl, Postgres, SessionSettings};
use super::{Destination, QueryResult, Stage, Value};
use crate::consolidate::{Dialect, ExistingColumn, LEASE, TableRef, locks_table};
use crate::destination::postgres::config::PgTimeouts;
use crate::{Error, Result};

/// Rows per Parquet part: Redshift loads the parts of a prefix in parallel, one per
/// slice, and each part is held in memory until it is uploaded.
const ROWS_PER_PART: u64 = 200_000;

/// How often a live run refreshes a lease that lapses after `lifetime` (on a session of its
/// own, whatever the run's main session is busy with): four times in its life.
pub fn heartbeat(lifetime: Duration) -> Duration {
    lifetime / 4
}

/// The object store holding `staging`'s `bucket`.
fn store(staging: &S3Staging, bucket: &str) -> Result<AmazonS3> {
    super::s3::client(bucket, staging.region.as_deref(), staging.endpoint.as_deref(), "destination.s3_staging")
}

/// Parquet parts of one load, uploaded to `s3://bucket/<key prefix>/part-NNNNN.parquet`
/// as each fills up.
pub struct S3Stager {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    writer: Option<super::parquet::Writer<Vec<u8>>>,
    /// Rows after which a part is uploaded.
    max_part_rows: u64,
    part_rows: u64,
    parts: u32,
    rows: u64,
}

impl S3Stager {
    /// A load under `prefix` (a key prefix unique to this load) in `bucket`.
    pub fn new(store: Arc<dyn ObjectStore>, bucket: &str, prefix: String) -> Self {
        Self {
            store,
            bucket: bucket.to_owned(),
            prefix,
            writer: None,
            max_part_rows: ROWS_PER_PART,
            part_rows: 0,
            parts: 0,
            rows: 0,
        }
    }

    /// Parts of at most about `rows` rows (a part closes at the batch that fills it).
    pub fn set_part_rows(&mut self, rows: u64) {
        self.max_part_rows = rows.max(1);
    }

    /// `s3://bucket/prefix/`: what `COPY` reads.
    pub fn url(&self) -> String {
        format!("s3://{}/{}/", self.bucket, self.prefix)
    }

    /// Appends a batch, uploading the part once it is full.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let url = self.url();
        let writer = match &mut self.writer {
            Some(writer) => writer,
            slot => slot.insert(super::parquet::writer(
                Vec::new(),
                batch.schema(),
                super::parquet::RowGroups::STAGING,
                &url,
            )?),
        };
        writer.write(&batch).map_err(|e| Error::internal(format!("Parquet part for {url}: {e}")))?;
        self.part_rows += batch.num_rows() as u64;
        self.rows += batch.num_rows() as u64;
        if self.part_rows >= self.max_part_rows {
            self.upload().await?;
        }
        Ok(())
    }

    async fn upload(&mut self) -> Result<()> {
        let Some(writer) = self.writer.take() else { return Ok(()) };
        let bytes =
            writer.into_inner().map_err(|e| Error::internal(format!("Parquet part for {}: {e}", self.url())))?;
        let path = ObjectPath::from(format!("{}/part-{:05}.parquet", self.prefix, self.parts));
        self.store.put(&path, PutPayload::from(Bytes::from(bytes))).await.map_err(|e| {
            Error::external(format!("destination.s3_staging: uploading s3://{}/{path}: {e}", self.bucket))
        })?;
        self.parts += 1;
        self.part_rows = 0;
        Ok(())
    }

    /// Uploads the last part; returns (rows, parts).
    pub async fn finish(mut self) -> Result<(u64, u32)> {
        self.upload().await?;
        Ok((self.rows, self.parts))
    }
}

/// Deletes every object under `prefix`.
async fn delete_prefix(store: &Arc<dyn ObjectStore>, prefix: &str) -> Result<()> {
    super::s3::delete_prefix(store, prefix, "destination.s3_staging").await
}

/// A connected Redshift destination holding its schema's lease (see the module docs).
#[derive(Clone)]
pub struct Redshift {
    sql: Postgres,
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    /// For the COPY's role and region.
    staging: S3Staging,
    lease: Arc<Lease>,
}

impl Redshift {
    /// Connects, checks the staging bucket's settings and takes the lease of `schema`, which
    /// lapses `lease_timeout` after its last refresh.
    pub async fn connect(
        url: &PgUrl,
        schema: &str,
        staging: &S3Staging,
        timeouts: PgTimeouts,
        lease_timeout: Duration,
    ) -> Result<Self> {
        let (bucket, prefix) =
            S3Staging::parse(&staging.url).map_err(|m| Error::user(format!("destination.s3_staging: {m}")))?;
        let store: Arc<dyn ObjectStore> = Arc::new(store(staging, &bucket)?);
        let session = SessionSettings { timeouts, redshift: true, lease_timeout };
        let sql = Postgres::connect_with(url, session).await?;
        // The lease lives on a session of its own, so its heartbeat goes on while a long
        // consolidation holds the main one.
        let lease = Lease::take(Postgres::connect_with(url, session).await?, schema, lease_timeout).await?;
        Ok(Self { sql, store, bucket, prefix, staging: staging.clone(), lease: Arc::new(lease) })
    }

    /// Where loads of `table` go (`discard` empties it before each load).
    fn load_prefix(&self, table: &TableRef) -> String {
        let base = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        format!("{base}{}/{}", table.schema, table.name)
    }
}

/// `COPY` of the Parquet parts under `url` into `table`.
pub fn copy_sql(table: &TableRef, url: &str, iam_role: &str, region: Option<&str>) -> String {
    let d = Dialect::Redshift;
    let mut sql = format!(
        "COPY {} FROM {} IAM_ROLE {} FORMAT AS PARQUET",
        d.table(table),
        d.quote_literal(url),
        d.quote_literal(iam_role)
    );
    if let Some(region) = region {
        sql.push_str(&format!(" REGION {}", d.quote_literal(region)));
    }
    sql
}

impl Destination for Redshift {
    type Stage = RedshiftStage;

    fn dialect(&self) -> Dialect {
        Dialect::Redshift
    }

    fn location(&self) -> String {
        self.sql.location()
    }

    async fn execute(&self, statements: Vec<String>) -> Result<()> {
        self.sql.execute(statements).await
    }

    async fn transaction(&self, statements: Vec<String>) -> Result<()> {
        self.lease.check()?;
        self.sql.transaction(statements).await
    }

    async fn query(&self, sql: String) -> Result<Vec<Vec<Value>>> {
        self.sql.query(sql).await
    }

    async fn read_only(&self, sql: String) -> Result<QueryResult> {
        self.sql.read_only(sql).await
    }

    async fn columns(&self, table: TableRef) -> Result<Option<Vec<ExistingColumn>>> {
        self.sql.columns(table).await
    }

    async fn stage(&self, table: TableRef) -> Result<RedshiftStage> {
        // `discard` emptied the prefix: listing it again would cost a request per load.
        let stager = S3Stager::new(self.store.clone(), &self.bucket, self.load_prefix(&table));
        Ok(RedshiftStage { dest: self.clone(), table, stager })
    }

    async fn discard(&self, table: TableRef) -> Result<()> {
        self.sql.execute(vec![Dialect::Redshift.drop_table(&table)]).await?;
        delete_prefix(&self.store, &self.load_prefix(&table)).await
    }

    async fn release(&self) -> Result<()> {
        self.lease.release().await
    }
}

/// A load into one staging table: Parquet parts to S3, then one `COPY`.
pub struct RedshiftStage {
    dest: Redshift,
    table: TableRef,
    stager: S3Stager,
}

impl Stage for RedshiftStage {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.stager.write(batch).await
    }

    async fn finish(self) -> Result<u64> {
        let url = self.stager.url();
        let (rows, parts) = self.stager.finish().await?;
        if parts == 0 {
            return Ok(0);
        }
        let d = &self.dest;
        d.sql.execute(vec![copy_sql(&self.table, &url, &d.staging.iam_role, d.staging.region.as_deref())]).await?;
        Ok(rows)
    }
}

/// The run's lease on a schema (see the module docs).
pub struct Lease {
    holder: String,
    refresher: tokio::task::JoinHandle<()>,
    lost: Arc<std::sync::atomic::AtomicBool>,
    release: std::sync::Mutex<Option<(Postgres, String)>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("holder", &self.holder).finish()
    }
}

/// Adds `expires_at` to a lease table made before it existed (two runs adding it at once:
/// the one that finds it there already goes on).
async fn add_expiry(sql: &Postgres, locks: &str) -> Result<()> {
    let has = format!(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = {} AND table_name = 'locks' \
         AND column_name = 'expires_at'",
        Dialect::Redshift.quote_literal(crate::consolidate::CONTROL_SCHEMA)
    );
    let answered = |rows: Vec<Vec<Value>>| super::first_value(&rows).and_then(Value::as_i64) == Some(1);
    if answered(sql.query(has.clone()).await?) {
        return Ok(());
    }
    match sql.execute(vec![format!("ALTER TABLE {locks} ADD COLUMN \"expires_at\" TIMESTAMPTZ")]).await {
        Err(_) if answered(sql.query(has).await?) => Ok(()),
        added => added,
    }
}

impl Lease {
    /// Takes the lease of `schema` on `sql`, a session the lease keeps for itself (to refresh
    /// it every [`heartbeat`]), lapsing `lifetime` after its last refresh (at most
    /// [`LEASE`], which a handed-off procedure waits out), or says who holds it.
    pub async fn take(sql: Postgres, schema: &str, lifetime: Duration) -> Result<Self> {
        let d = Dialect::Redshift;
        let lifetime = lifetime.min(LEASE);
        let heartbeat = heartbeat(lifetime);
        let now = chrono::Utc::now();
        // Unique per lease, and says where to look for the run that holds it.
        let holder = format!(
            "{}:{} since {} ({:08x})",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "sluice".into()),
            std::process::id(),
            now.format("%Y-%m-%dT%H:%M:%SZ"),
            rand::random::<u32>()
        );
        let (s, h) = (d.quote_literal(schema), d.quote_literal(&holder));
        let locks = d.table(&locks_table());
        sql.execute(vec![
            format!("CREATE SCHEMA IF NOT EXISTS {}", d.quote_ident(crate::consolidate::CONTROL_SCHEMA)),
            format!(
                "CREATE TABLE IF NOT EXISTS {locks} (\"schema_name\" VARCHAR(256), \"holder\" VARCHAR(256), \
                 \"heartbeat\" TIMESTAMPTZ, \"expires_at\" TIMESTAMPTZ)"
            ),
        ])
        .await?;
        add_expiry(&sql, &locks).await?;
        let expires = move |at: chrono::DateTime<chrono::Utc>| {
            d.timestamp_literal(at + chrono::Duration::from_std(lifetime).unwrap_or_default())
        };
        // Each lease lapses by its holder's own time-out; one written without it (by an
        // older sluice) after the longest.
        sql.transaction(vec![
            format!("LOCK {locks}"),
            format!(
                "DELETE FROM {locks} WHERE \"schema_name\" = {s} AND COALESCE(\"expires_at\", \"heartbeat\" + \
                 INTERVAL '{} seconds') < {}",
                LEASE.as_secs(),
                d.timestamp_literal(now)
            ),
            format!(
                "INSERT INTO {locks} SELECT {s}, {h}, {}, {} WHERE NOT EXISTS (SELECT 1 FROM {locks} WHERE \
                 \"schema_name\" = {s})",
                d.timestamp_literal(now),
                expires(now)
            ),
        ])
        .await?;
        let rows = sql
            .query(format!(
                "SELECT \"holder\", CAST(\"heartbeat\" AS VARCHAR), CAST(\"expires_at\" AS VARCHAR) FROM {locks} \
                 WHERE \"schema_name\" = {s}"
            ))
            .await?;
        let current = super::first_value(&rows).and_then(Value::as_str).unwrap_or_default();
        if current != holder {
            let column = |i: usize| rows.first().and_then(|r| r.get(i)).and_then(Value::as_str).unwrap_or("?");
            return Err(Error::busy(format!(
                "destination: schema {schema} in {} is in use by another sluice run ({current}, last seen {}); \
                 one run at a time writes a schema, so wait for it to finish. Should that run have died, its \
                 lease lapses at {} (its serve.lease_timeout after it was last seen)",
                sql.location(),
                column(1),
                column(2)
            )));
        }
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refresher = tokio::spawn({
            let (sql, lost) = (sql.clone(), lost.clone());
            let (s, h, locks) = (s.clone(), h.clone(), locks.clone());
            async move {
                loop {
                    tokio::time::sleep(heartbeat).await;
                    let now = chrono::Utc::now();
                    let beat = format!(
                        "UPDATE {locks} SET \"heartbeat\" = {}, \"expires_at\" = {} WHERE \"schema_name\" = {s} \
                         AND \"holder\" = {h}",
                        d.timestamp_literal(now),
                        expires(now)
                    );
                    let ours = format!("SELECT COUNT(*) FROM {locks} WHERE \"schema_name\" = {s} AND \"holder\" = {h}");
                    let held = match sql.execute(vec![beat]).await {
                        Ok(()) => {
                            sql.query(ours).await.ok().and_then(|r| super::first_value(&r).and_then(Value::as_i64))
                        }
                        Err(_) => None,
                    };
                    // Not refreshed, or no longer ours (expired and taken by another run).
                    if held != Some(1) {
                        lost.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        });
        let release = format!("DELETE FROM {locks} WHERE \"schema_name\" = {s} AND \"holder\" = {h}");
        Ok(Self { holder, refresher, lost, release: std::sync::Mutex::new(Some((sql, release))) })
    }

    /// Fails when the lease could not be refreshed: another run may have taken it since.
    pub fn check(&self) -> Result<()> {
        if self.lost.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::external(format!(
                "the lease {} could not be refreshed; stopping before a commit another run might race",
                self.holder
            )));
        }
        Ok(())
    }

    fn take_release(&self) -> Option<(Postgres, String)> {
        self.release.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Gives the lease back now: the end of every run, so the next need not wait.
    pub async fn release(&self) -> Result<()> {
        self.refresher.abort();
        match self.take_release() {
            Some((sql, release)) => sql.execute(vec![release]).await,
            None => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.refresher.abort();
        // Best effort, should a run end without `release` (a panic): on the runtime the
        // lease was taken on; if it is gone, the lease expires by itself.
        if let Some((sql, release)) = self.take_release()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = sql.execute(vec![release]).await;
            });
        }
    }
}
