//! `sluice status`, `history` and `verify`: what the control tables say, and whether the
//! destination agrees with the source.

use std::path::Path;

use anyhow::anyhow;
use chrono::SecondsFormat;
use sluice::model::Timestamp;
use sluice::pipeline::{self, SyncOptions};

use crate::commands::{beside_runs, failed, json_out, load};
use crate::failure::Failure;

/// Flags of `sluice status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Flags of `sluice history`.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// How many runs, newest first (1 to 10000).
    #[arg(long, default_value_t = 10, value_parser = run_limit)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Flags of `sluice verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Only these flows, by object name (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    objects: Option<Vec<String>>,
    /// Reconcile first: remove rows the source no longer has (guarded by max_delete_ratio).
    #[arg(long)]
    repair: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `--limit`: a number of runs in 1..=10000, also when it is too large for any integer.
fn run_limit(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u64>() {
        Ok(n @ 1..=10_000) => Ok(n as u32),
        _ => Err(format!("`{text:.24}` is not a number of runs in 1..=10000")),
    }
}

fn when(ts: Option<Timestamp>) -> String {
    ts.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn lag(secs: Option<i64>) -> String {
    match secs {
        None => "-".to_owned(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

/// `sluice status`.
pub async fn status(path: &Path, args: &StatusArgs) -> Result<(), Failure> {
    let config = load(path)?;
    let rows = beside_runs(|| pipeline::status(&config)).await.map_err(failed)?;
    if args.json {
        return json_out(&rows);
    }
    if rows.is_empty() {
        say!("no flow has run yet; `sluice sync` starts them");
        return Ok(());
    }
    say!(
        "{:<24} {:<22} {:>7} {:>12}  {:<22} {:<14} LAST ERROR",
        "FLOW",
        "WINDOW END",
        "LAG",
        "LIVE ROWS",
        "LAST RUN",
        "PHASE"
    );
    for r in &rows {
        say!(
            "{:<24} {:<22} {:>7} {:>12}  {:<22} {:<14} {}",
            r.state.flow,
            when(r.state.window_end),
            lag(r.lag_seconds),
            r.live_rows.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            r.state.last_run.as_deref().unwrap_or("-"),
            r.state.last_phase.as_deref().unwrap_or("-"),
            r.state.last_error.as_deref().unwrap_or(""),
        );
    }
    for r in rows.iter().filter(|r| r.removed.is_some()) {
        let Some(removed) = &r.removed else { continue };
        say!();
        let tables = if removed.tables.is_empty() { "no table".to_owned() } else { removed.tables.join(" and ") };
        say!("{} is no longer in the config: {tables} and its window are left; to drop them:", r.state.flow);
        for sql in &removed.drop_sql {
            say!("  {sql};");
        }
    }
    Ok(())
}

/// `sluice history`.
pub async fn history(path: &Path, args: &HistoryArgs) -> Result<(), Failure> {
    let config = load(path)?;
    let runs = beside_runs(|| pipeline::history(&config, args.limit as usize)).await.map_err(failed)?;
    if args.json {
        return json_out(&runs);
    }
    if runs.is_empty() {
        say!("no runs yet");
        return Ok(());
    }
    for run in &runs {
        say!(
            "run {}  {}  started {}  finished {}",
            run.run_id,
            run.status,
            when(run.started_at),
            when(run.finished_at)
        );
        for f in &run.flows {
            say!(
                "    {:<24} {:<13} extracted {:>9}  inserted {:>9}  updated {:>9}  deleted {:>9}  {}",
                f.flow,
                f.phase,
                f.extracted,
                f.inserted,
                f.updated,
                f.deleted,
                f.error.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `sluice verify [--repair]`: exit 1 when any flow's counts differ or could not be checked.
pub async fn verify(path: &Path, args: &VerifyArgs) -> Result<(), Failure> {
    let config = load(path)?;
    let opts = SyncOptions {
        objects: args.objects.clone(),
        trigger: sluice::consolidate::Trigger::Verify,
        ..SyncOptions::default()
    };
    let results = pipeline::verify(&config, &opts, args.repair).await.map_err(failed)?;
    let bad = results.iter().filter(|r| r.error.is_some() || r.counts.is_none_or(|c| !c.matches())).count();
    if args.json {
        json_out(&results)?;
    } else {
        say!("{:<24} {:<22} {:>12} {:>12} {:>10}  RESULT", "FLOW", "AT", "SOURCE", "DESTINATION", "REPAIRED");
        for r in &results {
            let (at, src, dst, verdict) = match (&r.counts, &r.error) {
                (_, Some(e)) => ("-".into(), "-".into(), "-".into(), format!("error: {e}")),
                (Some(c), None) => (
                    when(c.at),
                    c.source.to_string(),
                    c.destination.to_string(),
                    if c.matches() {
                        "match".to_owned()
                    } else {
                        format!("differ by {}", c.destination as i64 - c.source as i64)
                    },
                ),
                (None, None) => ("-".into(), "-".into(), "-".into(), "not checked".into()),
            };
            let repaired = r.repaired.map_or_else(|| "-".to_owned(), |n| n.to_string());
            say!("{:<24} {:<22} {:>12} {:>12} {:>10}  {verdict}", r.flow, at, src, dst, repaired);
        }
    }
    if bad == 0 {
        Ok(())
    } else {
        Err(Failure::failed(anyhow!(
            "{bad} of {} flows differ or could not be checked (rows changed at the source after the window end \
             differ until the next sync; `--repair` removes rows the source no longer has)",
            results.len()
        )))
    }
}
