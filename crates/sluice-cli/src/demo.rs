//! `sluice demo`: the whole product in one command, on a fresh machine, with nothing to
//! configure. It starts the sandbox org in process (over real HTTP on loopback), writes
//! `sluice-demo.toml`, syncs Account, Contact, Opportunity and Invoice__c into
//! `sluice-demo.duckdb` (or, with `--destination lake`, Delta tables under
//! `sluice-demo-lake/`), changes the org (inserts, updates, deletes, an undelete, a late
//! commit and a new field), syncs again incrementally, verifies, and says what happened.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use sandbox::server::{self, DEFAULT_PASSWORD};
use sandbox::{Running, SandboxConfig};
use serde_json::json;
use sluice::config::Config;
use sluice::pipeline::{self, RunSummary, SyncOptions};

use crate::commands::failed;
use crate::failure::Failure;
use crate::query;

/// Flags of `sluice demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Directory for `sluice-demo.duckdb` (or `sluice-demo-lake/`) and `sluice-demo.toml`
    /// (replaced if present).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Where the demo replicates to: a DuckDB file, or a lake of Delta tables.
    #[arg(long, value_enum, default_value_t = DemoDestination::Duckdb)]
    destination: DemoDestination,
    /// Accounts in the org, 10 to 1000000 (the other objects scale with it).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    accounts: u32,
}

/// `sluice demo --destination`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoDestination {
    /// `sluice-demo.duckdb`.
    Duckdb,
    /// Delta tables under `sluice-demo-lake/`.
    Lake,
}

impl DemoDestination {
    /// What the demo writes, under `dir`.
    fn path(self, dir: &Path) -> PathBuf {
        match self {
            DemoDestination::Duckdb => dir.join("sluice-demo.duckdb"),
            DemoDestination::Lake => dir.join("sluice-demo-lake"),
        }
    }

    /// How the demo's output names it.
    fn shown(self) -> &'static str {
        match self {
            DemoDestination::Duckdb => "DuckDB",
            DemoDestination::Lake => "the lake",
        }
    }
}

const OBJECTS: [&str; 4] = ["Account", "Contact", "Opportunity", "Invoice__c"];

fn config_text(login_url: &str, destination: DemoDestination, path: &Path) -> String {
    let kind = match destination {
        DemoDestination::Duckdb => "duckdb",
        DemoDestination::Lake => "lake",
    };
    let mut text = format!(
        r#"# Written by `sluice demo`. The org it points at lived only while the demo ran, but
# `sluice --config sluice-demo.toml status`, `history` and `query` read the destination alone.
{}api = "auto"

[destination]
type = "{kind}"
path = "{}"
schema = "salesforce"

[defaults]
deletes = "soft"
lookback = "10m"
"#,
        server::source_toml(login_url, DEFAULT_PASSWORD),
        path.display()
    );
    for object in OBJECTS {
        text.push_str(&format!("\n[[flows]]\nobject = \"{object}\"\n"));
    }
    text
}

async fn admin(
    http: &reqwest::Client,
    sb: &Running,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}{path}", sb.instance_url);
    let resp = http.post(&url).json(&body).send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let value: serde_json::Value = resp.json().await.context("sandbox admin response")?;
    if !status.is_success() {
        return Err(anyhow!("sandbox admin API: {status}: {value}"));
    }
    Ok(value)
}

const MUTATIONS: &str = "/sandbox/v1/mutations";

/// How long the late commit stays invisible, in the org's time.
const LATE_SECS: f64 = 60.0;

/// Before the first sync: an Account stamped now but committed [`LATE_SECS`] later, so
/// the first sync's window covers its stamp without seeing it. Returns its Id.
async fn start_late_commit(sb: &Running) -> anyhow::Result<String> {
    let late = json!({"mutations": [
        {"op": "insert", "object": "Account", "fields": {"Name": "Late Commit Ltd"}, "late_secs": LATE_SECS}
    ]});
    let done = admin(&reqwest::Client::new(), sb, MUTATIONS, late).await?;
    done["results"][0]["id"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("the sandbox returned no Id: {done}"))
}

/// What the demo does to the org between the two syncs; returns lines describing it.
async fn change_the_org(sb: &Running, late_id: &str) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let mut said = Vec::new();
    let churn = json!({"mutations": [
        {"op": "churn", "object": "Account", "inserts": 150, "updates": 400, "deletes": 40},
        {"op": "churn", "object": "Contact", "inserts": 300, "updates": 600, "deletes": 60, "undeletes": 5},
        {"op": "churn", "object": "Opportunity", "inserts": 100, "updates": 500, "deletes": 30},
        {"op": "churn", "object": "Invoice__c", "inserts": 50, "updates": 200, "deletes": 10},
    ]});
    let churned = admin(&http, sb, MUTATIONS, churn).await?;
    // The new field is set on the first Account the churn updated.
    let tiered = churned["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["op"] == "update" && r["id"].as_str().is_some_and(|id| id.starts_with("001")))
        .and_then(|r| r["id"].as_str())
        .ok_or_else(|| anyhow!("the sandbox's churn updated no Account"))?
        .to_owned();
    said.push("churn: inserts, updates, deletes (and undeletes of Contacts) on all four objects".to_owned());
    let field = json!({"mutations": [
        {"op": "add_field", "object": "Account", "field": {"name": "Demo_Tier__c", "type": "picklist", "values": ["Gold", "Silver"]}},
        {"op": "update", "object": "Account", "id": tiered, "fields": {"Demo_Tier__c": "Gold"}},
    ]});
    admin(&http, sb, MUTATIONS, field).await?;
    // The org's clock moves past the late commit, which becomes visible behind the
    // committed window end: only the lookback re-reads that far back.
    admin(&http, sb, "/sandbox/v1/clock", json!({"advance_secs": LATE_SECS + 1.0})).await?;
    said.push(format!(
        "a late commit: Account {late_id}, stamped before the first sync's window end, became visible {LATE_SECS:.0} \
         s later (the 10-minute lookback catches it)"
    ));
    said.push(format!(
        "a new field: Account.Demo_Tier__c, set on {tiered} (becomes column demo_tier__c before the merge)"
    ));
    Ok(said)
}

async fn one_sync(config: &Config, opts: &SyncOptions, label: &str) -> Result<(RunSummary, Duration), Failure> {
    say!("{label} ...");
    let started = Instant::now();
    let summary = pipeline::sync(config, opts, &pipeline::Quiet).await.map_err(failed)?;
    let elapsed = started.elapsed();
    if let Some(bad) = summary.flows.iter().find(|f| !f.status.succeeded()) {
        return Err(Failure::failed(anyhow!(
            "{label}: {} {}: {}",
            bad.object,
            bad.status,
            bad.error.as_deref().unwrap_or("")
        )));
    }
    Ok((summary, elapsed))
}

fn print_run(summary: &RunSummary, elapsed: Duration) {
    say!(
        "  {:<14} {:>9} {:>9} {:>9} {:>9}  {:<9} {}",
        "OBJECT",
        "READ",
        "INSERTED",
        "UPDATED",
        "DELETED",
        "VERIFY",
        "WINDOW"
    );
    for f in &summary.flows {
        let m = f.merged.unwrap_or_default();
        let verify = match f.verify {
            Some(v) if v.matches() => format!("ok {}", v.destination),
            Some(v) => format!("{} vs {}", v.destination, v.source),
            None => "-".into(),
        };
        say!(
            "  {:<14} {:>9} {:>9} {:>9} {:>9}  {:<9} {}",
            f.object,
            f.rows,
            m.inserted,
            m.updated,
            m.deleted,
            verify,
            f.window.map_or_else(|| "-".into(), |w| w.to_string())
        );
        for w in &f.warnings {
            say!("      note: {w}");
        }
    }
    say!("  run {} took {:.1} s", summary.run_id, elapsed.as_secs_f64());
    if let Some(line) = time_by_phase(summary) {
        say!("  {line}");
    }
}

/// Where the run's time went, phase by phase, summed over its flows (which run in parallel,
/// so the sum can exceed the run's wall time); `None` when no flow recorded phases.
fn time_by_phase(summary: &RunSummary) -> Option<String> {
    let mut total = sluice::pipeline::Timings::default();
    let mut any = false;
    for t in summary.flows.iter().filter_map(|f| f.timings.as_ref()) {
        total.add(t);
        any = true;
    }
    let parts: Vec<String> = total
        .phases()
        .iter()
        .filter(|(_, d)| !d.is_zero())
        .map(|(name, d)| format!("{name} {:.2} s", d.as_secs_f64()))
        .collect();
    (any && !parts.is_empty()).then(|| format!("time by phase, over all flows: {}", parts.join(", ")))
}

/// `sluice demo`.
pub async fn run(args: &DemoArgs) -> Result<(), Failure> {
    // Absolute, so the written config works from any directory.
    let dir = args
        .dir
        .canonicalize()
        .ok()
        .filter(|d| d.is_dir())
        .ok_or_else(|| Failure::usage(anyhow!("--dir {}: not an existing directory", args.dir.display())))?;
    let db = args.destination.path(&dir);
    for stale in [db.clone(), dir.join("sluice-demo.duckdb.wal")] {
        let removed = if stale.is_dir() {
            std::fs::remove_dir_all(&stale)
        } else if stale.exists() {
            std::fs::remove_file(&stale)
        } else {
            Ok(())
        };
        removed.map_err(|e| Failure::failed(anyhow!("cannot replace {}: {e}", stale.display())))?;
    }
    let n = args.accounts as usize;
    let counts = [("Account", n), ("Contact", n * 2), ("Opportunity", n), ("Invoice__c", n / 2)]
        .into_iter()
        .map(|(o, c)| (o.to_owned(), c as u64))
        .collect();
    let sb = server::start(SandboxConfig { counts, ..SandboxConfig::default() })
        .await
        .map_err(|e| Failure::failed(anyhow!("cannot start the sandbox: {e}")))?;
    say!(
        "sandbox org at {} ({n} accounts, {} contacts, {n} opportunities, {} invoices)",
        sb.instance_url,
        n * 2,
        n / 2
    );

    let toml_path = dir.join("sluice-demo.toml");
    let text = config_text(&sb.login_url, args.destination, &db);
    std::fs::write(&toml_path, &text)
        .map_err(|e| Failure::failed(anyhow!("cannot write {}: {e}", toml_path.display())))?;
    let config = sluice::load_config(&text, &toml_path.display().to_string(), &|_| None)
        .map_err(|e| Failure::failed(anyhow!("the demo config is invalid: {e:?}")))?;

    let opts = SyncOptions { trigger: sluice::consolidate::Trigger::Demo, ..SyncOptions::default() };
    let result = async {
        let late_id = start_late_commit(&sb).await.map_err(Failure::failed)?;
        let label = format!("1. full sync into {}", args.destination.shown());
        let (first, t1) = one_sync(&config, &opts, &label).await?;
        print_run(&first, t1);
        say!();
        say!("2. changing the org:");
        for line in change_the_org(&sb, &late_id).await.map_err(Failure::failed)? {
            say!("   - {line}");
        }
        say!();
        let (second, t2) = one_sync(&config, &opts, "3. incremental sync").await?;
        print_run(&second, t2);
        say!();
        say!("4. verify (source COUNT() against live rows, at the committed window end) ...");
        let results = pipeline::verify(&config, &opts, false).await.map_err(failed)?;
        let mut all_match = true;
        for r in &results {
            match (&r.counts, &r.error) {
                (Some(c), None) => {
                    all_match &= c.matches();
                    say!(
                        "  {:<14} source {:>8}  destination {:>8}  {}",
                        r.flow,
                        c.source,
                        c.destination,
                        if c.matches() { "match" } else { "DIFFER" }
                    );
                }
                (_, e) => {
                    all_match = false;
                    say!("  {:<14} error: {}", r.flow, e.as_deref().unwrap_or("not checked"));
                }
            }
        }
        Ok::<bool, Failure>(all_match)
    }
    .await;
    sb.shutdown().await;
    let all_match = result?;
    say!();
    match args.destination {
        DemoDestination::Duckdb => {
            say!("Replicated into {} (schema `salesforce`, control tables in `_sluice`).", db.display())
        }
        DemoDestination::Lake => {
            let table = db.join("salesforce").join("opportunity");
            say!(
                "Replicated into Delta tables under {} (one per object, e.g. {}).",
                db.join("salesforce").display(),
                table.display()
            );
            say!("  Any Delta reader reads them, e.g. DuckDB: SELECT count(*) FROM delta_scan('{}')", table.display());
            say!("  or Python: deltalake.DeltaTable('{}').to_pandas()", table.display());
        }
    }
    // A real query through `sluice query`'s own path: the data can be looked at with
    // nothing else installed.
    let sql = "SELECT stage_name, count(*) AS deals, sum(amount) AS amount FROM salesforce.opportunity \
               WHERE NOT _sluice_deleted GROUP BY stage_name ORDER BY amount DESC";
    say!("5. sluice --config {} query \"{sql}\"", toml_path.display());
    let answer = pipeline::query(&config, sql.to_owned()).await.map_err(failed)?;
    for line in query::aligned(&answer).lines() {
        say!("  {line}");
    }
    say!();
    say!("More: sluice --config {} status | history | query \"SELECT ...\"", toml_path.display());
    if all_match { Ok(()) } else { Err(Failure::failed(anyhow!("verification found differences"))) }
}
