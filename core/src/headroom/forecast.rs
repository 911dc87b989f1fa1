//! The arrival forecast λ(t) in users per millisecond and its integral μ over a lead time.
//! Scheduled events (a class, a workshop) are ADDED to the learned background; the rate
//! observed right now can only raise the result, never lower it.

use crate::model::Millis;

/// One week in milliseconds; weekly events and profiles repeat with this period.
pub const WEEK_MS: Millis = 7 * 24 * 3_600_000;
const HOUR_MS: Millis = 3_600_000;

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

/// Learns a [`WeeklyProfile`] from the same arrival counts as the [`Ewma`]: decayed
/// arrivals per hour of the week (hour 0 = epoch hour 0 modulo a week, as the profile
/// reads it), normalised so the factors average 1.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyLearner {
    hourly: Vec<f64>,
    /// Old weeks count half after this long.
    pub half_life: Millis,
    last: Option<Millis>,
}

impl WeeklyLearner {
    pub fn new(half_life: Millis) -> WeeklyLearner {
        WeeklyLearner {
            hourly: vec![0.0; 168],
            half_life: half_life.max(1),
            last: None,
        }
    }

    /// Adds `arrivals` seen at `at` (times should not go backwards; a step back is treated
    /// as no time passing).
    pub fn observe(&mut self, at: Millis, arrivals: f64) {
        if !(arrivals.is_finite() && arrivals > 0.0) {
            return;
        }
        if let Some(last) = self.last {
            let keep = 0.5f64.powf((at - last).max(0) as f64 / self.half_life as f64);
            self.hourly.iter_mut().for_each(|h| *h *= keep);
        }
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
        let i = usize::try_from(at.rem_euclid(WEEK_MS) / HOUR_MS).unwrap_or(0) % 168;
        self.hourly[i] += arrivals;
    }

    /// The learned shape, or None before any arrival.
    pub fn profile(&self) -> Option<WeeklyProfile> {
        let sum: f64 = self.hourly.iter().sum();
        if sum <= 0.0 {
            return None;
        }
        let n = self.hourly.len() as f64;
        Some(WeeklyProfile {
            hourly_factor: self.hourly.iter().map(|h| h * n / sum).collect(),
        })
    }
}

/// Exponentially weighted moving average of an arrival rate (users per ms), learned from
/// counts of arrivals observed over intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Ewma {
    /// Weight of history per elapsed half-life: after `half_life` the old rate counts half.
    pub half_life: Millis,
    rate: f64,
    initialized: bool,
}

impl Ewma {
    pub fn new(half_life: Millis) -> Ewma {
        Ewma {
            half_life: half_life.max(1),
            rate: 0.0,
            initialized: false,
        }
    }

    /// Folds in `arrivals` seen over an interval of `elapsed` ms. The first observation sets
    /// the rate outright.
    pub fn observe(&mut self, arrivals: f64, elapsed: Millis) {
        if elapsed <= 0 {
            return;
        }
        let sample = arrivals / elapsed as f64;
        if !self.initialized {
            self.rate = sample;
            self.initialized = true;
            return;
        }
        let keep = 0.5f64.powf(elapsed as f64 / self.half_life as f64);
        self.rate = keep * self.rate + (1.0 - keep) * sample;
    }

    /// Users per millisecond.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// Everything that predicts arrivals: scheduled events + learned background (optionally
/// shaped by a weekly profile), the background raised by the live observed rate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArrivalForecast {
    pub events: Vec<ScheduledEvent>,
    /// Background rate in users per ms (e.g. an [`Ewma`]'s rate).
    pub background_rate: f64,
    pub weekly_profile: Option<WeeklyProfile>,
    /// Rate observed over the last `observed_window` ms, users per ms.
    pub observed_rate: f64,
    /// The span `observed_rate` was measured over, ending now. The scheduled events'
    /// expected rate over it is subtracted, so a class that arrives as planned is not
    /// extrapolated past its end; 0 subtracts nothing.
    pub observed_window: Millis,
    /// Users seen arriving since a moment (the earliest start of the events in progress):
    /// arrivals ahead of those events' even schedule (a class that logs in at once) are
    /// not expected again from the rest of their window, nor taken as a higher background.
    /// None: no such correction.
    pub arrived_since: Option<(Millis, f64)>,
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
        let learned = match &self.weekly_profile {
            Some(p) => self.background_rate.max(0.0) * p.integral(now, to),
            None => self.background_rate.max(0.0) * lead as f64,
        };
        let ahead = self.ahead_of_schedule(now);
        let unexplained = if self.observed_window > 0 {
            let from = now - self.observed_window;
            let scheduled: f64 = self.events.iter().map(|e| e.expected_in(from, now)).sum();
            let observed = self.observed_rate * self.observed_window as f64;
            (observed - scheduled - ahead).max(0.0) / self.observed_window as f64
        } else {
            self.observed_rate.max(0.0)
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

    /// Arrivals since `arrived_since` beyond what the events in progress planned by now.
    fn ahead_of_schedule(&self, now: Millis) -> f64 {
        let Some((since, arrived)) = self.arrived_since else {
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
            background_rate: 1.0 / MIN as f64,
            ..Default::default()
        };
        // Half the event's window falls inside [5, 15) min: 50 users + 10 background.
        assert!((f.expected_arrivals(5 * MIN, 10 * MIN) - 60.0).abs() < 1e-9);
        f.observed_rate = 0.5 / MIN as f64; // lower than the background: no effect
        assert!((f.expected_arrivals(5 * MIN, 10 * MIN) - 60.0).abs() < 1e-9);
        f.observed_rate = 20.0 / MIN as f64; // higher: raises the background
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
            observed_rate: 37.5 / MIN as f64,
            observed_window: 5 * MIN,
            ..Default::default()
        };
        // At 6 min, 2 minutes of the class remain: 75 users, nothing after it.
        let mu = f.expected_arrivals(6 * MIN, 10 * MIN);
        assert!((mu - 75.0).abs() < 1e-9, "{mu}");
        // Twice the planned rate: the unexplained half raises the background.
        let busier = ArrivalForecast {
            observed_rate: 75.0 / MIN as f64,
            ..f
        };
        let mu = busier.expected_arrivals(6 * MIN, 10 * MIN);
        assert!((mu - (75.0 + 375.0)).abs() < 1e-9, "{mu}");
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
            observed_rate: 6.0 / (5 * MIN) as f64,
            observed_window: 5 * MIN,
            arrived_since: Some((0, 6.0)),
            ..Default::default()
        };
        assert_eq!(f.expected_arrivals(1_000, 15_000), 0.0);
        // Half of them so far: the other half is still expected (3 of the 4.5 planned for
        // [1, 16) s minus the 2.7 arrived ahead of plan), and a class starting later counts
        // in full.
        let mut half = f.clone();
        half.arrived_since = Some((0, 3.0));
        half.observed_rate = 3.0 / (5 * MIN) as f64;
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
        // Without the count, the old behaviour.
        let plain = ArrivalForecast {
            arrived_since: None,
            observed_rate: 0.0,
            ..f
        };
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
            background_rate: 1.0 / MIN as f64,
            weekly_profile: Some(WeeklyProfile {
                hourly_factor: hourly,
            }),
            ..Default::default()
        };
        // 30 min in hour 0 (factor 0) + 30 min in hour 1 (factor 2) = 60 users.
        let mu = f.expected_arrivals(30 * MIN, 60 * MIN);
        assert!((mu - 60.0).abs() < 1e-9, "{mu}");
    }

    #[test]
    fn weekly_learner_shapes_by_hour_and_averages_one() {
        let mut w = WeeklyLearner::new(4 * WEEK_MS);
        assert!(w.profile().is_none());
        // Every week, 30 arrivals in hour 9 and 10 in hour 14.
        for week in 0..3 {
            w.observe(week * WEEK_MS + 9 * 60 * MIN + 5 * MIN, 30.0);
            w.observe(week * WEEK_MS + 14 * 60 * MIN, 10.0);
        }
        let p = w.profile().expect("learned");
        let mean: f64 = p.hourly_factor.iter().sum::<f64>() / 168.0;
        assert!((mean - 1.0).abs() < 1e-9);
        assert!(p.hourly_factor[9] > 2.5 * p.hourly_factor[14]);
        assert_eq!(p.hourly_factor[3], 0.0);
    }

    #[test]
    fn ewma_moves_toward_new_observations() {
        let mut e = Ewma::new(10 * MIN);
        e.observe(10.0, MIN);
        assert!((e.rate() - 10.0 / MIN as f64).abs() < 1e-15);
        e.observe(0.0, 10 * MIN);
        assert!((e.rate() - 5.0 / MIN as f64).abs() < 1e-12);
    }
}
