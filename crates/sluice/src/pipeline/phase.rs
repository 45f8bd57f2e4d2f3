//! The phases of one flow in a warehouse run, and the only transitions between them
//! (DESIGN "One flow, one run"): a pure function, so the order is tested on its own and the
//! driver in [`super::flow`] cannot skip a step.

use serde::Serialize;

/// Where a flow is. What `_sluice.flow_runs.phase` records is the control tables' own word
/// ([`crate::consolidate::FlowPhase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Read the committed window end, describe the object, plan the windows.
    Plan,
    /// Extract the next window (slice) into staging.
    Stage,
    /// Merge staging into the target, with the window end, in one transaction.
    Consolidate,
    /// Remove rows the source no longer has (when due).
    Reconcile,
    /// Re-read the formula fields and rewrite the values that changed (when due).
    Formulas,
    /// Compare source and destination counts at the window end.
    Verify,
    /// Drop staging.
    Cleanup,
    /// Finished.
    Done,
}

/// What the phase just finished found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The phase did its work.
    Completed,
    /// Planning found nothing to read (the source clock has not passed the window end).
    NothingToRead,
    /// A window was consolidated and more slices of it remain.
    MoreSlices,
    /// Consolidation is done and reconciliation is due.
    ReconcileDue,
    /// Consolidation (and reconciliation, when it was due) is done and a formula refresh is due.
    FormulasDue,
    /// The load was handed to its stored procedure; the warehouse consolidates it.
    HandedOff,
}

/// The next phase after `phase` ended with `outcome`; `None` for a combination that cannot
/// happen (a bug in the driver, reported as an internal error).
pub fn next(phase: Phase, outcome: Outcome) -> Option<Phase> {
    use Outcome::*;
    use Phase::*;
    Some(match (phase, outcome) {
        (Plan, Completed) => Stage,
        (Plan, NothingToRead) => Done,
        (Stage, Completed) => Consolidate,
        (Consolidate, MoreSlices) => Stage,
        (Consolidate, ReconcileDue) => Reconcile,
        // Staging stays for the procedure; checks need the consolidated table.
        (Consolidate, HandedOff) => Done,
        (Consolidate, FormulasDue) | (Reconcile, FormulasDue) => Formulas,
        (Consolidate, Completed) | (Reconcile, Completed) | (Formulas, Completed) => Verify,
        (Verify, Completed) => Cleanup,
        (Cleanup, Completed) => Done,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::Outcome::*;
    use super::Phase::*;
    use super::*;

    #[test]
    fn phase_transitions() {
        let table = [
            (Plan, Completed, Some(Stage)),
            (Plan, NothingToRead, Some(Done)),
            (Stage, Completed, Some(Consolidate)),
            (Consolidate, MoreSlices, Some(Stage)),
            (Consolidate, ReconcileDue, Some(Reconcile)),
            (Consolidate, Completed, Some(Verify)),
            (Consolidate, HandedOff, Some(Done)),
            (Reconcile, Completed, Some(Verify)),
            (Consolidate, FormulasDue, Some(Formulas)),
            (Reconcile, FormulasDue, Some(Formulas)),
            (Formulas, Completed, Some(Verify)),
            (Formulas, FormulasDue, None),
            (Verify, Completed, Some(Cleanup)),
            (Cleanup, Completed, Some(Done)),
            // Nothing skips consolidation or goes back past it.
            (Stage, NothingToRead, None),
            (Stage, ReconcileDue, None),
            (Verify, MoreSlices, None),
            (Stage, HandedOff, None),
            (Done, Completed, None),
        ];
        for (phase, outcome, want) in table {
            assert_eq!(next(phase, outcome), want, "{phase:?} + {outcome:?}");
        }
    }

    #[test]
    fn phase_every_path_from_plan_reaches_done_through_consolidate() {
        // Walk every outcome sequence up to a few steps: Done is reached only via Plan's
        // NothingToRead, straight from Consolidate (a hand-off, staging kept), or through
        // Consolidate, Verify and Cleanup in that order.
        fn walk(phase: Phase, path: Vec<Phase>, depth: usize) {
            if phase == Done {
                let consolidated = path.contains(&Consolidate);
                assert!(consolidated || path == vec![Plan], "{path:?}");
                if consolidated && path.last() != Some(&Consolidate) {
                    let pos = |p| path.iter().rposition(|x| *x == p).unwrap();
                    assert!(pos(Consolidate) < pos(Verify) && pos(Verify) < pos(Cleanup), "{path:?}");
                }
                return;
            }
            if depth == 0 {
                return;
            }
            for outcome in [Completed, NothingToRead, MoreSlices, ReconcileDue, FormulasDue, HandedOff] {
                if let Some(n) = next(phase, outcome) {
                    let mut p = path.clone();
                    p.push(phase);
                    walk(n, p, depth - 1);
                }
            }
        }
        walk(Plan, Vec::new(), 12);
    }
}
