//! Whether users were served in the order they came: pairs of users of one priority bound in
//! the opposite order of their creation (the scheduler bench's overflow round).

use std::time::{Duration, Instant};

/// One user as the bench saw it: its priority, when it was created, when it was seen bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub priority: i32,
    pub created: Instant,
    pub bound: Instant,
}

/// Pairs of users of the same priority where the one created first was bound more than
/// `simultaneous` after the one created later. Binds closer together than `simultaneous`
/// count as one moment: a scheduler binds concurrently, and the order in which the API server
/// commits concurrent binds is not the order the scheduler chose.
pub fn order_inversions(users: &[Served], simultaneous: Duration) -> usize {
    let mut by_creation: Vec<&Served> = users.iter().collect();
    by_creation.sort_by_key(|u| u.created);
    let mut inversions = 0;
    for (i, earlier) in by_creation.iter().enumerate() {
        for later in &by_creation[i + 1..] {
            if later.priority == earlier.priority
                && later.created > earlier.created
                && later.bound + simultaneous < earlier.bound
            {
                inversions += 1;
            }
        }
    }
    inversions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(t0: Instant, priority: i32, created_ms: u64, bound_ms: u64) -> Served {
        Served {
            priority,
            created: t0 + Duration::from_millis(created_ms),
            bound: t0 + Duration::from_millis(bound_ms),
        }
    }

    #[test]
    fn counts_pairs_bound_against_their_creation_order_within_one_priority() {
        let t0 = Instant::now();
        let none = Duration::ZERO;
        let in_order = [
            user(t0, 0, 0, 100),
            user(t0, 0, 10, 200),
            user(t0, 0, 20, 300),
        ];
        assert_eq!(order_inversions(&in_order, none), 0);
        // The first user waited until after both later ones: two pairs out of order.
        let passed_over = [
            user(t0, 0, 0, 900),
            user(t0, 0, 10, 200),
            user(t0, 0, 20, 300),
        ];
        assert_eq!(order_inversions(&passed_over, none), 2);
        // A higher-priority user served first is no inversion: priorities are apart.
        let by_priority = [user(t0, 0, 0, 900), user(t0, 10, 10, 200)];
        assert_eq!(order_inversions(&by_priority, none), 0);
        // Equal creation times have no order to break.
        let same_time = [user(t0, 0, 5, 900), user(t0, 0, 5, 200)];
        assert_eq!(order_inversions(&same_time, none), 0);
    }

    #[test]
    fn binds_closer_than_the_tolerance_are_one_moment() {
        let t0 = Instant::now();
        let concurrent = [user(t0, 0, 0, 1_030), user(t0, 0, 10, 1_000)];
        assert_eq!(order_inversions(&concurrent, Duration::from_millis(50)), 0);
        assert_eq!(order_inversions(&concurrent, Duration::ZERO), 1);
        let seconds_apart = [user(t0, 0, 0, 5_000), user(t0, 0, 10, 1_000)];
        assert_eq!(
            order_inversions(&seconds_apart, Duration::from_millis(50)),
            1
        );
    }
}
