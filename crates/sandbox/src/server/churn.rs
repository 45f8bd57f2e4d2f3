//! Churn: the background writes of a living org (knob `churn`), and the same writes
//! on demand through the admin API.
//!
//! Inserts are generated like the org's initial rows; updates copy one to three
//! fields from a freshly generated row, and one in five is a system write that bumps
//! `SystemModstamp` only (as a roll-up recalculation does); deletes and undeletes pick
//! random rows. A share of writes can be late commits (knob `late_commits`).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::state::AppState;
use crate::generate;
use crate::store::{Change, Org};
use crate::value::{FieldType, Value};

/// What one churn step should do to one object.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ops {
    /// Inserts.
    pub inserts: u32,
    /// Updates.
    pub updates: u32,
    /// Deletes.
    pub deletes: u32,
    /// Undeletes.
    pub undeletes: u32,
}

/// What a churn step did: (operation, Id) pairs in order.
pub type Done = Vec<(&'static str, String)>;

/// Late-commit settings for one step: (share of writes, delay in ms).
pub type Late = Option<(f64, i64)>;

fn is_system_field(name: &str) -> bool {
    matches!(
        name,
        "Id" | "IsDeleted" | "CreatedDate" | "CreatedById" | "LastModifiedDate" | "LastModifiedById" | "SystemModstamp"
    )
}

fn random_row(org: &Org, table: usize, rng: &mut ChaCha8Rng, deleted: bool) -> Option<u32> {
    let t = &org.tables[table];
    if t.is_empty() {
        return None;
    }
    // Mostly-live tables: random probing finds a row fast. Fall back to a scan for the
    // rare recycle-bin pick.
    for _ in 0..32 {
        let r = rng.random_range(0..t.len() as u32);
        if !t.purged[r as usize] && t.is_deleted(r) == deleted {
            return Some(r);
        }
    }
    let candidates: Vec<u32> =
        (0..t.len() as u32).filter(|&r| !t.purged[r as usize] && t.is_deleted(r) == deleted).collect();
    candidates.choose(rng).copied()
}

fn commit(org: &mut Org, change: Change, now: i64, user: &str, late: Late, rng: &mut ChaCha8Rng) -> bool {
    match late {
        Some((share, delay)) if rng.random::<f64>() < share => {
            org.apply_late(change, now, user, now + delay);
            true
        }
        _ => org.apply(&change, now, user).is_ok(),
    }
}

/// Applies `ops` to `table` at `now`.
#[allow(clippy::too_many_arguments)]
pub fn step(
    org: &mut Org,
    table: usize,
    ops: Ops,
    now: i64,
    seed: u64,
    anchor: i64,
    late: Late,
    rng: &mut ChaCha8Rng,
) -> Done {
    let mut done = Vec::new();
    let user = org.user_id.clone();
    let prefix = org.tables[table].def.key_prefix.clone();
    let writable: Vec<usize> = org.tables[table]
        .def
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.calculated() && !is_system_field(&f.name) && !f.auto_number && f.ty != FieldType::Base64)
        .map(|(i, _)| i)
        .collect();
    for _ in 0..ops.inserts {
        let number = org.tables[table].allocate_number();
        let row = generate::row_for(org, table, number, seed, anchor);
        let values = writable.iter().map(|&c| (c, row[c].clone())).filter(|(_, v)| !v.is_null()).collect();
        if commit(org, Change::Insert { table, number, values }, now, &user, late, rng) {
            done.push(("insert", crate::ids::make(&prefix, number)));
        }
    }
    let updatable: Vec<usize> =
        writable.iter().copied().filter(|&c| org.tables[table].def.fields[c].updateable).collect();
    for _ in 0..ops.updates {
        let Some(r) = random_row(org, table, rng, false) else { break };
        let number = org.tables[table].numbers[r as usize];
        let system = rng.random_bool(0.2) || updatable.is_empty();
        let values = if system {
            Vec::new()
        } else {
            let donor =
                generate::row_for(org, table, rng.random_range(1..u64::from(u32::MAX)), seed ^ now as u64, anchor);
            let n = rng.random_range(1..=3usize.min(updatable.len()));
            updatable.choose_multiple(rng, n).map(|&c| (c, donor[c].clone())).collect::<Vec<(usize, Value<'static>)>>()
        };
        if commit(org, Change::Update { table, number, values, system }, now, &user, late, rng) {
            done.push(("update", crate::ids::make(&prefix, number)));
        }
    }
    let deletable = org.tables[table].def.deletable && org.tables[table].sys.is_deleted.is_some();
    for _ in 0..if deletable { ops.deletes } else { 0 } {
        let Some(r) = random_row(org, table, rng, false) else { break };
        let number = org.tables[table].numbers[r as usize];
        if commit(org, Change::Delete { table, number }, now, &user, late, rng) {
            done.push(("delete", crate::ids::make(&prefix, number)));
        }
    }
    for _ in 0..if deletable { ops.undeletes } else { 0 } {
        let Some(r) = random_row(org, table, rng, true) else { break };
        let number = org.tables[table].numbers[r as usize];
        if commit(org, Change::Undelete { table, number }, now, &user, late, rng) {
            done.push(("undelete", crate::ids::make(&prefix, number)));
        }
    }
    done
}

/// Turns a rate per second into a whole count for an interval, carrying the fraction.
fn take(rate: f64, secs: f64, carry: &mut f64) -> u32 {
    *carry += rate * secs;
    let n = carry.floor();
    *carry -= n;
    n as u32
}

/// The background task: applies the `churn` knob every quarter second.
pub async fn run(state: Arc<AppState>) {
    let period = Duration::from_millis(250);
    let mut carry = [0.0f64; 5];
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        let secs = last.elapsed().as_secs_f64();
        last = tokio::time::Instant::now();
        let knobs = state.knobs.read().clone();
        let c = &knobs.churn;
        let total = c.inserts_per_sec + c.updates_per_sec + c.deletes_per_sec + c.undeletes_per_sec;
        if total <= 0.0 && c.timestamp_ties == 0 {
            continue;
        }
        let now = state.tick();
        let late = (knobs.late_commits.fraction > 0.0)
            .then_some((knobs.late_commits.fraction, (knobs.late_commits.delay_secs * 1000.0) as i64));
        let ops = Ops {
            inserts: take(c.inserts_per_sec, secs, &mut carry[0]),
            updates: take(c.updates_per_sec, secs, &mut carry[1]),
            deletes: take(c.deletes_per_sec, secs, &mut carry[2]),
            undeletes: take(c.undeletes_per_sec, secs, &mut carry[3]),
        };
        let ties = take(f64::from(c.timestamp_ties), secs, &mut carry[4]);
        let mut org = state.org.write();
        let tables: Vec<usize> = if c.objects.is_empty() {
            (0..org.tables.len()).filter(|&t| org.tables[t].def.name != "User" && !org.tables[t].is_empty()).collect()
        } else {
            c.objects.iter().filter_map(|o| org.table_index(o)).collect()
        };
        if tables.is_empty() {
            continue;
        }
        let mut rng = state.rng.lock();
        // Spread the step's operations over the objects at random.
        let mut per_table = vec![Ops::default(); tables.len()];
        for (count, pick) in [(ops.inserts, 0usize), (ops.updates, 1), (ops.deletes, 2), (ops.undeletes, 3)] {
            for _ in 0..count {
                let o = &mut per_table[rng.random_range(0..tables.len())];
                match pick {
                    0 => o.inserts += 1,
                    1 => o.updates += 1,
                    2 => o.deletes += 1,
                    _ => o.undeletes += 1,
                }
            }
        }
        for (i, &t) in tables.iter().enumerate() {
            step(&mut org, t, per_table[i], now, state.seed, state.anchor_ms, late, &mut rng);
        }
        if ties > 0 {
            // Many rows committed in one second: all share this SystemModstamp.
            let t = tables[rng.random_range(0..tables.len())];
            step(
                &mut org,
                t,
                Ops { updates: ties, ..Ops::default() },
                now,
                state.seed,
                state.anchor_ms,
                None,
                &mut rng,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::objects;
    use rand::SeedableRng;

    #[test]
    fn step_applies_every_kind_of_write() {
        let mut org = Org::new(objects::all(), 86_400_000);
        generate::populate(&mut org, &vec![("Account".into(), 200), ("User".into(), 3)], 1, 1_750_000_000_000, "u@x.y");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let now = 1_760_000_000_000;
        let done = step(
            &mut org,
            0,
            Ops { inserts: 3, updates: 5, deletes: 2, undeletes: 1 },
            now,
            1,
            1_750_000_000_000,
            None,
            &mut rng,
        );
        let kinds: Vec<_> = done.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "insert").count(), 3);
        assert_eq!(kinds.iter().filter(|k| **k == "update").count(), 5);
        assert_eq!(kinds.iter().filter(|k| **k == "delete").count(), 2);
        assert_eq!(kinds.iter().filter(|k| **k == "undelete").count(), 1);
        let t = &org.tables[0];
        for (_, id) in &done {
            let r = t.row_of_id(id).unwrap();
            assert_eq!(t.modstamp(r), now, "{id}");
        }
        assert_eq!(t.len(), 203);
    }

    #[test]
    fn fractional_rates_accumulate() {
        let mut carry = 0.0;
        let total: u32 = (0..40).map(|_| take(0.5, 0.25, &mut carry)).sum();
        assert_eq!(total, 5);
    }
}
