//! `sluice init`, `check`, `discover` and `sync`: config loading, output and exit codes
//! around the `sluice` library.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use sluice::config::{self, Config};
use sluice::model::Window;
use sluice::pipeline::{self, FlowSummary, Observer, SyncOptions};
use sluice::source::salesforce::SalesforceSource;
use sluice::source::salesforce::describe::{Selection, SkipReason};

use crate::failure::Failure;

/// How long `status`, `history` and `query` wait for a run that holds the destination (a
/// DuckDB file, which one process at a time may open, while `sluice serve` writes it).
pub const READ_WAIT: Duration = Duration::from_secs(30);

/// Reads the destination through `read`, waiting while a run holds it: a run of `sluice
/// serve` holds a DuckDB file only while it writes, so a read beside serve goes through
/// once that run ends. Gives up after [`READ_WAIT`] with the holder's message.
pub async fn beside_runs<T, F: std::future::Future<Output = sluice::Result<T>>>(
    read: impl Fn() -> F,
) -> sluice::Result<T> {
    let deadline = Instant::now() + READ_WAIT;
    let mut said = false;
    loop {
        match read().await {
            Err(e) if e.is_busy() && Instant::now() < deadline => {
                if !said {
                    tracing::info!(error = %e, "waiting for the run that holds the destination to end");
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Flags of `sluice init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Overwrite an existing config file.
    #[arg(long)]
    force: bool,
}

/// Flags of `sluice discover`.
#[derive(clap::Args, Debug)]
pub struct DiscoverArgs {
    /// Show this object's fields, sluice types and proposed column names.
    #[arg(long, value_name = "OBJECT")]
    object: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Flags of `sluice sync`.
#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// Only these flows, by object name (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    objects: Option<Vec<String>>,
    /// Read every selected flow in full, ignoring the committed windows.
    #[arg(long)]
    full_refresh: bool,
    /// Print one JSON document instead of progress bars and a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ResetArgs {
    /// The flows to reset, by object name (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...", required = true)]
    objects: Vec<String>,
    /// Print one JSON document instead of progress bars and a table.
    #[arg(long)]
    json: bool,
}

/// `sluice init`: writes the commented sample config.
pub fn init(path: &Path, args: &InitArgs) -> Result<(), Failure> {
    if path.exists() && !args.force {
        return Err(Failure::usage(anyhow!("{} already exists; use --force to overwrite it", path.display())));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Failure::failed(anyhow!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, config::SAMPLE)
        .map_err(|e| Failure::failed(anyhow!("cannot write {}: {e}", path.display())))?;
    say!("wrote {}: edit [source] and [[flows]], then run `sluice check`", path.display());
    Ok(())
}

/// A library error as the exit code it deserves ([`Failure::of`]).
pub fn failed(e: sluice::Error) -> Failure {
    Failure::of(e)
}

/// Prints `value` as pretty JSON (through `say!`, so URL user-info is redacted).
pub fn json_out<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::failed(anyhow!(e)))?;
    say!("{text}");
    Ok(())
}

/// Reads and validates the config; every problem is listed, exit code 2.
pub fn load(path: &Path) -> Result<Config, Failure> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound { " (run `sluice init` to create one)" } else { "" };
        Failure::usage(anyhow!("cannot read config {origin}: {e}{hint}"))
    })?;
    let env = |name: &str| std::env::var(name).ok();
    sluice::load_config(&text, &origin, &env).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let s = if errors.len() == 1 { "" } else { "s" };
        Failure::usage(anyhow!("{} problem{s} in the config:\n  {}", errors.len(), lines.join("\n  ")))
    })
}

/// `sluice check`: config, login, every flow's object, the destination. Exit code 2 when
/// some problem is the user's to fix (credentials, an unknown object or field, a
/// destination path or role), 1 when all of them are outside (unreachable, busy).
pub async fn check(path: &Path) -> Result<(), Failure> {
    let config = load(path)?;
    say!("ok       config {} ({} flows)", path.display(), config.flows.len());
    // (what, whether the user must fix it)
    let mut problems: Vec<(String, bool)> = Vec::new();
    let login_url = sluice::redact::userinfo(&config.source.login_url).into_owned();
    match SalesforceSource::connect(&config.source).await {
        Ok(source) => {
            say!("ok       login to {login_url}");
            let naming = config.destination.naming();
            for flow in &config.flows {
                match source.describe(&flow.object, &Selection::for_flow(flow, naming)).await {
                    Ok(d) => {
                        say!("ok       {}: {} columns into `{}`", flow.object, d.schema.columns.len(), d.schema.table)
                    }
                    Err(e) => problems.push((prefixed(&flow.object, &e.message), crate::failure::is_users(&e))),
                }
            }
        }
        Err(e) => problems.push((format!("login to {login_url}: {}", e.message), crate::failure::is_users(&e))),
    }
    match pipeline::check_destination(&config).await {
        Ok(what) => say!("ok       {what}"),
        Err(e) => problems.push((format!("destination: {}", e.message), crate::failure::is_users(&e))),
    }
    for (p, _) in &problems {
        say!("problem  {p}");
    }
    if problems.is_empty() {
        say!("all good");
        return Ok(());
    }
    let s = if problems.len() == 1 { "" } else { "s" };
    let error = anyhow!("{} problem{s} found", problems.len());
    if problems.iter().any(|(_, users)| *users) { Err(Failure::usage(error)) } else { Err(Failure::failed(error)) }
}

fn prefixed(object: &str, message: &str) -> String {
    if message.starts_with(object) { message.to_owned() } else { format!("{object}: {message}") }
}

/// `sluice discover`: the org's objects, or one object's fields.
pub async fn discover(path: &Path, args: &DiscoverArgs) -> Result<(), Failure> {
    let config = load(path)?;
    let source = SalesforceSource::connect(&config.source).await.map_err(failed)?;
    match &args.object {
        None => {
            let objects = source.discover().await.map_err(failed)?;
            if args.json {
                let list: Vec<_> = objects
                    .iter()
                    .map(|o| {
                        json!({"name": o.name, "label": o.label, "custom": o.custom,
                               "replicable": o.is_replicable(),
                               "table": config.destination.naming().apply(&o.name)})
                    })
                    .collect();
                say!("{}", json!({ "objects": list }));
            } else {
                say!("{:<40} {:<40} {:<8} {:<10}", "OBJECT", "LABEL", "CUSTOM", "REPLICABLE");
                for o in &objects {
                    say!("{:<40} {:<40} {:<8} {:<10}", o.name, o.label, yes(o.custom), yes(o.is_replicable()));
                }
            }
        }
        Some(object) => {
            let flow = config.flows.iter().find(|f| f.object.eq_ignore_ascii_case(object));
            let naming = config.destination.naming();
            let selection =
                flow.map_or(Selection { naming, ..Selection::default() }, |f| Selection::for_flow(f, naming));
            let d = source.describe(object, &selection).await.map_err(failed)?;
            let cursor = d.schema.cursor.field().unwrap_or("none (full refresh every run)");
            if args.json {
                let columns: Vec<_> = d
                    .schema
                    .columns
                    .iter()
                    .map(|c| {
                        json!({"field": c.source_name, "column": c.name, "type": c.ty.to_string(),
                               "nullable": c.nullable, "formula": c.formula, "masked": c.masked})
                    })
                    .collect();
                let skipped: Vec<_> =
                    d.skipped.iter().map(|s| json!({"field": s.field, "reason": reason(s.reason)})).collect();
                say!(
                    "{}",
                    json!({"object": d.schema.object, "table": d.schema.table, "cursor": d.schema.cursor.field(),
                           "columns": columns, "skipped": skipped, "warnings": d.warnings})
                );
            } else {
                say!("{} -> table `{}`, cursor {cursor}", d.schema.object, d.schema.table);
                say!();
                say!("{:<40} {:<40} {:<28} NOTES", "FIELD", "COLUMN", "TYPE");
                for c in &d.schema.columns {
                    let mut notes = Vec::new();
                    if !c.nullable {
                        notes.push("not null");
                    }
                    if c.formula {
                        notes.push("formula");
                    }
                    if c.masked {
                        notes.push("masked");
                    }
                    say!("{:<40} {:<40} {:<28} {}", c.source_name, c.name, c.ty.to_string(), notes.join(", "));
                }
                for s in &d.skipped {
                    say!("{:<40} {:<40} {:<28} skipped: {}", s.field, "-", "-", reason(s.reason));
                }
                for w in &d.warnings {
                    say!("warning: {w}");
                }
            }
        }
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn reason(r: SkipReason) -> &'static str {
    match r {
        SkipReason::Compound => "compound field (its components are columns)",
        SkipReason::Base64 => "base64 (list it in `fields` to replicate it)",
    }
}

/// Progress bars, one per flow, with rows and rate.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, Bar>>,
}

struct Bar {
    bar: ProgressBar,
    started: Instant,
    window: String,
}

impl Bar {
    fn show(&self, rows: u64) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { rows as f64 / secs } else { 0.0 };
        self.bar.set_position(rows);
        self.bar.set_message(format!("{rate:>10.0} rows/s  {}", self.window));
    }
}

impl Bars {
    fn new() -> Self {
        Bars { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()), bars: Mutex::default() }
    }
}

impl Observer for Bars {
    fn flow_started(&self, object: &str, window: Option<&Window>) {
        let style = ProgressStyle::with_template("{spinner} {prefix:<24} {human_pos:>12} rows {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = self.multi.add(ProgressBar::new_spinner().with_style(style));
        bar.set_prefix(object.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        let bar = Bar {
            bar,
            started: Instant::now(),
            window: window.map_or_else(|| "nothing new".to_owned(), ToString::to_string),
        };
        bar.show(0);
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(object.to_owned(), bar);
        }
    }

    fn rows(&self, object: &str, rows: u64) {
        if let Some(bar) = self.bars.lock().ok().as_ref().and_then(|b| b.get(object)) {
            bar.show(rows);
        }
    }

    fn flow_finished(&self, flow: &FlowSummary) {
        if let Some(bar) = self.bars.lock().ok().as_ref().and_then(|b| b.get(&flow.object)) {
            bar.show(flow.rows);
            bar.bar.finish_with_message(format!("{}  {}", flow.status, bar.bar.message()));
        }
    }
}

/// `sluice sync`: one run, then a summary table or one JSON document. A run that could
/// not start exits as its error deserves ([`Failure::of`]: bad credentials 2, an
/// unreachable source 1); one whose flows failed exits 1.
pub async fn sync(path: &Path, args: &SyncArgs) -> Result<(), Failure> {
    let opts = SyncOptions { objects: args.objects.clone(), full_refresh: args.full_refresh, ..SyncOptions::default() };
    run_flows(path, opts, args.json).await
}

/// `sluice reset --objects A,B`: forgets the flows' committed state, then reloads them.
pub async fn reset(path: &Path, args: &ResetArgs) -> Result<(), Failure> {
    let opts = SyncOptions { objects: Some(args.objects.clone()), reset: true, ..SyncOptions::default() };
    run_flows(path, opts, args.json).await
}

/// A run of the flows `opts` selects, shown as progress bars and a table, or as JSON.
async fn run_flows(path: &Path, opts: SyncOptions, json: bool) -> Result<(), Failure> {
    let config = load(path)?;
    pipeline::select_flows(&config, opts.objects.as_deref()).map_err(|e| Failure::usage(anyhow!(e.message)))?;
    let show_bars = !json && std::io::stdout().is_terminal();
    let summary = if show_bars {
        let bars = Bars::new();
        let result = pipeline::sync(&config, &opts, &bars).await;
        let _ = bars.multi.clear();
        result
    } else {
        pipeline::sync(&config, &opts, &pipeline::Quiet).await
    };
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) => {
            if json {
                say!("{}", json!({"status": "failed", "error": e.message, "flows": []}));
            }
            return Err(failed(e));
        }
    };
    if json {
        json_out(&summary)?;
    } else {
        print_table(&summary);
    }
    if summary.is_ok() {
        Ok(())
    } else {
        let bad = summary.flows.iter().filter(|f| !f.status.succeeded()).count();
        let why = if summary.stopped.is_some() { " (stopped by the API quota; the next run resumes)" } else { "" };
        Err(Failure::failed(anyhow!("{bad} of {} flows did not complete{why}", summary.flows.len())))
    }
}

fn print_table(summary: &pipeline::RunSummary) {
    say!("run {}: {}", summary.run_id, summary.status);
    say!();
    say!(
        "{:<24} {:<24} {:<15} {:>10} {:>22} {:>9} {:>8}  WINDOW",
        "OBJECT",
        "TABLE",
        "STATUS",
        "ROWS READ",
        "INSERTED/UPDATED/DEL",
        "API CALLS",
        "SECONDS"
    );
    for f in &summary.flows {
        let merged = f.merged.map_or_else(|| "-".to_owned(), |m| format!("{}/{}/{}", m.inserted, m.updated, m.deleted));
        say!(
            "{:<24} {:<24} {:<15} {:>10} {:>22} {:>9} {:>8.1}  {}",
            f.object,
            f.table,
            f.status.to_string(),
            f.rows,
            merged,
            f.api_calls.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            f.duration.as_secs_f64(),
            f.window.map_or_else(|| "-".to_owned(), |w| w.to_string()),
        );
    }
    let notes: Vec<String> = summary
        .flows
        .iter()
        .flat_map(|f| {
            let verify = f.verify.filter(|v| !v.matches()).map(|v| {
                format!(
                    "{}: {} live rows in the destination, {} at the source (rows changed after the window end \
                     differ until the next run)",
                    f.object, v.destination, v.source
                )
            });
            let reconciled =
                f.reconciled.filter(|n| *n > 0).map(|n| format!("{}: reconciliation removed {n} rows", f.object));
            let formulas = f.formulas.map(|r| {
                format!(
                    "{}: formula refresh read {} rows, rewrote {} whose formula values changed",
                    f.object, r.read, r.changed
                )
            });
            let handed_off =
                f.handed_off.as_ref().map(|call| format!("{}: staged; `{call}` consolidates it", f.object));
            f.error
                .iter()
                .cloned()
                .chain(f.warnings.iter().map(|w| format!("{}: {w}", f.object)))
                .chain(verify)
                .chain(reconciled)
                .chain(formulas)
                .chain(handed_off)
        })
        .collect();
    if !notes.is_empty() {
        say!();
        for n in notes {
            say!("  {n}");
        }
    }
}
