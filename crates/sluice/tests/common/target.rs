//! The destinations the shared suites run against: a DuckDB file in a temporary directory,
//! a fresh database on the test PostgreSQL server, or a files root (a local directory, or a
//! new bucket on the test S3 server), with its `[destination]` block and queries through
//! sluice's own [`Destination::query`] (opened afresh per read: DuckDB read-only, PostgreSQL
//! without the run lock), so a suite's checks are the same SQL everywhere, in the
//! destination's dialect.
//!
//! A files root is queried as a warehouse would show it: its committed runs (manifests
//! only) are copied into a scratch DuckDB's view `salesforce.<table>`, the newest version
//! read per Id (by cursor, then by commit order) with `_sluice_deleted` (its `is_deleted`)
//! and `_sluice_run_id`. Shared by both crates' tests (`#[path]`), next to `postgres.rs`,
//! which a test binary must include as `mod pg`.

// Each suite uses its own subset.
#![allow(dead_code)]

use std::path::PathBuf;

use sluice::config::Config;
use sluice::consolidate::{Dialect, ExistingColumn, TableRef};
use sluice::destination::duckdb::DuckDb;
use sluice::destination::files::{FileFormat, FilesDestination, FilesRoot, LeaseRecord, S3Root};
use sluice::destination::postgres::SessionSettings;
use sluice::destination::postgres::{PgUrl, Postgres};
use sluice::destination::{Destination, QueryResult, Value};
use sluice::pipeline::{Quiet, RunSummary, SyncOptions};

use crate::pg::{TestDb, fresh_database};

/// Runs each named test on one [`Kind`], as `<module>::<name>`: each name is an
/// `async fn(Kind)` in the calling file, which must have `Kind` in scope.
macro_rules! on_kind {
    ($module:ident, $kind:ident, $($name:ident),* $(,)?) => {
        mod $module {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Kind::$kind).await
            })*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_kind;

/// Runs each named test once per warehouse, as `duckdb::<name>` and `postgres::<name>`.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        $crate::target::on_kind!(duckdb, DuckDb, $($name),*);
        $crate::target::on_kind!(postgres, Postgres, $($name),*);
    };
}
pub(crate) use suite;

/// Runs each named test once per destination: both warehouses, both kinds of files root
/// and Redshift's SQL on PostgreSQL (the conformance and crash suites). The crash suite
/// runs the `sluice` binary for the first four and, for the last, which no config can name,
/// a child process of its own test binary ([`sync_redshift_on_postgres`]).
macro_rules! every_configurable {
    ($($name:ident),* $(,)?) => {
        $crate::target::suite!($($name),*);
        $crate::target::on_kind!(files, Files, $($name),*);
        $crate::target::on_kind!(files_s3, FilesS3, $($name),*);
        $crate::target::on_kind!(redshift_on_postgres, RedshiftOnPostgres, $($name),*);
    };
}
pub(crate) use every_configurable;

/// Runs each named test once per [`Kind`] (the conformance suite): [`every_configurable`]
/// and the lake on local disk and on S3.
#[allow(unused_macros)]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $crate::target::every_configurable!($($name),*);
        $crate::target::on_kind!(lake, Lake, $($name),*);
        $crate::target::on_kind!(lake_s3, LakeS3, $($name),*);
    };
}
#[allow(unused_imports)]
pub(crate) use conformance;

/// A kind of warehouse the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A DuckDB file in a temporary directory.
    DuckDb,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
    /// A files root in a temporary directory (Parquet).
    Files,
    /// A files root in a new bucket on the test S3 server (Parquet).
    FilesS3,
    /// Redshift's SQL (its capabilities, DDL, DELETE+INSERT upserts, simple query
    /// protocol) run by the pipeline on a fresh PostgreSQL database, staged by PostgreSQL's
    /// `COPY` in place of Redshift's from S3 ([`AsRedshift`]).
    RedshiftOnPostgres,
    /// A lake (Delta tables) in a temporary directory, its work database inside it.
    Lake,
    /// A lake in a new bucket on the test S3 server, its work database in a temporary
    /// directory.
    LakeS3,
}

impl Kind {
    /// Whether this is a lake: read back from its Delta tables' current versions.
    pub fn is_lake(self) -> bool {
        matches!(self, Kind::Lake | Kind::LakeS3)
    }

    /// Whether this is a files root: append-only, every version read, so no merge counts,
    /// no control tables, and `deletes`, `history`, `reconcile_every` refused.
    pub fn is_files(self) -> bool {
        matches!(self, Kind::Files | Kind::FilesS3)
    }
}

/// One empty warehouse for one test.
pub struct Warehouse {
    /// Which kind.
    pub kind: Kind,
    /// Its `[destination]` block.
    pub toml: String,
    /// The DuckDB file.
    pub duckdb: Option<PathBuf>,
    /// The PostgreSQL database.
    pub postgres: Option<TestDb>,
    /// The files root.
    pub files: Option<FilesRoot>,
    /// The lake's root and its work directory.
    pub lake: Option<(FilesRoot, PathBuf)>,
    _dir: tempfile::TempDir,
}

impl Warehouse {
    /// A new, empty warehouse of `kind`.
    pub async fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match kind {
            Kind::DuckDb => {
                let path = dir.path().join("w.duckdb");
                let toml = format!("[destination]\ntype = \"duckdb\"\npath = \"{}\"\n", path.display());
                Self { kind, toml, duckdb: Some(path), postgres: None, files: None, lake: None, _dir: dir }
            }
            Kind::Postgres | Kind::RedshiftOnPostgres => {
                let db = fresh_database().await;
                let toml = format!("[destination]\ntype = \"postgres\"\nurl = \"{}\"\n", db.url);
                Self { kind, toml, duckdb: None, postgres: Some(db), files: None, lake: None, _dir: dir }
            }
            Kind::Files => {
                let root = dir.path().join("root");
                let toml = format!("[destination]\ntype = \"files\"\npath = \"{}\"\n", root.display());
                Self {
                    kind,
                    toml,
                    duckdb: None,
                    postgres: None,
                    files: Some(FilesRoot::Local(root)),
                    lake: None,
                    _dir: dir,
                }
            }
            Kind::FilesS3 => {
                let endpoint = crate::s3::endpoint();
                let (bucket, _) = crate::s3::fresh_bucket("sluice").await;
                let toml = format!(
                    "[destination]\ntype = \"files\"\npath = \"s3://{bucket}/root\"\ns3_endpoint = \"{endpoint}\"\n\
                     s3_region = \"us-east-1\"\n"
                );
                let root = S3Root {
                    bucket,
                    prefix: "root".into(),
                    region: Some("us-east-1".into()),
                    endpoint: Some(endpoint),
                };
                Self {
                    kind,
                    toml,
                    duckdb: None,
                    postgres: None,
                    files: Some(FilesRoot::S3(root)),
                    lake: None,
                    _dir: dir,
                }
            }
            Kind::Lake => {
                let root = dir.path().join("lake");
                let toml = format!("[destination]\ntype = \"lake\"\npath = \"{}\"\n", root.display());
                let lake = Some((FilesRoot::Local(root.clone()), root.join("_sluice")));
                Self { kind, toml, duckdb: None, postgres: None, files: None, lake, _dir: dir }
            }
            Kind::LakeS3 => {
                let endpoint = crate::s3::endpoint();
                let (bucket, _) = crate::s3::fresh_bucket("lake").await;
                let work = dir.path().join("work");
                let toml = format!(
                    "[destination]\ntype = \"lake\"\npath = \"s3://{bucket}/lake\"\ns3_endpoint = \"{endpoint}\"\n\
                     s3_region = \"us-east-1\"\nwork_dir = \"{}\"\n",
                    work.display()
                );
                let root = S3Root {
                    bucket,
                    prefix: "lake".into(),
                    region: Some("us-east-1".into()),
                    endpoint: Some(endpoint),
                };
                let lake = Some((FilesRoot::S3(root), work));
                Self { kind, toml, duckdb: None, postgres: None, files: None, lake, _dir: dir }
            }
        }
    }

    /// The files root as a scratch DuckDB file (see the module docs), built afresh.
    async fn files_view(&self, root: &FilesRoot) -> PathBuf {
        let dest = FilesDestination::open(root, FileFormat::Parquet).unwrap();
        let scratch = self._dir.path().join(format!("view-{}", chrono::Utc::now().timestamp_micros()));
        let mut statements = vec!["CREATE SCHEMA salesforce".to_owned()];
        for table in dest.tables().await.unwrap() {
            let mut runs = dest.runs(&table).await.unwrap();
            runs.sort_by(|a, b| (a.committed_at, &a.run_id).cmp(&(b.committed_at, &b.run_id)));
            let mut files = Vec::new();
            for (seq, run) in runs.iter().enumerate() {
                let dir = scratch.join(&table).join(format!("{seq:06}-{}", run.run_id));
                std::fs::create_dir_all(&dir).unwrap();
                for part in &run.parts {
                    let key = format!("{table}/run={}/{}", run.run_id, part.file);
                    let bytes = dest.read_object(&key).await.unwrap().expect("a part the manifest lists");
                    std::fs::write(dir.join(&part.file), bytes).unwrap();
                    files.push(format!("'{}'", dir.join(&part.file).display()));
                }
            }
            if files.is_empty() {
                continue;
            }
            statements.push(format!(
                "CREATE VIEW salesforce.\"{table}\" AS SELECT * EXCLUDE (_rn, filename), COALESCE(is_deleted, FALSE) AS \
                 _sluice_deleted FROM (SELECT *, regexp_extract(filename, '/[0-9]{{6}}-([^/]+)/', 1) AS _sluice_run_id, \
                 ROW_NUMBER() OVER (PARTITION BY id ORDER BY system_modstamp DESC NULLS LAST, filename DESC) AS _rn \
                 FROM read_parquet([{}], filename = true, union_by_name = true)) WHERE _rn = 1",
                files.join(", ")
            ));
        }
        std::fs::create_dir_all(&scratch).unwrap();
        let path = scratch.join("view.duckdb");
        DuckDb::open_with(&path, 256).unwrap().execute(statements).await.unwrap();
        path
    }

    /// The lake as a scratch DuckDB file, built afresh: a table `salesforce.<table>` per
    /// Delta table under the lake's `salesforce/`, holding the data files of its newest
    /// version (listed by the Delta log, never a glob), typed as its mark records; the
    /// control tables, each flow's row from its table's mark, the runs copied from the work
    /// database when it exists; with `raw`, `salesforce_raw.<table>` for each raw table.
    async fn lake_view(&self, root: &FilesRoot, work: &std::path::Path, raw: bool) -> PathBuf {
        use futures_util::StreamExt;
        use object_store::{ObjectStore, ObjectStoreExt};
        use sluice::consolidate::lake::LakeMark;
        use sluice::destination::lake::delta::{DeltaTable, Url};
        use std::sync::Arc;
        let scratch = self._dir.path().join(format!("view-{}", chrono::Utc::now().timestamp_micros()));
        std::fs::create_dir_all(&scratch).unwrap();
        // The directories under `<root>/<dir>/`.
        let listing = |dir: &str| {
            let dir = dir.to_owned();
            async move {
                match root {
                    FilesRoot::Local(path) => match std::fs::read_dir(path.join(&dir)) {
                        Ok(entries) => entries
                            .map(|e| e.unwrap())
                            .filter(|e| e.file_type().unwrap().is_dir())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect(),
                        Err(_) => Vec::<String>::new(),
                    },
                    FilesRoot::S3(s3) => {
                        let store = crate::s3::client(&s3.bucket);
                        let prefix = object_store::path::Path::from(format!("{}/{dir}", s3.prefix));
                        let listed = store.list_with_delimiter(Some(&prefix)).await.unwrap();
                        listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned)).collect()
                    }
                }
            }
        };
        let names: Vec<String> =
            listing("salesforce").await.into_iter().filter(|n| n != sluice::consolidate::lake::RAW_DIR).collect();
        // Only what asks for the raw layer downloads it.
        let raw_names =
            if raw { listing(&format!("salesforce/{}", sluice::consolidate::lake::RAW_DIR)).await } else { Vec::new() };
        let (base, store): (Url, Arc<dyn ObjectStore>) = match root {
            FilesRoot::Local(path) => {
                let url = Url::from_directory_path(std::fs::canonicalize(path).unwrap_or(path.clone())).unwrap();
                (url, Arc::new(object_store::local::LocalFileSystem::new()))
            }
            FilesRoot::S3(s3) => (
                Url::parse(&format!("s3://{}/{}/", s3.bucket, s3.prefix)).unwrap(),
                Arc::new(crate::s3::client(&s3.bucket)),
            ),
        };
        // The data files of a Delta table's newest version, downloaded; `None`: no table.
        let files_of = |relative: String, name: String| {
            let (store, base, scratch) = (store.clone(), base.clone(), scratch.clone());
            async move {
                let url = base.join(&relative).unwrap();
                let table = DeltaTable::new(url, store.clone(), &TableRef::new("salesforce", &name)).unwrap();
                let version = table.version(None).await.unwrap()?;
                let mut paths = Vec::new();
                for (n, file) in version.files.iter().enumerate() {
                    let local = scratch.join(format!("{}-{n}.parquet", relative.replace('/', "-")));
                    let got = store.get(&table.object_path(&file.path).unwrap()).await.unwrap();
                    let bytes: Vec<u8> = got.into_stream().map(|b| b.unwrap().to_vec()).concat().await;
                    std::fs::write(&local, bytes).unwrap();
                    paths.push(format!("'{}'", local.display()));
                }
                Some((version, paths))
            }
        };
        let mut statements = vec!["CREATE SCHEMA salesforce".to_owned()];
        // The control tables as the work database holds them, but each flow's row as the
        // lake committed it (its mark): the truth, when the two differ after a crash.
        statements.extend(sluice::consolidate::control_ddl(Dialect::DuckDb, chrono::Utc::now()));
        let work = work.join("work.duckdb");
        // A run killed as it created the work database leaves it without control tables.
        let has_runs = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '_sluice' AND table_name = \
                        'schedule'";
        let copy_runs = work.exists()
            && DuckDb::open_read_only(&work).unwrap().query(has_runs.into()).await.unwrap()[0][0].as_i64() == Some(1);
        if copy_runs {
            statements.push(format!("ATTACH '{}' AS work (READ_ONLY)", work.display()));
            for t in ["runs", "flow_runs", "schedule"] {
                statements.push(format!("INSERT INTO _sluice.{t} SELECT * FROM work._sluice.{t}"));
            }
            statements.push("DETACH work".into());
        }
        for name in names {
            let Some((version, paths)) = files_of(format!("salesforce/{name}/"), name.clone()).await else { continue };
            let mark = LakeMark::parse(version.mark.as_deref().expect("a mark")).expect("sluice's mark");
            statements.extend(sluice::consolidate::lake::flow_restore(
                &TableRef::new("salesforce", &name),
                mark.flow.as_deref(),
            ));
            let columns: Vec<String> = mark.columns.iter().map(|(n, t)| format!("\"{n}\" {t}")).collect();
            statements.push(format!("CREATE TABLE salesforce.\"{name}\" ({})", columns.join(", ")));
            if !paths.is_empty() {
                statements.push(format!(
                    "INSERT INTO salesforce.\"{name}\" BY NAME SELECT * FROM read_parquet([{}], union_by_name = true)",
                    paths.join(", ")
                ));
            }
        }
        // The raw layer: `salesforce_raw.<table>`, as its files hold it.
        statements.push("CREATE SCHEMA salesforce_raw".into());
        for name in raw_names {
            let relative = format!("salesforce/{}/{name}/", sluice::consolidate::lake::RAW_DIR);
            let Some((_, paths)) = files_of(relative, name.clone()).await else { continue };
            if !paths.is_empty() {
                statements.push(format!(
                    "CREATE TABLE salesforce_raw.\"{name}\" AS SELECT * FROM read_parquet([{}], union_by_name = true)",
                    paths.join(", ")
                ));
            }
        }
        let path = scratch.join("view.duckdb");
        DuckDb::open_with(&path, 256)
            .unwrap()
            .execute(statements)
            .await
            .unwrap_or_else(|e| panic!("the lake's view: {e}"));
        path
    }

    /// What is wrong with the raw layer of `table` in a lake (nothing elsewhere): a row
    /// appended twice (one table version and read position twice), or a row of the table
    /// whose version (Id and `system_modstamp`) the raw layer never received.
    pub async fn raw_faults(&self, table: &str) -> Vec<String> {
        let Some((root, work)) = &self.lake else { return Vec::new() };
        let db = DuckDb::open_read_only(&self.lake_view(root, work, true).await).unwrap();
        let one = |sql: String| {
            let db = &db;
            async move { db.query(sql.clone()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))[0][0].as_i64().unwrap() }
        };
        let exists = |schema: &str| {
            format!(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = \
                 '{table}' AND column_name = 'system_modstamp'"
            )
        };
        let mut faults = Vec::new();
        let rows = if one(exists("salesforce")).await == 1 {
            one(format!("SELECT count(*) FROM salesforce.\"{table}\"")).await
        } else {
            0
        };
        if rows == 0 {
            return faults;
        }
        if one(exists("salesforce_raw")).await == 0 {
            return vec![format!("{table}: {rows} rows and no raw layer")];
        }
        let twice = one(format!(
            "SELECT count(*) FROM (SELECT 1 FROM salesforce_raw.\"{table}\" GROUP BY _sluice_version, \
             _sluice_stage_seq HAVING count(*) > 1)"
        ))
        .await;
        if twice > 0 {
            faults.push(format!("{table}: {twice} rows appended to the raw layer more than once"));
        }
        let unseen = one(format!(
            "SELECT count(*) FROM salesforce.\"{table}\" AS a WHERE NOT EXISTS (SELECT 1 FROM \
             salesforce_raw.\"{table}\" AS r WHERE r.id = a.id AND r.system_modstamp = a.system_modstamp)"
        ))
        .await;
        if unseen > 0 {
            faults.push(format!("{table}: {unseen} of {rows} rows hold a version the raw layer never received"));
        }
        faults
    }

    /// Runs `config`'s flows once into it, as `sluice sync` would: through the configured
    /// destination, or for [`Kind::RedshiftOnPostgres`] through the pipeline on
    /// [`AsRedshift`], holding the schema's lock as a run does.
    pub async fn sync(&self, config: &Config, opts: &SyncOptions) -> sluice::Result<RunSummary> {
        if self.kind != Kind::RedshiftOnPostgres {
            return sluice::pipeline::sync(config, opts, &Quiet).await;
        }
        let db = self.postgres.as_ref().expect("a PostgreSQL database");
        sync_redshift_on_postgres(&db.pg(), config, opts).await
    }

    /// Its SQL dialect, as tests read it back.
    pub fn dialect(&self) -> Dialect {
        match self.kind {
            Kind::DuckDb | Kind::Files | Kind::FilesS3 | Kind::Lake | Kind::LakeS3 => Dialect::DuckDb,
            // Read back through PostgreSQL, whatever dialect wrote it.
            Kind::Postgres | Kind::RedshiftOnPostgres => Dialect::Postgres,
        }
    }

    /// Empties it, as a new warehouse would be: the DuckDB file is removed, PostgreSQL's
    /// schemas dropped, a files root's objects removed.
    pub async fn reset(&self) {
        if let Some((_, work)) = &self.lake {
            let _ = std::fs::remove_dir_all(work);
        }
        let root = self.files.as_ref().or(self.lake.as_ref().map(|(root, _)| root));
        match root {
            Some(FilesRoot::Local(root)) => {
                let _ = std::fs::remove_dir_all(root);
            }
            Some(FilesRoot::S3(root)) => {
                use futures_util::StreamExt;
                use object_store::{ObjectStore, ObjectStoreExt};
                let store = crate::s3::client(&root.bucket);
                let prefix = object_store::path::Path::from(root.prefix.as_str());
                let keys: Vec<_> = store.list(Some(&prefix)).map(|m| m.unwrap().location).collect().await;
                for key in keys {
                    store.delete(&key).await.unwrap();
                }
            }
            None => {}
        }
        if let Some(path) = &self.duckdb {
            let _ = std::fs::remove_file(path);
            let mut wal = path.clone().into_os_string();
            wal.push(".wal");
            let _ = std::fs::remove_file(wal);
        }
        if let Some(db) = &self.postgres {
            let dest = Postgres::connect(&db.pg()).await.unwrap();
            let drop =
                ["salesforce", "salesforce_staging", "_sluice"].map(|s| format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
            dest.execute(drop.to_vec()).await.unwrap();
        }
    }

    /// Executes statements as a user of the warehouse would, outside sluice (each committed
    /// on its own): DuckDB opened for writing, PostgreSQL without the run lock.
    pub async fn execute(&self, statements: &[&str]) {
        let statements: Vec<String> = statements.iter().map(|s| (*s).to_owned()).collect();
        let done = match (&self.duckdb, &self.postgres) {
            (Some(path), _) => DuckDb::open_with(path, 256).unwrap().execute(statements.clone()).await,
            (_, Some(db)) => Postgres::connect(&db.pg()).await.unwrap().execute(statements.clone()).await,
            _ => panic!("{statements:?}: a files root takes no SQL"),
        };
        done.unwrap_or_else(|e| panic!("{statements:?}: {e}"));
    }

    /// Rows of a query, every value as text (`None` for NULL).
    pub async fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let rows = match (&self.duckdb, &self.postgres, &self.files) {
            (Some(path), _, _) => DuckDb::open_read_only(path).unwrap().query(sql.into()).await,
            (_, Some(db), _) => Postgres::connect(&db.pg()).await.unwrap().query(sql.into()).await,
            (_, _, Some(root)) => DuckDb::open_read_only(&self.files_view(root).await).unwrap().query(sql.into()).await,
            _ => match &self.lake {
                Some((root, work)) => {
                    DuckDb::open_read_only(&self.lake_view(root, work, false).await).unwrap().query(sql.into()).await
                }
                None => unreachable!("a destination is one of the four"),
            },
        };
        let text = |v: Value| match v {
            Value::Null => None,
            Value::Int(i) => Some(i.to_string()),
            Value::Text(t) => Some(t),
        };
        rows.unwrap_or_else(|e| panic!("{sql}: {e}")).into_iter().map(|r| r.into_iter().map(text).collect()).collect()
    }

    /// The committed window end of each flow (object → epoch ms): the control table of a
    /// warehouse, the state file of a files root.
    pub async fn window_ends(&self) -> std::collections::HashMap<String, i64> {
        if let Some(root) = &self.files {
            let dest = FilesDestination::open(root, FileFormat::Parquet).unwrap();
            let state = dest.state().await.unwrap();
            return state.into_iter().map(|(object, s)| (object, s.window_end.timestamp_millis())).collect();
        }
        if self.duckdb.as_ref().is_some_and(|p| !p.exists()) {
            return std::collections::HashMap::new();
        }
        let exists =
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '_sluice' AND table_name = 'flows'";
        if self.query_i64(exists).await == 0 {
            return std::collections::HashMap::new();
        }
        let rows =
            self.query(&format!("SELECT flow, {} FROM _sluice.flows", self.dialect().epoch_ms("window_end"))).await;
        rows.into_iter().map(|r| (r[0].clone().unwrap(), r[1].as_deref().unwrap().parse().unwrap())).collect()
    }

    /// What the passing of a lease's lifetime would do after a run was killed: an S3 root's
    /// lease (which a killed run cannot give back) is made to have lapsed, so the next run
    /// takes it over rather than waiting ten minutes. On PostgreSQL, the advisory lock dies
    /// with the killed run's session, but only once the server notices the client is gone
    /// (a backend busy with a statement notices when it ends): this waits for that, up to
    /// 30 s, so that the next run is not refused as "in use by another sluice run". Nothing
    /// for the other kinds, whose locks die with their process.
    pub async fn lapse_lease(&self) {
        use object_store::{ObjectStoreExt, PutPayload};
        if self.postgres.is_some() {
            let held = "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                        WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()";
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while self.query_i64(held).await > 0 {
                assert!(std::time::Instant::now() < deadline, "the killed run's session still holds its lock");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            return;
        }
        let Some(FilesRoot::S3(root)) = &self.files else { return };
        let store = crate::s3::client(&root.bucket);
        let path = object_store::path::Path::from(format!("{}/.sluice.lock", root.prefix));
        let Ok(got) = store.get(&path).await else { return };
        let mut lease: LeaseRecord = serde_json::from_slice(&got.bytes().await.unwrap()).unwrap();
        lease.expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
        store.put(&path, PutPayload::from(serde_json::to_vec(&lease).unwrap())).await.unwrap();
    }

    /// The one integer a query returns.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let rows = self.query(sql).await;
        rows[0][0].as_deref().unwrap_or_else(|| panic!("{sql}: NULL")).parse().unwrap()
    }
}

/// Runs `config`'s flows once into schema `salesforce` of the PostgreSQL database at `url`
/// as if it were Redshift ([`AsRedshift`]), which holds no lock (Redshift's lease is checked
/// on its own).
pub async fn sync_redshift_on_postgres(url: &PgUrl, config: &Config, opts: &SyncOptions) -> sluice::Result<RunSummary> {
    let session = SessionSettings { redshift: true, ..Default::default() };
    let dest = AsRedshift(Postgres::connect_with(url, session).await?);
    let summary = sluice::pipeline::sync_into(&dest, "salesforce", config, opts, &Quiet).await;
    dest.0.release().await?;
    summary
}

/// PostgreSQL told to be Redshift: the pipeline generates Redshift's SQL (and asks
/// Redshift's capabilities) and PostgreSQL runs it; loads are PostgreSQL's `COPY`.
pub struct AsRedshift(pub Postgres);

impl Destination for AsRedshift {
    type Stage = <Postgres as Destination>::Stage;

    fn dialect(&self) -> Dialect {
        Dialect::Redshift
    }
    fn location(&self) -> String {
        self.0.location()
    }
    async fn execute(&self, statements: Vec<String>) -> sluice::Result<()> {
        self.0.execute(statements).await
    }
    async fn transaction(&self, statements: Vec<String>) -> sluice::Result<()> {
        self.0.transaction(statements).await
    }
    async fn query(&self, sql: String) -> sluice::Result<Vec<Vec<Value>>> {
        self.0.query(sql).await
    }
    async fn read_only(&self, sql: String) -> sluice::Result<QueryResult> {
        self.0.read_only(sql).await
    }
    async fn columns(&self, table: TableRef) -> sluice::Result<Option<Vec<ExistingColumn>>> {
        self.0.columns(table).await
    }
    async fn stage(&self, table: TableRef) -> sluice::Result<Self::Stage> {
        self.0.stage(table).await
    }
    async fn discard(&self, table: TableRef) -> sluice::Result<()> {
        self.0.discard(table).await
    }
}

/// A boolean expression as `'true'`, `'false'` or NULL, the same text in every dialect.
pub fn bool_text(expr: &str) -> String {
    format!("CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} THEN 'true' ELSE 'false' END")
}
