//! `sluice serve` end to end, on DuckDB and PostgreSQL: the built binary runs every flow
//! every 2 s against the sandbox while the org keeps changing, answers its API, and stops on
//! SIGTERM with exit 0; the tables then equal the sandbox's ground truth row by row, and
//! `_sluice.runs` shows runs that never overlapped. Killed with SIGKILL at several instants
//! and restarted, it resumes and still ends equal to the truth, with no duplicate row. A
//! flow that keeps failing is paused after `pause_after_failures` while the others go on.
//!
//! Longer than most files because each test is a whole scenario against real processes
//! (the binary, the sandbox, PostgreSQL, a webhook receiver), sharing the helpers above;
//! one file keeps `sluice serve`'s end-to-end behaviour in one place.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use sandbox::server::DEFAULT_PASSWORD;
use serde_json::{Value as Json, json};

use crate::common;
use crate::crash::{admin, assert_equals_truth, churn, start};
use crate::target::{self, Kind, Warehouse};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const TOKEN: &str = "serve-test-token-0123456789";

fn write_config(dir: &Path, login_url: &str, wh: &Warehouse) -> PathBuf {
    write_config_with(dir, login_url, wh, "")
}

/// [`write_config`] with `more` flows after the others.
fn write_config_with(dir: &Path, login_url: &str, wh: &Warehouse, more: &str) -> PathBuf {
    let text = format!(
        r#"{}
{}
[serve]
listen = "127.0.0.1:0"
token = "{TOKEN}"
shutdown_grace = "30s"

[defaults]
every = "2s"
lookback = "10m"
reconcile_every = "never"

[[flows]]
object = "Account"

[[flows]]
object = "Contact"
slice = "400d"

[[flows]]
object = "Lead"
fields = ["Id", "Name", "NoSuchField__c"]
pause_after_failures = 2
{more}"#,
        common::source_toml(login_url, DEFAULT_PASSWORD),
        wh.toml
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `sluice serve` and its API's base URL; its log goes to a file beside the config.
struct Serve {
    child: Child,
    api: String,
    log: PathBuf,
    client: reqwest::Client,
}

impl Serve {
    async fn start(config: &Path) -> Serve {
        Serve::start_with(config, &[]).await
    }

    async fn start_with(config: &Path, args: &[&str]) -> Serve {
        let log = config.with_extension(format!("{}.log", Utc::now().timestamp_micros()));
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(args)
            .arg("serve")
            // The default (`warn,sluice=info`) and the line that says a run is in the
            // control tables, which the kill test waits for.
            .env("SLUICE_LOG", "warn,sluice=info,sluice::pipeline::flows=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // The first line names the API's address; the rest is drained so the pipe never fills.
        let api = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            std::thread::spawn(move || lines.for_each(drop));
            first
        })
        .await
        .unwrap();
        let api = api
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .and_then(|w| w.strip_suffix("/api/v1"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("serve did not say where it listens: {api:?}\n{}", read(&log)));
        Serve { child, api, log, client: reqwest::Client::new() }
    }

    async fn get(&self, path: &str) -> (StatusCode, Json) {
        let response = self.client.get(format!("{}{path}", self.api)).bearer_auth(TOKEN).send().await.unwrap();
        (response.status(), response.json().await.unwrap_or(Json::Null))
    }

    async fn flows(&self) -> Vec<Json> {
        let (status, body) = self.get("/api/v1/flows").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    /// Waits until `object`'s newest run started after `after` and ended `ok`.
    async fn wait_for_run_after(&self, object: &str, after: DateTime<Utc>) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let flows = self.flows().await;
            let flow = flows.iter().find(|f| f["object"] == object).unwrap();
            let started = flow["last_run"]["started_at"].as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
            if started.is_some_and(|s| s > after) && flow["last_run"]["phase"] == "done" {
                return;
            }
            assert!(Instant::now() < deadline, "no run of {object} after {after}: {flow:#}\n{}", read(&self.log));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the log holds `count` lines with `text`.
    async fn wait_for_log(&self, text: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while read(&self.log).matches(text).count() < count {
            assert!(Instant::now() < deadline, "no {text:?} in the log:\n{}", read(&self.log));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM, then the exit status (within the grace and a margin).
    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                assert!(Instant::now() < deadline, "serve did not stop within its grace\n{}", read(&self.log));
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .unwrap()
    }

    /// SIGKILL.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The runs `_sluice.runs` recorded, oldest first: (id, started ms, finished ms, status,
/// trigger). Asserts none started before the previous one finished.
async fn assert_runs_never_overlapped(wh: &Warehouse) -> Vec<(String, i64, Option<i64>, String, String)> {
    let d = wh.dialect();
    let rows = wh
        .query(&format!(
            "SELECT run_id, {}, {}, status, {} FROM _sluice.runs ORDER BY 2",
            d.epoch_ms("started_at"),
            d.epoch_ms("finished_at"),
            d.quote_ident("trigger")
        ))
        .await;
    let runs: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let ms = |v: &Option<String>| v.as_deref().map(|t| t.parse::<i64>().unwrap());
            (r[0].clone().unwrap(), ms(&r[1]).unwrap(), ms(&r[2]), r[3].clone().unwrap(), r[4].clone().unwrap())
        })
        .collect();
    for pair in runs.windows(2) {
        if let Some(finished) = pair[0].2 {
            assert!(pair[1].1 >= finished, "run {} started before {} finished: {runs:#?}", pair[1].0, pair[0].0);
        }
    }
    runs
}

async fn serve_keeps_the_tables_equal_to_the_truth(kind: Kind) {
    let sb = common::start(21, &[("Account", 4000), ("Contact", 3000), ("Invoice__c", 300)]).await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    // Invoices' `Account_Name__c` is a formula over their Account's name: the churn renames
    // accounts without touching an invoice, which only the formula refresh sees.
    let invoices = "\n[[flows]]\nobject = \"Invoice__c\"\nformula_refresh_every = \"3s\"\n";
    let config = write_config_with(dir.path(), &sb.login_url, &wh, invoices);
    let serve = Serve::start(&config).await;
    let began = Utc::now();
    serve.wait_for_run_after("Account", began - chrono::TimeDelta::seconds(60)).await;

    // The API wants the token.
    let unauthorized = serve.client.get(format!("{}/api/v1/flows", serve.api)).send().await.unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    let healthz = reqwest::get(format!("{}/healthz", serve.api)).await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);

    // The soak: churn every second and a half for `SLUICE_SOAK_SECS` (150 by default), while
    // every flow runs every 2 s and the invoices' formulas are refreshed every 3 s.
    let soak = Duration::from_secs(std::env::var("SLUICE_SOAK_SECS").map_or(150, |s| s.parse().unwrap()));
    let parent = invoice_parent(&sb).await;
    let mut round = 0;
    while round < 4 || (Utc::now() - began).to_std().unwrap_or_default() < soak {
        round += 1;
        churn(&sb).await;
        let renamed =
            json!({"op": "update", "object": "Account", "id": parent, "fields": {"Name": format!("Renamed {round}")}});
        admin(&sb, "/sandbox/v1/mutations", json!({ "mutations": [renamed] })).await;
        if round % 5 == 0 {
            // The CLI reads beside the running serve (on DuckDB, once its run lets go).
            let read = |args: &[&str]| {
                let out = Command::new(BIN).arg("--config").arg(&config).args(args).output().unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(out.status.success(), "{args:?}: {}\n{text}", String::from_utf8_lossy(&out.stderr));
                text
            };
            let counted = read(&["query", "--csv", "SELECT COUNT(*) AS n FROM salesforce.account"]);
            assert!(counted.lines().nth(1).is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0)), "{counted}");
            assert!(read(&["status"]).contains("Account"));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let changed = Utc::now();
    serve.wait_for_run_after("Account", changed).await;
    serve.wait_for_run_after("Contact", changed).await;
    // A run starting more than `formula_refresh_every` after the last rename refreshes, if no
    // refresh began after the rename already.
    serve.wait_for_run_after("Invoice__c", changed + chrono::TimeDelta::seconds(4)).await;

    // A run asked through the API.
    let asked = serve
        .client
        .post(format!("{}/api/v1/runs", serve.api))
        .bearer_auth(TOKEN)
        .json(&json!({"objects": ["Contact"], "full_refresh": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let run_id = asked.json::<Json>().await.unwrap()["run_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, run) = serve.get(&format!("/api/v1/runs/{run_id}")).await;
        if status == StatusCode::OK && run["status"] == "ok" {
            assert_eq!(run["flows"][0]["flow"], "Contact");
            break;
        }
        assert!(Instant::now() < deadline, "run {run_id} never ended ok: {run}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The failing flow was paused after 2 failures, naming its problem; the others went on.
    let flows = serve.flows().await;
    let lead = flows.iter().find(|f| f["object"] == "Lead").unwrap();
    assert_eq!(
        (&lead["state"], &lead["freshness"], &lead["consecutive_failures"]),
        (&json!("paused"), &json!("error"), &json!(2)),
        "{lead:#}"
    );
    assert!(lead["last_error"].as_str().unwrap().contains("NoSuchField__c"), "{lead:#}");
    assert!(lead["hint"].as_str().unwrap().contains("sluice discover --object"), "{lead:#}");
    // The others run every 2 s, so one may be running at this very instant.
    for flow in flows.iter().filter(|f| f["object"] != "Lead") {
        assert!(["idle", "running"].contains(&flow["state"].as_str().unwrap()), "{flow:#}");
        assert_eq!(
            (&flow["freshness"], &flow["consecutive_failures"], &flow["last_error"]),
            (&json!("on_time"), &json!(0), &Json::Null),
            "{flow:#}"
        );
    }

    let status = serve.terminate().await;
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
    assert_equals_truth(&sb, &wh).await;
    assert_formulas_equal_the_truth(&sb, &wh, &format!("Renamed {round}")).await;
    let runs = assert_runs_never_overlapped(&wh).await;
    assert!(runs.len() as u64 >= soak.as_secs() / 4, "{} runs in {soak:?}: {runs:#?}", runs.len());
    assert!(runs.iter().all(|r| r.4 == "schedule" || r.4 == "api"), "{runs:#?}");
    assert!(runs.iter().any(|r| r.0 == run_id && r.4 == "api"), "{runs:#?}");
    // Runs with Lead were partial, or failed when Lead ran alone (its back-off apart from
    // the others' schedule); none was left running or abandoned.
    assert!(runs.iter().all(|r| ["ok", "partial", "failed"].contains(&r.3.as_str())), "{runs:#?}");
    assert!(runs.iter().filter(|r| r.3 == "ok").count() >= 4, "{runs:#?}");
    // The schedule persisted: Lead paused with its 2 failures, the others clean.
    let schedule = wh
        .query(&format!(
            "SELECT target_table, {}, failures FROM _sluice.schedule ORDER BY 1",
            target::bool_text("paused")
        ))
        .await;
    let schedule: Vec<Vec<String>> =
        schedule.into_iter().map(|r| r.into_iter().map(Option::unwrap).collect()).collect();
    assert_eq!(
        schedule,
        [["account", "false", "0"], ["contact", "false", "0"], ["invoice__c", "false", "0"], ["lead", "true", "2"]]
    );
    sb.shutdown().await;
}

/// The Account that the first invoice (by Id) belongs to.
async fn invoice_parent(sb: &sandbox::Running) -> String {
    let truth = common::truth(sb, "Invoice__c").await;
    let first = truth.iter().min_by_key(|r| r["Id"].as_str().unwrap().to_owned()).unwrap();
    first["Account__c"].as_str().unwrap().to_owned()
}

/// Every invoice's `Account_Name__c` (a formula over its Account's name) equals the org's,
/// and the renamed parent's invoices carry its last name.
async fn assert_formulas_equal_the_truth(sb: &sandbox::Running, wh: &Warehouse, last_name: &str) {
    let truth: std::collections::HashMap<String, Option<String>> = common::truth(sb, "Invoice__c")
        .await
        .into_iter()
        .map(|r| (r["Id"].as_str().unwrap().to_owned(), r["Account_Name__c"].as_str().map(str::to_owned)))
        .collect();
    let rows = wh.query("SELECT id, account_name__c FROM salesforce.invoice__c").await;
    assert_eq!(rows.len(), truth.len());
    let wrong: Vec<_> = rows
        .iter()
        .filter(|r| truth.get(r[0].as_deref().unwrap()) != Some(&r[1]))
        .map(|r| format!("{:?}: {:?}, org {:?}", r[0], r[1], truth.get(r[0].as_deref().unwrap())))
        .collect();
    assert!(wrong.is_empty(), "{} stale formula values: {wrong:#?}", wrong.len());
    let renamed = truth.values().filter(|v| v.as_deref() == Some(last_name)).count();
    assert!(renamed > 0, "the renamed parent has invoices");
}

/// The seed of the instants the kill tests choose: `SLUICE_FAULT_SEED` if set, else a fresh
/// one. Printed, so a failure replays.
fn kill_seed(test: &str) -> u64 {
    let seed = match std::env::var("SLUICE_FAULT_SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("SLUICE_FAULT_SEED={s} is not a number")),
        Err(_) => rand::random(),
    };
    eprintln!("{test}: kill instants from SLUICE_FAULT_SEED={seed}");
    seed
}

async fn killed_and_restarted_it_resumes_without_duplicates(kind: Kind) {
    use rand::{Rng, SeedableRng};
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(kind).await;
    let config = write_config(dir.path(), &sb.login_url, &wh);
    let seed = kill_seed(&format!("killed_and_restarted_it_resumes_without_duplicates({kind:?})"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // Each process is killed at a random instant: the first during the first loads, once
    // its run is in the control tables (so some kill surely hits a recorded run), the others
    // some milliseconds after a run starts (its log says so) or anywhere in its first
    // seconds, between runs, while saving its schedule, or before it ran anything.
    for round in 0..6 {
        let serve = Serve::start(&config).await;
        if round > 0 {
            churn(&sb).await;
        }
        if round == 0 {
            serve.wait_for_log("run recorded", 1).await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..60))).await;
        } else if rng.random_bool(0.6) {
            serve.wait_for_log("run starts", 1).await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..60))).await;
        } else {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..3000))).await;
        }
        serve.kill();
        wh.lapse_lease().await;
    }
    // The last one logs JSON lines, for log shippers.
    let serve = Serve::start_with(&config, &["--log-format", "json"]).await;
    churn(&sb).await;
    let changed = Utc::now();
    serve.wait_for_run_after("Account", changed).await;
    serve.wait_for_run_after("Contact", changed).await;
    let log = serve.log.clone();
    let status = serve.terminate().await;
    assert!(status.success(), "{status:?}");
    let lines: Vec<Json> = read(&log).lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
    let starts = lines.iter().filter(|l| l["message"] == "run starts").count();
    assert!(starts > 0 && lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()), "{lines:#?}");
    assert!(lines.iter().any(|l| l["message"] == "run starts" && l["run"].is_string()), "{lines:#?}");
    assert_equals_truth(&sb, &wh).await;
    let runs = assert_runs_never_overlapped(&wh).await;
    assert!(runs.iter().any(|r| r.3 == "abandoned"), "some kill must have hit a run: {runs:#?}\nseed {seed}");
    sb.shutdown().await;
}

target::suite!(serve_keeps_the_tables_equal_to_the_truth, killed_and_restarted_it_resumes_without_duplicates);

/// Refused before anything starts, exit 2: a non-loopback address without a token, and a
/// destination with no control tables to keep the schedule in.
#[test]
fn serve_refuses_what_it_cannot_run_safely() {
    let dir = tempfile::tempdir().unwrap();
    let source = common::source_toml("http://127.0.0.1:9", DEFAULT_PASSWORD);
    let cases = [
        (
            format!(
                "{source}\n[destination]\ntype = \"duckdb\"\npath = \"w.duckdb\"\n[serve]\nlisten = \"0.0.0.0:0\"\n"
            ),
            "serve.token: is required because serve.listen (0.0.0.0:0) is not a loopback address",
        ),
        (
            format!("{source}\n[destination]\ntype = \"files\"\npath = \"out\"\n[serve]\nlisten = \"127.0.0.1:0\"\n"),
            "`sluice serve` works on a warehouse's tables and control tables; destination.type = \"files\"",
        ),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, format!("{text}\n[[flows]]\nobject = \"Account\"\n")).unwrap();
        let out = Command::new(BIN).current_dir(dir.path()).args(["serve"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}

/// A key in the notify URL's path, as webhook URLs carry one: it must never be printed.
const HOOK_KEY: &str = "hook-key-4f1c9e";

/// A local receiver of `serve.notify_url`'s POSTs: its URL and the JSON bodies, in order.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Json>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook/{HOOK_KEY}", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let bodies = std::sync::Arc::clone(&got);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let bodies = std::sync::Arc::clone(&bodies);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if buf.len() >= end + 4 + len {
                        assert!(head.starts_with(&format!("post /hook/{HOOK_KEY} ")), "{head}");
                        bodies.lock().unwrap().push(serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap());
                        let reply = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                        let _ = conn.write_all(reply).await;
                        return;
                    }
                }
            });
        }
    });
    (url, got)
}

/// Waits until `events` holds a `kind` event about `flow`.
async fn wait_for_event(events: &std::sync::Mutex<Vec<Json>>, kind: &str, flow: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !events.lock().unwrap().iter().any(|e| e["event"] == kind && e["flow"] == flow) {
        assert!(Instant::now() < deadline, "no {kind} event for {flow}: {:#?}\n{}", events.lock().unwrap(), read(log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `serve.notify_url` hears a flow's first failure, its pause, and a recovery: Lead asks
/// for a field the org gains later (it fails, then recovers); Case for one it never has (it
/// fails and is paused after 2 runs). The URL, a secret, is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_url_hears_failures_pauses_and_recoveries() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(Kind::DuckDb).await;
    let (url, events) = receiver().await;
    let text = format!(
        r#"{}
{}
[serve]
listen = "127.0.0.1:0"
token = "{TOKEN}"
notify_url = "{url}"

[defaults]
every = "2s"
reconcile_every = "never"

[[flows]]
object = "Account"

[[flows]]
object = "Lead"
fields = ["Id", "Name", "Tier__c"]

[[flows]]
object = "Case"
fields = ["Id", "NoSuchField__c"]
pause_after_failures = 2
"#,
        common::source_toml(&sb.login_url, DEFAULT_PASSWORD),
        wh.toml
    );
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, text).unwrap();
    let serve = Serve::start(&config).await;
    wait_for_event(&events, "failure", "Lead", &serve.log).await;
    wait_for_event(&events, "failure", "Case", &serve.log).await;
    wait_for_event(&events, "paused", "Case", &serve.log).await;
    let added = json!({"mutations": [{"op": "add_field", "object": "Lead", "field": {"name": "Tier__c", "type": "picklist", "values": ["Gold", "Silver"]}}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/sandbox/v1/mutations", sb.instance_url))
        .json(&added)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    wait_for_event(&events, "recovered", "Lead", &serve.log).await;
    let status = serve.terminate().await;
    assert!(status.success());

    let events = events.lock().unwrap().clone();
    // One failure event per streak, however many runs failed; nothing about Account.
    let count = |kind: &str, flow: &str| events.iter().filter(|e| e["event"] == kind && e["flow"] == flow).count();
    assert_eq!((count("failure", "Lead"), count("failure", "Case"), count("paused", "Case")), (1, 1, 1), "{events:#?}");
    assert!(!events.iter().any(|e| e["flow"] == "Account"), "{events:#?}");
    let paused = events.iter().find(|e| e["event"] == "paused").unwrap();
    assert_eq!((&paused["table"], &paused["consecutive_failures"]), (&json!("case"), &json!(2)), "{paused:#}");
    assert!(paused["error"].as_str().unwrap().contains("NoSuchField__c"), "{paused:#}");
    assert!(paused["run_id"].as_str().is_some_and(|id| !id.is_empty()), "{paused:#}");
    let recovered = events.iter().find(|e| e["event"] == "recovered").unwrap();
    assert_eq!(recovered["consecutive_failures"], 0, "{recovered:#}");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            assert!(!read(&path).contains(HOOK_KEY), "the notify URL was printed:\n{}", read(&path));
        }
    }
    sb.shutdown().await;
}

/// The runs that wrote `table` (a flow-run row of it), oldest first: (id, started ms,
/// finished ms). Asserts none started before the previous one finished: one run at a time
/// per flow, whichever process made it.
async fn assert_flow_runs_never_overlapped(wh: &Warehouse, table: &str) -> Vec<(String, i64, Option<i64>)> {
    let d = wh.dialect();
    let rows = wh
        .query(&format!(
            "SELECT r.run_id, {}, {} FROM _sluice.runs r WHERE EXISTS (SELECT 1 FROM _sluice.flow_runs f WHERE \
             f.run_id = r.run_id AND f.target_table = '{table}') ORDER BY 2",
            d.epoch_ms("r.started_at"),
            d.epoch_ms("r.finished_at"),
        ))
        .await;
    let runs: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let ms = |v: &Option<String>| v.as_deref().map(|t| t.parse::<i64>().unwrap());
            (r[0].clone().unwrap(), ms(&r[1]).unwrap(), ms(&r[2]))
        })
        .collect();
    for pair in runs.windows(2) {
        if let Some(finished) = pair[0].2 {
            assert!(
                pair[1].1 >= finished,
                "{table}: run {} started before {} finished: {runs:#?}",
                pair[1].0,
                pair[0].0
            );
        }
    }
    runs
}

/// Three `sluice serve` processes on one PostgreSQL database share its flows through the
/// flows' locks: no flow is ever written by two runs at once, whichever processes made them;
/// there is about one run per interval in all, not one per process (a process finding a
/// flow held leaves it to the holder, and each takes the others' clocks from
/// `_sluice.schedule` before it runs). One is killed while it starts a run, with nothing
/// done to help: its flows run again in the others within `lease_timeout` and an interval.
/// The tables then equal the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serves_share_one_postgres_database() {
    const EVERY_SECS: i64 = 3;
    const LEASE_SECS: i64 = 10;
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(Kind::Postgres).await;
    let text = format!(
        "{}\n{}\n[serve]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nlease_timeout = \"{LEASE_SECS}s\"\n\n\
         [defaults]\nevery = \"{EVERY_SECS}s\"\nreconcile_every = \"never\"\n\n[[flows]]\nobject = \"Account\"\n\n\
         [[flows]]\nobject = \"Contact\"\n",
        common::source_toml(&sb.login_url, DEFAULT_PASSWORD),
        wh.toml
    );
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, text).unwrap();
    // Every API call a little slow, so that a run lasts a while and the others find its
    // flows held more than once in a row if they could.
    sb.state.knobs.write().latency_ms = 150;
    let mut serves = Vec::new();
    for _ in 0..3 {
        serves.push(Serve::start(&config).await);
    }
    let began = Instant::now();
    for _ in 0..4 {
        churn(&sb).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // Killed as it starts a run: it may hold a flow.
    let victim = serves.remove(0);
    let starts = read(&victim.log).matches("run starts").count();
    victim.wait_for_log("run starts", starts + 1).await;
    victim.kill();
    let killed = Utc::now().timestamp_millis();
    for _ in 0..3 {
        churn(&sb).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // Two intervals and some: every flow has run since the last change.
    tokio::time::sleep(Duration::from_secs(2 * EVERY_SECS as u64 + 2)).await;
    for serve in serves {
        // A flow found held is asked for again after a back-off (here an interval), not at
        // once and again until its holder's run ends.
        let held: usize =
            read(&serve.log).lines().filter(|l| l.contains("run ends")).map(|l| l.matches(" held").count()).sum();
        let most = 2 * (began.elapsed().as_secs() as usize / EVERY_SECS as usize + 2);
        assert!(held <= most, "{held} held outcomes, at most {most} expected: {}", read(&serve.log));
        assert!(serve.terminate().await.success());
    }
    assert_equals_truth(&sb, &wh).await;
    for table in ["account", "contact"] {
        let runs = assert_flow_runs_never_overlapped(&wh, table).await;
        let (first, last) = (runs.first().unwrap().1, runs.iter().filter_map(|r| r.2).max().unwrap());
        let moved = runs.iter().map(|r| r.1).find(|started| *started > killed);
        let within = (LEASE_SECS + EVERY_SECS + 2) * 1000;
        assert!(
            moved.is_some_and(|at| at - killed <= within),
            "{table}: no run within {within} ms of the kill at {killed}: {runs:#?}"
        );
        let count =
            wh.query_i64(&format!("SELECT COUNT(*) FROM _sluice.flow_runs WHERE target_table = '{table}'")).await;
        // One run per interval and a few more (the processes' first runs, a run as one
        // dies): not one per interval per process.
        let most = (last - first) / 1000 / EVERY_SECS + 4;
        assert!(count <= most, "{table}: {count} runs in {} ms, at most {most} expected: {runs:#?}", last - first);
    }
    sb.shutdown().await;
}

/// With `tls_cert` and `tls_key`, the API speaks HTTPS only: a client trusting the
/// certificate gets answers, plain HTTP gets none. A key that does not parse stops serve
/// before it starts, naming both keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_with_the_configured_certificate() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = (dir.path().join("ca.pem"), dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // A CA, and a certificate for 127.0.0.1 that it signs (rustls refuses a CA as a server's).
    let script = "set -e
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sluice-test-ca -keyout ca.key -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out leaf.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > leaf.ext
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile leaf.ext -out cert.pem";
    let made = Command::new("bash").arg("-c").arg(script).current_dir(dir.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let wh = Warehouse::new(Kind::DuckDb).await;
    let text = |key: &Path| {
        format!(
            "{}\n{}\n[serve]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n\
             [[flows]]\nobject = \"Account\"\n",
            common::source_toml(&sb.login_url, DEFAULT_PASSWORD),
            wh.toml,
            cert.display(),
            key.display()
        )
    };
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, text(&key)).unwrap();
    let serve = Serve::start(&config).await;
    assert!(serve.api.starts_with("https://127.0.0.1:"), "{}", serve.api);
    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let health = trusted.get(format!("{}/healthz", serve.api)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let flows = trusted.get(format!("{}/api/v1/flows", serve.api)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(flows.status(), StatusCode::OK);
    let plain = serve.api.replacen("https://", "http://", 1);
    let answer = reqwest::get(format!("{plain}/healthz")).await;
    assert!(answer.is_err() || !answer.unwrap().status().is_success(), "plain HTTP must not be answered");
    assert!(serve.terminate().await.success());

    // A key file that is not a key: exit 2 before serving.
    std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
    std::fs::write(&config, text(&dir.path().join("bad.pem"))).unwrap();
    let out = Command::new(BIN).arg("--config").arg(&config).arg("serve").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("serve.tls_cert / serve.tls_key"), "{stderr}");
    sb.shutdown().await;
}

/// While serve runs a flow, `sluice sync` by hand is told the destination is held. SIGTERM
/// while a run is in progress: serve lets it go on for `shutdown_grace`, then aborts it and
/// exits 0 in time; the aborted flows stay due, so the next start runs them
/// at once, and the tables then equal the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_exits_0_within_the_grace() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(Kind::DuckDb).await;
    let text = format!(
        "{}\n{}\n[serve]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nshutdown_grace = \"1s\"\n\n[defaults]\n\
         every = \"1h\"\nreconcile_every = \"never\"\n\n[[flows]]\nobject = \"Account\"\n\n[[flows]]\nobject = \"Contact\"\n",
        common::source_toml(&sb.login_url, DEFAULT_PASSWORD),
        wh.toml
    );
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, text).unwrap();
    // Every API call takes 400 ms: the first load lasts well beyond the grace.
    sb.state.knobs.write().latency_ms = 400;
    let serve = Serve::start(&config).await;
    serve.wait_for_log("run starts", 1).await;
    // A sync by hand meanwhile is told the destination is held, and changes nothing.
    let by_hand = Command::new(BIN).arg("--config").arg(&config).arg("sync").output().unwrap();
    let said = String::from_utf8_lossy(&by_hand.stderr);
    assert_eq!(by_hand.status.code(), Some(1), "{said}");
    assert!(said.contains("is in use by another"), "{said}");
    let asked = Instant::now();
    let log = serve.log.clone();
    let status = serve.terminate().await;
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}\n{}", read(&log));
    assert!(took < Duration::from_secs(4), "stopped {took:?} after SIGTERM, with a 1 s grace\n{}", read(&log));
    assert!(read(&log).contains("the shutdown grace is over"), "{}", read(&log));

    sb.state.knobs.write().latency_ms = 0;
    let began = Utc::now();
    let serve = Serve::start(&config).await;
    serve.wait_for_run_after("Account", began).await;
    serve.wait_for_run_after("Contact", began).await;
    assert!(serve.terminate().await.success());
    assert_equals_truth(&sb, &wh).await;
    sb.shutdown().await;
}
