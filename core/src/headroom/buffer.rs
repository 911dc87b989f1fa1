//! A CapacityBuffer's arithmetic, shared by hubpack-placeholder-ctl's `capacityBuffer`
//! backend and the simulator's model of it: how the buffer's chunks share free warm seats,
//! and when a raise is written.

use crate::model::Millis;

/// How a buffer of `replicas` chunks shares the placement's free warm seats: the
/// autoscaler packs its virtual pods onto free room first, so up to `free / N` chunks are
/// held by warm nodes already (they count as placed placeholders do) and those seats are
/// not free for the forecast. Returns (chunks held on warm nodes, seats left free). Room
/// split over nodes in pieces smaller than N is counted here but not by the autoscaler:
/// the forecast then sees fewer chunks missing than the autoscaler provisions.
pub fn chunks_on_warm_nodes(replicas: usize, free_seats: i64, seats_each: i64) -> (usize, i64) {
    let n = seats_each.max(1);
    let fit = usize::try_from(free_seats.max(0) / n).unwrap_or(0);
    let held = replicas.min(fit);
    let held_seats = i64::try_from(held).unwrap_or(i64::MAX).saturating_mul(n);
    (held, free_seats - held_seats)
}

/// How long a raise of a buffer must stay wanted before it is written: the grace
/// hubpack-scheduler gives a new placeholder before marking it Unschedulable (its
/// `placeholderUnschedulableGraceSeconds` default), so a raise that lasts only while a
/// class binds (the forecast reacting to the arrivals) reaches the autoscaler with neither
/// backend. The autoscaler sees a buffer's `replicas` at its next scan, a placeholder only
/// once marked Unschedulable.
pub const RAISE_GRACE_MS: Millis = 5_000;

/// The count to write when the decision is `decided` and `current` is written: lower or
/// equal at once; higher only once wanted since `raising_since` for `grace`. Returns the
/// count and since when a raise is held (None: nothing held).
pub fn hold_raise(
    current: usize,
    decided: usize,
    raising_since: Option<Millis>,
    now: Millis,
    grace: Millis,
) -> (usize, Option<Millis>) {
    if decided <= current {
        return (decided, None);
    }
    let since = raising_since.unwrap_or(now);
    if now - since >= grace {
        (decided, None)
    } else {
        (current, Some(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raise_is_written_after_the_grace_a_drop_at_once() {
        let g = 5_000;
        // Raised at t = 0: held until 5 s, then written whole.
        assert_eq!(hold_raise(2, 4, None, 0, g), (2, Some(0)));
        assert_eq!(hold_raise(2, 3, Some(0), 4_999, g), (2, Some(0)));
        assert_eq!(hold_raise(2, 3, Some(0), 5_000, g), (3, None));
        // A raise gone before the grace is never written, and the next one starts anew.
        assert_eq!(hold_raise(2, 2, Some(0), 3_000, g), (2, None));
        assert_eq!(hold_raise(2, 4, None, 6_000, g), (2, Some(6_000)));
        // Drops are written at once.
        assert_eq!(hold_raise(3, 1, Some(0), 1, g), (1, None));
    }

    #[test]
    fn chunks_fill_free_warm_seats_first() {
        // 3 chunks of 10, 25 free seats: 2 chunks are held by warm nodes, 5 seats stay free.
        assert_eq!(chunks_on_warm_nodes(3, 25, 10), (2, 5));
        // More room than chunks: every chunk held, the rest free.
        assert_eq!(chunks_on_warm_nodes(1, 25, 10), (1, 15));
        assert_eq!(chunks_on_warm_nodes(0, 25, 10), (0, 25));
        assert_eq!(chunks_on_warm_nodes(2, -3, 10), (0, -3));
    }
}
