//! The arrival forecast λ(t) in users per millisecond and its integral μ over a lead time.
//! Scheduled events (a class, a workshop) are ADDED to the learned background; the rate
//! observed right now can only raise the result, never lower it.

use crate::model::Millis;

/// One week in milliseconds; weekly events and profiles repeat with this period.
pub const WEEK_MS: Millis = 7 * 24 * 3_600_000;
pub(crate) const HOUR_MS: Millis = 3_600_000;

/// Observed arrivals count as more than the events planned only beyond this many standard
/// deviations of the planned count (√planned, Poisson).
pub const PLANNED_NOISE_SIGMAS: f64 = 2.0;

/// Expected users arriving uniformly over `[start, start + window)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledEvent {
    pub start: Millis,
    pub window: Millis,
    pub users: f64,
    /// Repeats every [`WEEK_MS`] (before and after `start`).
    pub weekly: bool,
}

impl ScheduledEvent {
    /// Expected arrivals of this event within `[from, to)`.
    pub fn expected_in(&self, from: Millis, to: Millis) -> f64 {
        if to <= from || self.users <= 0.0 {
            return 0.0;
        }
        if !self.weekly {
            return self.one_occurrence(self.start, from, to);
        }
        // Every weekly occurrence whose window can overlap [from, to).
        let first_k = (from - self.start - self.window).div_euclid(WEEK_MS);
        let last_k = (to - self.start).div_euclid(WEEK_MS);
        (first_k..=last_k)
            .map(|k| self.one_occurrence(self.start + k * WEEK_MS, from, to))
            .sum()
    }

    /// The start of the occurrence whose arrival window contains `now`, if any.
    pub fn current_start(&self, now: Millis) -> Option<Millis> {
        let start = if self.weekly {
            self.start + (now - self.start).div_euclid(WEEK_MS) * WEEK_MS
        } else {
            self.start
        };
        (start <= now && now < start + self.window.max(1)).then_some(start)
    }

    /// Expected arrivals within `[now, to)` of the occurrence in progress at `now` only.
    fn remaining_of_current(&self, now: Millis, to: Millis) -> f64 {
        match self.current_start(now) {
            Some(start) if self.users > 0.0 => self.one_occurrence(start, now, to),
            _ => 0.0,
        }
    }

    fn one_occurrence(&self, start: Millis, from: Millis, to: Millis) -> f64 {
        let window = self.window.max(1);
        let overlap = (to.min(start + window) - from.max(start)).max(0);
        self.users * overlap as f64 / window as f64
    }
}

/// Relative arrival rate per hour of the week (168 factors, hour 0 = the caller's epoch
/// hour 0 modulo a week); the background rate is multiplied by it.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyProfile {
    pub hourly_factor: Vec<f64>,
}

impl WeeklyProfile {
    fn factor_at(&self, t: Millis) -> f64 {
        if self.hourly_factor.is_empty() {
            return 1.0;
        }
        let hour = t.rem_euclid(WEEK_MS) / HOUR_MS;
        let i = usize::try_from(hour).unwrap_or(0) % self.hourly_factor.len();
        self.hourly_factor[i]
    }

    /// ∫ factor over [from, to), in milliseconds (piecewise constant per hour).
    fn integral(&self, from: Millis, to: Millis) -> f64 {
        let mut t = from;
        let mut sum = 0.0;
        while t < to {
            let hour_end = (t.div_euclid(HOUR_MS) + 1) * HOUR_MS;
            let end = hour_end.min(to);
            sum += self.factor_at(t) * (end - t) as f64;
            t = end;
        }
        sum
    }
}

/// The evidence the forecast adds to the scheduled events ([`ArrivalForecast::learned`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LearnedArrivals {
    /// Background rate, users per ms (an [`Ewma`](crate::headroom::Ewma)'s rate).
    pub rate: f64,
    pub weekly_profile: Option<WeeklyProfile>,
    /// Rate observed over the last `observed_window` ms, users per ms.
    pub observed_rate: f64,
    /// The span `observed_rate` was measured over, ending now. The scheduled events'
    /// expected rate over it is subtracted, so a class that arrives as planned is not
    /// extrapolated past its end; 0 subtracts nothing.
    pub observed_window: Millis,
    /// Users seen arriving since a moment (the earliest start of the events in progress,
    /// see [`arrived_since`](crate::headroom::arrived_since)): arrivals ahead of those
    /// events' even schedule (a class that logs in at once) are not expected again from the
    /// rest of their window, nor taken as a higher background. None: no such correction.
    pub arrived_since: Option<(Millis, f64)>,
}

impl LearnedArrivals {
    /// The forecast of `events` on top of this evidence.
    pub fn forecast(self, events: Vec<ScheduledEvent>) -> ArrivalForecast {
        ArrivalForecast {
            events,
            learned: self,
        }
    }
}

/// Everything that predicts arrivals: scheduled events + what was learned from the users
/// seen arriving (background, optionally shaped by a weekly profile, raised by the live
/// observed rate).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArrivalForecast {
    pub events: Vec<ScheduledEvent>,
    pub learned: LearnedArrivals,
}

impl ArrivalForecast {
    /// μ: expected arrivals over `[now, now + lead)`: the scheduled events plus the
    /// background, where the background is at least the part of the observed rate that the
    /// events do not explain (the live rate can only raise the forecast).
    pub fn expected_arrivals(&self, now: Millis, lead: Millis) -> f64 {
        if lead <= 0 {
            return 0.0;
        }
        let to = now + lead;
        let l = &self.learned;
        let learned = match &l.weekly_profile {
            Some(p) => l.rate.max(0.0) * p.integral(now, to),
            None => l.rate.max(0.0) * lead as f64,
        };
        let ahead = self.ahead_of_schedule(now);
        let unexplained = if l.observed_window > 0 {
            let from = now - l.observed_window;
            let scheduled: f64 = self.events.iter().map(|e| e.expected_in(from, now)).sum();
            let observed = l.observed_rate * l.observed_window as f64;
            // Arrivals are random: an excess within the planned count's Poisson noise is
            // not a busier class, and extrapolated over the lead it would buy nodes.
            let noise = PLANNED_NOISE_SIGMAS * scheduled.sqrt();
            (observed - scheduled - ahead - noise).max(0.0) / l.observed_window as f64
        } else {
            l.observed_rate.max(0.0)
        };
        let background = learned.max(unexplained * lead as f64);
        let all: f64 = self.events.iter().map(|e| e.expected_in(now, to)).sum();
        let in_progress: f64 = self
            .events
            .iter()
            .map(|e| e.remaining_of_current(now, to))
            .sum();
        let events = (all - in_progress).max(0.0) + (in_progress - ahead).max(0.0);
        let mu = background + events;
        // Float noise of the subtractions must not become a placeholder (z·√μ grows fast).
        if mu < 1e-9 { 0.0 } else { mu }
    }

    /// Arrivals since `learned.arrived_since` beyond what the events in progress planned by
    /// now.
    fn ahead_of_schedule(&self, now: Millis) -> f64 {
        let Some((since, arrived)) = self.learned.arrived_since else {
            return 0.0;
        };
        if since >= now {
            return 0.0;
        }
        let planned: f64 = self
            .events
            .iter()
            .filter(|e| e.current_start(now).is_some())
            .map(|e| e.expected_in(since, now))
            .sum();
        (arrived - planned).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    #[test]
    fn the_2i2c_event_gives_200_expected_users_over_10_minutes() {
        // 60 users every 3 minutes, i.e. a long event at 20 users/min.
        let f = ArrivalForecast {
            events: vec![ScheduledEvent {
                start: 0,
                window: 60 * MIN,
                users: 60.0 * 20.0,
                weekly: false,
            }],
            ..Default::default()
        };
        let mu = f.expected_arrivals(5 * MIN, 10 * MIN);
        assert!((mu - 200.0).abs() < 1e-9, "{mu}");
    }

    #[test]
    fn events_add_to_background_and_observed_rate_only_raises() {
        let ev = ScheduledEvent {
            start: 10 * MIN,
            window: 10 * MIN,
            users: 100.0,
            weekly: false,
        };
        let mut f = ArrivalForecast {
            events: vec![ev],
            learned: LearnedArrivals {
                rate: 1.0 / MIN as f64,
                ..Default::default()
            },
        };
        // Half the event's window falls inside [5, 15) min: 50 users + 10 background.
        assert!((f.expected_arrivals(5 * MIN, 10 * MIN) - 60.0).abs() < 1e-9);
        f.learned.observed_rate = 0.5 / MIN as f64; // lower than the background: no effect
        assert!((f.expected_arrivals(5 * MIN, 10 * MIN) - 60.0).abs() < 1e-9);
        f.learned.observed_rate = 20.0 / MIN as f64; // higher: raises the background
        assert!((f.expected_arrivals(5 * MIN, 10 * MIN) - 250.0).abs() < 1e-9);
    }

    #[test]
    fn a_class_arriving_as_planned_is_not_extrapolated_past_its_end() {
        // 300 users over [0, 8) min, observed at exactly that rate over the last 5 min.
        let f = ArrivalForecast {
            events: vec![ScheduledEvent {
                start: 0,
                window: 8 * MIN,
                users: 300.0,
                weekly: false,
            }],
            learned: LearnedArrivals {
                observed_rate: 37.5 / MIN as f64,
                observed_window: 5 * MIN,
                ..Default::default()
            },
        };
        // At 6 min, 2 minutes of the class remain: 75 users, nothing after it.
        let mu = f.expected_arrivals(6 * MIN, 10 * MIN);
        assert!((mu - 75.0).abs() < 1e-9, "{mu}");
        // Within two standard deviations of the plan (187.5 ± 13.7 over the window): noise,
        // not a busier class.
        let mut noisy = f.clone();
        noisy.learned.observed_rate = (187.5 + 27.0) / (5 * MIN) as f64;
        assert!((noisy.expected_arrivals(6 * MIN, 10 * MIN) - 75.0).abs() < 1e-9);
        // Twice the planned rate: the excess beyond the noise raises the background.
        let mut busier = f;
        busier.learned.observed_rate = 75.0 / MIN as f64;
        let mu = busier.expected_arrivals(6 * MIN, 10 * MIN);
        let excess = 187.5 - PLANNED_NOISE_SIGMAS * 187.5f64.sqrt();
        assert!((mu - (75.0 + excess * 2.0)).abs() < 1e-9, "{mu}");
    }

    #[test]
    fn a_class_that_logs_in_at_once_is_not_expected_again() {
        // 6 users planned evenly over [0, 20 s); all 6 arrived in the first second.
        let f = ArrivalForecast {
            events: vec![ScheduledEvent {
                start: 0,
                window: 20_000,
                users: 6.0,
                weekly: false,
            }],
            learned: LearnedArrivals {
                observed_rate: 6.0 / (5 * MIN) as f64,
                observed_window: 5 * MIN,
                arrived_since: Some((0, 6.0)),
                ..Default::default()
            },
        };
        assert_eq!(f.expected_arrivals(1_000, 15_000), 0.0);
        // Half of them so far: the other half is still expected (3 of the 4.5 planned for
        // [1, 16) s minus the 2.7 arrived ahead of plan), and a class starting later counts
        // in full.
        let mut half = f.clone();
        half.learned.arrived_since = Some((0, 3.0));
        half.learned.observed_rate = 3.0 / (5 * MIN) as f64;
        let mu = half.expected_arrivals(1_000, 15_000);
        assert!((mu - (4.5 - 2.7)).abs() < 1e-9, "{mu}");
        half.events.push(ScheduledEvent {
            start: 10_000,
            window: 10_000,
            users: 10.0,
            weekly: false,
        });
        let mu = half.expected_arrivals(1_000, 15_000);
        assert!((mu - (4.5 - 2.7 + 6.0)).abs() < 1e-9, "{mu}");
        // Without the count: the plan alone.
        let mut plain = f;
        plain.learned.arrived_since = None;
        plain.learned.observed_rate = 0.0;
        assert!((plain.expected_arrivals(1_000, 15_000) - 4.5).abs() < 1e-9);
    }

    #[test]
    fn weekly_events_repeat_every_week() {
        let ev = ScheduledEvent {
            start: 9 * 60 * MIN,
            window: 10 * MIN,
            users: 300.0,
            weekly: true,
        };
        assert!(
            (ev.expected_in(WEEK_MS + 9 * 60 * MIN, WEEK_MS + 9 * 60 * MIN + 10 * MIN) - 300.0)
                .abs()
                < 1e-9
        );
        assert!((ev.expected_in(-WEEK_MS, -WEEK_MS + 24 * 60 * MIN) - 300.0).abs() < 1e-9);
        assert_eq!(ev.expected_in(10 * 60 * MIN, 11 * 60 * MIN), 0.0);
    }

    #[test]
    fn weekly_profile_shapes_background() {
        let mut hourly = vec![0.0; 168];
        hourly[1] = 2.0;
        let f = ArrivalForecast {
            learned: LearnedArrivals {
                rate: 1.0 / MIN as f64,
                weekly_profile: Some(WeeklyProfile {
                    hourly_factor: hourly,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        // 30 min in hour 0 (factor 0) + 30 min in hour 1 (factor 2) = 60 users.
        let mu = f.expected_arrivals(30 * MIN, 60 * MIN);
        assert!((mu - 60.0).abs() < 1e-9, "{mu}");
    }
}
