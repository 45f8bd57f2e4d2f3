//! Bulk API 2.0 `queryAll` jobs (reference §3), decoded page by page into Arrow.
//!
//! One job per window: create (`200` or `201`), poll with backoff until `JobComplete`,
//! `Failed` or `Aborted` (aborting it after the time-out), then read the results with
//! `maxRecords` and `Sforce-Locator` until the locator is `null`. The rows of all pages
//! must add up to the job's `numberRecordsProcessed` (a job that does not state it cannot
//! be checked, and counts as failed), and every page must decode to the
//! `Sforce-NumberOfRecords` it declares. The job is deleted when done, and on error
//! paths too (best effort; a dropped reader deletes it from a background task).
//!
//! A job that ends `Failed` comes back as a [`CallError`] whose [`Action`] comes from
//! [`classify_bulk_failure`]: a smaller window, or REST for queries Bulk cannot run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::classify::{Disposition, classify_bulk_failure};
use super::client::{Action, CallError, Client, Request};
use super::decode::csv_batch;
use super::rest::Emit;
use crate::error::{Error, Result};
use crate::model::TableSchema;

/// How Bulk jobs are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkOptions {
    /// First wait between status polls. Short: an incremental window's job often ends
    /// within a second, and a job seen complete late adds its whole wait to the run (from
    /// 500 ms, a job of 1.35 s was seen at 2.4 s). Three more status calls per job, at most.
    pub poll_min: Duration,
    /// Longest wait between status polls.
    pub poll_max: Duration,
    /// A job still running after this long is aborted and the window made smaller. All the
    /// jobs of one window (its halves included) together wait at most `source.bulk_timeout`;
    /// past that the rest of the window is read through REST.
    pub timeout: Duration,
    /// Rows per results page (`maxRecords`); `None` lets the server choose.
    pub max_records: Option<u32>,
}

impl Default for BulkOptions {
    fn default() -> Self {
        Self {
            poll_min: Duration::from_millis(200),
            poll_max: Duration::from_secs(30),
            timeout: Duration::from_secs(30 * 60),
            max_records: Some(20_000),
        }
    }
}

/// The fewest rows a results page is sized down to (a page of very wide rows).
const MIN_RECORDS: u32 = 50;

/// Rows of the first results page, before the width of a row is known (200 rows of 100 KB
/// are 20 MB).
const FIRST_RECORDS: u32 = 200;

/// Job info, as far as sluice needs it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobInfo {
    id: String,
    state: String,
    #[serde(default)]
    number_records_processed: Option<u64>,
    #[serde(default)]
    error_message: Option<String>,
}

/// Deletes the job when dropped without [`JobGuard::delete`] (the reader went away).
struct JobGuard {
    client: Client,
    id: String,
    deleted: bool,
}

impl JobGuard {
    fn path(&self) -> String {
        self.client.data_path(&format!("/jobs/query/{}", self.id))
    }

    async fn delete(mut self) {
        self.deleted = true;
        if let Err(e) = self.client.send(&Request::new(Method::DELETE, self.path())).await {
            tracing::warn!(job = %self.id, error = %e.error.message, "could not delete a Bulk job");
        }
    }

    async fn abort(&self) {
        let req = Request::new(Method::PATCH, self.path()).json(json!({"state": "Aborted"}));
        if let Err(e) = self.client.send(&req).await {
            tracing::warn!(job = %self.id, error = %e.error.message, "could not abort a Bulk job");
        }
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            let path = self.path();
            handle.spawn(async move {
                // The job may still be running: abort first (an error if it is not), then delete.
                let abort = Request::new(Method::PATCH, path.clone()).json(json!({"state": "Aborted"}));
                let _ = client.send(&abort).await;
                let _ = client.send(&Request::new(Method::DELETE, path)).await;
            });
        }
    }
}

/// Runs one `queryAll` job for `soql` and emits one batch per results page. Returns
/// the rows emitted, or `None` when the receiver went away.
pub async fn extract(
    client: &Client,
    schema: &TableSchema,
    arrow: &SchemaRef,
    soql: &str,
    opts: &BulkOptions,
    deadline: Instant,
    emit: &mut Emit<'_>,
) -> Result<Option<u64>, CallError> {
    let body = json!({
        "operation": "queryAll",
        "query": soql,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    });
    let create = Request::new(Method::POST, client.data_path("/jobs/query")).json(body);
    let info: JobInfo = client.send(&create).await?.json("Bulk job create")?;
    let guard = JobGuard { client: client.clone(), id: info.id.clone(), deleted: false };
    tracing::debug!(job = %info.id, object = %schema.object, "Bulk job created");
    let result = run(client, schema, arrow, &guard, opts, deadline, emit).await;
    guard.delete().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run(
    client: &Client,
    schema: &TableSchema,
    arrow: &SchemaRef,
    guard: &JobGuard,
    opts: &BulkOptions,
    deadline: Instant,
    emit: &mut Emit<'_>,
) -> Result<Option<u64>, CallError> {
    let processed = wait(client, guard, opts, deadline).await?;
    let results = client.data_path(&format!("/jobs/query/{}/results", guard.id));
    let shared = Arc::new((schema.clone(), arrow.clone()));
    let mut locator: Option<String> = None;
    let mut total = 0u64;
    // Page k decodes on a blocking thread while page k + 1 downloads.
    let mut decoding: Option<Decoding> = None;
    // Pages are sized by bytes, not rows (see `rest::PAGE_BYTES`): after each page, as many
    // rows as make about that many bytes, never more than `max_records`.
    // The first page is small: how wide a row is is not known before one arrives.
    let mut max_records = opts.max_records.map(|n| n.min(FIRST_RECORDS));
    loop {
        let mut req = Request::get(results.clone()).header("Accept", "text/csv");
        if let Some(n) = max_records {
            req = req.query("maxRecords", n.to_string());
        }
        if let Some(l) = &locator {
            req = req.query("locator", l.clone());
        }
        let resp = client.send(&req).await?;
        if let Some(previous) = decoding.take() {
            match previous.deliver(&schema.object, emit).await? {
                Some(rows) => total += rows,
                None => return Ok(None),
            }
        }
        let declared: Option<u64> = resp.header("sforce-numberofrecords").and_then(|n| n.trim().parse().ok());
        if let Some(rows) = declared {
            let max = opts.max_records.unwrap_or(u32::MAX);
            max_records = Some(super::rest::rows_for_bytes(rows, resp.body.len(), MIN_RECORDS, max));
        }
        locator =
            resp.header("sforce-locator").map(str::trim).filter(|l| !l.is_empty() && *l != "null").map(str::to_owned);
        let (shared, body) = (shared.clone(), resp.body);
        let task = tokio::task::spawn_blocking(move || csv_batch(&shared.0, &shared.1, &body, b','));
        decoding = Some(Decoding { declared, task });
        if locator.is_none() {
            break;
        }
    }
    if let Some(last) = decoding.take() {
        match last.deliver(&schema.object, emit).await? {
            Some(rows) => total += rows,
            None => return Ok(None),
        }
    }
    // A short result would pass for the whole window (and a short Id snapshot would feed
    // deletes): the window is read again, in halves, then through REST.
    let short = match processed {
        Some(expected) if expected == total => None,
        Some(expected) => Some(format!("processed {expected} rows but its results held {total}")),
        None => Some(format!("did not say how many rows it processed (its results held {total})")),
    };
    if let Some(what) = short {
        return Err(CallError {
            error: Error::external(format!("the Bulk job {} for {} {what}", guard.id, schema.object)),
            action: Action::SmallerWindow,
        });
    }
    Ok(Some(total))
}

/// One results page being decoded.
struct Decoding {
    /// Its `Sforce-NumberOfRecords`.
    declared: Option<u64>,
    task: tokio::task::JoinHandle<Result<RecordBatch>>,
}

impl Decoding {
    /// Waits for the batch, checks its row count and emits it. `None` when the
    /// receiver went away.
    async fn deliver(self, object: &str, emit: &mut Emit<'_>) -> Result<Option<u64>, CallError> {
        let batch =
            self.task.await.map_err(|e| Error::internal(format!("decoding a Bulk page of {object}: {e}")))??;
        let rows = batch.num_rows() as u64;
        if let Some(declared) = self.declared
            && declared != rows
        {
            return Err(Error::external(format!(
                "a Bulk results page of {object} declares {declared} rows but holds {rows}"
            ))
            .into());
        }
        if rows > 0 && !emit(batch).await {
            return Ok(None);
        }
        Ok(Some(rows))
    }
}

/// Polls until the job ends; returns `numberRecordsProcessed` of a completed job. A job
/// still running after [`BulkOptions::timeout`] is aborted and its window made smaller; one
/// running at `deadline` (the window's whole Bulk allowance) is aborted and its window read
/// through REST.
async fn wait(
    client: &Client,
    guard: &JobGuard,
    opts: &BulkOptions,
    deadline: Instant,
) -> Result<Option<u64>, CallError> {
    let started = Instant::now();
    let mut delay = opts.poll_min;
    let status = Request::get(guard.path());
    loop {
        let info: JobInfo = client.send(&status).await?.json("Bulk job status")?;
        match info.state.as_str() {
            "JobComplete" => return Ok(info.number_records_processed),
            "Failed" => {
                let message = info.error_message.unwrap_or_else(|| "no errorMessage".to_owned());
                return Err(match classify_bulk_failure(&message) {
                    Disposition::UseRest(e) => CallError { error: e, action: Action::UseRest },
                    Disposition::SmallerWindow(e) => CallError { error: e, action: Action::SmallerWindow },
                    other => CallError {
                        error: other.into_error().unwrap_or_else(|| Error::external(message)),
                        action: Action::Fail,
                    },
                });
            }
            "Aborted" => {
                return Err(CallError {
                    error: Error::external(format!("Bulk job {} was aborted", info.id)),
                    action: Action::SmallerWindow,
                });
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            guard.abort().await;
            return Err(CallError {
                error: Error::external(format!(
                    "Bulk job {} was still {} when the window's Bulk time (source.bulk_timeout) ran out: aborted, \
                     reading the window through REST",
                    info.id, info.state
                )),
                action: Action::UseRest,
            });
        }
        if started.elapsed() >= opts.timeout {
            guard.abort().await;
            return Err(CallError {
                error: Error::external(format!(
                    "Bulk job {} did not finish within {}s: aborted",
                    info.id,
                    opts.timeout.as_secs()
                )),
                action: Action::SmallerWindow,
            });
        }
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        // Growing by half rather than doubling: a job that finishes just after a poll waits
        // a third as long, for two or three more polls over a ten-minute job.
        delay = delay.mul_f64(1.5).min(opts.poll_max);
    }
}
