//! One run of a set of flows, source to destination (DESIGN "One flow, one run"), for
//! every destination:
//!
//! - [`connect`]: the only file naming concrete destinations; the entry points
//!   ([`sync`], [`check_destination`], [`status`], [`history`], [`verify`]).
//! - [`plan`]: which flows run, the API budget, the windows to read.
//! - [`sink`]: the contract every destination implements: a run-level [`sink::Sink`] and
//!   a per-flow [`sink::FlowSink`] (begin → write → staged → commit, then the checks).
//! - [`flows`]: the run loop every destination shares: bounded parallel flows, retries
//!   with backoff, failure isolation, the quota stop; [`flow`] drives one attempt of one
//!   flow through the steps of [`phase`] (plan, extract, mask, commit), for every sink.
//! - [`warehouse`] and [`warehouse_flow`]: the warehouses' sink, with the [`checks`]
//!   (completeness, reconciliation, verification) and the shared [`context`].
//! - [`files_run`]: the files destination's sink.
//! - [`summary`]: what a run reports; [`report`]: what `status` and `history` read back.

pub mod checks;
pub mod connect;
pub mod context;
pub mod files_run;
pub mod flow;
pub mod flows;
pub mod phase;
pub mod plan;
pub mod report;
pub mod sink;
pub mod summary;
pub mod warehouse;
pub mod warehouse_flow;

pub use connect::{Removed, StatusRow, check_destination, history, status, sync, sync_into, verify};
pub use plan::select_flows;
pub use report::{FlowState, RunRecord};
pub use summary::{
    FlowStatus, FlowSummary, MergeCounts, Observer, Quiet, RunStatus, RunSummary, SyncOptions, Timings, VerifyCounts,
    new_run_id,
};
pub use warehouse::FlowVerify;
