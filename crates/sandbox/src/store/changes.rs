//! Change capture ([`ChangeLog`]): every write the org commits, as Salesforce's Change Data
//! Capture records it for the Pub/Sub API — one [`Captured`] change per record and
//! transaction, numbered by an opaque replay id that increases but skips values, kept for
//! the retention (72 hours of the org's clock by default), then dropped.
//!
//! Writes are captured when they commit: a late commit is captured when it becomes
//! visible, with the stamp it was written with. Subscribers wait on [`ChangeLog::watch`].

use std::collections::VecDeque;

use crate::value::Value;

/// What a change did to its record (`ChangeEventHeader.changeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new record: the body holds every field that has a value.
    Create,
    /// Changed fields: the body holds those, `nulled` the ones set to null.
    Update,
    /// Moved to the recycle bin, or hard-deleted: the body is empty.
    Delete,
    /// Restored from the recycle bin: the body holds every field that has a value.
    Undelete,
}

impl ChangeKind {
    /// The Avro enum symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            ChangeKind::Create => "CREATE",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
            ChangeKind::Undelete => "UNDELETE",
        }
    }
}

/// One captured change of one record.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Replay id (opaque to subscribers, increasing, not contiguous).
    pub replay: u64,
    /// Table position of the record's object.
    pub table: usize,
    /// The record's 18-character Id.
    pub record: String,
    /// What happened.
    pub kind: ChangeKind,
    /// (field position, value) of the fields the event carries; a null value is a field
    /// an update set to null.
    pub values: Vec<(usize, Value<'static>)>,
    /// When the transaction committed (ms since the epoch).
    pub commit_ms: i64,
    /// The commit's system change number.
    pub commit_number: u64,
    /// The writing user's Id.
    pub user: String,
    /// Shared by the changes of one transaction.
    pub transaction: String,
    /// Order within the transaction, from 1.
    pub sequence: u32,
}

/// The captured changes still within the retention, oldest first.
#[derive(Debug)]
pub struct ChangeLog {
    events: VecDeque<Captured>,
    /// The replay id the next change gets.
    next: u64,
    commits: u64,
    /// The newest replay id expired (0: none): a subscriber whose position is older has
    /// missed changes.
    expired: u64,
    /// How long a change stays replayable (ms of the org's clock).
    pub retention_ms: i64,
    /// The newest replay id handed out (0: none yet), for subscribers to wait on.
    latest: tokio::sync::watch::Sender<u64>,
}

/// Capture keeps 72 hours of changes, as Salesforce does.
pub const DEFAULT_RETENTION_MS: i64 = 72 * 3_600_000;

impl Default for ChangeLog {
    fn default() -> Self {
        ChangeLog {
            events: VecDeque::new(),
            next: 1_000,
            commits: 0,
            expired: 0,
            retention_ms: DEFAULT_RETENTION_MS,
            latest: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl ChangeLog {
    /// Starts a transaction committed at `commit_ms`: its key and number.
    pub fn begin(&mut self, commit_ms: i64) -> Transaction {
        self.commits += 1;
        let number = (commit_ms.max(0) as u64) * 1_000 + self.commits % 1_000;
        let key = crate::ids::uuid_text(self.commits.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ commit_ms as u64);
        Transaction { key, number, commit_ms, sequence: 0 }
    }

    /// Records one change of transaction `tx`; returns its replay id.
    pub fn push(
        &mut self,
        tx: &mut Transaction,
        table: usize,
        record: String,
        kind: ChangeKind,
        values: Vec<(usize, Value<'static>)>,
        user: &str,
    ) -> u64 {
        tx.sequence += 1;
        let replay = self.next;
        // Increasing, never contiguous: consumers must not do arithmetic on replay ids.
        self.next += 2 + (replay.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61);
        self.events.push_back(Captured {
            replay,
            table,
            record,
            kind,
            values,
            commit_ms: tx.commit_ms,
            commit_number: tx.number,
            user: user.to_string(),
            transaction: tx.key.clone(),
            sequence: tx.sequence,
        });
        self.latest.send_replace(replay);
        replay
    }

    /// Drops the changes older than the retention at `now`.
    pub fn expire(&mut self, now: i64) {
        while self.events.front().is_some_and(|e| e.commit_ms.saturating_add(self.retention_ms) < now) {
            if let Some(gone) = self.events.pop_front() {
                self.expired = gone.replay;
            }
        }
    }

    /// Whether a subscriber positioned at replay id `position` (the last change it got or
    /// passed over) has missed changes that expired before it read them.
    pub fn missed_after(&self, position: u64) -> bool {
        self.expired > position
    }

    /// The newest replay id that expired (0: none).
    pub fn expired_through(&self) -> u64 {
        self.expired
    }

    /// The newest replay id handed out (0: none yet); it may have expired since.
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Whether `replay` was handed out and is still held.
    pub fn holds(&self, replay: u64) -> bool {
        self.events.binary_search_by_key(&replay, |e| e.replay).is_ok()
    }

    /// Up to `max` changes after replay id `after` (0: from the oldest held) that `wanted`
    /// accepts, and the replay id of the last change looked at (`after` if none), so that
    /// the next call skips the ones passed over.
    pub fn after(&self, after: u64, max: usize, wanted: impl Fn(&Captured) -> bool) -> (Vec<Captured>, u64) {
        let start = self.events.partition_point(|e| e.replay <= after);
        let mut due = Vec::new();
        let mut examined = after;
        for e in self.events.range(start..) {
            if due.len() == max {
                break;
            }
            examined = e.replay;
            if wanted(e) {
                due.push(e.clone());
            }
        }
        (due, examined)
    }

    /// Changes held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// A receiver that sees every new replay id.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.latest.subscribe()
    }
}

/// One transaction's identity while its changes are captured.
#[derive(Debug, Clone)]
pub struct Transaction {
    key: String,
    number: u64,
    commit_ms: i64,
    sequence: u32,
}
