//! The `sluice` binary against an in-process sandbox: `init`, `check`, and `sync` into
//! the files destination (full, then incremental after churn), `--json`, and the errors a
//! user sees (malformed config, wrong password, unknown object or flow, out-of-range
//! arguments) with their exit codes: 1 when work failed, 2 for bad config or usage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common;
use chrono::{DateTime, Utc};

use sandbox::Running;
use sandbox::server::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PASSWORD};
use serde_json::{Value as Json, json};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

async fn start() -> Running {
    let counts = [
        ("Account", 300),
        ("Contact", 250),
        ("Opportunity", 50),
        ("Lead", 20),
        ("Case", 20),
        ("User", 5),
        ("Invoice__c", 20),
    ];
    common::start(7, &counts).await
}

/// A config for the sandbox with the given password and flows, writing JSON lines under
/// `<dir>/data`.
fn write_config(dir: &Path, login_url: &str, password: &str, flows: &[&str]) -> PathBuf {
    let mut text = format!(
        r#"{}
[destination]
type = "files"
path = "{data}"
format = "jsonl"

[defaults]
lookback = "2m"
"#,
        common::source_toml(login_url, password),
        data = dir.join("data").display()
    );
    for flow in flows {
        text.push_str(&format!("\n[[flows]]\nobject = \"{flow}\"\n"));
    }
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary (off the runtime's threads, so the sandbox keeps serving).
async fn sluice(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let cwd = cwd.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN).args(&args).envs(env).current_dir(cwd).output().expect("the binary runs")
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

async fn admin(sb: &Running, method: reqwest::Method, path: &str, body: Option<Json>) -> String {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", sb.instance_url));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.text().await.unwrap()
}

fn stamp(row: &Json) -> DateTime<Utc> {
    let s = row["SystemModstamp"].as_str().expect("SystemModstamp");
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap().with_timezone(&Utc)
}

/// Every committed manifest of a table, oldest first.
fn manifests(data: &Path, table: &str) -> Vec<Json> {
    let Ok(entries) = std::fs::read_dir(data.join(table)) else { return Vec::new() };
    let mut out: Vec<Json> = entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("manifest.json")).ok())
        .map(|t| serde_json::from_str(&t).unwrap())
        .collect();
    out.sort_by_key(|m| m["run_id"].as_str().unwrap().to_owned());
    out
}

fn ts(v: &Json) -> DateTime<Utc> {
    serde_json::from_value(v.clone()).unwrap()
}

/// The `id` column of every row of one run.
fn run_ids(data: &Path, table: &str, run_id: &str) -> Vec<String> {
    let dir = data.join(table).join(format!("run={run_id}"));
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(entry.path()).unwrap().lines().filter(|l| !l.is_empty()) {
                let row: Json = serde_json::from_str(line).unwrap();
                ids.push(row["id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_full_then_incremental_after_churn() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &sb.login_url, DEFAULT_PASSWORD, &["Account", "Contact"]);
    let config = config.to_str().unwrap();
    // Some soft-deleted rows, which queryAll must return too.
    let deletes = json!({"mutations": [{"op": "churn", "object": "Account", "deletes": 3}]});
    admin(&sb, reqwest::Method::POST, "/sandbox/v1/mutations", Some(deletes)).await;
    // Rows stamped in the current second are left to the next run (U is floored to a
    // second): let the clock pass it so the first run reads everything.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let out = sluice(dir.path(), &["--config", config, "sync"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("account") && stdout.contains("ok"), "summary table: {stdout}");
    for (object, table) in [("Account", "account"), ("Contact", "contact")] {
        let runs = manifests(&data, table);
        assert_eq!(runs.len(), 1, "{table}: one run");
        let truth = common::truth(&sb, object).await;
        assert_eq!(runs[0]["rows"].as_u64().unwrap(), truth.len() as u64, "{object}: every row, deleted ones too");
        assert!(runs[0]["window_start"].is_null(), "{object}: first run is a full window");
    }
    assert!(common::truth(&sb, "Account").await.iter().any(|r| r["IsDeleted"] == json!(true)));
    let first_end = ts(&manifests(&data, "account")[0]["window_end"]);

    // Churn, then let the source clock pass the second the changes were stamped in.
    let churn = json!({"mutations": [{"op": "churn", "object": "Account", "inserts": 5, "updates": 5, "deletes": 2}]});
    let resp = admin(&sb, reqwest::Method::POST, "/sandbox/v1/mutations", Some(churn)).await;
    let resp: Json = serde_json::from_str(&resp).unwrap();
    let changed: BTreeSet<String> =
        resp["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert!(changed.len() >= 10, "{resp}");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let out = sluice(dir.path(), &["--config", config, "sync", "--json"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    let summary: Json = serde_json::from_str(&stdout).expect("--json prints one JSON document");
    assert_eq!(summary["status"], "ok");
    let run_id = summary["run_id"].as_str().unwrap();
    let account = &summary["flows"][0];
    assert_eq!(account["object"], "Account");
    assert_eq!(account["status"], "ok");
    let start = ts(&account["window"]["start"]);
    let end = ts(&account["window"]["end"]);
    assert_eq!(start, first_end - chrono::TimeDelta::minutes(2), "window starts at E - lookback");

    let ids = run_ids(&data, "account", run_id);
    assert_eq!(ids.len() as u64, account["rows"].as_u64().unwrap());
    let got: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    for id in &changed {
        assert!(got.contains(id.as_str()), "changed row {id} is in the incremental run");
    }
    let truth = common::truth(&sb, "Account").await;
    let expected: BTreeSet<&str> =
        truth.iter().filter(|r| (start..end).contains(&stamp(r))).map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(got, expected, "exactly the rows stamped in [E - lookback, U)");
    assert!(ids.len() * 5 < truth.len(), "incremental: {} of {} rows", ids.len(), truth.len());
    let runs = manifests(&data, "account");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["rows"].as_u64().unwrap(), ids.len() as u64);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_object_fails_alone_and_writes_no_manifest() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &sb.login_url, DEFAULT_PASSWORD, &["Account", "Nope__c", "Contact"]);
    let config = config.to_str().unwrap();
    let out = sluice(dir.path(), &["--config", config, "sync"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("Nope__c") && stdout.contains("failed"), "{stdout}");
    assert!(format!("{stdout}{stderr}").contains("unknown object `Nope__c`"), "{stdout}\n{stderr}");
    assert!(manifests(&data, "nope__c").is_empty());
    assert_eq!(manifests(&data, "account").len(), 1, "the other flows complete");
    assert_eq!(manifests(&data, "contact").len(), 1, "the other flows complete");

    // An unknown --objects name is a usage error naming it and the valid flows.
    let out = sluice(dir.path(), &["--config", config, "sync", "--objects", "Account,Bogus"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("Bogus") && stderr.contains("Contact"), "{stderr}");
    assert_eq!(manifests(&data, "account").len(), 1, "nothing ran");

    // --objects runs just the named flows.
    let out = sluice(dir.path(), &["--config", config, "sync", "--objects", "contact", "--json"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    let summary: Json = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["flows"].as_array().unwrap().len(), 1);
    assert_eq!(manifests(&data, "contact").len(), 2);
    assert_eq!(manifests(&data, "account").len(), 1);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_without_printing_it() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "hunter2-not-the-password";
    let config = write_config(dir.path(), &sb.login_url, secret, &["Account"]);
    let config = config.to_str().unwrap();
    for args in [
        vec!["--config", config, "sync"],
        vec!["--config", config, "sync", "--json"],
        vec!["--config", config, "check"],
    ] {
        let out = sluice(dir.path(), &args, &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(code(&out), 2, "{args:?}: bad credentials are the config's: {stdout}\n{stderr}");
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{args:?} leaks the password");
        assert!(!stdout.contains(DEFAULT_CLIENT_SECRET) && !stderr.contains(DEFAULT_CLIENT_SECRET));
        assert!(!stderr.is_empty() || !stdout.is_empty(), "{args:?}: says why");
        if args.contains(&"--json") {
            let doc: Json = serde_json::from_str(&stdout).expect("--json prints a JSON document on failure too");
            assert_eq!(doc["status"], "failed");
            assert!(doc["error"].as_str().unwrap().contains("authentication"), "{doc}");
        }
    }
    assert!(manifests(&dir.path().join("data"), "account").is_empty());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_config_exits_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", DEFAULT_PASSWORD, &["Account"]);
    let good = std::fs::read_to_string(&config).unwrap();
    let cases = [
        (good.replace("format = \"jsonl\"", "format = \"jsonl\"\ncolour = \"red\""), "colour"),
        (good.replace("lookback = \"2m\"", "lookback = \"ten minutes\""), "lookback"),
    ];
    for (body, key) in cases {
        std::fs::write(&config, body).unwrap();
        for command in ["sync", "check", "discover"] {
            let out = sluice(dir.path(), &["--config", config.to_str().unwrap(), command], &[]).await;
            let (stdout, stderr) = text(&out);
            assert_eq!(code(&out), 2, "{command} with a bad {key}: {stdout}\n{stderr}");
            assert!(stderr.contains("sluice.toml") && stderr.contains(key), "{command}: {stderr}");
            assert!(!stderr.contains(DEFAULT_PASSWORD), "{stderr}");
        }
    }
    // A missing config file is a usage error too.
    let out = sluice(dir.path(), &["--config", "missing.toml", "sync"], &[]).await;
    assert_eq!(code(&out), 2);
    assert!(text(&out).1.contains("missing.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_check_against_the_sandbox() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(dir.path(), &["init"], &[]).await;
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let path = dir.path().join("sluice.toml");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), sluice::config::SAMPLE);
    let out = sluice(dir.path(), &["init"], &[]).await;
    assert_eq!(code(&out), 2, "init refuses to overwrite");
    assert!(text(&out).1.contains("--force"));
    let out = sluice(dir.path(), &["init", "--force"], &[]).await;
    assert_eq!(code(&out), 0);

    // Point the sample at the sandbox; credentials come from the environment.
    let sample = std::fs::read_to_string(&path).unwrap().replace("https://login.salesforce.com", &sb.login_url);
    std::fs::write(&path, sample).unwrap();
    let env = [("SF_CLIENT_ID", DEFAULT_CLIENT_ID), ("SF_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)];
    let out = sluice(dir.path(), &["check"], &env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Account") && stdout.contains("Contact") && stdout.contains("all good"), "{stdout}");
    assert!(!stdout.contains(DEFAULT_CLIENT_SECRET) && !stderr.contains(DEFAULT_CLIENT_SECRET));

    // Without the environment the config is incomplete: exit 2, naming the variable.
    let out = sluice(dir.path(), &["check"], &[]).await;
    let (stdout, stderr) = text(&out);
    if std::env::var("SF_CLIENT_ID").is_err() {
        assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
        assert!(stderr.contains("SF_CLIENT_ID"), "{stderr}");
    }

    // discover lists the objects, and one object's columns.
    let out = sluice(dir.path(), &["discover", "--json"], &env).await;
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let objects: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(objects["objects"].as_array().unwrap().iter().any(|o| o["name"] == "Invoice__c"));
    let out = sluice(dir.path(), &["discover", "--object", "Account", "--json"], &env).await;
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let account: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(account["cursor"], "SystemModstamp");
    let columns = account["columns"].as_array().unwrap();
    assert!(columns.iter().any(|c| c["field"] == "BillingCity" && c["column"] == "billing_city"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sync_leaves_no_manifest_and_the_next_one_completes() {
    let sb = start().await;
    sb.state.knobs.write().latency_ms = 400;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &sb.login_url, DEFAULT_PASSWORD, &["Account"]);
    let config = config.to_str().unwrap().to_owned();
    let table_dir = data.join("account");
    let cwd = dir.path().to_owned();
    let killed = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(BIN)
            .args(["--config", &config, "sync"])
            .current_dir(cwd)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill it once the run's directory exists: the extraction is under way.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let started = std::fs::read_dir(&table_dir).map(|mut d| d.next().is_some()).unwrap_or(false);
            if started {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::read_dir(&table_dir).map(|d| d.count()).unwrap_or(0)
    })
    .await
    .unwrap();
    assert_eq!(killed, 1, "the killed run left its directory");
    assert!(manifests(&data, "account").is_empty(), "but no manifest");
    assert!(!data.join("_sluice_state.json").exists(), "and no state");

    sb.state.knobs.write().latency_ms = 0;
    let out = sluice(dir.path(), &["sync"], &[]).await; // ./sluice.toml is the default config
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let runs = manifests(&data, "account");
    assert_eq!(runs.len(), 1);
    assert!(runs[0]["window_start"].is_null(), "the next run reads the whole window again");
    assert_eq!(std::fs::read_dir(data.join("account")).unwrap().count(), 1, "the crashed run is removed");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_field_fails_its_flow_naming_the_field() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &sb.login_url, DEFAULT_PASSWORD, &["Contact"]);
    let mut text_cfg = std::fs::read_to_string(&config).unwrap();
    text_cfg.push_str("\n[[flows]]\nobject = \"Account\"\nfields = [\"Name\", \"Nope__c\"]\n");
    std::fs::write(&config, text_cfg).unwrap();
    let out = sluice(dir.path(), &["--config", config.to_str().unwrap(), "sync"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    assert!(format!("{stdout}{stderr}").contains("Nope__c"), "the message names the field:\n{stdout}\n{stderr}");
    assert!(manifests(&data, "account").is_empty(), "no manifest for the failed flow");
    assert_eq!(manifests(&data, "contact").len(), 1, "the other flow completes");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Nothing listens on port 9 of the loopback address: the connection is refused.
    let config = write_config(dir.path(), "http://127.0.0.1:9", DEFAULT_PASSWORD, &["Account"]);
    for command in ["sync", "check"] {
        let out = sluice(dir.path(), &["--config", config.to_str().unwrap(), command], &[]).await;
        let (stdout, stderr) = text(&out);
        let all = format!("{stdout}{stderr}");
        assert!(matches!(code(&out), 1 | 2), "{command}: {all}");
        assert!(all.contains("127.0.0.1:9") || all.contains("unreachable"), "{command} names the host: {all}");
        assert!(!all.contains("panicked"), "{all}");
        assert!(!all.contains(DEFAULT_PASSWORD), "{all}");
    }
    assert!(manifests(&data, "account").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_problems_exit_2_and_never_show_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", DEFAULT_PASSWORD, &["Account"]);
    let good = std::fs::read_to_string(&config).unwrap();
    let password = format!("password = \"{DEFAULT_PASSWORD}\"");
    // (config, what stderr must say, what it must not)
    let cases = [
        (
            good.replace(&password, "password = 12345678"),
            vec!["source.password: must be a string (got an integer)", "not shown because it is secret"],
            "12345678",
        ),
        (
            good.replace(&password, "password = [\"hunter2\"]"),
            vec!["source.password: must be a string (got an array)"],
            "hunter2",
        ),
        (
            good.replace("http://127.0.0.1:9", "http://admin:hunter2@127.0.0.1:9"),
            vec!["source.login_url: \"http://***@127.0.0.1:9\" holds credentials"],
            "hunter2",
        ),
        (
            good.replace("lookback = \"2m\"", "lookback = \"2m\"\nlag = \"5200w\""),
            vec!["defaults.lag: \"5200w\": longer than any setting allows (3650d); expected 0s to 1d"],
            DEFAULT_PASSWORD,
        ),
        (
            good.replace("lookback = \"2m\"", "lookback = \"2m\"\ndeletes = \"hard\""),
            vec!["defaults.deletes: has no effect with destination type = \"files\", which is append-only"],
            DEFAULT_PASSWORD,
        ),
        (
            format!("{good}\n[[flows]]\nobject = \"MyObj__c\"\n[[flows]]\nobject = \"My_Obj__c\"\n"),
            vec!["flows[2].object: \"My_Obj__c\" would write table \"my_obj__c\", which flows[1] (\"MyObj__c\")"],
            DEFAULT_PASSWORD,
        ),
    ];
    for (body, says, hidden) in cases {
        std::fs::write(&config, &body).unwrap();
        for args in [vec!["sync"], vec!["sync", "--json"], vec!["check"], vec!["discover"], vec!["verify", "--json"]] {
            let mut all = vec!["--config", config.to_str().unwrap()];
            all.extend(args.iter().copied());
            let out = sluice(dir.path(), &all, &[]).await;
            let (stdout, stderr) = text(&out);
            assert_eq!(code(&out), 2, "{args:?}: {stdout}\n{stderr}");
            for needle in &says {
                assert!(stderr.contains(needle), "{args:?}: no {needle:?} in\n{stderr}");
            }
            assert!(stderr.contains("sluice.toml"), "{stderr}");
            assert!(
                !stdout.contains(hidden) && !stderr.contains(hidden),
                "{args:?} shows {hidden:?}:\n{stdout}\n{stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", DEFAULT_PASSWORD, &["Account"]);
    let config = config.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["history", "--limit", "99999999999999999999"], "1..=10000"),
        (&["history", "--limit", "0"], "1..=10000"),
        (&["demo", "--accounts", "5"], "10..=1000000"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        let out = sluice(dir.path(), &all, &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(code(&out), 2, "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("overflow"), "{stderr}");
    }
    // A command that needs a warehouse, on the files destination: usage, before any work.
    let out = sluice(dir.path(), &["--config", config, "history", "--limit", "10000"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("destination.type = \"files\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_object_on_the_command_line_exits_2_and_a_failed_flow_1() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb.login_url, DEFAULT_PASSWORD, &["Account"]);
    let config = config.to_str().unwrap();
    // discover of an object the org does not have: nothing was done, the user must fix it.
    let out = sluice(dir.path(), &["--config", config, "discover", "--object", "Nope__c"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("Nope__c"), "{stderr}");
    // check reports the unknown object of a flow as the config's problem.
    let with_unknown = write_config(dir.path(), &sb.login_url, DEFAULT_PASSWORD, &["Account", "Nope__c"]);
    let out = sluice(dir.path(), &["--config", with_unknown.to_str().unwrap(), "check"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("problem  Nope__c"), "{stdout}");
    // In a run, the same flow fails alone while Account completes: 1.
    let out = sluice(dir.path(), &["--config", with_unknown.to_str().unwrap(), "sync", "--json"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    let summary: Json = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(summary["flows"][0]["status"], "ok");
    sb.shutdown().await;
}

/// `sluice reset` needs `--objects` (exit 2 without it) and reloads just those flows in
/// full: the files run holds every row of the object again, and the other flow's state is
/// untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_reloads_the_named_flows_in_full() {
    let sb = start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &sb.login_url, DEFAULT_PASSWORD, &["Account", "Contact"]);
    let config = config.to_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = sluice(dir.path(), &["--config", config, "sync"], &[]).await;
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let state = |name: &str| -> Json {
        serde_json::from_str(&std::fs::read_to_string(data.join("_sluice_state.json")).unwrap())
            .map(|s: Json| s[name].clone())
            .unwrap()
    };
    let contact_before = state("Contact");

    let out = sluice(dir.path(), &["--config", config, "reset"], &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(stderr.contains("--objects"), "{stderr}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = sluice(dir.path(), &["--config", config, "reset", "--objects", "Account", "--json"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    let summary: Json = serde_json::from_str(&stdout).expect("--json prints one JSON document");
    let flows = summary["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "only Account: {summary}");
    assert!(flows[0]["window"]["start"].is_null(), "read in full: {summary}");
    let runs = manifests(&data, "account");
    assert_eq!(runs.len(), 2);
    let ids: BTreeSet<String> = run_ids(&data, "account", summary["run_id"].as_str().unwrap()).into_iter().collect();
    let truth: BTreeSet<String> =
        common::truth(&sb, "Account").await.iter().map(|r| r["Id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, truth, "the reload holds every Account");
    assert_eq!(state("Contact"), contact_before, "Contact's state is untouched");
    assert_eq!(state("Account")["run_id"], summary["run_id"]);
    sb.shutdown().await;
}
