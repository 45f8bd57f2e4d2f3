//! `serve.notify_url`: a JSON POST when a flow starts failing, is paused, recovers, or
//! falls late. Which transitions deserve one is pure ([`events`], [`late_event`]); the
//! POST ([`Notifier::send`]) runs on a task of its own, tried 3 times, so a slow or dead
//! receiver never holds a run. The URL is a secret (webhook URLs carry their key): it is
//! never logged; a failed delivery is logged without it.

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use super::schedule::{Clock, Freshness, Outcome, Ts};
use crate::config::Secret;

/// What happened to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Its first failed run after a success (later failures in a row say nothing new).
    Failure,
    /// Paused after `pause_after_failures` failed runs in a row.
    Paused,
    /// A run succeeded after failed ones.
    Recovered,
    /// Its committed window end fell more than two intervals behind.
    Late,
}

/// The body of one POST.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// What happened.
    pub event: EventKind,
    /// The flow (object).
    pub flow: String,
    /// Its table.
    pub table: String,
    /// The run that caused it (none for `late`).
    pub run_id: Option<String>,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// The last failure's message.
    pub error: Option<String>,
    /// How far behind its table is, when known.
    pub lag_seconds: Option<u64>,
    /// When it was noticed.
    pub at: Ts,
}

/// What a run's outcome changed, from the clock before to the clock after.
pub fn events(before: &Clock, after: &Clock, outcome: &Outcome) -> Vec<EventKind> {
    let mut out = Vec::new();
    match outcome {
        Outcome::Failed(_) if before.failures == 0 => out.push(EventKind::Failure),
        Outcome::Succeeded if before.failures > 0 => out.push(EventKind::Recovered),
        _ => {}
    }
    if after.paused && !before.paused {
        out.push(EventKind::Paused);
    }
    out
}

/// Whether a flow now `freshness` deserves a `late` event, given whether one was sent
/// since it was last on time; and whether one has been sent now.
pub fn late_event(freshness: Freshness, committed: bool, already: bool) -> (bool, bool) {
    match freshness {
        Freshness::Late if committed => (!already, true),
        Freshness::OnTime => (false, false),
        _ => (false, already),
    }
}

/// Sends events to `serve.notify_url`, if set.
#[derive(Clone)]
pub struct Notifier {
    url: Option<Secret>,
    client: reqwest::Client,
}

/// Attempts per event, and the first wait between them (doubling).
const ATTEMPTS: u32 = 3;
const FIRST_WAIT: Duration = Duration::from_millis(500);

impl Notifier {
    /// A notifier posting to `url` (`None`: it drops every event).
    pub fn new(url: Option<Secret>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self { url, client }
    }

    /// Posts `event` in the background.
    pub fn send(&self, event: Event) {
        let Some(url) = self.url.clone() else { return };
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut wait = FIRST_WAIT;
            for attempt in 1..=ATTEMPTS {
                match client.post(url.expose()).json(&event).send().await {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(status = %r.status(), attempt, event = ?event.event, flow = %event.flow, "serve.notify_url refused an event")
                    }
                    // The error's text may quote the URL: not logged.
                    Err(e) => {
                        tracing::warn!(attempt, timeout = e.is_timeout(), connect = e.is_connect(), event = ?event.event, flow = %event.flow, "serve.notify_url did not answer")
                    }
                }
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        });
    }

    /// An event about `flow` now.
    pub fn event(kind: EventKind, flow: &super::view::FlowEntry, run_id: Option<&str>, lag: Option<u64>) -> Event {
        Event {
            event: kind,
            flow: flow.config.object.clone(),
            table: flow.table.clone(),
            run_id: run_id.map(str::to_owned),
            consecutive_failures: flow.clock.failures,
            error: flow.clock.last_error.clone(),
            lag_seconds: lag,
            at: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_events() {
        let ok = Clock::default();
        let failing = Clock { failures: 1, ..Clock::default() };
        let paused = Clock { failures: 3, paused: true, ..Clock::default() };
        let boom = Outcome::Failed("boom".into());
        let cases = [
            (&ok, &failing, &boom, vec![EventKind::Failure]),
            (&failing, &Clock { failures: 2, ..Clock::default() }, &boom, vec![]),
            (&Clock { failures: 2, ..Clock::default() }, &paused, &boom, vec![EventKind::Paused]),
            (&ok, &paused, &boom, vec![EventKind::Failure, EventKind::Paused]),
            (&failing, &ok, &Outcome::Succeeded, vec![EventKind::Recovered]),
            (&ok, &ok, &Outcome::Succeeded, vec![]),
            (&failing, &failing, &Outcome::Deferred, vec![]),
        ];
        for (before, after, outcome, want) in cases {
            assert_eq!(events(before, after, outcome), want, "{before:?} → {after:?} on {outcome:?}");
        }
    }

    #[test]
    fn late_once_until_on_time_again() {
        let cases = [
            (Freshness::Late, true, false, (true, true)),
            (Freshness::Late, true, true, (false, true)),
            (Freshness::Late, false, false, (false, false)),
            (Freshness::OnTime, true, true, (false, false)),
            (Freshness::Error, true, true, (false, true)),
        ];
        for (freshness, committed, already, want) in cases {
            assert_eq!(late_event(freshness, committed, already), want, "{freshness:?} {committed} {already}");
        }
    }
}
