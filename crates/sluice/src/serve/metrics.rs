//! `GET /metrics` of `sluice serve`: the Prometheus text format, every name prefixed
//! `sluice_`, from a recorder of serve's own (never the process-global one, so several
//! serves in one process, as in tests, keep theirs apart).
//!
//! Counted as runs end ([`Metrics::run_ended`]): rows by flow and operation
//! (`sluice_rows_total`), runs by flow and outcome (`sluice_runs_total`), API calls by flow
//! (`sluice_api_calls_total`), and the run duration histogram
//! (`sluice_run_duration_seconds`). Read from the [`View`] at each scrape
//! ([`Metrics::render`]): each flow's lag, last success, failures in a row, whether it is
//! paused, and the org's API calls used and allowed as last seen.

use std::collections::HashMap;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::schedule::{Outcome, Ts};
use super::view::View;
use crate::pipeline::RunSummary;

/// The run duration histogram's buckets, in seconds.
const DURATION_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// serve's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty set, its metrics described.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("sluice_run_duration_seconds".into()), DURATION_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe_counter!(
                "sluice_rows_total",
                "Rows per flow and operation (extracted, inserted, updated, deleted, formula_refreshed)."
            );
            describe_counter!(
                "sluice_runs_total",
                "Runs per flow and outcome (ok, failed, deferred, held: another process ran it)."
            );
            describe_counter!("sluice_api_calls_total", "Salesforce API calls per flow.");
            describe_histogram!("sluice_run_duration_seconds", Unit::Seconds, "How long each run took.");
            describe_gauge!("sluice_lag_seconds", Unit::Seconds, "Now minus the flow's committed window end.");
            describe_gauge!("sluice_last_success_timestamp_seconds", Unit::Seconds, "When the flow last committed.");
            describe_gauge!("sluice_consecutive_failures", "Failed runs in a row per flow.");
            describe_gauge!("sluice_paused", "1 while the flow is paused.");
            describe_gauge!("sluice_api_calls_used", "The org's API calls used in its rolling 24 hours.");
            describe_gauge!("sluice_api_calls_limit", "The org's API call allowance for 24 hours.");
            describe_gauge!("sluice_api_calls_remaining", "The org's API calls left in its allowance.");
        });
        Self { recorder, handle }
    }

    /// Counts a run that took `took`: its flows' rows and API calls (from `summary`, when
    /// it ran) and each flow's outcome.
    pub fn run_ended(&self, summary: Option<&RunSummary>, outcomes: &HashMap<String, Outcome>, took: Duration) {
        metrics::with_local_recorder(&self.recorder, || {
            histogram!("sluice_run_duration_seconds").record(took.as_secs_f64());
            for (flow, outcome) in outcomes {
                counter!("sluice_runs_total", "flow" => flow.clone(), "status" => outcome.word()).increment(1);
            }
            for f in summary.iter().flat_map(|s| &s.flows) {
                let flow = f.object.clone();
                let merged = f.merged.unwrap_or_default();
                let rows = [
                    ("extracted", f.rows),
                    ("inserted", merged.inserted),
                    ("updated", merged.updated),
                    ("deleted", merged.deleted),
                    ("formula_refreshed", f.formulas.map_or(0, |r| r.changed)),
                ];
                for (operation, n) in rows {
                    counter!("sluice_rows_total", "flow" => flow.clone(), "operation" => operation).increment(n);
                }
                counter!("sluice_api_calls_total", "flow" => flow).increment(f.api_calls.unwrap_or(0));
            }
        });
    }

    /// The text a scrape gets: the counters, and gauges read from `view` at `now`.
    pub fn render(&self, view: &View, now: Ts) -> String {
        metrics::with_local_recorder(&self.recorder, || {
            for f in &view.flows {
                let flow = f.config.object.clone();
                if let Some(end) = f.status.as_ref().and_then(|s| s.state.window_end) {
                    gauge!("sluice_lag_seconds", "flow" => flow.clone()).set((now - end).num_seconds().max(0) as f64);
                }
                if let Some(at) = f.last_success {
                    gauge!("sluice_last_success_timestamp_seconds", "flow" => flow.clone())
                        .set(at.timestamp_millis() as f64 / 1000.0);
                }
                gauge!("sluice_consecutive_failures", "flow" => flow.clone()).set(f64::from(f.clock.failures));
                gauge!("sluice_paused", "flow" => flow).set(if f.clock.paused { 1.0 } else { 0.0 });
            }
            if let Some((used, limit)) = view.api_usage {
                gauge!("sluice_api_calls_used").set(used as f64);
                gauge!("sluice_api_calls_limit").set(limit as f64);
                gauge!("sluice_api_calls_remaining").set(limit.saturating_sub(used) as f64);
            }
        });
        self.handle.render()
    }
}
