//! Property tests of the sizing chain forecast → H → placeholders → hysteresis.

use super::*;
use crate::model::Millis;
use proptest::prelude::*;

const MIN: Millis = 60_000;

fn target(rate_per_min: f64, lead: Millis, free: i64, n: i64, cfg: &HeadroomConfig) -> usize {
    let f = ArrivalForecast {
        learned: LearnedArrivals {
            rate: rate_per_min / MIN as f64,
            ..Default::default()
        },
        events: vec![ScheduledEvent {
            start: 5 * MIN,
            window: 10 * MIN,
            users: 100.0,
            weekly: false,
        }],
    };
    let h = headroom_seats(f.expected_arrivals(0, lead), cfg);
    placeholder_target(h, free, n)
}

fn cfg() -> impl Strategy<Value = HeadroomConfig> {
    (0.0f64..3.0, 0.0f64..100.0, 0.0f64..2000.0).prop_map(|(z, min, span)| HeadroomConfig {
        z,
        min_seats: min,
        max_seats: min + span,
    })
}

proptest! {
    #[test]
    fn monotone_in_arrival_rate(
        r1 in 0.0f64..200.0, dr in 0.0f64..200.0, lead in 0i64..60 * MIN,
        free in 0i64..500, n in 1i64..100, c in cfg(),
    ) {
        prop_assert!(target(r1, lead, free, n, &c) <= target(r1 + dr, lead, free, n, &c));
    }

    #[test]
    fn monotone_in_lead_time(
        r in 0.0f64..200.0, l1 in 0i64..60 * MIN, dl in 0i64..60 * MIN,
        free in 0i64..500, n in 1i64..100, c in cfg(),
    ) {
        prop_assert!(target(r, l1, free, n, &c) <= target(r, l1 + dl, free, n, &c));
    }

    #[test]
    fn headroom_within_min_max_and_never_negative(mu in -100.0f64..1e6, c in cfg()) {
        let h = headroom_seats(mu, &c);
        prop_assert!(h >= 0.0);
        prop_assert!(h >= c.min_seats - 1e-9 && h <= c.max_seats + 1e-9, "{h} {c:?}");
    }

    #[test]
    fn target_covers_the_gap_and_no_more(h in 0.0f64..5000.0, free in -50i64..5000, n in 1i64..200) {
        let t = placeholder_target(h, free, n) as f64;
        let gap = (h - free.max(0) as f64).max(0.0);
        prop_assert!(t * n as f64 >= gap - 1e-6);
        prop_assert!(t == 0.0 || (t - 1.0) * (n as f64) < gap);
    }

    /// Nothing changes: the count stays where it is, whatever the time.
    #[test]
    fn no_change_when_nothing_changes(
        count in 0usize..50, remove_after in 0i64..30 * MIN,
        times in prop::collection::vec(0i64..1000 * MIN, 1..30),
    ) {
        let mut h = Hysteresis::new(remove_after);
        let mut times = times;
        times.sort_unstable();
        for t in times {
            prop_assert_eq!(h.step(count, count, t), count);
        }
    }

    /// Additions happen at once; a removal only after the target stayed below the count
    /// for `remove_after`, and two removals are at least `remove_after` apart.
    #[test]
    fn no_flapping_within_the_minimum_time(
        remove_after in 1i64..30 * MIN,
        steps in prop::collection::vec((0usize..20, 1i64..5 * MIN), 1..80),
    ) {
        let mut h = Hysteresis::new(remove_after);
        let mut current = 0usize;
        let mut now = 0;
        let mut lower_since: Option<Millis> = None;
        let mut last_removal: Option<Millis> = None;
        for (target, dt) in steps {
            now += dt;
            let next = h.step(current, target, now);
            if target >= current {
                prop_assert_eq!(next, target, "adds at once");
                lower_since = None;
            } else {
                let since = *lower_since.get_or_insert(now);
                if next < current {
                    prop_assert_eq!(next, target);
                    prop_assert!(now - since >= remove_after, "removed after {} ms", now - since);
                    if let Some(prev) = last_removal {
                        prop_assert!(now - prev >= remove_after);
                    }
                    last_removal = Some(now);
                    lower_since = None;
                } else {
                    prop_assert_eq!(next, current);
                }
            }
            current = next;
        }
    }
}
