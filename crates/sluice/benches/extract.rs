//! Benchmark: extraction of a large object from the sandbox into Parquet through REST
//! or Bulk API 2.0, with rows per second and this process's peak memory.
//!
//! The sandbox runs as its own process (`sluice sandbox`), so the memory measured here
//! (`VmHWM` of this process) is sluice's alone. One API per process, because a peak is
//! a high-water mark. `scripts/bench` runs it for both APIs and writes the table.
//!
//! `cargo bench -p sluice --bench extract -- --sluice PATH --api bulk|rest [--accounts N]`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use futures_util::StreamExt;
use sluice::config::{Api, Auth, FileFormat, SalesforceConfig, Secret};
use sluice::destination::files::FilesDestination;
use sluice::model::Window;
use sluice::source::salesforce::describe::Selection;
use sluice::source::salesforce::{Options, SalesforceSource};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let Some(sluice_bin) = arg("--sluice") else {
        eprintln!("usage: extract --sluice PATH --api bulk|rest [--accounts N]");
        return Ok(());
    };
    let api = match arg("--api").as_deref() {
        Some("rest") => Api::Rest,
        _ => Api::Bulk,
    };
    let accounts: u64 = arg("--accounts").and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mut child = Command::new(&sluice_bin)
        .args(["sandbox", "--json", "--records", &format!("Account={accounts}")])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {sluice_bin}: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("bad --json line {line:?}: {e}"))?;
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let cfg = SalesforceConfig {
        login_url: s("login_url"),
        auth: Auth::Password {
            client_id: s("client_id"),
            client_secret: Secret::new(s("client_secret")),
            username: s("username"),
            password: Secret::new(s("password")),
        },
        api_version: "62.0".into(),
        api,
        ca_file: None,
        api_budget_percent: 100,
        max_parallel_flows: 1,
    };
    let opts = Options::default();
    let result = async {
        let src = SalesforceSource::connect_with(&cfg, opts).await.map_err(|e| e.to_string())?;
        let described = src.describe("Account", &Selection::default()).await.map_err(|e| e.to_string())?;
        let end = src.source_now().ok_or("no source clock")?;
        let window = Window { start: None, end };
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
        let started = Instant::now();
        let mut run = dest.begin(&described.schema, "bench", window).map_err(|e| e.to_string())?;
        let mut stream = src.extract(&described, Some(window), None, api);
        while let Some(batch) = stream.next().await {
            run.write(&batch.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
        let manifest = run.finish().map_err(|e| e.to_string())?;
        let secs = started.elapsed().as_secs_f64();
        let bytes: u64 = manifest.parts.iter().map(|p| p.bytes).sum();
        Ok::<_, String>((manifest.rows, described.schema.columns.len(), secs, bytes))
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (rows, columns, secs, bytes) = result?;
    println!(
        "| {api:?} | {rows} | {columns} | {secs:.1} s | **{:.0}** | {:.0} MiB | **{:.0} MiB** |",
        rows as f64 / secs,
        bytes as f64 / (1024.0 * 1024.0),
        peak_rss_mib()
    );
    Ok(())
}
