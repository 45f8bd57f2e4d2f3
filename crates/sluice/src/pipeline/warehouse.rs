//! The warehouse side of the pipeline (DuckDB, PostgreSQL, Redshift): [`WarehouseSink`]
//! prepares the control tables and records the run in `_sluice.runs`, and opens each flow
//! as a [`super::warehouse_flow::WarehouseFlow`]: stage, then consolidate in one
//! transaction with the window end. `sluice verify` ([`verify`]) lives
//! here too: it needs the same control tables.

use chrono::Utc;

use super::checks;
use super::context::{Ctx, config_fingerprint, layout_state};
use super::sink::{RunCx, Sink};
use super::summary::{Quiet, RunStatus, SyncOptions, VerifyCounts, new_run_id};
use super::warehouse_flow::{self, WarehouseFlow};
use crate::config::{Config, Consolidation, FlowConfig, WriteMode};
use crate::consolidate;
use crate::destination::{Destination, Value};
use crate::source::salesforce::SalesforceSource;
use crate::{Error, Result};

/// A warehouse as the run loop drives it: the open destination (the run locks of its flows
/// held) and what the run's flows share.
pub(crate) struct WarehouseSink<'a, D: Destination> {
    cx: Ctx<'a, D>,
}

impl<'a, D: Destination> WarehouseSink<'a, D> {
    /// The sink of `run` into `schema` of `dest`.
    pub(crate) fn new(dest: &'a D, schema: &str, run: &RunCx<'a>) -> Self {
        Self { cx: Ctx::new(dest, run.source, run.config, run.opts, run.observer, run.run_id.clone(), schema) }
    }
}

impl<D: Destination> Sink for WarehouseSink<'_, D> {
    type Flow<'s>
        = WarehouseFlow<'s, D>
    where
        Self: 's;

    async fn begin_run(&self, run: &RunCx<'_>) -> Result<()> {
        let cx = &self.cx;
        let (dest, config, schema, d) = (cx.dest, cx.config, cx.schema.as_str(), cx.dest.dialect());
        prepare_control(dest, config, schema).await?;
        // This run shows it lives (where runs of one schema go side by side), then marks
        // those of the schema that died as such.
        let mut setup: Vec<String> = consolidate::run_alive(d, &run.run_id).into_iter().collect();
        setup.push(consolidate::abandon_runs(d, schema));
        setup.extend(consolidate::run_started(
            d,
            &run.run_id,
            schema,
            run.opts.trigger,
            Utc::now(),
            &config_fingerprint(config),
        ));
        dest.execute(setup).await?;
        if d.caps().procedures && config.destination.consolidation() == Consolidation::Run {
            // A procedure left by an earlier `consolidation = "procedure"` would consolidate
            // whatever this run stages: gone before any flow stages.
            let rows = dest.query(consolidate::procedure::leftovers_query(d, schema)).await?;
            dest.execute(consolidate::procedure::drop_leftovers(d, schema, &rows)).await?;
        }
        Ok(())
    }

    async fn open_flow<'s>(
        &'s self,
        _run: &'s RunCx<'_>,
        flow: &'s FlowConfig,
        attempt: u32,
    ) -> Result<WarehouseFlow<'s, D>> {
        Ok(WarehouseFlow::new(&self.cx, flow, attempt))
    }

    async fn forget(&self, _run: &RunCx<'_>, flows: &[&FlowConfig]) -> Result<()> {
        let d = self.cx.dest.dialect();
        let statements = flows.iter().map(|flow| consolidate::forget_flow(d, &self.cx.target_of(flow))).collect();
        self.cx.dest.transaction(statements).await
    }

    async fn flow_failed(&self, run: &RunCx<'_>, flow: &FlowConfig, message: &str) -> Result<()> {
        let cx = &self.cx;
        let target = cx.target_of(flow);
        let record =
            consolidate::flow_failed(cx.dest.dialect(), &run.run_id, &target, &flow.object, message, Utc::now());
        cx.dest.execute(record).await
    }

    async fn end_run(&self, run: &RunCx<'_>, status: RunStatus) -> Result<()> {
        // A run whose row is never finished stays `running`; a later run of the schema
        // marks it abandoned.
        let record = consolidate::run_finished(self.cx.dest.dialect(), &run.run_id, status.persisted(), Utc::now());
        self.cx.dest.execute(vec![record]).await
    }
}

/// Makes the control tables ready for a run into `schema`: refuses a layout from a newer
/// sluice, migrates an older one (in one transaction), creates what is missing. Serialised
/// among runs of other schemas of the same database where the destination allows it
/// ([`consolidate::setup_lock`]). Where it does not (Redshift has no advisory locks), two
/// first runs may race to create the same control tables: the loser's `IF NOT EXISTS`
/// statement fails on the winner's catalog entry, and it tries again, finding them.
pub async fn prepare_control<D: Destination>(dest: &D, config: &Config, schema: &str) -> Result<()> {
    let lock = consolidate::setup_lock(dest.dialect());
    if let Some([take, _]) = &lock {
        dest.execute(vec![take.clone()]).await?;
    }
    let mut result = prepare_locked(dest, config, schema).await;
    let mut tries = 1;
    while lock.is_none() && tries < SETUP_TRIES && result.as_ref().is_err_and(lost_creation_race) {
        tokio::time::sleep(std::time::Duration::from_millis(50 * tries)).await;
        result = prepare_locked(dest, config, schema).await;
        tries += 1;
    }
    if let Some([_, give]) = lock
        && let Err(e) = dest.execute(vec![give]).await
    {
        tracing::warn!(error = %e, "could not give back the control-table lock; the session's end frees it");
    }
    result
}

/// Attempts at the control-table set-up where no lock serialises it (see [`prepare_control`]).
const SETUP_TRIES: u64 = 4;

/// Whether `e` is another session's concurrent creation of the same catalog entry.
fn lost_creation_race(e: &Error) -> bool {
    let text = e.message.to_ascii_lowercase();
    e.is_duplicate_key() || text.contains("already exists") || text.contains("duplicate key")
}

async fn prepare_locked<D: Destination>(dest: &D, config: &Config, schema: &str) -> Result<()> {
    let d = dest.dialect();
    let state = layout_state(dest).await?;
    consolidate::check_layout(state, &dest.location())?;
    if state == consolidate::LayoutState::V1 {
        let naming = config.destination.naming();
        let rows = dest.query(consolidate::v1_flows_query(d)).await?;
        let tables: Vec<(String, String)> = rows
            .iter()
            .filter_map(|r| r.first().and_then(Value::as_str))
            .map(|flow| (flow.to_owned(), naming.apply(flow)))
            .collect();
        dest.transaction(consolidate::migrate_v1(d, schema, &tables, Utc::now())).await?;
        tracing::warn!(
            schema,
            flows = tables.len(),
            "upgraded the control tables to layout {}: they are now keyed by target table; the existing state was \
             given to schema {schema}",
            consolidate::LAYOUT_VERSION
        );
    } else if let consolidate::LayoutState::Version(from) = state
        && from < consolidate::LAYOUT_VERSION
    {
        dest.transaction(consolidate::migrate_added(d, from, Utc::now())).await?;
        tracing::warn!("upgraded the control tables from layout {from} to {}", consolidate::LAYOUT_VERSION);
    }
    // One transaction: a session racing this one (see [`prepare_control`]) sees all of the
    // control tables or none, never some, which would look like an older layout.
    dest.transaction(consolidate::control_ddl(d, Utc::now())).await
}

/// The outcome of `sluice verify` for one flow.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlowVerify {
    /// Flow (object) name.
    pub flow: String,
    /// The counts, when the flow has committed anything and the check ran.
    pub counts: Option<VerifyCounts>,
    /// Rows `--repair` removed (or flagged, in soft mode).
    pub repaired: Option<u64>,
    /// Why the check could not run, or the repair was refused.
    pub error: Option<String>,
}

/// `sluice verify [--repair]`: per selected flow, the source's live count against the
/// destination's at the committed window end; with `repair`, a reconciliation first (still
/// guarded by `max_delete_ratio`).
pub async fn verify<D: Destination>(
    dest: &D,
    source: &SalesforceSource,
    config: &Config,
    flows: Vec<&FlowConfig>,
    opts: &SyncOptions,
    schema: &str,
    repair: bool,
) -> Result<Vec<FlowVerify>> {
    prepare_control(dest, config, schema).await?;
    let run_id = format!("verify-{}", new_run_id());
    let cx = Ctx::new(dest, source, config, opts, &Quiet, run_id, schema);
    let mut out = Vec::new();
    for flow in flows {
        let mut result = FlowVerify { flow: flow.object.clone(), counts: None, repaired: None, error: None };
        if let Err(e) = verify_one(&cx, flow, repair, &mut result).await {
            result.error = Some(e.message);
        }
        out.push(result);
    }
    Ok(out)
}

async fn verify_one<D: Destination>(
    cx: &Ctx<'_, D>,
    flow: &FlowConfig,
    repair: bool,
    out: &mut FlowVerify,
) -> Result<()> {
    use crate::source::salesforce::describe::Selection;
    let committed = warehouse_flow::committed(cx.dest, &cx.target_of(flow)).await?;
    let Some(end) = committed.window_end else {
        return Err(Error::user(format!(
            "{}: never synced into this destination; run `sluice sync` first",
            flow.object
        )));
    };
    let described =
        cx.source.describe(&flow.object, &Selection::for_flow(flow, cx.config.destination.naming())).await?;
    let mut spec = consolidate::MergeSpec::new(
        &described.schema,
        &cx.schema,
        flow.settings.deletes,
        flow.settings.history,
        &cx.run_id,
        Utc::now(),
    )?;
    spec.write = flow.settings.write;
    if cx.dest.columns(spec.target.clone()).await?.is_none() {
        return Err(Error::user(format!(
            "{}: table {} is missing",
            flow.object,
            cx.dest.dialect().table(&spec.target)
        )));
    }
    if repair && spec.write == WriteMode::Append {
        return Err(Error::user(format!(
            "{}: writes with write = \"append\", an event log that keeps every version, so there is nothing to \
             repair; verify without --repair compares its newest versions",
            flow.object
        )));
    }
    if repair {
        out.repaired = Some(checks::reconcile(cx, flow, &described, &spec).await?);
    }
    out.counts = Some(checks::verify(cx, flow, &described, &spec, Some(end)).await?);
    Ok(())
}
