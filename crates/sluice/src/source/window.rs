//! Window planning: which `[start, end)` ranges of the cursor a run reads. Pure.
//!
//! The rule (DESIGN "One flow, one run", step 1):
//!
//! - `U = floor_to_second(source_now − lag)`: the run's upper bound. `source_now` is the
//!   source's own clock (the `Date` header of a response in this run), never ours.
//! - First run (no committed end), `--full-refresh`, or `mode = "full"`: one full window
//!   `[−∞, U)`.
//! - Later runs: `[floor_to_second(E − lookback), U)` where `E` is the committed end.
//! - If `U <= start` there is nothing to read: no window at all, never an empty or an
//!   inverted one. (This happens when runs follow each other within a second, or when the
//!   source clock is behind the committed end.)
//! - With `slice`, the range is cut into consecutive windows of `slice` (rounded up to
//!   whole seconds), oldest first, so each slice can be consolidated on its own and a
//!   crash loses at most one slice. A full window is sliced from the oldest data
//!   (`oldest`, e.g. the smallest `SystemModstamp` of the object): the first slice keeps
//!   no lower bound, `[−∞, oldest + slice)`, so a row older than `oldest` (a late commit)
//!   is still read. Without `oldest` a full window is not sliced. At most
//!   [`MAX_WINDOWS`] windows are planned; a finer `slice` is widened to fit.
//!
//! Why whole seconds: Salesforce stores `SystemModstamp` with 1-second resolution (the
//! milliseconds are always `.000`), and rows stamped with the current second may still be
//! committing. Flooring `U` leaves the whole current second to the next run, whose window
//! starts at or before `U`, so nothing is skipped; flooring `start` only widens a window.
//! Every boundary is therefore a whole second, and a window's end is exactly the next
//! window's start: windows tile `[start, U)` with no gap and no overlap.

use std::time::Duration;

use chrono::{TimeDelta, Timelike};

use crate::model::{Timestamp, Window};

/// The latest instant Salesforce stores (its dates end with the year 4000): a window ending
/// here has no upper bound in effect.
pub fn source_end() -> Timestamp {
    chrono::NaiveDate::from_ymd_opt(4000, 12, 31).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default().and_utc()
}

/// Upper bound on the number of windows one plan returns.
pub const MAX_WINDOWS: u64 = 10_000;

/// Plans the windows of one run, oldest first (see the module docs for the rule).
///
/// `committed_end` is the flow's committed window end (`None`: first run or full
/// refresh); `source_now` the source's clock; `oldest` the oldest cursor value of the
/// object, used only to slice a full window.
pub fn plan_windows(
    committed_end: Option<Timestamp>,
    source_now: Timestamp,
    lookback: Duration,
    lag: Duration,
    slice: Option<Duration>,
    oldest: Option<Timestamp>,
) -> Vec<Window> {
    let Some(end) = sub(source_now, lag).map(floor_second) else {
        return Vec::new();
    };
    // An E − lookback before the representable range is simply "from the beginning".
    let start = committed_end.and_then(|e| sub(e, lookback)).map(floor_second);
    if start.is_some_and(|s| s >= end) {
        return Vec::new();
    }
    let whole = Window { start, end };
    let Some(step) = slice.map(ceil_secs).filter(|&s| s > 0) else {
        return vec![whole];
    };
    // Where slicing starts: the window's start, or for a full window the oldest data.
    let Some(from) = start.or(oldest.map(floor_second)) else {
        return vec![whole];
    };
    let span = (end - from).num_seconds();
    if span <= 0 {
        return vec![whole];
    }
    let span = span.unsigned_abs();
    let step = step.max(span.div_ceil(MAX_WINDOWS));
    let mut windows = Vec::new();
    let mut lo = start;
    let mut offset = step;
    while offset < span {
        let boundary = from + TimeDelta::seconds(offset as i64);
        windows.push(Window { start: lo, end: boundary });
        lo = Some(boundary);
        offset += step;
    }
    windows.push(Window { start: lo, end });
    windows
}

/// The API calls reading one window costs at least: a `COUNT()` to choose the API (with
/// `api = "auto"`), then a Bulk job (create, a status poll or two, a results page, delete)
/// or a REST query page. Used to estimate a plan, before any window is read.
pub fn calls_per_window(bulk: bool, count_first: bool) -> u64 {
    u64::from(count_first) + if bulk { 5 } else { 1 }
}

/// The index of the window of `windows` (consecutive, oldest first) that holds `t`, if any.
pub fn holding(windows: &[Window], t: Timestamp) -> Option<usize> {
    windows.iter().position(|w| w.start.is_none_or(|s| s <= t) && t < w.end)
}

/// `windows[from..]` with the empty ones before the first window with data merged into it:
/// `first_data` is the oldest cursor value at or after `windows[from]`'s start (`None`: no
/// data there any more, and everything left becomes one window). Returns the merged window
/// and the index after it. Merging keeps the windows tiling the same range.
pub fn merge_until_data(windows: &[Window], from: usize, first_data: Option<Timestamp>) -> (Window, usize) {
    let last = windows.len() - 1;
    let upto = first_data.and_then(|t| holding(&windows[from..], t).map(|i| from + i)).unwrap_or(last);
    (Window { start: windows[from].start, end: windows[upto].end }, upto + 1)
}

/// `t − d`, or `None` if it leaves the representable range.
fn sub(t: Timestamp, d: Duration) -> Option<Timestamp> {
    TimeDelta::from_std(d).ok().and_then(|d| t.checked_sub_signed(d))
}

/// Rounds down to a whole second (also before 1970: chrono keeps the sub-second part
/// non-negative, so dropping it always rounds towards −∞).
pub fn floor_second(t: Timestamp) -> Timestamp {
    // Zero nanoseconds is valid for every timestamp, so the fallback is never taken.
    t.with_nanosecond(0).unwrap_or(t)
}

/// Whole seconds of `d`, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, TimeZone, Utc};

    /// `"HH:MM:SS[.fff]"` on 2024-05-01, or a full `"YYYY-MM-DD HH:MM:SS[.fff]"`.
    fn ts(s: &str) -> Timestamp {
        let s = if s.len() <= 12 { format!("2024-05-01 {s}") } else { s.to_owned() };
        let fmt = if s.contains('.') { "%Y-%m-%d %H:%M:%S%.f" } else { "%Y-%m-%d %H:%M:%S" };
        Utc.from_utc_datetime(&NaiveDateTime::parse_from_str(&s, fmt).unwrap())
    }
    fn w(start: Option<&str>, end: &str) -> Window {
        Window { start: start.map(ts), end: ts(end) }
    }
    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);
    const ZERO: Duration = Duration::ZERO;

    #[test]
    fn empty_slices_merge_into_the_next_slice_with_data() {
        let ws = vec![w(None, "10:00:00"), w(Some("10:00:00"), "11:00:00"), w(Some("11:00:00"), "12:00:00")];
        // Data in the second slice: the first (empty) merges into it.
        assert_eq!(merge_until_data(&ws, 0, Some(ts("10:30:00"))), (w(None, "11:00:00"), 2));
        // Data right at a boundary belongs to the later slice.
        assert_eq!(merge_until_data(&ws, 1, Some(ts("11:00:00"))), (w(Some("10:00:00"), "12:00:00"), 3));
        // Data in the slice itself: unchanged.
        assert_eq!(merge_until_data(&ws, 0, Some(ts("09:00:00"))), (w(None, "10:00:00"), 1));
        // No data from here on, or only past the plan's end: one window to the end.
        assert_eq!(merge_until_data(&ws, 1, None), (w(Some("10:00:00"), "12:00:00"), 3));
        assert_eq!(merge_until_data(&ws, 0, Some(ts("13:00:00"))), (w(None, "12:00:00"), 3));
        assert_eq!(holding(&ws, ts("12:00:00")), None);
        assert_eq!(calls_per_window(true, true), 6);
        assert_eq!(calls_per_window(false, false), 1);
    }

    struct Case {
        name: &'static str,
        committed: Option<&'static str>,
        now: &'static str,
        lookback: Duration,
        lag: Duration,
        slice: Option<Duration>,
        oldest: Option<&'static str>,
        want: Vec<Window>,
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "first run: full window up to now, truncated to the second",
                committed: None,
                now: "12:00:00.750",
                lookback: 10 * MIN,
                lag: ZERO,
                slice: None,
                oldest: None,
                want: vec![w(None, "12:00:00")],
            },
            Case {
                name: "first run with lag",
                committed: None,
                now: "12:00:00.750",
                lookback: 10 * MIN,
                lag: Duration::from_secs(5),
                slice: None,
                oldest: None,
                want: vec![w(None, "11:59:55")],
            },
            Case {
                name: "incremental: [E - lookback, U)",
                committed: Some("11:00:00"),
                now: "12:00:00.500",
                lookback: 10 * MIN,
                lag: ZERO,
                slice: None,
                oldest: None,
                want: vec![w(Some("10:50:00"), "12:00:00")],
            },
            Case {
                name: "incremental without lookback starts at E",
                committed: Some("11:00:00"),
                now: "11:30:00",
                lookback: ZERO,
                lag: ZERO,
                slice: None,
                oldest: None,
                want: vec![w(Some("11:00:00"), "11:30:00")],
            },
            Case {
                name: "same second again: U == start, no window",
                committed: Some("12:00:00"),
                now: "12:00:00.900",
                lookback: ZERO,
                lag: ZERO,
                slice: None,
                oldest: None,
                want: vec![],
            },
            Case {
                name: "source clock behind E - lookback: no inverted window",
                committed: Some("12:05:00"),
                now: "12:00:00",
                lookback: MIN,
                lag: ZERO,
                slice: None,
                oldest: None,
                want: vec![],
            },
            Case {
                name: "lag pushes U below start: no window",
                committed: Some("12:00:00"),
                now: "12:00:30",
                lookback: Duration::from_secs(10),
                lag: MIN,
                slice: None,
                oldest: None,
                want: vec![],
            },
            Case {
                name: "sub-second lookback floors the start (widens)",
                committed: Some("12:00:00"),
                now: "12:01:00",
                lookback: Duration::from_millis(1500),
                lag: ZERO,
                slice: None,
                oldest: None,
                want: vec![w(Some("11:59:58"), "12:01:00")],
            },
            Case {
                name: "incremental sliced, short tail",
                committed: Some("10:00:00"),
                now: "12:30:00",
                lookback: ZERO,
                lag: ZERO,
                slice: Some(HOUR),
                oldest: None,
                want: vec![
                    w(Some("10:00:00"), "11:00:00"),
                    w(Some("11:00:00"), "12:00:00"),
                    w(Some("12:00:00"), "12:30:00"),
                ],
            },
            Case {
                name: "incremental sliced evenly: no empty tail",
                committed: Some("10:00:00"),
                now: "12:00:00.200",
                lookback: ZERO,
                lag: ZERO,
                slice: Some(HOUR),
                oldest: None,
                want: vec![w(Some("10:00:00"), "11:00:00"), w(Some("11:00:00"), "12:00:00")],
            },
            Case {
                name: "slice larger than the window: one window",
                committed: Some("11:50:00"),
                now: "12:00:00",
                lookback: ZERO,
                lag: ZERO,
                slice: Some(HOUR),
                oldest: None,
                want: vec![w(Some("11:50:00"), "12:00:00")],
            },
            Case {
                name: "full sliced from the oldest data; first slice unbounded below",
                committed: None,
                now: "12:00:00",
                lookback: 10 * MIN,
                lag: ZERO,
                slice: Some(HOUR),
                oldest: Some("09:30:20.500"),
                want: vec![w(None, "10:30:20"), w(Some("10:30:20"), "11:30:20"), w(Some("11:30:20"), "12:00:00")],
            },
            Case {
                name: "full sliced without oldest: one full window",
                committed: None,
                now: "12:00:00",
                lookback: ZERO,
                lag: ZERO,
                slice: Some(HOUR),
                oldest: None,
                want: vec![w(None, "12:00:00")],
            },
            Case {
                name: "full sliced, oldest not before U: one full window",
                committed: None,
                now: "12:00:00",
                lookback: ZERO,
                lag: ZERO,
                slice: Some(HOUR),
                oldest: Some("12:00:00.300"),
                want: vec![w(None, "12:00:00")],
            },
            Case {
                name: "sub-second slice rounds up to one second",
                committed: Some("12:00:00"),
                now: "12:00:02",
                lookback: ZERO,
                lag: ZERO,
                slice: Some(Duration::from_millis(300)),
                oldest: None,
                want: vec![w(Some("12:00:00"), "12:00:01"), w(Some("12:00:01"), "12:00:02")],
            },
            Case {
                name: "zero slice means no slicing",
                committed: Some("10:00:00"),
                now: "12:00:00",
                lookback: ZERO,
                lag: ZERO,
                slice: Some(ZERO),
                oldest: None,
                want: vec![w(Some("10:00:00"), "12:00:00")],
            },
        ]
    }

    /// Invariants every plan keeps: non-empty, contiguous, ordered, whole seconds, only
    /// the first window may be unbounded.
    fn check_tiling(windows: &[Window]) {
        for (i, win) in windows.iter().enumerate() {
            assert!(win.start.is_none_or(|s| s < win.end), "empty or inverted {win}");
            assert_eq!(win.end, floor_second(win.end));
            if i > 0 {
                assert_eq!(win.start, Some(windows[i - 1].end), "gap or overlap at {i}");
            }
        }
    }

    #[test]
    fn plan_windows_table() {
        for case in cases() {
            let got = plan_windows(
                case.committed.map(ts),
                ts(case.now),
                case.lookback,
                case.lag,
                case.slice,
                case.oldest.map(ts),
            );
            assert_eq!(got, case.want, "{}", case.name);
            check_tiling(&got);
        }
    }

    #[test]
    fn floor_second_table() {
        let rows = [
            ("12:00:00.999", "12:00:00"),
            ("12:00:00", "12:00:00"),
            ("1969-12-31 23:59:59.500", "1969-12-31 23:59:59"),
            ("9999-12-31 23:59:59.001", "9999-12-31 23:59:59"),
        ];
        for (input, want) in rows {
            assert_eq!(floor_second(ts(input)), ts(want), "{input}");
        }
    }

    #[test]
    fn window_count_is_capped() {
        let now = ts("2024-05-02 00:00:00");
        let got = plan_windows(Some(ts("2024-05-01 00:00:00")), now, ZERO, ZERO, Some(Duration::from_secs(1)), None);
        assert!(got.len() as u64 <= MAX_WINDOWS && got.len() > 1000, "{}", got.len());
        assert_eq!(got.last().map(|w| w.end), Some(now));
        check_tiling(&got);
    }

    #[test]
    fn lag_beyond_the_epoch_range_plans_nothing() {
        let got = plan_windows(None, ts("2024-05-01 00:00:00"), ZERO, Duration::from_secs(u64::MAX), None, None);
        assert!(got.is_empty());
    }
}
