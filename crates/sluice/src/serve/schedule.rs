//! When each flow runs under `sluice serve`: pure functions of a flow's [`Schedule`], its
//! persisted [`Clock`] and the time, with no I/O, table-driven tested.
//!
//! - A flow that has never run is due at once; one whose due time passed while serve was
//!   down runs once on start, not once per missed tick ([`Clock::is_due`]).
//! - After a run ([`after_run`]): a success is due again at the first tick after it
//!   *started* (`every` ticks on a grid from the Unix epoch, a pattern at its times), so
//!   neither a run's own length nor a run by hand drifts the schedule; a run longer than its interval is followed by one run at
//!   once, never a backlog. A failure backs off from 1 minute, doubling, up to the flow's
//!   interval, and pauses the flow after `pause_after_failures` in a row. A run the API
//!   budget stopped is neither: it is tried again after the first back-off step.
//! - A run of a flow is a full refresh when `full_refresh_every` has passed since its last
//!   one ([`wants_full_refresh`]).
//! - Freshness ([`freshness`]): late when the committed window end is more than two
//!   intervals behind, error when the last run failed.

use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::config::{Cadence, Schedule};
use crate::error::{Error, Result};

/// A point in time, UTC.
pub type Ts = DateTime<Utc>;

/// The first back-off after a failure; it doubles with each failure in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);

/// A flow's schedule state, persisted in the destination (`_sluice.schedule`) so that a
/// restart resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Clock {
    /// When it runs next; `None`: it never ran under serve, so it is due now.
    pub next_due: Option<Ts>,
    /// Paused (by `pause_after_failures` or by hand): not run until resumed.
    pub paused: bool,
    /// Failed runs in a row.
    pub failures: u32,
    /// The last failure's message, until a run succeeds.
    pub last_error: Option<String>,
    /// When its last run started and ended.
    pub last_started: Option<Ts>,
    /// When its last run ended.
    pub last_finished: Option<Ts>,
}

impl Clock {
    /// Whether the flow should run at `now`.
    pub fn is_due(&self, now: Ts) -> bool {
        !self.paused && self.next_due.is_none_or(|due| due <= now)
    }

    /// Paused by hand: not run until resumed.
    pub fn paused_by_hand(&self) -> Clock {
        Clock { paused: true, ..self.clone() }
    }

    /// Resumed (by hand): not paused, its failures forgotten, due now.
    pub fn resumed(&self, now: Ts) -> Clock {
        Clock { paused: false, failures: 0, next_due: Some(now), ..self.clone() }
    }
}

/// The most a flow may run early to join a run of flows that are due (see [`joins_run`]).
pub const MAX_EARLY: Duration = Duration::from_secs(30);

/// Whether a flow should be in a run starting at `now`, when some flow is due: it is due,
/// or will be within a tenth of its interval (at most [`MAX_EARLY`]). Flows falling due
/// moments apart then share one run (one login, one hold of the destination) instead of
/// following each other.
pub fn joins_run(schedule: &Schedule, clock: &Clock, now: Ts) -> bool {
    let Some(due) = clock.next_due else { return !clock.paused };
    let early = interval(schedule, now).map_or(Duration::ZERO, |i| (i / 10).min(MAX_EARLY));
    !clock.paused && due <= now + delta(early)
}

/// How a flow's run ended, as far as its schedule cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It committed (or handed its load off).
    Succeeded,
    /// It failed, with this message.
    Failed(String),
    /// The API budget stopped it before it ran; no fault of the flow.
    Deferred,
    /// Another run held it (another serve sharing the destination runs it): not run here,
    /// so its clock is that run's, and this process only looks again shortly.
    Held,
}

impl Outcome {
    /// How logs and `/metrics` name it: `ok`, `failed`, `deferred`.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "ok",
            Outcome::Failed(_) => "failed",
            Outcome::Deferred => "deferred",
            Outcome::Held => "held",
        }
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn std_of(d: TimeDelta) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

fn cron_of(pattern: &str) -> Result<croner::Cron> {
    croner::Cron::from_str(pattern).map_err(|e| Error::internal(format!("cron pattern {pattern:?}: {e}")))
}

/// The first tick of `schedule` strictly after `after`. `every` ticks on a grid counted
/// from the Unix epoch (`every = "15m"`: :00, :15, :30, :45 UTC), so flows on one interval
/// run together, and a run by hand or a back-off does not shift a flow's schedule.
pub fn next_tick(schedule: &Schedule, after: Ts) -> Result<Ts> {
    match &schedule.cadence {
        Cadence::Every(d) => {
            let step = i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1);
            let at = after.timestamp_millis();
            let next = (at.div_euclid(step) + 1).saturating_mul(step);
            DateTime::from_timestamp_millis(next)
                .ok_or_else(|| Error::internal(format!("no time {} after {after}", crate::config::format_duration(*d))))
        }
        Cadence::Cron(pattern) => {
            let local = after.with_timezone(&schedule.timezone);
            let next = cron_of(pattern)?
                .find_next_occurrence(&local, false)
                .map_err(|e| Error::internal(format!("cron pattern {pattern:?} has no time after {after}: {e}")))?;
            Ok(next.with_timezone(&Utc))
        }
    }
}

/// The flow's interval around `at`: `every`, or for a pattern the gap between its next two
/// ticks after `at` (what back-off and lateness are measured against).
pub fn interval(schedule: &Schedule, at: Ts) -> Result<Duration> {
    match &schedule.cadence {
        Cadence::Every(d) => Ok(*d),
        Cadence::Cron(_) => {
            let first = next_tick(schedule, at)?;
            Ok(std_of(next_tick(schedule, first)? - first))
        }
    }
}

/// The wait after `failures` failed runs in a row: [`FIRST_BACKOFF`] doubling, at most
/// `interval` (a flow is never retried less often than it is scheduled).
pub fn backoff(failures: u32, interval: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(interval)
}

/// The clock after a run that started at `started` and ended at `finished`.
pub fn after_run(schedule: &Schedule, clock: &Clock, started: Ts, finished: Ts, outcome: &Outcome) -> Result<Clock> {
    let mut next = match outcome {
        // Not run here: the clock stays the holder's, but for when to look again.
        Outcome::Held => clock.clone(),
        _ => Clock { last_started: Some(started), last_finished: Some(finished), ..clock.clone() },
    };
    match outcome {
        Outcome::Succeeded => {
            next.failures = 0;
            next.last_error = None;
            next.next_due = Some(next_tick(schedule, started)?);
        }
        Outcome::Failed(message) => {
            next.failures = clock.failures.saturating_add(1);
            next.last_error = Some(message.clone());
            let wait = backoff(next.failures, interval(schedule, finished)?);
            next.next_due = Some(finished + delta(wait));
            if next.failures >= schedule.pause_after_failures {
                next.paused = true;
            }
        }
        Outcome::Deferred | Outcome::Held => {
            next.next_due = Some(finished + delta(backoff(1, interval(schedule, finished)?)));
        }
    }
    Ok(next)
}

/// Whether a run at `now` of a flow whose last full read was at `last_full` should read
/// everything. A flow that never had one gets one when it first loads anyway.
pub fn wants_full_refresh(schedule: &Schedule, last_full: Option<Ts>, now: Ts) -> bool {
    match (schedule.full_refresh_every, last_full) {
        (Some(every), Some(last)) => last + delta(every) <= now,
        _ => false,
    }
}

/// How fresh a flow's table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Its committed window end is within two intervals of now.
    OnTime,
    /// Further behind than that (or it has never committed).
    Late,
    /// Its last run failed.
    Error,
}

/// The freshness of a flow whose committed window end is `lag` behind (`None`: nothing
/// committed yet), whose interval is `interval`, and which failed last time or not.
pub fn freshness(lag: Option<Duration>, interval: Duration, failing: bool) -> Freshness {
    match lag {
        _ if failing => Freshness::Error,
        Some(lag) if lag <= interval.saturating_mul(2) => Freshness::OnTime,
        _ => Freshness::Late,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Ts {
        DateTime::parse_from_rfc3339(text).expect("a test time").with_timezone(&Utc)
    }

    fn every(secs: u64) -> Schedule {
        Schedule { cadence: Cadence::Every(Duration::from_secs(secs)), ..Schedule::default() }
    }

    fn cron(pattern: &str, tz: chrono_tz::Tz) -> Schedule {
        Schedule { cadence: Cadence::Cron(pattern.into()), timezone: tz, ..Schedule::default() }
    }

    #[test]
    fn next_ticks() {
        let paris = chrono_tz::Europe::Paris;
        let cases: &[(Schedule, &str, &str)] = &[
            (every(900), "2026-12-06T10:00:00Z", "2026-12-06T10:15:00Z"),
            // On the grid, wherever the last run started.
            (every(900), "2026-12-06T10:07:31Z", "2026-12-06T10:15:00Z"),
            (every(2), "2026-12-06T10:00:00.400Z", "2026-12-06T10:00:02Z"),
            (every(86_400), "2026-12-06T10:00:00Z", "2026-12-07T00:00:00Z"),
            (every(2), "2026-12-06T10:00:00Z", "2026-12-06T10:00:02Z"),
            (cron("*/15 * * * *", chrono_tz::UTC), "2026-12-06T10:00:00Z", "2026-12-06T10:15:00Z"),
            (cron("*/15 * * * *", chrono_tz::UTC), "2026-12-06T10:07:31Z", "2026-12-06T10:15:00Z"),
            (cron("0 2 * * *", chrono_tz::UTC), "2026-12-06T02:00:00Z", "2026-12-07T02:00:00Z"),
            // 02:00 in Paris is 01:00 UTC in winter.
            (cron("0 2 * * *", paris), "2026-12-06T10:00:00Z", "2026-12-07T01:00:00Z"),
            (cron("@hourly", chrono_tz::UTC), "2026-12-06T10:59:59Z", "2026-12-06T11:00:00Z"),
        ];
        for (schedule, after, want) in cases {
            assert_eq!(next_tick(schedule, at(after)).unwrap(), at(want), "{schedule:?} after {after}");
        }
    }

    #[test]
    fn intervals() {
        let noon = at("2026-12-06T12:00:00Z");
        assert_eq!(interval(&every(120), noon).unwrap(), Duration::from_secs(120));
        assert_eq!(interval(&cron("*/15 * * * *", chrono_tz::UTC), noon).unwrap(), Duration::from_secs(900));
        assert_eq!(interval(&cron("0 3 * * *", chrono_tz::UTC), noon).unwrap(), Duration::from_secs(86_400));
    }

    #[test]
    fn backoff_doubles_up_to_the_interval() {
        let hour = Duration::from_secs(3600);
        let cases = [(1, hour, 60), (2, hour, 120), (3, hour, 240), (6, hour, 1920), (7, hour, 3600), (40, hour, 3600)];
        for (failures, interval, want) in cases {
            assert_eq!(backoff(failures, interval), Duration::from_secs(want), "{failures} failures");
        }
        // A flow scheduled more often than the first back-off is retried on its schedule.
        assert_eq!(backoff(1, Duration::from_secs(2)), Duration::from_secs(2));
    }

    #[test]
    fn due() {
        let now = at("2026-12-06T10:00:00Z");
        let cases = [
            (Clock::default(), true),
            (Clock { next_due: Some(at("2026-12-06T09:00:00Z")), ..Clock::default() }, true),
            (Clock { next_due: Some(now), ..Clock::default() }, true),
            (Clock { next_due: Some(at("2026-12-06T10:00:01Z")), ..Clock::default() }, false),
            (Clock { paused: true, ..Clock::default() }, false),
        ];
        for (clock, want) in cases {
            assert_eq!(clock.is_due(now), want, "{clock:?}");
        }
    }

    #[test]
    fn flows_due_soon_join_a_run() {
        let now = at("2026-12-06T10:00:00Z");
        let due_in = |secs: i64| Clock { next_due: Some(now + TimeDelta::seconds(secs)), ..Clock::default() };
        let cases = [
            (every(60), due_in(-5), true),
            (every(60), due_in(6), true),
            (every(60), due_in(7), false),
            (every(3600), due_in(30), true),
            (every(3600), due_in(31), false),
            (every(60), Clock { paused: true, ..due_in(-5) }, false),
            (every(60), Clock::default(), true),
            (every(60), Clock { paused: true, ..Clock::default() }, false),
        ];
        for (schedule, clock, want) in cases {
            assert_eq!(joins_run(&schedule, &clock, now), want, "{schedule:?} {clock:?}");
        }
    }

    #[test]
    fn after_runs() {
        let s = Schedule { pause_after_failures: 3, ..every(900) };
        let (start, end) = (at("2026-12-06T10:00:00Z"), at("2026-12-06T10:01:00Z"));
        let failing = Clock { failures: 2, last_error: Some("old".into()), ..Clock::default() };
        let boom = Outcome::Failed("boom".into());
        // (clock before, outcome, next due, failures, paused, error)
        type Case = (Clock, Outcome, &'static str, u32, bool, Option<&'static str>);
        let cases: Vec<Case> = vec![
            (Clock::default(), Outcome::Succeeded, "2026-12-06T10:15:00Z", 0, false, None),
            (failing.clone(), Outcome::Succeeded, "2026-12-06T10:15:00Z", 0, false, None),
            (Clock::default(), boom.clone(), "2026-12-06T10:02:00Z", 1, false, Some("boom")),
            (Clock { failures: 1, ..Clock::default() }, boom.clone(), "2026-12-06T10:03:00Z", 2, false, Some("boom")),
            (failing.clone(), boom.clone(), "2026-12-06T10:05:00Z", 3, true, Some("boom")),
            (failing.clone(), Outcome::Deferred, "2026-12-06T10:02:00Z", 2, false, Some("old")),
        ];
        for (before, outcome, due, failures, paused, error) in cases {
            let after = after_run(&s, &before, start, end, &outcome).unwrap();
            assert_eq!(after.next_due, Some(at(due)), "{before:?} {outcome:?}");
            assert_eq!((after.failures, after.paused, after.last_error.as_deref()), (failures, paused, error));
            assert_eq!((after.last_started, after.last_finished), (Some(start), Some(end)));
        }
        // Held by another serve: looked at again in a minute, the rest of the clock untouched.
        let after = after_run(&s, &failing, start, end, &Outcome::Held).unwrap();
        assert_eq!(after, Clock { next_due: Some(at("2026-12-06T10:02:00Z")), ..failing });
    }

    #[test]
    fn a_run_longer_than_its_interval_is_followed_by_one_run_not_a_backlog() {
        let s = every(60);
        let (start, end) = (at("2026-12-06T10:00:00Z"), at("2026-12-06T10:05:00Z"));
        let after = after_run(&s, &Clock::default(), start, end, &Outcome::Succeeded).unwrap();
        assert!(after.is_due(end));
        let again = after_run(&s, &after, end, at("2026-12-06T10:05:10Z"), &Outcome::Succeeded).unwrap();
        assert_eq!(again.next_due, Some(at("2026-12-06T10:06:00Z")));
    }

    #[test]
    fn resuming_forgets_failures() {
        let now = at("2026-12-06T10:00:00Z");
        let paused = Clock { paused: true, failures: 5, last_error: Some("x".into()), ..Clock::default() };
        let resumed = paused.resumed(now);
        assert!(resumed.is_due(now));
        assert_eq!((resumed.failures, resumed.last_error.as_deref()), (0, Some("x")));
    }

    #[test]
    fn full_refreshes() {
        let s = Schedule { full_refresh_every: Some(Duration::from_secs(86_400)), ..every(900) };
        let now = at("2026-12-06T10:00:00Z");
        let cases = [(None, false), (Some("2026-12-05T09:59:59Z"), true), (Some("2026-12-05T10:00:01Z"), false)];
        for (last, want) in cases {
            assert_eq!(wants_full_refresh(&s, last.map(at), now), want, "{last:?}");
        }
        let never = Schedule { full_refresh_every: None, ..s };
        assert!(!wants_full_refresh(&never, Some(at("2020-01-01T00:00:00Z")), now));
    }

    #[test]
    fn freshness_words() {
        let m = |s| Some(Duration::from_secs(s));
        let cases = [
            (m(100), 60, false, Freshness::OnTime),
            (m(120), 60, false, Freshness::OnTime),
            (m(121), 60, false, Freshness::Late),
            (None, 60, false, Freshness::Late),
            (m(1), 60, true, Freshness::Error),
        ];
        for (lag, interval, failing, want) in cases {
            assert_eq!(freshness(lag, Duration::from_secs(interval), failing), want);
        }
    }
}
