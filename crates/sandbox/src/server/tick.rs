//! Bringing the org up to its clock before a request is served ([`AppState::tick`]):
//! late commits, recycle-bin purges, and fields the `fields_added` knob schedules.

use super::fields::add_field;
use super::state::AppState;

impl AppState {
    /// Brings the org up to `now`: late commits, recycle-bin purge, scheduled fields.
    /// Cheap when nothing is due, so every request calls it.
    pub fn tick(&self) -> i64 {
        let now = self.clock.now_ms();
        let due = self.org.read().next_due() <= now;
        let fields_due = {
            let knobs = self.knobs.read();
            let added = self.added_fields.lock();
            knobs.fields_added.iter().any(|f| {
                now - self.started_ms >= (f.after_secs * 1000.0) as i64
                    && !added.iter().any(|(o, n)| o == &f.object && n == &f.name)
            })
        };
        if due {
            self.org.write().tick(now);
        }
        if fields_due {
            let knobs = self.knobs.read().clone();
            for f in &knobs.fields_added {
                if now - self.started_ms < (f.after_secs * 1000.0) as i64 {
                    continue;
                }
                let mut added = self.added_fields.lock();
                if added.iter().any(|(o, n)| o == &f.object && n == &f.name) {
                    continue;
                }
                added.push((f.object.clone(), f.name.clone()));
                drop(added);
                if let Err(e) = add_field(self, &f.object, &f.name, &f.ty, &[], None) {
                    tracing::warn!(message = "Scheduled field could not be added.", object = %f.object, field = %f.name, error = %e);
                }
            }
        }
        now
    }
}
