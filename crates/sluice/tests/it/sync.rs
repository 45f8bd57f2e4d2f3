//! `sluice::pipeline` into the files destination against an in-process sandbox: per-flow
//! state, a quota stop at a flow boundary that the next run resumes from, a failing
//! extraction that leaves no manifest and no advanced state, and the run loop every
//! destination shares: retries of a flow after a transient failure, flows in parallel.

use crate::common;

use std::sync::Mutex;
use std::time::Duration;

use sandbox::server;
use sandbox::{Running, SandboxConfig};
use sluice::config::Config;
use sluice::destination::files::{FileFormat, FilesDestination};
use sluice::model::Window;
use sluice::pipeline::{self, FlowStatus, FlowSummary, Observer, RunStatus, SyncOptions};
use sluice::source::salesforce::Options;
use sluice::source::salesforce::client::RetryPolicy;

use common::{advance, post, truth};

async fn start() -> Running {
    let counts = [("Account", 120), ("Contact", 80), ("Lead", 40), ("Opportunity", 10), ("Case", 10)]
        .into_iter()
        .map(|(o, n)| (o.to_owned(), n))
        .collect();
    server::start(SandboxConfig { seed: 5, counts, ..SandboxConfig::default() }).await.expect("sandbox starts")
}

fn config(sb: &Running, dir: &std::path::Path, flows: &[&str]) -> Config {
    config_with(sb, dir, flows, "")
}

/// `config` with one flow at a time, for tests whose hooks act between flows.
fn sequential(sb: &Running, dir: &std::path::Path, flows: &[&str]) -> Config {
    config_full(sb, dir, flows, "max_parallel_flows = 1\n", "")
}

/// `config`, with extra lines in `[destination]`.
fn config_with(sb: &Running, dir: &std::path::Path, flows: &[&str], destination: &str) -> Config {
    config_full(sb, dir, flows, "", destination)
}

/// `config`, with extra lines in `[source]` and in `[destination]`.
fn config_full(sb: &Running, dir: &std::path::Path, flows: &[&str], source: &str, destination: &str) -> Config {
    let mut text = format!(
        r#"{}
[destination]
type = "files"
path = "{}"
format = "parquet"
{destination}
"#,
        common::source_toml(&sb.login_url, &format!("api = \"rest\"\n{source}")),
        dir.display()
    );
    for flow in flows {
        // "Object" or "Object; key = value" for a flow setting.
        let (object, extra) = flow.split_once("; ").unwrap_or((flow, ""));
        text.push_str(&format!("\n[[flows]]\nobject = \"{object}\"\n{extra}\n"));
    }
    sluice::load_config(&text, "test.toml", &|_| None).expect("valid config")
}

fn fast() -> SyncOptions {
    let retry = RetryPolicy {
        max_retries: 2,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(50),
        timeout: Duration::from_secs(30),
    };
    SyncOptions {
        source: Options { retry, ..Options::default() },
        flow_retry: common::quick_flow_retry(),
        ..SyncOptions::default()
    }
}

/// Records every callback, and runs `hook` when a flow starts or finishes.
struct Recorder<'a> {
    events: Mutex<Vec<String>>,
    hook: Box<dyn Fn(&str) + Send + Sync + 'a>,
}

impl Observer for Recorder<'_> {
    fn flow_started(&self, object: &str, _window: Option<&Window>) {
        self.events.lock().unwrap().push(format!("start {object}"));
        (self.hook)(&format!("start {object}"));
    }
    fn rows(&self, object: &str, rows: u64) {
        self.events.lock().unwrap().push(format!("rows {object} {rows}"));
    }
    fn flow_finished(&self, flow: &FlowSummary) {
        self.events.lock().unwrap().push(format!("end {} {}", flow.object, flow.status));
        (self.hook)(&format!("end {}", flow.object));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_stops_at_a_flow_boundary_and_the_next_run_resumes() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = sequential(&sb, dir.path(), &["Account", "Contact", "Lead"]);
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    // The org runs out of API requests right after the first flow.
    let state = sb.state.clone();
    let observer = Recorder {
        events: Mutex::default(),
        hook: Box::new(move |event| {
            if event == "end Account" {
                state.knobs.write().daily_api_limit = 1;
            }
        }),
    };
    let summary = pipeline::sync(&cfg, &fast(), &observer).await.expect("the run starts");
    let statuses: Vec<FlowStatus> = summary.flows.iter().map(|f| f.status).collect();
    assert_eq!(statuses, [FlowStatus::Ok, FlowStatus::Stopped, FlowStatus::Skipped], "{summary:#?}");
    assert_eq!(summary.status, RunStatus::Partial);
    assert_eq!(summary.stopped.as_deref(), Some("quota"));
    assert_eq!(summary.flows[0].rows, 120);
    // One driver for every destination: a files flow reports where its time went too.
    let timings = summary.flows[0].timings.expect("the files flow's phases are timed");
    assert!(timings.extract + timings.load > std::time::Duration::ZERO, "{timings:?}");
    assert!(summary.flows[1].error.as_deref().unwrap().contains("REQUEST_LIMIT_EXCEEDED"), "{summary:#?}");
    let events = observer.events.lock().unwrap().clone();
    assert!(events.contains(&"rows Account 120".to_owned()), "{events:?}");
    let state_after = dest.state().await.unwrap();
    assert_eq!(state_after.keys().collect::<Vec<_>>(), ["Account"], "only the committed flow has state");
    assert!(dest.runs("contact").await.unwrap().is_empty() && dest.runs("lead").await.unwrap().is_empty());
    let account_end = state_after["Account"].window_end;

    // The next day: the stopped flows run in full, the committed one incrementally.
    sb.state.knobs.write().daily_api_limit = 1_000_000;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let summary = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert_eq!(summary.status, RunStatus::Ok, "{summary:#?}");
    let windows: Vec<Option<Window>> = summary.flows.iter().map(|f| f.window).collect();
    assert_eq!(windows[0].unwrap().start, Some(account_end - chrono::TimeDelta::minutes(10)));
    assert!(windows[1].unwrap().is_full() && windows[2].unwrap().is_full());
    assert_eq!((summary.flows[1].rows, summary.flows[2].rows), (80, 40));
    assert_eq!(dest.runs("contact").await.unwrap().len(), 1);
    assert_eq!(dest.state().await.unwrap().len(), 3);

    // --full-refresh ignores the state; --objects picks flows.
    let opts = SyncOptions { objects: Some(vec!["lead".into()]), full_refresh: true, ..fast() };
    let summary = pipeline::sync(&cfg, &opts, &pipeline::Quiet).await.unwrap();
    assert_eq!(summary.flows.len(), 1);
    assert!(summary.flows[0].window.unwrap().is_full());
    assert_eq!(summary.flows[0].rows, 40);
    let err = pipeline::sync(&cfg, &SyncOptions { objects: Some(vec!["Nope".into()]), ..fast() }, &pipeline::Quiet)
        .await
        .unwrap_err();
    assert!(err.message.contains("Nope") && err.message.contains("Account, Contact, Lead"), "{}", err.message);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_extraction_leaves_no_manifest_and_no_state() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = sequential(&sb, dir.path(), &["Account", "Contact"]);
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    // Every request fails once Account's extraction starts; Contact is fine again.
    let state = sb.state.clone();
    let observer = Recorder {
        events: Mutex::default(),
        hook: Box::new(move |event| match event {
            "start Account" => state.knobs.write().error_rate = 1.0,
            "end Account" => state.knobs.write().error_rate = 0.0,
            _ => {}
        }),
    };
    let summary = pipeline::sync(&cfg, &fast(), &observer).await.unwrap();
    let statuses: Vec<FlowStatus> = summary.flows.iter().map(|f| f.status).collect();
    assert_eq!(statuses, [FlowStatus::Failed, FlowStatus::Ok], "{summary:#?}");
    assert_eq!(summary.status, RunStatus::Partial);
    assert!(summary.flows[0].error.as_deref().unwrap().starts_with("Account"), "{summary:#?}");
    assert!(dest.runs("account").await.unwrap().is_empty(), "no manifest for the failed flow");
    let leftovers = std::fs::read_dir(dir.path().join("account")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "the failed run's files are removed");
    assert!(!dest.state().await.unwrap().contains_key("Account"), "the failed flow's window does not advance");
    assert_eq!(dest.runs("contact").await.unwrap()[0].rows, 80);

    // The next run reads Account in full.
    let summary = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert_eq!(summary.status, RunStatus::Ok);
    assert!(summary.flows[0].window.unwrap().is_full());
    assert_eq!(summary.flows[0].rows, 120);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_are_committed_as_runs_of_their_own() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb, dir.path(), &["Account; slice = \"400d\"", "Contact"]);
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    let summary = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert_eq!(summary.status, RunStatus::Ok, "{summary:#?}");
    assert_eq!(summary.flows[0].rows, 120);
    let runs = dest.runs("account").await.unwrap();
    assert!(runs.len() > 2, "six years of data in 400-day slices: {} runs", runs.len());
    assert_eq!(runs.iter().map(|r| r.rows).sum::<u64>(), 120);
    assert!(runs[0].window_start.is_none(), "the first slice has no lower bound");
    for pair in runs.windows(2) {
        assert_eq!(pair[0].window_end, pair[1].window_start.unwrap(), "slices tile the window");
    }
    let whole = summary.flows[0].window.unwrap();
    assert_eq!(runs.last().unwrap().window_end, whole.end);
    assert_eq!(dest.state().await.unwrap()["Account"].window_end, whole.end);
    assert_eq!(dest.runs("contact").await.unwrap().len(), 1, "an unsliced flow writes one run");
    sb.shutdown().await;
}

/// A fine slice over years of sparse data is not thousands of windows: runs of empty slices
/// merge into the next slice with data (each merged slice still tiles the window), and a
/// plan whose estimated API calls exceed the budget left is refused before anything is
/// read, naming the estimate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_slices_merge_and_a_plan_over_the_api_budget_is_refused() {
    let counts = [("Account".to_owned(), 12)].into_iter().collect();
    let sb = server::start(SandboxConfig { seed: 5, counts, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Six years of data in one-day slices: over 2,000 planned, at most 12 hold rows.
    let cfg = config(&sb, dir.path(), &["Account; slice = \"1d\""]);
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    let summary = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert_eq!(summary.status, RunStatus::Ok, "{summary:#?}");
    let runs = dest.runs("account").await.unwrap();
    assert!(runs.len() <= 13, "{} runs: empty slices were merged", runs.len());
    assert_eq!(runs.iter().map(|r| r.rows).sum::<u64>(), 12);
    for pair in runs.windows(2) {
        assert_eq!(pair[0].window_end, pair[1].window_start.unwrap(), "merged slices still tile the window");
    }
    let calls = summary.flows[0].api_calls.unwrap();
    assert!(calls < 60, "{calls} API calls for 12 rows");

    // The same plan on a bigger org, with few calls left today: refused, nothing read.
    let counts = [("Account".to_owned(), 3000)].into_iter().collect();
    let big = server::start(SandboxConfig { seed: 5, counts, ..SandboxConfig::default() }).await.unwrap();
    big.state.knobs.write().daily_api_limit = 400;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&big, dir.path(), &["Account; slice = \"1d\""]);
    let summary = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    let f = &summary.flows[0];
    assert_eq!(f.status, FlowStatus::Failed, "{f:#?}");
    let error = f.error.as_deref().unwrap_or_default();
    assert!(error.contains("estimated") && error.contains("API calls") && error.contains("slice"), "{error}");
    assert!(f.api_calls.unwrap() < 400, "{f:#?}");
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    assert!(
        dest.runs("account").await.unwrap().is_empty() && dest.state().await.unwrap().is_empty(),
        "nothing committed"
    );
    sb.shutdown().await;
    big.shutdown().await;
}

// --- Scenarios: what breaks incremental replication in real orgs -----------------

/// (Id, IsDeleted) of every row a run wrote for `table`.
async fn run_rows(dir: &std::path::Path, table: &str, run_id: &str) -> Vec<(String, bool)> {
    use arrow::array::{Array, BooleanArray, StringArray};
    let dest = FilesDestination::new(dir, FileFormat::Parquet);
    let manifest = dest.runs(table).await.unwrap().into_iter().find(|m| m.run_id == run_id);
    let Some(manifest) = manifest else { return Vec::new() };
    let mut rows = Vec::new();
    for part in &manifest.parts {
        let file = std::fs::File::open(dir.join(table).join(format!("run={run_id}")).join(&part.file)).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let ids = batch.column_by_name("id").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
            let deleted =
                batch.column_by_name("is_deleted").unwrap().as_any().downcast_ref::<BooleanArray>().unwrap().clone();
            rows.extend((0..ids.len()).map(|i| (ids.value(i).to_owned(), deleted.value(i))));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_is_caught_by_the_lookback() {
    let sb = start().await;
    let (with, without) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = config(&sb, with.path(), &["Account"]);
    let no_lookback = config(&sb, without.path(), &["Account; lookback = \"0s\""]);
    for c in [&cfg, &no_lookback] {
        pipeline::sync(c, &fast(), &pipeline::Quiet).await.unwrap();
    }
    // A transaction stamped now that commits a minute later (a long trigger, a bulk load).
    let insert = serde_json::json!({"mutations": [{"op": "insert", "object": "Account", "fields": {"Name": "Late Co"}, "late_secs": 60}]});
    let late_id = post(&sb, "/sandbox/v1/mutations", insert).await["results"][0]["id"].as_str().unwrap().to_owned();
    advance(&sb, 5.0).await;
    for c in [&cfg, &no_lookback] {
        let run = pipeline::sync(c, &fast(), &pipeline::Quiet).await.unwrap();
        let dir = if std::ptr::eq(c, &cfg) { with.path() } else { without.path() };
        assert!(!run_rows(dir, "account", &run.run_id).await.iter().any(|(id, _)| *id == late_id), "not visible yet");
    }
    // It commits now, with a SystemModstamp older than both runs' window ends.
    advance(&sb, 120.0).await;
    let run = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert!(
        run_rows(with.path(), "account", &run.run_id).await.iter().any(|(id, _)| *id == late_id),
        "lookback reads it"
    );
    let run = pipeline::sync(&no_lookback, &fast(), &pipeline::Quiet).await.unwrap();
    assert!(
        !run_rows(without.path(), "account", &run.run_id).await.iter().any(|(id, _)| *id == late_id),
        "without a lookback the late row is lost: the scenario is real"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sharing_one_timestamp_are_all_read() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb, dir.path(), &["Account"]);
    pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    // 300 rows committed in one second, and the run's window ends on that second.
    post(&sb, "/sandbox/v1/clock", serde_json::json!({"freeze": true})).await;
    let done = post(
        &sb,
        "/sandbox/v1/mutations",
        serde_json::json!({"mutations": [{"op": "insert", "object": "Account", "count": 300}]}),
    )
    .await;
    let inserted: std::collections::BTreeSet<String> =
        done["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(inserted.len(), 300);
    let first = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    advance(&sb, 1.0).await;
    let second = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for run in [&first, &second] {
        seen.extend(run_rows(dir.path(), "account", &run.run_id).await.into_iter().map(|(id, _)| id));
    }
    let missing: Vec<_> = inserted.difference(&seen).collect();
    assert!(missing.is_empty(), "{} of 300 tied rows were never read: {missing:?}", missing.len());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_undeletes_arrive_incrementally() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb, dir.path(), &["Contact"]);
    let first = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    let (id, _) =
        run_rows(dir.path(), "contact", &first.run_id).await.into_iter().find(|(_, deleted)| !deleted).unwrap();
    let op = |op: &str| serde_json::json!({"mutations": [{"op": op, "object": "Contact", "id": id}]});
    for (mutation, expect_deleted) in [("delete", true), ("undelete", false)] {
        advance(&sb, 2.0).await;
        post(&sb, "/sandbox/v1/mutations", op(mutation)).await;
        advance(&sb, 2.0).await;
        let run = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
        let rows = run_rows(dir.path(), "contact", &run.run_id).await;
        assert!(rows.len() < 20, "an incremental run reads the recent changes, not the table: {}", rows.len());
        assert_eq!(rows.iter().find(|(r, _)| *r == id).map(|(_, d)| *d), Some(expect_deleted), "after {mutation}");
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_fields_are_stored_as_salted_hashes() {
    use arrow::array::{Array, StringArray};
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let flows = ["Contact; mask = [\"Phone\", \"Email\"]"];
    let cfg = config_with(&sb, dir.path(), &flows, "mask_salt = \"pepper\"");
    let run = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    let truth: std::collections::HashMap<String, _> =
        truth(&sb, "Contact").await.into_iter().map(|r| (r["Id"].as_str().unwrap().to_owned(), r)).collect();
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    let manifest = dest.runs("contact").await.unwrap().into_iter().find(|m| m.run_id == run.run_id).unwrap();
    let file = std::fs::File::open(
        dir.path().join("contact").join(format!("run={}", run.run_id)).join(&manifest.parts[0].file),
    )
    .unwrap();
    let mut checked = 0;
    for batch in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap()
    {
        let batch = batch.unwrap();
        let col = |n: &str| batch.column_by_name(n).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let (ids, phones, emails) = (col("id"), col("phone"), col("email"));
        for r in 0..batch.num_rows() {
            let row = &truth[ids.value(r)];
            for (stored, field) in [(&phones, "Phone"), (&emails, "Email")] {
                match row[field].as_str() {
                    Some(v) => {
                        assert_eq!(stored.value(r), sluice::mask::hash("pepper", v), "{field} of {}", ids.value(r))
                    }
                    None => assert!(stored.is_null(r)),
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, truth.len());

    // Masking without a salt is refused before anything runs.
    let text = "[source]\ntype = \"salesforce\"\nlogin_url = \"http://x\"\nauth = \"password\"\nclient_id = \"a\"\nclient_secret = \"b\"\nusername = \"c\"\npassword = \"d\"\n[destination]\ntype = \"files\"\npath = \"p\"\n[[flows]]\nobject = \"Contact\"\nmask = [\"Phone\"]\n";
    let errors = sluice::load_config(text, "t.toml", &|_| None).unwrap_err();
    assert!(
        errors.iter().any(|e| e.to_string().contains("destination.mask_salt") && e.to_string().contains("flows[0]")),
        "{errors:?}"
    );
    sb.shutdown().await;
}

/// One run at a time writes a files root: a second one is refused before it reads anything,
/// told who holds the root, and nothing of the first is touched; once the first is done the
/// next run proceeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_a_files_root_is_refused_and_told_who_holds_it() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb, dir.path(), &["Account"]);
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    let held = dest.lock("sync").await.unwrap();
    let err = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap_err();
    assert_eq!(err.kind, sluice::Kind::User);
    let pid = format!("pid {}", std::process::id());
    assert!(err.message.contains("is in use by another sluice run") && err.message.contains(&pid), "{}", err.message);
    assert!(dest.state().await.unwrap().is_empty(), "the refused run wrote no state");
    assert!(dest.runs("account").await.unwrap().is_empty(), "the refused run wrote no run");
    drop(held);
    let summary = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert_eq!(summary.status, RunStatus::Ok, "{summary:#?}");
    sb.shutdown().await;
}

/// A flow whose extraction fails on a transient error (the org answers 500 for a moment) is
/// tried again from its committed state, as on every destination: the run ends `ok`, the
/// failed attempt leaves nothing behind, and the rows are those of the org.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_retried_after_a_transient_failure() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb, dir.path(), &["Account"]);
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    // The first attempt's extraction meets 500s; they stop 300 ms later, before the retry
    // (at least 500 ms on, with the default backoff this test runs with).
    let state = sb.state.clone();
    let starts = std::sync::atomic::AtomicU32::new(0);
    let observer = Recorder {
        events: Mutex::default(),
        hook: Box::new(move |event| {
            if event == "start Account" && starts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                state.knobs.write().error_rate = 1.0;
                let state = state.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    state.knobs.write().error_rate = 0.0;
                });
            }
        }),
    };
    let opts = SyncOptions { flow_retry: pipeline::FlowRetry::default(), ..fast() };
    let summary = pipeline::sync(&cfg, &opts, &observer).await.expect("the run starts");
    assert_eq!(summary.status, RunStatus::Ok, "{summary:#?}");
    let events = observer.events.lock().unwrap().clone();
    assert_eq!(events.iter().filter(|e| *e == "start Account").count(), 2, "two attempts: {events:?}");
    assert_eq!(summary.flows[0].rows, 120);
    let runs = dest.runs("account").await.unwrap();
    assert_eq!(runs.len(), 1, "one committed run");
    assert_eq!(runs[0].rows, 120);
    let dirs = std::fs::read_dir(dir.path().join("account")).unwrap().count();
    assert_eq!(dirs, 1, "the failed attempt left no directory");
    assert_eq!(dest.state().await.unwrap()["Account"].window_end, summary.flows[0].window.unwrap().end);
    let ids: std::collections::BTreeSet<String> =
        run_rows(dir.path(), "account", &runs[0].run_id).await.into_iter().map(|(id, _)| id).collect();
    let truth: std::collections::BTreeSet<String> =
        truth(&sb, "Account").await.iter().map(|r| r["Id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, truth, "the run holds exactly the org's Accounts");
    sb.shutdown().await;
}

/// Flows run side by side (`max_parallel_flows`, default 2) on the files destination too:
/// with every request slowed down, the second flow starts before the first ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_flows_run_in_parallel() {
    let sb = start().await;
    sb.state.knobs.write().latency_ms = 150;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb, dir.path(), &["Account", "Contact"]);
    let observer = Recorder { events: Mutex::default(), hook: Box::new(|_| {}) };
    let opts = SyncOptions { flow_retry: pipeline::FlowRetry::default(), ..fast() };
    let summary = pipeline::sync(&cfg, &opts, &observer).await.expect("the run starts");
    assert_eq!(summary.status, RunStatus::Ok, "{summary:#?}");
    let events = observer.events.lock().unwrap().clone();
    let at = |wanted: &str| events.iter().position(|e| e == wanted).unwrap_or_else(|| panic!("{wanted}: {events:?}"));
    assert!(at("start Contact") < at("end Account ok"), "Contact started before Account ended: {events:?}");
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    assert_eq!(
        dest.state().await.unwrap().len(),
        2,
        "both flows' windows are saved: {:?}",
        dest.state().await.unwrap()
    );
    assert_eq!((summary.flows[0].rows, summary.flows[1].rows), (120, 80));
    sb.shutdown().await;
}

/// On the files destination too, a change of a flow's `fields`, `exclude`, `rename` or
/// `mask` makes the next run read the object in full, with a warning; state written before
/// sluice recorded the selection reloads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_selection_reads_the_files_flow_in_full() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb, dir.path(), &["Account"]);
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert!(dest.state().await.unwrap()["Account"].selection.is_some(), "the selection is recorded");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let same = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert!(!same.flows[0].window.unwrap().is_full(), "unchanged: incremental");

    let mut masked = cfg.clone();
    masked.flows[0].exclude = vec!["Description".into()];
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let summary = pipeline::sync(&masked, &fast(), &pipeline::Quiet).await.unwrap();
    let f = &summary.flows[0];
    assert_eq!(f.status, FlowStatus::Ok, "{f:#?}");
    assert!(f.window.unwrap().is_full(), "read in full: {f:#?}");
    assert!(f.warnings.iter().any(|w| w.contains("rename or mask changed")), "{f:#?}");
    assert_eq!(f.rows, 120);

    // State from before the selection was recorded: no reload.
    let mut state = dest.state().await.unwrap()["Account"].clone();
    state.selection = None;
    dest.save_state("Account", state).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let summary = pipeline::sync(&cfg, &fast(), &pipeline::Quiet).await.unwrap();
    assert!(!summary.flows[0].window.unwrap().is_full(), "nothing recorded, nothing reloaded: {summary:#?}");
    sb.shutdown().await;
}
