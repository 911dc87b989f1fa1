//! Placeholder count changes with hysteresis: a higher target is applied at once (arrivals
//! do not wait), a lower one only after it has held for a minimum time, because every
//! recreated placeholder is a scale-up that resets the autoscaler's scale-down delay.

use crate::model::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct Hysteresis {
    /// How long the target must stay at least one placeholder lower before removing.
    pub remove_after: Millis,
    lower_since: Option<Millis>,
}

impl Hysteresis {
    pub fn new(remove_after: Millis) -> Hysteresis {
        Hysteresis {
            remove_after,
            lower_since: None,
        }
    }

    /// Since when the target has been lower than the count (None: it is not).
    pub fn lower_since(&self) -> Option<Millis> {
        self.lower_since
    }

    /// Continues a timer started at `since` (a previous process's
    /// [`lower_since`](Self::lower_since)): on the same clock, it runs out when it would have.
    pub fn resume(&mut self, since: Option<Millis>) {
        self.lower_since = since;
    }

    /// The count to have now, given the `current` count (running + pending) and the fresh
    /// `target`. Removal goes down to the target once it has been lower long enough.
    pub fn step(&mut self, current: usize, target: usize, now: Millis) -> usize {
        if target >= current {
            self.lower_since = None;
            return target;
        }
        let since = *self.lower_since.get_or_insert(now);
        if now - since >= self.remove_after {
            self.lower_since = None;
            target
        } else {
            current
        }
    }
}

/// The count after dropping surplus pending placeholders: a pending placeholder above the
/// fresh `target` (an evicted one's replacement after a burst, or one the hysteresis still
/// holds) goes at once, since it holds no seat and would only make the autoscaler add a
/// node. Placed ones stay until the hysteresis lets them go.
pub fn trim_pending_above_target(desired: usize, target: usize, placed: usize) -> usize {
    desired.min(target.max(placed))
}

/// Order in which to remove placeholders: pending ones first (they hold nothing), then those
/// on nodes with the fewest users, so emptied nodes can be scaled down. Input: for each
/// placeholder, `None` when pending, else the number of users on its node. Returns indices
/// into the input; ties keep input order.
pub fn removal_order(users_on_node: &[Option<usize>]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..users_on_node.len()).collect();
    idx.sort_by_key(|&i| match users_on_node[i] {
        None => (0, 0),
        Some(u) => (1, u),
    });
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_at_once_removes_after_the_minimum_time() {
        let mut h = Hysteresis::new(600_000);
        assert_eq!(h.step(0, 3, 0), 3);
        assert_eq!(h.step(3, 1, 1_000), 3);
        assert_eq!(h.step(3, 2, 300_000), 3);
        assert_eq!(h.step(3, 2, 601_000), 2);
    }

    #[test]
    fn a_target_back_up_resets_the_timer() {
        let mut h = Hysteresis::new(600_000);
        assert_eq!(h.step(3, 1, 0), 3);
        assert_eq!(h.step(3, 3, 300_000), 3);
        assert_eq!(h.step(3, 1, 500_000), 3);
        assert_eq!(h.step(3, 1, 900_000), 3);
        assert_eq!(h.step(3, 1, 1_100_000), 1);
    }

    #[test]
    fn a_resumed_timer_runs_out_when_the_first_would_have() {
        let mut first = Hysteresis::new(600_000);
        assert_eq!(first.step(3, 1, 0), 3);
        let mut resumed = Hysteresis::new(600_000);
        resumed.resume(first.lower_since());
        assert_eq!(resumed.step(3, 1, 599_000), 3);
        assert_eq!(resumed.step(3, 1, 600_000), 1);
    }

    #[test]
    fn pending_placeholders_above_the_target_are_dropped_placed_ones_kept() {
        // 5 wanted by the hysteresis, target 2, 3 placed: the 2 pending go.
        assert_eq!(trim_pending_above_target(5, 2, 3), 3);
        // Target above what is placed: pending ones up to the target stay.
        assert_eq!(trim_pending_above_target(5, 4, 3), 4);
        assert_eq!(trim_pending_above_target(2, 4, 1), 2);
    }

    #[test]
    fn removes_pending_then_least_used_nodes_first() {
        let order = removal_order(&[Some(5), None, Some(0), Some(2)]);
        assert_eq!(order, vec![1, 2, 3, 0]);
    }
}
