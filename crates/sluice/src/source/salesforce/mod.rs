//! The Salesforce source: pure cores and the I/O edges built on them.
//!
//! - [`classify`]: every HTTP response and transport failure → one [`classify::Disposition`].
//! - [`describe`]: describe JSON → [`crate::model::TableSchema`] with the DESIGN type mapping.
//! - [`soql`]: SOQL text for a window, literal formatting, and field-list splitting for
//!   URLs that would be too long.
//! - [`auth`] and [`client`]: OAuth login and the one request path (bearer token,
//!   classification, one re-login, backoff, `Sforce-Limit-Info`, the source clock).
//! - [`rest`]: describeGlobal, describe, `COUNT()`, `queryAll` paging.
//! - [`bulk`]: Bulk API 2.0 `queryAll` jobs.
//! - [`decode`]: REST JSON and Bulk CSV pages → identical Arrow batches.
//!
//! [`SalesforceSource`] ties them together: `connect`, `discover`, `describe`, and
//! `extract`, a bounded stream of [`RecordBatch`]es for one window of one object
//! (REST, Bulk, or `auto`: Bulk above a row count, REST below it and for objects Bulk
//! cannot read; a failed Bulk job is retried on halves of its window, up to a depth,
//! then the window is read through REST).

pub mod auth;
pub mod bulk;
pub mod classify;
pub mod client;
pub mod decode;
pub mod describe;
pub mod rest;
pub mod soql;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::record_batch::RecordBatch;
use chrono::TimeDelta;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};

use self::bulk::BulkOptions;
use self::client::{Action, Client, RetryPolicy};
use self::describe::{Described, ObjectInfo, Selection};
use self::soql::{QuerySpec, Range};
use crate::config::{Api, SalesforceConfig};
use crate::error::Result;
use crate::model::{TableSchema, Timestamp, Window};
use crate::source::window::floor_second;

/// Tuning of a [`SalesforceSource`]; the defaults suit real orgs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// Bulk job polling, time-out and page size.
    pub bulk: BulkOptions,
    /// `api = auto` uses Bulk from this many rows in the window on.
    pub bulk_threshold: u64,
    /// REST page size asked for (`Sforce-Query-Options: batchSize`, 200..=2000).
    pub rest_batch_size: Option<u32>,
    /// Longest REST query URL; longer field lists are split and stitched by Id.
    pub max_url_bytes: usize,
    /// How many times a failed Bulk window is halved before it is read through REST.
    pub max_split_depth: u32,
    /// Batches buffered between the reader and the consumer (memory bound).
    pub buffered_batches: usize,
    /// Ask for gzip-compressed responses. `None` decides by host: yes for a remote org,
    /// no for a loopback one (the sandbox), where compressing costs more than it saves.
    pub gzip: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            bulk: BulkOptions::default(),
            bulk_threshold: 50_000,
            rest_batch_size: Some(2000),
            max_url_bytes: soql::REST_MAX_URL_BYTES,
            max_split_depth: 3,
            buffered_batches: 2,
            gzip: None,
        }
    }
}

/// Counters of what extraction did (for reports and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Windows read through REST.
    pub rest_windows: u64,
    /// Bulk jobs that completed.
    pub bulk_jobs: u64,
    /// Bulk jobs that failed or timed out.
    pub bulk_failures: u64,
    /// Windows halved after a Bulk failure.
    pub window_splits: u64,
    /// Windows read through REST after Bulk failed.
    pub rest_fallbacks: u64,
}

#[derive(Debug, Default)]
struct Counters {
    rest_windows: AtomicU64,
    bulk_jobs: AtomicU64,
    bulk_failures: AtomicU64,
    window_splits: AtomicU64,
    rest_fallbacks: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A stream of record batches; an error ends it.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

/// A connected Salesforce org.
#[derive(Debug, Clone)]
pub struct SalesforceSource {
    client: Client,
    opts: Options,
    counters: Arc<Counters>,
}

impl SalesforceSource {
    /// Connects (logs in) with default [`Options`]. Bad credentials, an unreachable host
    /// or an unreadable key file fail here.
    pub async fn connect(cfg: &SalesforceConfig) -> Result<Self> {
        Self::connect_with(cfg, Options::default()).await
    }

    /// Connects with the given options.
    pub async fn connect_with(cfg: &SalesforceConfig, opts: Options) -> Result<Self> {
        let gzip = opts.gzip.unwrap_or_else(|| !client::is_loopback(&cfg.login_url));
        let client = Client::new(cfg, opts.retry, gzip)?;
        client.login().await?;
        Ok(Self { client, opts, counters: Arc::default() })
    }

    /// The underlying client (API usage, source clock, call counts).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What extraction did so far.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            rest_windows: get(&c.rest_windows),
            bulk_jobs: get(&c.bulk_jobs),
            bulk_failures: get(&c.bulk_failures),
            window_splits: get(&c.window_splits),
            rest_fallbacks: get(&c.rest_fallbacks),
        }
    }

    /// Every object of the org (describeGlobal); [`ObjectInfo::is_replicable`] says
    /// which sluice can read.
    pub async fn discover(&self) -> Result<Vec<ObjectInfo>> {
        rest::describe_global(&self.client).await
    }

    /// The schema of one object for a flow's selection.
    pub async fn describe(&self, object: &str, selection: &Selection<'_>) -> Result<Described> {
        let raw = rest::describe(&self.client, object).await?;
        describe::table_schema(&raw, selection)
    }

    /// The source's clock: the `Date` header of the latest response (for planning
    /// windows). Known once any call succeeded, so always after `connect`.
    pub fn source_now(&self) -> Option<Timestamp> {
        self.client.source_now()
    }

    /// `SELECT COUNT()` of the rows `extract` would read (deleted rows included).
    pub async fn count(&self, schema: &TableSchema, window: Option<Window>, filter: Option<&str>) -> Result<u64> {
        let fields = schema.source_names();
        let range = match (schema.cursor.field(), window) {
            (Some(field), Some(window)) => Some(Range { field, window }),
            _ => None,
        };
        let spec = QuerySpec { object: &schema.object, fields: &fields, range, filter };
        rest::count(&self.client, &spec).await.map_err(|e| e.context(&schema.object))
    }

    /// Rows of `schema.object` in `window` (all rows when `None`, or when the object has
    /// no cursor), with the flow's `filter`, as a stream of batches. Stops first with a
    /// quota error when the API budget is used up (a flow boundary). Must be called
    /// inside a Tokio runtime: the reading runs in a task of its own, at most
    /// [`Options::buffered_batches`] ahead of the consumer; dropping the stream stops it
    /// (and deletes a running Bulk job).
    pub fn extract(
        &self,
        described: &Described,
        window: Option<Window>,
        filter: Option<&str>,
        api: Api,
    ) -> BatchStream {
        let job = Job {
            client: self.client.clone(),
            opts: self.opts,
            counters: self.counters.clone(),
            schema: described.schema.clone(),
            bulk_ok: described.bulk_compatible(),
            window,
            filter: filter.map(str::to_owned),
            api,
        };
        supervised(described.schema.object.clone(), self.opts.buffered_batches, move |sink| job.run(sink))
    }

    /// [`SalesforceSource::extract`] collected into memory (small objects and tests).
    pub async fn extract_all(
        &self,
        described: &Described,
        window: Option<Window>,
        filter: Option<&str>,
        api: Api,
    ) -> Result<Vec<RecordBatch>> {
        let mut stream = self.extract(described, window, filter, api);
        let mut out = Vec::new();
        while let Some(batch) = stream.next().await {
            out.push(batch?);
        }
        Ok(out)
    }
}

/// One extraction, run in its own task.
struct Job {
    client: Client,
    opts: Options,
    counters: Arc<Counters>,
    schema: TableSchema,
    bulk_ok: bool,
    window: Option<Window>,
    filter: Option<String>,
    api: Api,
}

/// What the reading task sends its consumer: a batch, or that the source said it is done.
enum Msg {
    Batch(RecordBatch),
    Done,
}

/// Where the reading task sends its batches.
#[derive(Clone)]
struct Sink(tokio::sync::mpsc::Sender<Result<Msg>>);

impl Sink {
    /// Sends a batch; `false` when the consumer is gone (the reader should stop quietly).
    async fn send(&self, batch: RecordBatch) -> bool {
        self.0.send(Ok(Msg::Batch(batch))).await.is_ok()
    }
}

/// Runs `read` in a task of its own, at most `buffered` batches ahead of the consumer, and
/// returns its batches as a stream that ends only when `read` returned `Ok`: the source said
/// it was done. Any other end of the task (an error, a panic, a cancelled task, a sender
/// dropped early) ends the stream with an error, so a consumer can never take a partial
/// extract for a complete one.
fn supervised<F>(object: String, buffered: usize, read: impl FnOnce(Sink) -> F) -> BatchStream
where
    F: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Msg>>(buffered.max(1));
    let reading = read(Sink(tx.clone()));
    let meter = client::current_meter();
    let task = tokio::spawn(async move {
        let last = match meter {
            // The calls count for the flow that asked for the extract.
            Some(meter) => client::metered(meter, reading).await,
            None => reading.await,
        };
        // The consumer may be gone already: then nobody is waiting for this.
        let _ = tx.send(last.map(|()| Msg::Done)).await;
    });
    struct State {
        rx: tokio::sync::mpsc::Receiver<Result<Msg>>,
        task: Option<tokio::task::JoinHandle<()>>,
        object: String,
        ended: bool,
    }
    let state = State { rx, task: Some(task), object, ended: false };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.ended {
            return None;
        }
        let item = match st.rx.recv().await {
            Some(Ok(Msg::Batch(batch))) => return Some((Ok(batch), st)),
            Some(Ok(Msg::Done)) => return None,
            Some(Err(e)) => Err(e),
            None => {
                let why = match st.task.take() {
                    Some(task) => match task.await {
                        Err(e) if e.is_panic() => format!("the reading task panicked: {}", panic_text(e.into_panic())),
                        Err(e) => format!("the reading task was stopped ({e})"),
                        Ok(()) => "the reading task ended without a last word".to_owned(),
                    },
                    None => "the reading task is gone".to_owned(),
                };
                Err(crate::Error::internal(format!(
                    "{}: the extraction ended before the source said it was done ({why}); the window is read \
                     again next time",
                    st.object
                )))
            }
        };
        st.ended = true;
        Some((item, st))
    })
    .boxed()
}

/// The message of a panic's payload.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

impl Job {
    fn spec<'a>(&'a self, fields: &'a [String], window: Option<Window>) -> QuerySpec<'a> {
        let range = match (self.schema.cursor.field(), window) {
            (Some(field), Some(window)) => Some(Range { field, window }),
            _ => None,
        };
        QuerySpec { object: &self.schema.object, fields, range, filter: self.filter.as_deref() }
    }

    async fn run(self, sink: Sink) -> Result<()> {
        self.client.check_budget().map_err(|e| e.context(&self.schema.object))?;
        let fields = self.schema.source_names();
        let use_bulk = match self.api {
            Api::Rest => false,
            Api::Bulk if !self.bulk_ok => {
                tracing::warn!(object = %self.schema.object, "Bulk API cannot read base64 fields: using REST");
                false
            }
            Api::Bulk => true,
            Api::Auto => {
                self.bulk_ok && {
                    let rows = rest::count(&self.client, &self.spec(&fields, self.window)).await;
                    rows.map_err(|e| e.context(&self.schema.object))? >= self.opts.bulk_threshold
                }
            }
        };
        let arrow = decode::arrow_schema(&self.schema);
        let mut emit = |batch: RecordBatch| -> BoxFuture<'static, bool> {
            let sink = sink.clone();
            Box::pin(async move { sink.send(batch).await })
        };
        if !use_bulk {
            self.rest(&fields, self.window, &arrow, &mut emit).await?;
            return Ok(());
        }
        // Bulk, halving failed windows; windows in order, oldest first. All of it within the
        // window's Bulk allowance, then REST.
        let deadline = std::time::Instant::now() + self.client.bulk_timeout();
        let mut queue: VecDeque<(Option<Window>, u32)> = VecDeque::from([(self.window, 0)]);
        let mut oldest: Option<Option<Timestamp>> = None;
        let mut bulk_usable = true;
        while let Some((window, depth)) = queue.pop_front() {
            if !bulk_usable {
                self.counters.rest_fallbacks.fetch_add(1, Ordering::Relaxed);
                if self.rest(&fields, window, &arrow, &mut emit).await?.is_none() {
                    return Ok(());
                }
                continue;
            }
            let soql = self.spec(&fields, window).select()?;
            let job = bulk::extract(&self.client, &self.schema, &arrow, &soql, &self.opts.bulk, deadline, &mut emit);
            match job.await {
                Ok(Some(_)) => bump(&self.counters.bulk_jobs),
                Ok(None) => return Ok(()),
                Err(e) if e.action == Action::Fail => return Err(e.error.context(&self.schema.object)),
                Err(e) => {
                    bump(&self.counters.bulk_failures);
                    tracing::warn!(object = %self.schema.object, error = %e.error.message, "Bulk job failed");
                    let halves = if e.action == Action::SmallerWindow && depth < self.opts.max_split_depth {
                        self.halve(window, &mut oldest).await?
                    } else {
                        None
                    };
                    match halves {
                        Some((a, b)) => {
                            bump(&self.counters.window_splits);
                            queue.push_front((Some(b), depth + 1));
                            queue.push_front((Some(a), depth + 1));
                        }
                        None => {
                            bulk_usable = e.action != Action::UseRest;
                            bump(&self.counters.rest_fallbacks);
                            if self.rest(&fields, window, &arrow, &mut emit).await?.is_none() {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn rest(
        &self,
        fields: &[String],
        window: Option<Window>,
        arrow: &arrow::datatypes::SchemaRef,
        emit: &mut rest::Emit<'_>,
    ) -> Result<Option<u64>> {
        bump(&self.counters.rest_windows);
        let spec = self.spec(fields, window);
        let (batch, url) = (self.opts.rest_batch_size, self.opts.max_url_bytes);
        rest::extract(&self.client, &self.schema, arrow, &spec, batch, url, emit)
            .await
            .map_err(|e| e.context(&self.schema.object))
    }

    /// Two halves of a window, on whole seconds; `None` if it cannot be cut (no cursor,
    /// one second long, or a full window over an empty object).
    async fn halve(
        &self,
        window: Option<Window>,
        oldest: &mut Option<Option<Timestamp>>,
    ) -> Result<Option<(Window, Window)>> {
        let Some(field) = self.schema.cursor.field() else { return Ok(None) };
        // "Everything" is cut as the window up to a day past the source clock: no row
        // can be stamped later than that.
        let w = match window {
            Some(w) => w,
            None => {
                let now = self.client.source_now().unwrap_or_else(chrono::Utc::now);
                Window { start: None, end: floor_second(now) + TimeDelta::days(1) }
            }
        };
        let from = match w.start {
            Some(s) => s,
            None => {
                if oldest.is_none() {
                    *oldest = Some(rest::oldest(&self.client, &self.schema.object, field).await?);
                }
                match oldest.flatten() {
                    Some(o) => floor_second(o),
                    None => return Ok(None),
                }
            }
        };
        let secs = (w.end - from).num_seconds();
        if secs < 2 {
            return Ok(None);
        }
        let mid = floor_second(from + TimeDelta::seconds(secs / 2));
        if mid <= from || mid >= w.end {
            return Ok(None);
        }
        Ok(Some((Window { start: w.start, end: mid }, Window { start: Some(mid), end: w.end })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;

    fn batch(n: i32) -> RecordBatch {
        let col: arrow::array::ArrayRef = Arc::new(Int32Array::from(vec![n]));
        RecordBatch::try_from_iter([("n", col)]).unwrap()
    }

    async fn drain(mut stream: BatchStream) -> Vec<std::result::Result<i32, String>> {
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            out.push(
                item.map(|b| b.column(0).as_any().downcast_ref::<Int32Array>().unwrap().value(0))
                    .map_err(|e| e.message),
            );
        }
        out
    }

    #[tokio::test]
    async fn a_supervised_stream_ends_only_when_the_reader_says_done() {
        let done = supervised("Account".into(), 1, |sink| async move {
            for n in 1..=3 {
                sink.send(batch(n)).await;
            }
            Ok(())
        });
        assert_eq!(drain(done).await, vec![Ok(1), Ok(2), Ok(3)]);

        let failed = supervised("Account".into(), 1, |sink| async move {
            sink.send(batch(1)).await;
            Err(crate::Error::external("HTTP 503"))
        });
        assert_eq!(drain(failed).await, vec![Ok(1), Err("HTTP 503".to_owned())]);
    }

    #[tokio::test]
    async fn a_reader_that_panics_ends_the_stream_with_an_error_not_a_silent_end() {
        let panicked = supervised("Account".into(), 1, |sink| async move {
            sink.send(batch(1)).await;
            if sink.0.capacity() < usize::MAX {
                panic!("byte index 23 is not a char boundary");
            }
            Ok(())
        });
        let got = drain(panicked).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], Ok(1));
        let err = got[1].as_ref().unwrap_err();
        assert!(
            err.starts_with("Account: the extraction ended before the source said it was done")
                && err.contains("panicked: byte index 23 is not a char boundary"),
            "{err}"
        );
    }
}
