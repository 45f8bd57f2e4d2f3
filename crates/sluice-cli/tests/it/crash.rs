//! Crash tests, run once per destination (DuckDB, PostgreSQL, files on local disk and on
//! S3, Redshift's SQL on PostgreSQL, a lake on local disk and on S3; see the end): `sluice sync`
//! (for Redshift's SQL, which no config can name, a child process of this test binary
//! running the same pipeline: [`redshift_on_postgres_child`]) is killed with SIGKILL at random
//! instants over all its phases, and aborted at failpoints on every phase boundary, while
//! the org keeps changing. After one more run the table (for a files root: the newest
//! version per Id of its committed runs) must equal the sandbox's ground truth row by row
//! (Id, SystemModstamp, IsDeleted and Name), with no duplicate Id, and the committed window
//! end must never have moved backwards or past data it did not commit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{common, target};

use sandbox::Running;
use sandbox::server::DEFAULT_PASSWORD;
use serde_json::{Value as Json, json};
use target::{Kind, Warehouse, bool_text};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
/// Set in the child process that runs a sync into Redshift's SQL on PostgreSQL: its config.
const CHILD_CONFIG: &str = "SLUICE_CRASH_CHILD_CONFIG";

/// `sluice --config <config> sync --json`, or for Redshift's SQL on PostgreSQL the same
/// run in a child process of this test binary ([`redshift_on_postgres_child`]).
fn sync_command(config: &Path, kind: Kind) -> std::process::Command {
    if kind != Kind::RedshiftOnPostgres {
        let mut command = std::process::Command::new(BIN);
        command.arg("--config").arg(config).args(["sync", "--json"]);
        return command;
    }
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args(["crash::redshift_on_postgres_child", "--exact", "--nocapture", "--test-threads", "1"]);
    command.env(CHILD_CONFIG, config);
    command
}

/// Not a test by itself: the process [`sync_command`] starts for Redshift's SQL on
/// PostgreSQL (when [`CHILD_CONFIG`] is set; otherwise it does nothing). It runs the
/// config's flows once through the pipeline on `target::AsRedshift`, as `sluice sync` would
/// (failpoints included), and fails unless the run is `ok`.
#[test]
fn redshift_on_postgres_child() {
    let Ok(path) = std::env::var(CHILD_CONFIG) else { return };
    let text = std::fs::read_to_string(&path).unwrap();
    let config = sluice::load_config(&text, &path, &|k| std::env::var(k).ok()).expect("valid config");
    let url = &config.destination.settings::<sluice::destination::postgres::PostgresConfig>().expect("postgres").url;
    let url = sluice::destination::postgres::PgUrl::parse(url.expose()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let summary = runtime
        .block_on(target::sync_redshift_on_postgres(&url, &config, &sluice::pipeline::SyncOptions::default()))
        .expect("the run starts");
    assert_eq!(summary.status, sluice::pipeline::RunStatus::Ok, "{summary:#?}");
}
const OBJECTS: [(&str, &str); 2] = [("Account", "account"), ("Contact", "contact")];

pub(crate) async fn start() -> Running {
    common::start(21, &[("Account", 4000), ("Contact", 3000)]).await
}

fn write_config(dir: &Path, login_url: &str, wh: &Warehouse) -> PathBuf {
    // A files root has no reconciliation to turn off.
    let reconcile = if wh.kind.is_files() { "" } else { "reconcile_every = \"never\"" };
    let text = format!(
        r#"{}
{}
[defaults]
lookback = "10m"
{reconcile}

[[flows]]
object = "Account"

[[flows]]
object = "Contact"
slice = "400d"
"#,
        common::source_toml(login_url, DEFAULT_PASSWORD),
        wh.toml
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) async fn admin(sb: &Running, path: &str, body: Json) {
    let resp = reqwest::Client::new().post(format!("{}{path}", sb.instance_url)).json(&body).send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
}

/// Some of everything, then the clock moves on so the next window sees it.
pub(crate) async fn churn(sb: &Running) {
    let ops: Vec<Json> = OBJECTS
        .iter()
        .map(|(o, _)| json!({"op": "churn", "object": o, "inserts": 15, "updates": 40, "deletes": 5, "undeletes": 1}))
        .collect();
    admin(sb, "/sandbox/v1/mutations", json!({ "mutations": ops })).await;
    admin(sb, "/sandbox/v1/clock", json!({"advance_secs": 3.0})).await;
}

/// A run to completion: must succeed.
async fn sync_ok(config: &Path, kind: Kind) {
    let mut command = sync_command(config, kind);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(
        out.status.success(),
        "the run after the crash failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Spawns a run and SIGKILLs it after `delay` if it is still running; returns how it
/// ended by itself, or `None` when it was killed.
async fn sync_killed_after(
    config: &Path,
    kind: Kind,
    delay: Duration,
    env: &[(&str, &str)],
) -> Option<std::process::ExitStatus> {
    let mut command = sync_command(config, kind);
    command.envs(env.iter().copied());
    tokio::task::spawn_blocking(move || {
        let mut child =
            command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        None
    })
    .await
    .unwrap()
}

/// The committed window end per flow (epoch ms).
async fn window_ends(wh: &Warehouse) -> HashMap<String, i64> {
    wh.window_ends().await
}

fn truth_ms(v: &Json) -> i64 {
    chrono::DateTime::parse_from_str(v.as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.f%z").unwrap().timestamp_millis()
}

/// Asserts the destination equals the truth for both objects.
pub(crate) async fn assert_equals_truth(sb: &Running, wh: &Warehouse) {
    let d = wh.dialect();
    for (object, table) in OBJECTS {
        let truth: HashMap<String, (i64, bool, Option<String>)> = common::truth(sb, object)
            .await
            .into_iter()
            .map(|r| {
                let name = r["Name"].as_str().map(str::to_owned);
                (r["Id"].as_str().unwrap().to_owned(), (truth_ms(&r["SystemModstamp"]), r["IsDeleted"] == true, name))
            })
            .collect();
        let rows = wh
            .query(&format!(
                "SELECT id, {}, {}, {}, name FROM salesforce.{table}",
                d.epoch_ms("system_modstamp"),
                bool_text("is_deleted"),
                bool_text("_sluice_deleted")
            ))
            .await;
        let mut seen = HashMap::new();
        let mut problems = Vec::new();
        for r in &rows {
            let id = r[0].clone().unwrap();
            let got = (r[1].as_deref().unwrap().parse::<i64>().unwrap(), r[2].as_deref() == Some("true"), r[4].clone());
            if seen.insert(id.clone(), ()).is_some() {
                problems.push(format!("{object} {id}: duplicate"));
            }
            if (r[3].as_deref() == Some("true")) != got.1 {
                problems.push(format!("{object} {id}: _sluice_deleted disagrees with is_deleted"));
            }
            match truth.get(&id) {
                Some(want) if *want == got => {}
                Some(want) => problems.push(format!("{object} {id}: destination {got:?}, source {want:?}")),
                None => problems.push(format!("{object} {id}: not at the source")),
            }
        }
        for id in truth.keys() {
            if !seen.contains_key(id) {
                problems.push(format!("{object} {id}: missing"));
            }
        }
        problems.extend(wh.raw_faults(table).await);
        problems.sort();
        assert!(
            problems.is_empty(),
            "{} differences:\n{}",
            problems.len(),
            problems[..problems.len().min(20)].join("\n")
        );
    }
}

/// Checks the committed window ends only ever move forward.
fn assert_monotonic(before: &HashMap<String, i64>, after: &HashMap<String, i64>) {
    for (flow, end) in before {
        let now = after.get(flow).copied().unwrap_or(i64::MIN);
        assert!(now >= *end, "{flow}: the committed window end went back from {end} to {now}");
    }
}

async fn sigkill_at_random_instants_then_one_more_run_equals_the_truth(kind: Kind) {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    let config = write_config(dir.path(), &sb.login_url, &wh);

    // How long an uncrashed run takes here, to spread the kills over all its phases: a
    // first (full) run, then an incremental one after churn.
    let started = Instant::now();
    let status = sync_killed_after(&config, kind, Duration::from_secs(600), &[]).await;
    assert!(status.is_some_and(|s| s.success()), "the first run fails: {status:?}");
    let full = started.elapsed();
    churn(&sb).await;
    let started = Instant::now();
    sync_ok(&config, kind).await;
    let incremental = started.elapsed();

    // A deterministic spread of instants (printed, so a failure can be replayed).
    let mut seed: u64 = 0x5eed_cafe;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut ends = window_ends(&wh).await;
    let mut killed = 0;
    let mut log = Vec::new();
    // Until 24 kills: an instant past the run's end (a sixth of them) kills nothing, and a
    // fixed number of rounds let a slow machine fall short of 20 kills now and then.
    for round in 0..48 {
        if killed == 24 {
            break;
        }
        churn(&sb).await;
        // Every fourth round starts over from scratch (a full refresh) to crash first loads too.
        let span = if round % 4 == 0 { full } else { incremental };
        if round % 4 == 0 {
            wh.reset().await;
            ends.clear();
        }
        let delay = Duration::from_micros(next() % (span.as_micros() as u64 * 6 / 5).max(1));
        let was_killed = sync_killed_after(&config, kind, delay, &[]).await.is_none();
        if was_killed {
            wh.lapse_lease().await;
        }
        killed += u32::from(was_killed);
        log.push(format!("round {round}: {delay:?} killed={was_killed}"));
        let after = window_ends(&wh).await;
        assert_monotonic(&ends, &after);
        ends = after;
    }
    assert!(killed >= 20, "most rounds must really kill a running sync: {log:#?}");
    sync_ok(&config, kind).await;
    assert_monotonic(&ends, &window_ends(&wh).await);
    assert_equals_truth(&sb, &wh).await;
    sb.shutdown().await;
}

async fn abort_at_every_phase_boundary_then_one_more_run_equals_the_truth(kind: Kind) {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    let config = write_config(dir.path(), &sb.login_url, &wh);
    // The flow driver's boundaries, the same for every destination, then each one's own
    // steps inside a commit.
    let mut points = vec![
        "after-stage",
        "before-commit",
        "after-commit",
        "after-verify",
        "after-cleanup",
        // The third commit of a first load, which Contact's slices spread over several
        // commits: earlier slices stay committed, the rest is read again.
        "before-commit:3",
    ];
    if kind.is_files() {
        // A manifest without the state; and the same in the middle of a first load, where
        // no look-back would hide a window that moved before its data.
        points.extend(["after-manifest", "after-manifest:2"]);
    } else {
        points.extend(["consolidate-statement:2", "consolidate-statement:7"]);
    }
    if kind.is_lake() {
        // Before the Delta commit; after it, before the work database's commit (the next
        // run rebuilds the work table from the lake).
        points.extend(["before-publish", "after-publish", "after-publish:3"]);
    }
    for (i, point) in points.iter().enumerate() {
        if i > 0 {
            churn(&sb).await;
        }
        // The numbered points are inside a first load.
        if point.ends_with(":3") || point.starts_with("after-manifest:") {
            wh.reset().await;
        }
        let before = window_ends(&wh).await;
        let status = sync_killed_after(&config, kind, Duration::from_secs(600), &[("SLUICE_FAILPOINT", point)]).await;
        let signal = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s));
        assert_eq!(signal, Some(6), "{point}: the run must abort there (SIGABRT), got {status:?}");
        wh.lapse_lease().await;
        let after = window_ends(&wh).await;
        assert_monotonic(&before, &after);
        let uncommitted = ["after-stage", "consolidate-statement", "before-publish"];
        if uncommitted.iter().any(|p| point.starts_with(p)) || *point == "before-commit" {
            assert_eq!(before.get("Account"), after.get("Account"), "{point}: nothing committed before the abort");
        }
        sync_ok(&config, kind).await;
        assert_equals_truth(&sb, &wh).await;
    }
    sb.shutdown().await;
}

/// The run's closing bookkeeping (its row in `_sluice.runs`) failing to write, as on a disk
/// that filled up at that moment, does not hide what committed: `--json` reports every flow
/// as committed and the data is there; the next run marks the unfinished run abandoned.
async fn committed_flows_are_reported_when_the_run_row_cannot_be_written(kind: Kind) {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    let config = write_config(dir.path(), &sb.login_url, &wh);
    let mut command = sync_command(&config, kind);
    command.env("SLUICE_FAILPOINT", "error:run-finished");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(summary["status"], "ok", "{stdout}");
    for flow in summary["flows"].as_array().unwrap() {
        assert_eq!(flow["status"], "ok", "{stdout}");
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not record the end of the run"));
    assert_equals_truth(&sb, &wh).await;
    let running = "SELECT COUNT(*) FROM _sluice.runs WHERE status = 'running'";
    assert_eq!(wh.query_i64(running).await, 1);
    sync_ok(&config, kind).await;
    assert_eq!(wh.query_i64(running).await, 0);
    assert_eq!(wh.query_i64("SELECT COUNT(*) FROM _sluice.runs WHERE status = 'abandoned'").await, 1);
    sb.shutdown().await;
}

target::every_configurable!(
    sigkill_at_random_instants_then_one_more_run_equals_the_truth,
    abort_at_every_phase_boundary_then_one_more_run_equals_the_truth,
);
target::on_kind!(
    lake,
    Lake,
    sigkill_at_random_instants_then_one_more_run_equals_the_truth,
    abort_at_every_phase_boundary_then_one_more_run_equals_the_truth,
);
target::on_kind!(
    lake_s3,
    LakeS3,
    sigkill_at_random_instants_then_one_more_run_equals_the_truth,
    abort_at_every_phase_boundary_then_one_more_run_equals_the_truth,
);

/// What only warehouses record (the run's row in `_sluice.runs`).
mod warehouses {
    use super::*;
    target::suite!(committed_flows_are_reported_when_the_run_row_cannot_be_written);
}

/// Failpoints are compiled into test builds only: this test binary's sluice honours them,
/// while the dependency graph a user's `cargo build --release` compiles does not enable the
/// feature, so no stray `SLUICE_FAILPOINT` can make a production run fail on purpose.
#[test]
fn failpoints_exist_only_in_test_builds() {
    const { assert!(sluice::failpoint::ENABLED, "the tests' build honours SLUICE_FAILPOINT") };
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "-p",
            "sluice-cli",
            "-e",
            "no-dev",
            "-f",
            "{p} [{f}]",
            "--prefix",
            "none",
            "-i",
            "sluice",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = text.lines().find(|l| l.starts_with("sluice v")).unwrap_or_else(|| panic!("{text}"));
    assert!(!line.contains("failpoints"), "a user's build would honour SLUICE_FAILPOINT: {line}");
}
