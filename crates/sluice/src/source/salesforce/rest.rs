//! REST API reads (reference §2): describeGlobal, describe, `SELECT COUNT()`, and
//! `queryAll` with `nextRecordsUrl` paging, decoded page by page into Arrow batches.
//!
//! `queryAll` (not `query`) so soft-deleted rows (`IsDeleted = true`) come too. The
//! first page is `GET .../queryAll?q=`, every later page the `nextRecordsUrl` given
//! (Salesforce answers `/query/{locator}` there, which keeps including deleted rows).
//! Each request asks for `Sforce-Query-Options: batchSize=N`; the server may send
//! fewer.
//!
//! A field list too long for one URL is split by [`QuerySpec::split`]; the chunks run
//! side by side, each `ORDER BY Id`, and are stitched row by row on `Id` (checking
//! that every chunk saw the same row at the same cursor value). If rows changed
//! between the chunk queries the window is read again from the top; an expired query
//! locator (`INVALID_QUERY_LOCATOR`) does the same. Re-reads may repeat rows already
//! sent: staging keeps duplicates and consolidation removes them, so that is safe.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::task::JoinHandle;

use super::client::{Action, CallError, Client, Request, Response};
use super::decode::{JsonPage, JsonRecord, RestPage, json_batch, json_rows_batch, json_text};
use super::describe::{ObjectInfo, objects};
use super::soql::{QuerySpec, url_budget};
use crate::error::{Error, Result};
use crate::model::{SluiceType, TableSchema, Timestamp};

/// How many times a window's query is run again from the top (expired locator, rows
/// changed between split queries) before giving up.
pub const MAX_RESTARTS: usize = 3;

/// describeGlobal: every object of the org.
pub async fn describe_global(client: &Client) -> Result<Vec<ObjectInfo>> {
    let resp = client.send(&Request::get(client.data_path("/sobjects"))).await?;
    objects(&resp.json("describeGlobal")?)
}

/// The describe of one object. An unknown object is a user error naming it.
pub async fn describe(client: &Client, object: &str) -> Result<Value> {
    if !super::soql::is_api_name(object) {
        return Err(Error::user(format!("`{object}` is not a Salesforce object name")));
    }
    match client.send(&Request::get(client.data_path(&format!("/sobjects/{object}/describe")))).await {
        Ok(resp) => resp.json(&format!("describe of {object}")),
        Err(e) if e.error.kind == crate::Kind::User && e.error.message.contains("NOT_FOUND") => Err(Error::user(
            format!("unknown object `{object}`: the org has no such object, or the user cannot see it"),
        )),
        Err(e) => Err(e.error.context(object)),
    }
}

/// `SELECT COUNT()` over the spec's window and filter (`queryAll`, so deleted rows
/// count too, as extraction reads them).
pub async fn count(client: &Client, spec: &QuerySpec<'_>) -> Result<u64> {
    let soql = spec.count()?;
    let resp = client.send(&query_request(client, &soql, None)).await?;
    let page = RestPage::parse(&resp.body)?;
    Ok(page.total_size)
}

/// The smallest value of `field` (a datetime) in `object`, over deleted rows too.
pub async fn oldest(client: &Client, object: &str, field: &str) -> Result<Option<Timestamp>> {
    oldest_from(client, object, field, None).await
}

/// The smallest value of `field` (a datetime) in `object` at or after `from` (deleted rows
/// too): where the next data lies, for merging empty slices.
pub async fn oldest_from(
    client: &Client,
    object: &str,
    field: &str,
    from: Option<Timestamp>,
) -> Result<Option<Timestamp>> {
    let after = from.map(|t| format!(" AND {field} >= {}", super::soql::datetime_literal(t))).unwrap_or_default();
    let soql = format!("SELECT {field} FROM {object} WHERE {field} != null{after} ORDER BY {field} ASC LIMIT 1");
    let resp = client.send(&query_request(client, &soql, None)).await?;
    let page = RestPage::parse(&resp.body)?;
    let Some(raw) = page.records.first().and_then(|r| r.raw(field)) else { return Ok(None) };
    let text = json_text(raw)?;
    Ok(text.and_then(|t| super::decode::parse_datetime_ms(&t)).and_then(chrono::DateTime::from_timestamp_millis))
}

fn query_request(client: &Client, soql: &str, batch_size: Option<u32>) -> Request {
    let req = Request::get(client.data_path("/queryAll")).query("q", soql);
    with_batch(req, batch_size)
}

fn with_batch(req: Request, batch_size: Option<u32>) -> Request {
    match batch_size {
        Some(n) => req.header("Sforce-Query-Options", format!("batchSize={n}")),
        None => req,
    }
}

/// Walks the pages of one `queryAll`, remembering the `totalSize` its pages state.
pub struct Pager<'c> {
    client: &'c Client,
    soql: String,
    /// The page size asked for (`None`: the server's); see [`Pager::adapt`].
    batch_size: Option<u32>,
    max_batch: Option<u32>,
    next: Option<String>,
    started: bool,
    total: Option<u64>,
}

/// The smallest REST page size Salesforce accepts (`batchSize`).
pub const MIN_BATCH_SIZE: u32 = 200;

/// The bytes a page of rows should be about: memory follows bytes, not rows (a row with a
/// 100 KB text field is a hundred narrow rows), and a page is held as its body, its decoded
/// batch and the batches queued behind it.
pub const PAGE_BYTES: usize = 8 << 20;

/// The rows per page that bring a page of `rows` rows in `bytes` bytes to about
/// [`PAGE_BYTES`], between `min` and `max`.
pub fn rows_for_bytes(rows: u64, bytes: usize, min: u32, max: u32) -> u32 {
    if rows == 0 || bytes == 0 {
        return max;
    }
    let per_row = (bytes as u64).div_ceil(rows).max(1);
    let fit = (PAGE_BYTES as u64 / per_row).min(u64::from(u32::MAX)) as u32;
    fit.clamp(min.min(max), max)
}

impl<'c> Pager<'c> {
    /// A pager for `soql`. The first page asks for the fewest rows Salesforce allows (how wide
    /// a row is is not known before one arrives: 2,000 rows of 100 KB would be 200 MB); later
    /// pages are sized from it ([`Pager::adapt`]).
    pub fn new(client: &'c Client, soql: String, batch_size: Option<u32>) -> Self {
        let first = batch_size.map(|n| n.min(MIN_BATCH_SIZE));
        Self { client, soql, batch_size: first, max_batch: batch_size, next: None, started: false, total: None }
    }

    /// Sizes the next pages from the last one: as many rows as make about [`PAGE_BYTES`],
    /// within Salesforce's bounds and never above the size configured.
    fn adapt(&mut self, rows: u64, bytes: usize) {
        if rows == 0 {
            return;
        }
        let max = self.max_batch.unwrap_or(2000).max(MIN_BATCH_SIZE);
        let wanted = rows_for_bytes(rows, bytes, MIN_BATCH_SIZE, max);
        // Only when the server's choice is too big: its default is fine for narrow rows.
        if self.max_batch.is_some() || wanted < max {
            self.batch_size = Some(wanted);
        }
    }

    /// Checks that `rows`, the rows read from every page, is the `totalSize` the pages
    /// stated. A listing cut short (a page claiming `done` too early, a lost page) would
    /// otherwise pass for the whole window, and a short Id snapshot would feed deletes: a
    /// mismatch reads the window again, and fails the flow if it persists.
    pub fn check_complete(&self, rows: u64) -> Result<(), CallError> {
        match self.total {
            Some(total) if total != rows => {
                Err(changed(&format!("the query's pages held {rows} rows but its totalSize is {total}")))
            }
            _ => Ok(()),
        }
    }

    /// The next page's response, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Response>, CallError> {
        let req = match (&self.next, self.started) {
            (_, false) => query_request(self.client, &self.soql, self.batch_size),
            (Some(next), true) => with_batch(Request::get(next.clone()), self.batch_size),
            (None, true) => return Ok(None),
        };
        let resp = self.client.send(&req).await?;
        let page: Head = serde_json::from_slice(&resp.body)
            .map_err(|e| Error::external(format!("a query page is not the expected JSON ({e})")))?;
        match self.total {
            None => self.total = Some(page.total_size),
            Some(total) if total != page.total_size => {
                return Err(changed(&format!(
                    "the query's pages disagree on totalSize ({total}, then {})",
                    page.total_size
                )));
            }
            Some(_) => {}
        }
        self.started = true;
        self.adapt(page.records.len() as u64, resp.body.len());
        self.next = if page.done { None } else { page.next_records_url };
        if !page.done && self.next.is_none() {
            return Err(Error::external("a query page says done: false but has no nextRecordsUrl").into());
        }
        Ok(Some(resp))
    }
}

/// The paging fields of a query page (the records are skipped, not kept).
#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "totalSize")]
    total_size: u64,
    done: bool,
    #[serde(rename = "nextRecordsUrl", default)]
    next_records_url: Option<String>,
    /// Counted, not kept.
    #[serde(default)]
    records: Vec<serde::de::IgnoredAny>,
}

/// Where decoded batches go; `false` when the receiver is gone (stop quietly).
pub type Emit<'a> = dyn FnMut(RecordBatch) -> futures_util::future::BoxFuture<'static, bool> + Send + 'a;

/// Reads one window through REST and emits one batch per page. Returns the rows
/// emitted, or `None` when the receiver went away.
pub async fn extract(
    client: &Client,
    schema: &TableSchema,
    arrow: &SchemaRef,
    spec: &QuerySpec<'_>,
    batch_size: Option<u32>,
    url_bytes: usize,
    emit: &mut Emit<'_>,
) -> Result<Option<u64>> {
    let base = format!("{}{}?q=", client.instance_url().await?, client.data_path("/queryAll"));
    let chunks = spec.split(url_budget(&base).min(url_bytes.saturating_sub(base.len())))?;
    let mut restarts = 0;
    loop {
        let result = if chunks.len() == 1 {
            single(client, schema, arrow, chunks[0].soql.clone(), batch_size, emit).await
        } else {
            let soqls: Vec<String> = chunks.iter().map(|c| format!("{} ORDER BY Id", c.soql)).collect();
            let cursor = spec.range.map(|r| r.field);
            stitched(client, schema, arrow, soqls, cursor, batch_size, emit).await
        };
        match result {
            Err(e) if e.action == Action::RestartQuery && restarts < MAX_RESTARTS => {
                restarts += 1;
                tracing::info!(object = %schema.object, error = %e.error.message, "reading the window again");
            }
            other => return other.map_err(Error::from),
        }
    }
}

/// One query, page by page. Without binary columns, page k decodes on a blocking
/// thread while page k + 1 downloads.
async fn single(
    client: &Client,
    schema: &TableSchema,
    arrow: &SchemaRef,
    soql: String,
    batch_size: Option<u32>,
    emit: &mut Emit<'_>,
) -> Result<Option<u64>, CallError> {
    let mut pager = Pager::new(client, soql, batch_size);
    let has_blobs = schema.columns.iter().any(|c| c.ty == SluiceType::Binary && !c.masked);
    let shared = Arc::new((schema.clone(), arrow.clone()));
    let mut rows = 0u64;
    let mut decoding: Option<JoinHandle<Result<RecordBatch>>> = None;
    while let Some(resp) = pager.next_page().await? {
        if let Some(previous) = decoding.take() {
            match deliver(previous, emit).await? {
                Some(n) => rows += n,
                None => return Ok(None),
            }
        }
        if has_blobs {
            let page = JsonPage::parse(schema, &resp.body)?;
            let urls = schema.columns.iter().enumerate().filter(|(_, c)| c.ty == SluiceType::Binary && !c.masked);
            let urls: Vec<&RawValue> = urls.flat_map(|(i, _)| page.rows.iter().filter_map(move |r| r[i])).collect();
            let blobs = fetch_blobs(client, urls).await?;
            let batch = json_rows_batch(schema, arrow, &page.rows, &|url| blobs.get(url).cloned())?;
            match deliver_now(batch, emit).await {
                Some(n) => rows += n,
                None => return Ok(None),
            }
        } else {
            let (shared, body) = (shared.clone(), resp.body);
            decoding = Some(tokio::task::spawn_blocking(move || {
                let page = JsonPage::parse(&shared.0, &body)?;
                json_rows_batch(&shared.0, &shared.1, &page.rows, &|_| None)
            }));
        }
    }
    if let Some(last) = decoding.take() {
        match deliver(last, emit).await? {
            Some(n) => rows += n,
            None => return Ok(None),
        }
    }
    pager.check_complete(rows)?;
    Ok(Some(rows))
}

async fn deliver(task: JoinHandle<Result<RecordBatch>>, emit: &mut Emit<'_>) -> Result<Option<u64>, CallError> {
    let batch = task.await.map_err(|e| Error::internal(format!("decoding a query page: {e}")))??;
    Ok(deliver_now(batch, emit).await)
}

async fn deliver_now(batch: RecordBatch, emit: &mut Emit<'_>) -> Option<u64> {
    let n = batch.num_rows() as u64;
    (n == 0 || emit(batch).await).then_some(n)
}

type Owned = HashMap<String, Box<RawValue>>;

/// Reads the chunk queries side by side and stitches their rows by Id.
async fn stitched(
    client: &Client,
    schema: &TableSchema,
    arrow: &SchemaRef,
    soqls: Vec<String>,
    cursor: Option<&str>,
    batch_size: Option<u32>,
    emit: &mut Emit<'_>,
) -> Result<Option<u64>, CallError> {
    let mut pagers: Vec<Pager<'_>> = soqls.into_iter().map(|q| Pager::new(client, q, batch_size)).collect();
    let mut buffers: Vec<VecDeque<Owned>> = vec![VecDeque::new(); pagers.len()];
    let mut finished = vec![false; pagers.len()];
    let mut rows = 0u64;
    loop {
        // Refill every empty buffer from its query.
        for (i, pager) in pagers.iter_mut().enumerate() {
            while buffers[i].is_empty() && !finished[i] {
                match pager.next_page().await? {
                    Some(resp) => {
                        let page = RestPage::parse(&resp.body)?;
                        buffers[i].extend(
                            page.records
                                .iter()
                                .map(|r| r.iter().map(|(k, v)| (k.to_string(), (*v).to_owned())).collect::<Owned>()),
                        );
                    }
                    None => finished[i] = true,
                }
            }
        }
        let ready = buffers.iter().map(VecDeque::len).min().unwrap_or(0);
        if ready == 0 {
            if buffers.iter().all(VecDeque::is_empty) {
                for pager in &pagers {
                    pager.check_complete(rows)?;
                }
                return Ok(Some(rows));
            }
            return Err(changed("the split queries returned different numbers of rows"));
        }
        let mut merged: Vec<Owned> = Vec::with_capacity(ready);
        for _ in 0..ready {
            let mut row = buffers[0].pop_front().unwrap_or_default();
            let key = |r: &Owned, f: &str| r.raw(f).map(|v| v.get().to_owned());
            let id = key(&row, "Id");
            for buffer in buffers.iter_mut().skip(1) {
                let other = buffer.pop_front().unwrap_or_default();
                if key(&other, "Id") != id || cursor.is_some_and(|c| key(&other, c) != key(&row, c)) {
                    return Err(changed("rows changed between the split queries"));
                }
                row.extend(other);
            }
            merged.push(row);
        }
        let binary = schema.columns.iter().filter(|c| c.ty == SluiceType::Binary && !c.masked);
        let urls: Vec<&RawValue> = binary.flat_map(|c| merged.iter().filter_map(|r| r.raw(&c.source_name))).collect();
        let blobs = fetch_blobs(client, urls).await?;
        let batch = json_batch(schema, arrow, &merged, &|url| blobs.get(url).cloned())?;
        rows += batch.num_rows() as u64;
        if !emit(batch).await {
            return Ok(None);
        }
    }
}

fn changed(what: &str) -> CallError {
    CallError { error: Error::external(format!("{what}; reading the window again")), action: Action::RestartQuery }
}

/// Downloads the blobs that binary columns point to (REST gives a URL per value).
async fn fetch_blobs(client: &Client, urls: Vec<&RawValue>) -> Result<HashMap<String, Vec<u8>>, CallError> {
    let mut blobs = HashMap::new();
    for raw in urls {
        let Some(url) = json_text(raw)? else { continue };
        if url.is_empty() || blobs.contains_key(url.as_ref()) {
            continue;
        }
        let resp = client.send(&Request::get(url.to_string())).await?;
        blobs.insert(url.into_owned(), resp.body.to_vec());
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_sized_by_bytes_within_bounds() {
        let cases = [
            // (rows, bytes of the page, min, max) → rows of the next page
            (2000, 2000 * 500, 200, 2000, 2000), // narrow rows: the configured size
            (2000, 2000 * 32 * 1024, 200, 2000, 256), // 32 KB rows: 8 MiB / 32 KiB
            (200, 200 * 100 * 1024, 200, 2000, 200), // 100 KB rows: never below the minimum
            (20_000, 20_000 * 100 * 1024, 50, 20_000, 81), // Bulk: 8 MiB of 100 KB rows
            (0, 0, 200, 2000, 2000),             // an empty page says nothing
            (10, 1, 200, 2000, 2000),
        ];
        for (rows, bytes, min, max, want) in cases {
            assert_eq!(rows_for_bytes(rows, bytes, min, max), want, "{rows} rows in {bytes} bytes");
        }
    }
}
