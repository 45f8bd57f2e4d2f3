//! One run of a set of flows, source to destination (DESIGN "One flow, one run"), for
//! every destination:
//!
//! - [`connect`]: the only file naming concrete destinations (the list of connectors);
//!   the entry points ([`sync`], [`check_destination`], [`status`], [`history`],
//!   [`verify`]).
//! - [`target`]: what a destination type implements so every command runs on it
//!   ([`target::Connector`]), and [`target::Warehouse`], which does it for every SQL
//!   warehouse.
//! - [`plan`]: which flows run, the API budget, the windows to read.
//! - [`sink`]: the contract every destination implements: a run-level [`sink::Sink`] and
//!   a per-flow [`sink::FlowSink`] (begin → write → staged → commit, then the checks).
//! - [`flows`]: the run loop every destination shares: bounded parallel flows, retries
//!   with backoff, failure isolation, the quota stop; [`flow`] drives one attempt of one
//!   flow through the steps of [`phase`] (plan, extract, mask, commit), for every sink.
//! - [`warehouse`] and [`warehouse_flow`]: the warehouses' sink, with the [`checks`]
//!   (completeness, reconciliation, verification) and the shared [`context`].
//! - [`summary`]: what a run reports; [`report`]: what `status` and `history` read back.

pub mod checks;
pub mod connect;
pub mod context;
pub mod flow;
pub mod flows;
pub mod phase;
pub mod plan;
pub mod report;
pub mod sink;
pub mod summary;
pub mod target;
pub mod warehouse;
pub mod warehouse_flow;

pub use connect::{
    DESTINATIONS, check_destination, destination_kinds, history, load_config, open_reader, open_target, query, status,
    sync, verify,
};
pub use plan::select_flows;
pub use report::{FlowState, Removed, RunRecord, StatusRow};
pub use summary::{
    FlowRetry, FlowStatus, FlowSummary, FormulaRefresh, MergeCounts, Observer, Quiet, RunStatus, RunSummary,
    SyncOptions, Timings, VerifyCounts, new_run_id,
};
pub use target::sync_into;
pub use warehouse::FlowVerify;
