//! What the flows of one warehouse run share ([`Ctx`]), and the small reads and
//! fingerprints every phase uses.

use sha2::{Digest, Sha256};

use super::summary::{MergeCounts, Observer, SyncOptions};
use crate::config::{Config, Consolidation, FlowConfig};
use crate::consolidate::{self, TableRef};
use crate::destination::{Destination, Value, first_value};
use crate::model::{TableSchema, Timestamp};
use crate::source::salesforce::SalesforceSource;
use crate::{Error, Result};

/// Everything the flows of one run share.
pub struct Ctx<'a, D: Destination> {
    /// The destination.
    pub dest: &'a D,
    /// The connected source.
    pub source: &'a SalesforceSource,
    /// The whole config.
    pub config: &'a Config,
    /// The run's options.
    pub opts: &'a SyncOptions,
    /// Progress sink.
    pub observer: &'a dyn Observer,
    /// This run's id.
    pub run_id: String,
    /// Destination schema of the replicated tables.
    pub schema: String,
    /// Consolidations take turns (see [`super::warehouse_flow::WarehouseFlow`]).
    pub merge_lock: tokio::sync::Mutex<()>,
}

impl<'a, D: Destination> Ctx<'a, D> {
    pub(crate) fn new(
        dest: &'a D,
        source: &'a SalesforceSource,
        config: &'a Config,
        opts: &'a SyncOptions,
        observer: &'a dyn Observer,
        run_id: String,
        schema: &str,
    ) -> Self {
        let merge_lock = tokio::sync::Mutex::new(());
        Self { dest, source, config, opts, observer, run_id, schema: schema.to_owned(), merge_lock }
    }

    /// The table `flow` writes: what its control rows are keyed by.
    pub fn target_of(&self, flow: &FlowConfig) -> TableRef {
        TableRef::new(&self.schema, self.config.destination.naming().apply(&flow.object))
    }

    /// Whether loads are handed to the warehouse's stored procedures rather than
    /// consolidated by the run (`destination.consolidation = "procedure"`).
    pub fn hands_off(&self) -> bool {
        self.config.destination.consolidation() == Consolidation::Procedure
    }
}

/// The first 8 bytes of a SHA-256, in hex: short, stable fingerprints for the control tables.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A short, stable fingerprint of a table schema (columns, types, cursor), recorded with
/// every consolidation so a schema change is visible in the control tables.
pub fn fingerprint(schema: &TableSchema) -> String {
    short_hash(&serde_json::to_vec(schema).unwrap_or_default())
}

/// The fingerprint of what `flow` selects from its object (`fields`, `exclude`, `rename`,
/// `mask`): when it changes, the table no longer holds the rows as configured, and the flow
/// is read in full. The mask salt is not part of it: a secret's hash stays out of the
/// control tables.
pub fn selection_fingerprint(flow: &FlowConfig) -> String {
    let selection = (&flow.fields, &flow.exclude, &flow.rename, &flow.mask);
    short_hash(format!("{selection:?}").as_bytes())
}

/// Why a flow with a committed window is read in full because its `fields`, `exclude`,
/// `rename` or `mask` changed since that window was committed (`recorded`: the fingerprint
/// then; unknown before layout 3, when nothing is reloaded).
pub fn selection_changed(flow: &FlowConfig, window_end: Option<Timestamp>, recorded: Option<&str>) -> Option<String> {
    let recorded = recorded.filter(|_| window_end.is_some())?;
    (recorded != selection_fingerprint(flow))
        .then(|| "fields, exclude, rename or mask changed since the last run: reading the object in full".to_owned())
}

/// The config's fingerprint, recorded with the run (secrets excluded: only the flows).
pub(crate) fn config_fingerprint(config: &Config) -> String {
    short_hash(format!("{:?}", config.flows).as_bytes())
}

/// The inserted / updated / deleted counts the consolidation recorded for a flow.
pub async fn merge_counts<D: Destination>(dest: &D, run_id: &str, target: &TableRef) -> Result<MergeCounts> {
    let rows = dest.query(consolidate::read_merge_counts(dest.dialect(), run_id, target)).await?;
    let row =
        rows.first().ok_or_else(|| Error::internal(format!("{}: no flow-run row after consolidation", target.name)))?;
    let n = |i: usize| row.get(i).and_then(|v| v.as_i64()).unwrap_or(0) as u64;
    Ok(MergeCounts { inserted: n(0), updated: n(1), deleted: n(2) })
}

/// The control tables' layout in `dest` (see [`consolidate::LayoutState`]).
pub async fn layout_state<D: Destination>(dest: &D) -> Result<consolidate::LayoutState> {
    let [layout, flows] = consolidate::layout_tables();
    let has_layout = dest.columns(layout).await?.is_some();
    let has_flows = dest.columns(flows).await?.is_some();
    let version = if has_layout {
        first_value(&dest.query(consolidate::layout_query(dest.dialect())).await?).and_then(Value::as_i64)
    } else {
        None
    };
    Ok(consolidate::layout_of(has_layout, has_flows, version))
}
