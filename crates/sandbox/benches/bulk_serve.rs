//! Benchmark: how fast the sandbox serves a large Bulk API 2.0 query result, and how
//! much memory it holds for a large org.
//!
//! Runs `sluice sandbox` as a separate process (so its memory is measured alone, from
//! `/proc/<pid>/status`), logs in, creates a `queryAll` job selecting every
//! Bulk-readable Account field, waits for it, and downloads every page. Prints one
//! markdown table; `scripts/bench` puts it in `docs/benchmarks.md`.
//!
//! `cargo bench -p sluice-sandbox --bench bulk_serve -- --sluice PATH [--accounts N] [--page N]`

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sandbox {
    child: Child,
    url: String,
    client_id: String,
    client_secret: String,
    username: String,
    password: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (VmRSS, VmHWM) of a process in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn start(sluice: &str, accounts: u64) -> Result<(Sandbox, Duration), String> {
    let started = Instant::now();
    let mut child = Command::new(sluice)
        .args(["sandbox", "--json", "--records", &format!("Account={accounts}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {sluice}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
    let ready = started.elapsed();
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("bad --json line {line:?}: {e}"))?;
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok((
        Sandbox {
            child,
            url: s("instance_url"),
            client_id: s("client_id"),
            client_secret: s("client_secret"),
            username: s("username"),
            password: s("password"),
        },
        ready,
    ))
}

/// GET `url` with the session and parse the JSON answer.
async fn get_json(http: &reqwest::Client, url: &str, bearer: &str) -> Result<serde_json::Value, String> {
    let resp = http.get(url).header("Authorization", bearer).send().await.map_err(|e| e.to_string())?;
    resp.json().await.map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let Some(sluice) = arg("--sluice") else {
        eprintln!("usage: bulk_serve --sluice PATH [--accounts N] [--page N]");
        return Ok(());
    };
    let accounts: u64 = arg("--accounts").and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let page: Option<u64> = arg("--page").and_then(|a| a.parse().ok());
    let (sb, ready) = start(&sluice, accounts)?;
    let pid = sb.child.id();
    let (rss_loaded, _) = memory(pid);

    let http = reqwest::Client::builder().no_gzip().build().map_err(|e| e.to_string())?;
    let token: serde_json::Value = http
        .post(format!("{}/services/oauth2/token", sb.url))
        .form(&[
            ("grant_type", "password"),
            ("client_id", &sb.client_id),
            ("client_secret", &sb.client_secret),
            ("username", &sb.username),
            ("password", &sb.password),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let bearer = format!("Bearer {}", token["access_token"].as_str().ok_or("no access_token")?);
    let api = format!("{}/services/data/v62.0", sb.url);
    let describe = get_json(&http, &format!("{api}/sobjects/Account/describe"), &bearer).await?;
    let fields: Vec<&str> = describe["fields"]
        .as_array()
        .ok_or("describe has no fields")?
        .iter()
        .filter(|f| !matches!(f["type"].as_str(), Some("address" | "location" | "base64")))
        .filter_map(|f| f["name"].as_str())
        .collect();
    let soql = format!("SELECT {} FROM Account", fields.join(", "));

    let t0 = Instant::now();
    let job: serde_json::Value = http
        .post(format!("{api}/jobs/query"))
        .header("Authorization", &bearer)
        .json(&serde_json::json!({"operation": "queryAll", "query": soql}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let id = job["id"].as_str().ok_or_else(|| format!("job not created: {job}"))?.to_string();
    loop {
        let info = get_json(&http, &format!("{api}/jobs/query/{id}"), &bearer).await?;
        match info["state"].as_str() {
            Some("JobComplete") => break,
            Some("Failed" | "Aborted") => return Err(format!("job ended: {info}")),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let job_done = t0.elapsed();
    let t1 = Instant::now();
    let (mut rows, mut bytes, mut pages) = (0u64, 0u64, 0u64);
    let mut locator: Option<String> = None;
    loop {
        let mut req = http.get(format!("{api}/jobs/query/{id}/results")).header("Authorization", &bearer);
        if let Some(l) = &locator {
            req = req.query(&[("locator", l)]);
        }
        if let Some(p) = page {
            req = req.query(&[("maxRecords", p)]);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let n: u64 =
            header("Sforce-NumberOfRecords").and_then(|n| n.parse().ok()).ok_or("no Sforce-NumberOfRecords")?;
        let next = header("Sforce-Locator").ok_or("no Sforce-Locator")?;
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        rows += n;
        bytes += body.len() as u64;
        pages += 1;
        if next == "null" {
            break;
        }
        locator = Some(next);
    }
    let download = t1.elapsed();
    let total = t0.elapsed();
    let (rss_end, hwm) = memory(pid);
    if rows != accounts {
        let deleted_note = "(queryAll counts every row, recycle bin included)";
        eprintln!("note: {rows} rows served for {accounts} generated {deleted_note}");
    }
    println!("| measure | value |");
    println!("|---|---|");
    println!("| Accounts generated | {accounts} (+ default counts of the other objects) |");
    println!("| fields per row (every Bulk-readable Account field) | {} |", fields.len());
    println!("| org generation until serving | {:.1} s |", ready.as_secs_f64());
    println!("| Bulk job create → JobComplete | {:.2} s |", job_done.as_secs_f64());
    println!("| download of {pages} pages ({:.0} MiB CSV) | {:.2} s |", mib(bytes), download.as_secs_f64());
    println!(
        "| **rows/s, job create → last byte** (target ≥ 300,000) | **{:.0}** |",
        rows as f64 / total.as_secs_f64()
    );
    println!("| rows/s, download only | {:.0} |", rows as f64 / download.as_secs_f64());
    println!("| RSS with the org loaded | {:.0} MiB |", mib(rss_loaded));
    println!("| RSS after serving the result | {:.0} MiB |", mib(rss_end));
    println!("| **peak RSS (VmHWM)** (target ≤ 1.5 GB) | **{:.0} MiB** |", mib(hwm));
    Ok(())
}
