//! Checks of the config as a whole, after each key's own value: keys that would have no
//! effect where they are written ([`no_effect`]) and flows whose tables would collide
//! ([`collisions`]). Split from [`super`] to keep each file readable; problems go
//! to the same collector ([`super::problems::Ctx`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::problems::Ctx;
use crate::config::destination::{Consolidation, DestinationConfig};
use crate::config::raw::{RawConfig, RawFlow};
use crate::config::types::{FlowConfig, Mode, WriteMode};
use crate::model::Naming;

/// A settings key: its name, whether `[defaults]` sets it, whether a flow sets it.
type SettingKey = (&'static str, bool, fn(&RawFlow) -> bool);

/// The settings keys that would have no effect where they are written (see the module
/// docs of [`super`]): on the files destination, the merge settings; on a flow whose mode
/// is `full`, `lookback`, `reconcile_every` and `formula_refresh_every`; in `[defaults]`, a key no flow inherits.
pub(super) fn no_effect(cx: &mut Ctx<'_>, raw: &RawConfig, flows: &[FlowConfig], destination: &DestinationConfig) {
    let files = destination.settings.append_only();
    // (key, written in [defaults], written on each flow)
    let keys: [SettingKey; 10] = [
        ("mode", raw.defaults.mode.is_some(), |f| f.mode.is_some()),
        ("deletes", raw.defaults.deletes.is_some(), |f| f.deletes.is_some()),
        ("history", raw.defaults.history.is_some(), |f| f.history.is_some()),
        ("lookback", raw.defaults.lookback.is_some(), |f| f.lookback.is_some()),
        ("lag", raw.defaults.lag.is_some(), |f| f.lag.is_some()),
        ("reconcile_every", raw.defaults.reconcile_every.is_some(), |f| f.reconcile_every.is_some()),
        ("formula_refresh_every", raw.defaults.formula_refresh_every.is_some(), |f| f.formula_refresh_every.is_some()),
        ("slice", raw.defaults.slice.is_some(), |f| f.slice.is_some()),
        ("max_delete_ratio", raw.defaults.max_delete_ratio.is_some(), |f| f.max_delete_ratio.is_some()),
        ("write", raw.defaults.write.is_some(), |f| f.write.is_some()),
    ];
    let merge_only = ["deletes", "history", "reconcile_every", "formula_refresh_every", "max_delete_ratio"];
    let windowed = ["lookback", "reconcile_every", "formula_refresh_every"];
    let append_only = format!(
        "has no effect with destination type = {:?}, which is append-only: it keeps every version read, so there \
         are no deletes, no history table, no reconciliation and no formula refresh; remove it",
        destination.kind()
    );
    let full_mode = raw.defaults.mode.as_deref() == Some("full");
    let append_default = raw.defaults.write.as_deref() == Some("append");
    if files {
        write_on_append_only(cx, raw, destination.kind());
    }
    procedure_appends(cx, raw, flows, destination);
    no_history(cx, raw, flows, destination);
    reserved_table(cx, flows, destination);
    for (key, in_defaults, on_flow) in keys {
        if files && merge_only.contains(&key) {
            if in_defaults {
                cx.err(&format!("defaults.{key}"), &append_only);
            }
            for (i, f) in raw.flows.iter().enumerate() {
                if on_flow(f) {
                    cx.err(&format!("flows[{i}].{key}"), &append_only);
                }
            }
            continue;
        }
        if files && key == "write" {
            continue;
        }
        let window_key = windowed.contains(&key);
        // Flows the key cannot affect, by why: full mode, append writes; and flows that set
        // it themselves.
        let (mut full, mut append, mut own) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (f, config)) in raw.flows.iter().zip(flows).enumerate() {
            let is_append = merge_only.contains(&key) && config.settings.write == WriteMode::Append;
            let is_full = !is_append && window_key && config.settings.mode == Mode::Full;
            if is_append && on_flow(f) {
                let from = if f.write.is_none() && append_default { " (from [defaults])" } else { "" };
                cx.err(
                    &format!("flows[{i}].{key}"),
                    format!(
                        "has no effect with write = \"append\"{from}: an append table keeps every version read, \
                         deleted ones included, so nothing is deleted, reconciled, refreshed or kept as history; \
                         remove it or set write = \"merge\""
                    ),
                );
            }
            if is_full && on_flow(f) {
                let from = if f.mode.is_none() && full_mode { " (from [defaults])" } else { "" };
                cx.err(
                    &format!("flows[{i}].{key}"),
                    format!(
                        "has no effect with mode = \"full\"{from}: every run reads the whole object and removes what \
                         the source lost with fresh formula values, so there is no window to look back from and nothing \
                         to reconcile or refresh; remove it or set mode = \"incremental\""
                    ),
                );
            }
            if is_append {
                append.push(i);
            } else if is_full {
                full.push(i);
            } else if on_flow(f) {
                own.push(i);
            }
        }
        if in_defaults && !flows.is_empty() && full.len() + append.len() + own.len() == flows.len() {
            let mut why = Vec::new();
            for (group, what) in [(&full, "mode = \"full\""), (&append, "write = \"append\"")] {
                if !group.is_empty() {
                    let have = if group.len() == 1 { "has" } else { "have" };
                    why.push(format!("{} {have} {what}", flow_list(group)));
                }
            }
            if !own.is_empty() {
                let sets = if own.len() == 1 { "sets" } else { "set" };
                why.push(format!("{} {sets} its own", flow_list(&own)));
            }
            cx.err(&format!("defaults.{key}"), format!("has no effect on any flow: {}; remove it", why.join(", and ")));
        }
    }
}

/// An append-only destination (files): `write = "merge"` there asks for what it cannot do.
fn write_on_append_only(cx: &mut Ctx<'_>, raw: &RawConfig, kind: &str) {
    let merge = format!(
        "destination type = {kind:?} is append-only: every run adds the versions it read as new files, and nothing \
         is merged; remove it, or write to a warehouse for one current row per record"
    );
    if raw.defaults.write.as_deref() == Some("merge") {
        cx.err("defaults.write", &merge);
    }
    for (i, f) in raw.flows.iter().enumerate() {
        if f.write.as_deref() == Some("merge") {
            cx.err(&format!("flows[{i}].write"), &merge);
        }
    }
}

/// `consolidation = "procedure"` hands a merge to the warehouse; an append has nothing to
/// merge, and a procedure would hide that its rows are versions.
fn procedure_appends(cx: &mut Ctx<'_>, raw: &RawConfig, flows: &[FlowConfig], destination: &DestinationConfig) {
    if destination.consolidation() != Consolidation::Procedure {
        return;
    }
    let mut defaults_told = false;
    for (i, (f, config)) in raw.flows.iter().zip(flows).enumerate() {
        if config.settings.write == WriteMode::Append {
            let key = if f.write.is_some() { format!("flows[{i}].write") } else { "defaults.write".to_owned() };
            if f.write.is_none() && std::mem::replace(&mut defaults_told, true) {
                continue;
            }
            cx.err(
                &key,
                format!(
                    "write = \"append\" ({}) cannot be used with destination.consolidation = \"procedure\": an \
                     append is committed by the run itself; use consolidation = \"run\", or write = \"merge\"",
                    config.object
                ),
            );
        }
    }
}

/// `flows[0]`, `flows[0] and flows[2]`, `flows[0], flows[1] and flows[2]`.
fn flow_list(indexes: &[usize]) -> String {
    let names: Vec<String> = indexes.iter().map(|i| format!("flows[{i}]")).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// `history = true` where the destination keeps no history table: an error at the key that
/// set it (the flow's own, else `[defaults]`, reported once).
fn no_history(cx: &mut Ctx<'_>, raw: &RawConfig, flows: &[FlowConfig], destination: &DestinationConfig) {
    let settings = &destination.settings;
    if settings.keeps_history() || settings.append_only() {
        return;
    }
    let message = format!(
        "destination type = {:?} does not keep history tables (<table>_history) yet; remove it, or write the \
         flow to a warehouse",
        destination.kind()
    );
    let mut from_defaults = false;
    for (i, (flow, written)) in flows.iter().zip(&raw.flows).enumerate() {
        if !flow.settings.history {
            continue;
        }
        if written.history.is_some() {
            cx.err(&format!("flows[{i}].history"), &message);
        } else {
            from_defaults = true;
        }
    }
    if from_defaults {
        cx.err("defaults.history", &message);
    }
}

/// A flow whose table is the name the destination keeps for itself.
fn reserved_table(cx: &mut Ctx<'_>, flows: &[FlowConfig], destination: &DestinationConfig) {
    let Some(reserved) = destination.settings.reserved_table() else { return };
    let naming = destination.naming();
    for (i, flow) in flows.iter().enumerate() {
        if naming.apply(&flow.object).eq_ignore_ascii_case(reserved) {
            cx.err(
                &format!("flows[{i}].object"),
                format!(
                    "{} would be written to the table {reserved:?}, which destination type = {:?} keeps for \
                     itself; write this flow to another destination.schema",
                    flow.object,
                    destination.kind()
                ),
            );
        }
    }
}

/// Two flows writing one table: each flow's table (`naming` applied to its object) and,
/// with `history = true`, its `<table>_history`, compared as the destination compares
/// names: exactly on PostgreSQL (sluice quotes every name); ignoring case on DuckDB (which
/// resolves even quoted names so), Redshift (which folds them) and files (whose directory
/// names a case-insensitive file system would merge). `named` marks the flows that name
/// an object of their own (the others are reported already).
pub(super) fn collisions(cx: &mut Ctx<'_>, flows: &[FlowConfig], named: &[bool], destination: &DestinationConfig) {
    let naming = destination.naming();
    let rules = destination.settings.names();
    let (fold, server) = (rules.case_insensitive, rules.server);
    let files = destination.settings.append_only();
    let folded = |name: &str| if fold { name.to_lowercase() } else { name.to_owned() };
    // What each flow writes: (table name, written under `naming = "original"`, is history).
    let writes = |f: &FlowConfig| -> Vec<(String, String, bool)> {
        let mut out = vec![(naming.apply(&f.object), Naming::Original.apply(&f.object), false)];
        if f.settings.history && !files {
            out.push((format!("{}_history", out[0].0), format!("{}_history", out[0].1), true));
        }
        out
    };
    // folded name → (flow, name as written, original name, is history)
    let mut claimed: HashMap<String, (usize, String, String, bool)> = HashMap::new();
    for (i, f) in flows.iter().enumerate().filter(|(i, _)| named[*i]) {
        for (name, original, history) in writes(f) {
            let (j, other, other_original, other_history) = match claimed.entry(folded(&name)) {
                Entry::Vacant(slot) => {
                    slot.insert((i, name, original, history));
                    continue;
                }
                Entry::Occupied(o) => o.get().clone(),
            };
            let what = if history { "its history table" } else { "table" };
            let theirs = if other_history { ", as its history table" } else { "" };
            let case = if other == name { String::new() } else { format!(" (as {other:?}: one name to {server})") };
            let mut fixes = Vec::new();
            if naming != Naming::Original && !rules.folds_case && folded(&original) != folded(&other_original) {
                fixes.push("set destination.naming = \"original\"".to_owned());
            }
            for (k, h) in [(j, other_history), (i, history)] {
                if h {
                    fixes.push(format!("set history = false on flows[{k}]"));
                }
            }
            fixes.push("drop one of the two flows".to_owned());
            let key = if history { format!("flows[{i}].history") } else { format!("flows[{i}].object") };
            cx.err(
                &key,
                format!(
                    "{:?} would write {what} {name:?}, which flows[{j}] ({:?}) writes too{theirs}{case}; {}",
                    f.object,
                    flows[j].object,
                    fixes.join(", or ")
                ),
            );
        }
    }
}
