//! Planning one flow's read, for every destination: which flows a run selects, the
//! API-budget check, the object's description and the windows (slices) to read from the
//! committed end (DESIGN step 1).

use chrono::Utc;

use super::summary::{FlowSummary, Observer, SyncOptions};
use crate::config::{Config, FlowConfig, Mode};
use crate::error::{Error, Result};
use crate::model::{Cursor, Timestamp, Window};
use crate::source::plan_windows;
use crate::source::salesforce::describe::{Described, Selection};
use crate::source::salesforce::{SalesforceSource, rest};

/// A flow's planned read, shared by the files run and the warehouse driver.
pub struct Planned {
    /// The object's schema for this flow.
    pub described: Described,
    /// Whether the whole object is read (first run, `--full-refresh`, `mode = "full"`, no cursor).
    pub full: bool,
    /// The windows (slices) to read, in order; empty when the source clock has not moved.
    pub windows: Vec<Window>,
}

/// Checks the API budget, describes the object and plans the flow's windows from the
/// `committed` end (DESIGN step 1), or in full when `reload` (the destination lost what the
/// committed end stands for); sets the summary's table and window and tells the observer
/// the flow started.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn plan_flow(
    source: &SalesforceSource,
    config: &Config,
    flow: &FlowConfig,
    opts: &SyncOptions,
    committed: Option<Timestamp>,
    reload: bool,
    observer: &dyn Observer,
    summary: &mut FlowSummary,
) -> Result<Planned> {
    source.client().check_budget()?;
    let described = source.describe(&flow.object, &Selection::for_flow(flow, config.destination.naming())).await?;
    summary.table = described.schema.table.clone();
    let settings = &flow.settings;
    let full = reload
        || opts.full_refresh
        || opts.reset
        || settings.mode == Mode::Full
        || described.schema.cursor == Cursor::None;
    let now = source.source_now().unwrap_or_else(Utc::now);
    let committed = committed.filter(|_| !full);
    // A full window is sliced from the oldest row, so fetch it only when slicing one.
    let oldest = match (settings.slice, committed, described.schema.cursor.field()) {
        (Some(_), None, Some(field)) => rest::oldest(source.client(), &flow.object, field).await?,
        _ => None,
    };
    let windows = plan_windows(committed, now, settings.lookback, settings.lag, settings.slice, oldest);
    let windows = fit_to_budget(source, flow, &described, windows).await?;
    // `None` when the source clock has not passed the committed end: nothing to read yet.
    summary.window = windows.first().zip(windows.last()).map(|(a, b)| Window { start: a.start, end: b.end });
    observer.flow_started(&flow.object, summary.window.as_ref());
    Ok(Planned { described, full, windows })
}

/// Merges runs of empty slices into the next slice with data (one cheap query per merged
/// slice: where the next data lies), then checks the plan against the API budget: a plan
/// whose estimated calls exceed what `api_budget_percent` leaves today is refused before
/// anything is read, with the estimate, rather than stopping half way (a first load with
/// `slice = "1h"` over ten years once planned thousands of calls). Probing stops as soon as
/// the estimate is over the budget.
async fn fit_to_budget(
    source: &SalesforceSource,
    flow: &FlowConfig,
    described: &Described,
    windows: Vec<Window>,
) -> Result<Vec<Window>> {
    use crate::source::window::{calls_per_window, merge_until_data};
    let client = source.client();
    let bulk = match flow.api {
        crate::config::Api::Rest => false,
        _ => described.bulk_compatible(),
    };
    let per_window = calls_per_window(bulk, flow.api == crate::config::Api::Auto);
    let left = client.budget_left();
    // Describe is done; the verification's count and the run's own reads remain.
    const OVERHEAD: u64 = 2;
    let refuse = |estimate: u64, windows: usize, left: u64| {
        Error::user(format!(
            "{}: the plan reads {windows} windows, an estimated {estimate} API calls at least, more than the {left}              left today within api_budget_percent = {}; widen this flow's `slice` (or raise api_budget_percent) so              that it fits",
            flow.object,
            source.client().budget_percent()
        ))
    };
    let field = described.schema.cursor.field();
    let mut merged = Vec::with_capacity(windows.len());
    let mut probes = 0u64;
    match field {
        Some(field) if windows.len() > 1 => {
            let mut i = 0;
            while i < windows.len() {
                let first = rest::oldest_from(client, &flow.object, field, windows[i].start).await?;
                probes += 1;
                let (window, next) = merge_until_data(&windows, i, first);
                merged.push(window);
                i = next;
                let so_far = probes + merged.len() as u64 * per_window + OVERHEAD;
                if let Some(left) = left
                    && so_far > left
                {
                    let lower = so_far + (windows.len() - i).min(1) as u64 * per_window;
                    return Err(refuse(lower, merged.len() + usize::from(i < windows.len()), left));
                }
            }
            if merged.len() < windows.len() {
                tracing::info!(object = %flow.object, planned = windows.len(), kept = merged.len(), "merged empty slices");
            }
        }
        _ => merged = windows,
    }
    let estimate = probes + merged.len() as u64 * per_window + OVERHEAD;
    if let Some(left) = left
        && estimate > left
    {
        return Err(refuse(estimate, merged.len(), left));
    }
    Ok(merged)
}

/// The flows `objects` names, in config order (all of them for `None`). An unknown
/// name is a user error listing the valid ones.
pub fn select_flows<'a>(config: &'a Config, objects: Option<&[String]>) -> Result<Vec<&'a FlowConfig>> {
    let Some(wanted) = objects else { return Ok(config.flows.iter().collect()) };
    let unknown: Vec<&str> = wanted
        .iter()
        .map(|w| w.trim())
        .filter(|w| !config.flows.iter().any(|f| f.object.eq_ignore_ascii_case(w)))
        .collect();
    if !unknown.is_empty() {
        let valid: Vec<&str> = config.flows.iter().map(|f| f.object.as_str()).collect();
        return Err(Error::user(format!(
            "--objects: no flow for {} in {}; the flows are: {}",
            unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
            config.origin,
            valid.join(", ")
        )));
    }
    Ok(config.flows.iter().filter(|f| wanted.iter().any(|w| f.object.eq_ignore_ascii_case(w.trim()))).collect())
}
