//! The org's Bulk API 2.0 query jobs ([`Jobs`]): each job's lifecycle state, settings
//! and rendered result, kept between the requests of [`bulk`](super::bulk).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use parking_lot::Mutex;
use serde_json::{Value as Json, json};

use crate::value::format_datetime_rest;

/// A job's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Created, waiting to run.
    UploadComplete,
    /// Running.
    InProgress,
    /// Results ready.
    JobComplete,
    /// Ended with an error.
    Failed,
    /// Stopped by the client.
    Aborted,
}

impl JobState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::UploadComplete => "UploadComplete",
            Self::InProgress => "InProgress",
            Self::JobComplete => "JobComplete",
            Self::Failed => "Failed",
            Self::Aborted => "Aborted",
        }
    }

    pub(super) fn terminal(self) -> bool {
        matches!(self, Self::JobComplete | Self::Failed | Self::Aborted)
    }
}

pub(super) struct JobResult {
    pub(super) header: Bytes,
    /// Rendered rows in parts (one per rendering thread); rows never span parts.
    pub(super) parts: Vec<Bytes>,
    /// Global start of each part in the virtual concatenation of `parts`.
    pub(super) part_starts: Vec<usize>,
    /// Global start of each row, plus the total length at the end.
    pub(super) offsets: Vec<usize>,
}

impl JobResult {
    pub(super) fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The bytes of rows `[from, to)` as zero-copy slices of the parts.
    pub(super) fn slices(&self, from: usize, to: usize) -> Vec<Bytes> {
        let (lo, hi) = (self.offsets[from], self.offsets[to]);
        self.parts
            .iter()
            .zip(&self.part_starts)
            .filter(|(part, start)| **start + part.len() > lo && **start < hi)
            .map(|(part, &start)| part.slice(lo.max(start) - start..hi.min(start + part.len()) - start))
            .collect()
    }
}

pub(super) struct Job {
    pub(super) id: String,
    pub(super) operation: String,
    pub(super) object: String,
    pub(super) query: String,
    pub(super) created_by: String,
    pub(super) created_ms: i64,
    pub(super) modstamp_ms: i64,
    pub(super) state: JobState,
    pub(super) api_version: u32,
    pub(super) line_ending: String,
    pub(super) delimiter: String,
    pub(super) records: u64,
    pub(super) processing_ms: u64,
    pub(super) error: Option<String>,
    pub(super) result: Option<Arc<JobResult>>,
}

impl Job {
    pub(super) fn info(&self, full: bool) -> Json {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("operation".into(), json!(self.operation));
        m.insert("object".into(), json!(self.object));
        m.insert("createdById".into(), json!(self.created_by));
        m.insert("createdDate".into(), json!(format_datetime_rest(self.created_ms)));
        m.insert("systemModstamp".into(), json!(format_datetime_rest(self.modstamp_ms)));
        m.insert("state".into(), json!(self.state.as_str()));
        m.insert("concurrencyMode".into(), json!("Parallel"));
        m.insert("contentType".into(), json!("CSV"));
        m.insert("apiVersion".into(), json!(f64::from(self.api_version)));
        if full {
            m.insert("jobType".into(), json!("V2Query"));
        }
        m.insert("lineEnding".into(), json!(self.line_ending));
        m.insert("columnDelimiter".into(), json!(self.delimiter));
        if full {
            m.insert("numberRecordsProcessed".into(), json!(self.records));
            m.insert("retries".into(), json!(0));
            m.insert("totalProcessingTime".into(), json!(self.processing_ms));
            m.insert("isPkChunkingSupported".into(), json!(true));
            if let Some(e) = &self.error {
                m.insert("errorMessage".into(), json!(e));
            }
        }
        Json::Object(m)
    }
}

/// All query jobs of the org.
#[derive(Default)]
pub struct Jobs {
    pub(super) inner: Mutex<JobsInner>,
}

#[derive(Default)]
pub(super) struct JobsInner {
    pub(super) order: Vec<String>,
    pub(super) jobs: HashMap<String, Job>,
    pub(super) next: u64,
    pub(super) created: Vec<i64>,
}

impl Jobs {
    /// Jobs created in the 24 hours before `now` (for `/limits`).
    pub fn created_since_day_before(&self, now: i64) -> usize {
        let cutoff = now - 86_400_000;
        self.inner.lock().created.iter().filter(|&&t| t > cutoff).count()
    }

    /// Number of jobs not deleted.
    pub fn len(&self) -> usize {
        self.inner.lock().jobs.len()
    }

    /// Whether there are no jobs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").field("count", &self.len()).finish()
    }
}
