//! What the placeholder controller learns from the users it sees arrive: the background rate
//! (outside scheduled events), its weekly shape, and the live rate over a recent window.
//! `hubpack-placeholder-ctl` and `hubpack-sim` both feed an [`ArrivalLearner`] once per
//! reconcile, so the simulator forecasts from the same evidence, the same way, as the live
//! controller.

use super::forecast::{HOUR_MS, LearnedArrivals, ScheduledEvent, WEEK_MS, WeeklyProfile};
use super::state::{LearnerState, sane};
use crate::model::Millis;

/// Users created this long before an event's start (early logins) or after its window (the
/// hub's spawn queue) count as its arrivals.
pub const EARLY_ARRIVALS: Millis = 60_000;

/// Exponentially decayed arrival rate (users per ms): decayed arrivals over decayed observed
/// time, so a short first interval weighs by its length instead of setting the rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Ewma {
    /// After `half_life` old observations count half.
    pub half_life: Millis,
    /// The rate of less observed time than this is taken over this span (a single arrival
    /// in the first second after start is not 3 600 users an hour).
    pub min_span: Millis,
    arrivals: f64,
    observed: f64,
}

impl Ewma {
    pub fn new(half_life: Millis, min_span: Millis) -> Ewma {
        Ewma {
            half_life: half_life.max(1),
            min_span: min_span.max(0),
            arrivals: 0.0,
            observed: 0.0,
        }
    }

    /// Folds in `arrivals` seen over an interval of `elapsed` ms.
    pub fn observe(&mut self, arrivals: f64, elapsed: Millis) {
        if elapsed <= 0 || !arrivals.is_finite() {
            return;
        }
        let keep = 0.5f64.powf(elapsed as f64 / self.half_life as f64);
        self.arrivals = keep * self.arrivals + arrivals.max(0.0);
        self.observed = keep * self.observed + elapsed as f64;
    }

    /// Starts from `rate` (users per ms) as if it had been observed for one half-life, so
    /// real arrivals replace it gradually (half its weight after a half-life). A rate that
    /// is not finite and positive leaves it unchanged.
    pub fn assume_rate(&mut self, rate: f64) {
        if rate.is_finite() && rate > 0.0 {
            self.observed = self.half_life as f64;
            self.arrivals = rate * self.observed;
        }
    }

    /// Users per millisecond (0 before any observation).
    pub fn rate(&self) -> f64 {
        if self.observed <= 0.0 {
            return 0.0;
        }
        self.arrivals / self.observed.max(self.min_span as f64)
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

    /// Decayed arrivals per hour of the week, and the time of the last one.
    pub fn hourly(&self) -> (&[f64], Option<Millis>) {
        (&self.hourly, self.last)
    }

    /// Takes back what [`hourly`](Self::hourly) gave; ignored unless it is 168 finite
    /// counts ≥ 0.
    pub fn restore(&mut self, hourly: &[f64], last: Option<Millis>) {
        if hourly.len() == self.hourly.len() && hourly.iter().all(|h| sane(*h) == *h) {
            self.hourly = hourly.to_vec();
            self.last = last;
        }
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

/// How an [`ArrivalLearner`] learns.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerConfig {
    /// The background's half-life.
    pub half_life: Millis,
    /// The live rate is counted over this window, ending now.
    pub observed_window: Millis,
    /// No rate is taken over less observed time than this (the reconcile interval: the
    /// controller also reconciles on watch events, a fraction of a second apart).
    pub min_span: Millis,
    /// Learn the weekly shape too.
    pub weekly_profile: bool,
}

/// The controller's memory of arrivals, fed once per reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalLearner {
    config: LearnerConfig,
    background: Ewma,
    weekly: Option<WeeklyLearner>,
    /// Creation times of the users seen arriving within the observed window.
    recent: Vec<Millis>,
    /// Since when arrivals have been counted: the first step, or a window before it when
    /// users were created within that window (see [`Self::start`]).
    started: Option<Millis>,
    last: Option<Millis>,
}

impl ArrivalLearner {
    pub fn new(config: LearnerConfig) -> ArrivalLearner {
        ArrivalLearner {
            background: Ewma::new(config.half_life, config.min_span),
            weekly: config
                .weekly_profile
                .then(|| WeeklyLearner::new(4 * WEEK_MS)),
            recent: Vec::new(),
            started: None,
            last: None,
            config,
        }
    }

    /// The background rate until arrivals have been observed: `rate` users per ms (see
    /// [`Ewma::assume_rate`]).
    pub fn assume_background(&mut self, rate: f64) {
        self.background.assume_rate(rate);
    }

    /// The last step's time (None before the first).
    pub fn last_step(&self) -> Option<Millis> {
        self.last
    }

    /// What has been learned, as plain data.
    pub fn state(&self) -> LearnerState {
        LearnerState {
            background_arrivals: self.background.arrivals,
            background_observed_ms: self.background.observed,
            weekly_hourly: self.weekly.as_ref().map(|w| w.hourly().0.to_vec()),
            weekly_last: self.weekly.as_ref().and_then(|w| w.hourly().1),
            recent: self.recent.clone(),
            started: self.started,
            last: self.last,
        }
    }

    /// Continues from `state` (a previous process's [`state`](Self::state)): the next step
    /// counts the time since its last step. A background never observed keeps the assumed
    /// rate; unusable values are dropped.
    pub fn restore(&mut self, state: &LearnerState) {
        let observed = sane(state.background_observed_ms);
        if observed > 0.0 {
            self.background.arrivals = sane(state.background_arrivals);
            self.background.observed = observed;
        }
        if let (Some(w), Some(hourly)) = (self.weekly.as_mut(), &state.weekly_hourly) {
            w.restore(hourly, state.weekly_last);
        }
        let Some(last) = state.last else {
            return;
        };
        let window = self.config.observed_window;
        self.recent = state
            .recent
            .iter()
            .map(|t| (*t).min(last))
            .filter(|t| last - t <= window)
            .collect();
        self.started = state.started.map(|s| s.min(last));
        self.last = Some(last);
    }

    /// One reconcile at `now`: `arrivals` are the creation times of the users seen for the
    /// first time since the previous step (the live rate counts them when they were created,
    /// not when a reconcile got to them); at the first step, every user that exists (those
    /// created within the observed window count as its arrivals). The background is learned only outside `events`, so a class is not
    /// counted twice (in its calendar entry and in the background).
    pub fn observe(&mut self, now: Millis, arrivals: &[Millis], events: &[ScheduledEvent]) {
        let Some(last) = self.last else {
            self.start(now, arrivals, events);
            return;
        };
        let now = now.max(last);
        let n = arrivals.len() as f64;
        let elapsed = now - last;
        if elapsed > 0 && !during(events, last, now) {
            self.background.observe(n, elapsed);
        }
        if let Some(w) = self.weekly.as_mut() {
            w.observe(now, n);
        }
        self.recent.extend(arrivals.iter().map(|t| (*t).min(now)));
        let window = self.config.observed_window;
        self.recent.retain(|t| now - t <= window);
        self.last = Some(now);
    }

    /// The first step. Users created within the observed window before it still exist
    /// (sessions outlast the window), so the whole window is known: a restarted controller
    /// (an upgrade, a fresh replica taking over) counts it as one that had been watching
    /// would, instead of starting from nothing. Older users may have come and gone unseen,
    /// so they say nothing; with none recent, counting begins now (a quiet or new hub).
    fn start(&mut self, now: Millis, existing: &[Millis], events: &[ScheduledEvent]) {
        let window = self.config.observed_window;
        self.recent = existing
            .iter()
            .map(|t| (*t).min(now))
            .filter(|t| now - t <= window)
            .collect();
        let started = if self.recent.is_empty() {
            now
        } else {
            now - window
        };
        let n = self.recent.len() as f64;
        if now > started && !during(events, started, now) {
            self.background.observe(n, now - started);
        }
        if let Some(w) = self.weekly.as_mut() {
            w.observe(now, n);
        }
        self.started = Some(started);
        self.last = Some(now);
    }

    /// What has been learned by `now`. The live rate is counted over the window, or over
    /// the time watched so far if shorter (at least `min_span`): right after a start on a
    /// quiet hub it is neither missing nor diluted over time nobody watched.
    pub fn learned(&self, now: Millis) -> LearnedArrivals {
        let (observed_rate, observed_window) = match self.started {
            Some(started) if now > started => {
                let window = self.config.observed_window.max(1);
                let span = (now - started).clamp(self.config.min_span.min(window), window);
                let count = self.recent.iter().filter(|t| now - **t <= window).count() as f64;
                (count / span.max(1) as f64, span)
            }
            _ => (0.0, 0),
        };
        LearnedArrivals {
            rate: self.background.rate(),
            weekly_profile: self.weekly.as_ref().and_then(WeeklyLearner::profile),
            observed_rate,
            observed_window,
            arrived_since: None,
        }
    }
}

/// Whether `(from, to]` touches one of `events`: logins a little before or after a class's
/// window (early birds, the hub's spawn queue) are the class's too.
fn during(events: &[ScheduledEvent], from: Millis, to: Millis) -> bool {
    events
        .iter()
        .any(|e| e.expected_in(from - EARLY_ARRIVALS, to.max(from + 1) + EARLY_ARRIVALS) > 0.0)
}

/// Where a class in progress starts counting its arrivals (its earliest start in progress,
/// a little early for early logins) and how many users arrived since: `created` are the
/// creation times of the users that exist. None when no event is in progress.
pub fn arrived_since(
    events: &[ScheduledEvent],
    now: Millis,
    created: impl IntoIterator<Item = Millis>,
) -> Option<(Millis, f64)> {
    let since = events.iter().filter_map(|e| e.current_start(now)).min()? - EARLY_ARRIVALS;
    let n = created.into_iter().filter(|t| *t >= since).count();
    Some((since, n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    fn class_of_300_over_10_min(start: Millis) -> ScheduledEvent {
        ScheduledEvent {
            start,
            window: 10 * MIN,
            users: 300.0,
            weekly: false,
        }
    }

    fn learner(window_min: i64, min_span_s: i64) -> ArrivalLearner {
        ArrivalLearner::new(LearnerConfig {
            half_life: 30 * MIN,
            observed_window: window_min * MIN,
            min_span: min_span_s * 1000,
            weekly_profile: false,
        })
    }

    #[test]
    fn ewma_weighs_a_short_first_interval_by_its_length() {
        let mut e = Ewma::new(10 * MIN, 0);
        assert_eq!(e.rate(), 0.0);
        e.observe(10.0, MIN);
        assert!((e.rate() - 10.0 / MIN as f64).abs() < 1e-15);
        // 10 quiet minutes (one half-life): 5 decayed arrivals over 10.5 decayed minutes.
        e.observe(0.0, 10 * MIN);
        assert!((e.rate() - 5.0 / (10.5 * MIN as f64)).abs() < 1e-15);
        // One arrival in the first second is taken over the minimum span.
        let mut e = Ewma::new(10 * MIN, 30_000);
        e.observe(1.0, 1_000);
        assert!((e.rate() - 1.0 / 30_000.0).abs() < 1e-15);
    }

    #[test]
    fn an_assumed_rate_holds_until_arrivals_replace_it() {
        let mut e = Ewma::new(10 * MIN, 30_000);
        e.assume_rate(6.0 / MIN as f64);
        assert!((e.rate() * MIN as f64 - 6.0).abs() < 1e-9);
        // A quiet half-life: about halfway down (6 × 0.5 over 1 + 1/(2 ln 2)... below 6).
        for _ in 0..10 {
            e.observe(0.0, MIN);
        }
        let after = e.rate() * MIN as f64;
        assert!(after < 3.5 && after > 1.0, "{after}");
        // Nonsense is ignored.
        let mut e = Ewma::new(10 * MIN, 0);
        e.assume_rate(f64::NAN);
        e.assume_rate(-1.0);
        assert_eq!(e.rate(), 0.0);
    }

    #[test]
    fn a_restored_learner_continues_where_the_first_stopped() {
        let cfg = LearnerConfig {
            half_life: 30 * MIN,
            observed_window: 5 * MIN,
            min_span: 30_000,
            weekly_profile: true,
        };
        let mut first = ArrivalLearner::new(cfg.clone());
        first.observe(0, &[], &[]);
        first.observe(MIN, &[30_000; 4], &[]);
        first.observe(2 * MIN, &[90_000; 2], &[]);
        let mut second = ArrivalLearner::new(cfg.clone());
        second.restore(&first.state());
        assert_eq!(second.state(), first.state());
        first.observe(3 * MIN, &[150_000], &[]);
        second.observe(3 * MIN, &[150_000], &[]);
        assert_eq!(second.learned(3 * MIN), first.learned(3 * MIN));
        // Unusable values are dropped, never trusted.
        let mut bad = first.state();
        bad.background_arrivals = f64::INFINITY;
        bad.weekly_hourly = Some(vec![1.0; 3]);
        let mut third = ArrivalLearner::new(cfg);
        third.restore(&bad);
        assert_eq!(third.learned(3 * MIN).rate, 0.0);
        assert!(third.learned(3 * MIN).weekly_profile.is_none());
    }

    #[test]
    fn ewma_converges_to_a_steady_rate() {
        let mut e = Ewma::new(10 * MIN, 30_000);
        for _ in 0..200 {
            e.observe(1.0, 20_000); // 3 a minute
        }
        assert!((e.rate() * MIN as f64 - 3.0).abs() < 1e-9, "{}", e.rate());
    }

    #[test]
    fn a_start_on_a_quiet_hub_only_marks_when_counting_began() {
        let mut l = learner(5, 30);
        // Users of an hour ago: they may have come with others long gone, so no rate.
        l.observe(60 * MIN, &[0; 50], &[]);
        assert_eq!(l.learned(60 * MIN), LearnedArrivals::default());
        assert_eq!(l.learned(61 * MIN).observed_rate, 0.0);
        assert_eq!(l.learned(61 * MIN).rate, 0.0);
        // The first arrival after the start is taken over the time watched.
        l.observe(62 * MIN, &[61 * MIN + 30_000; 4], &[]);
        let got = l.learned(62 * MIN);
        assert_eq!(got.observed_window, 2 * MIN);
        assert!((got.observed_rate * MIN as f64 - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_restart_starts_from_the_users_created_within_the_window() {
        // Restarted at 10:00 on a hub where 10 users logged in since 6:00 (and 40 earlier).
        let mut existing = vec![2 * MIN; 40];
        existing.extend((0..10).map(|i| 6 * MIN + i * 24_000));
        let mut l = learner(5, 30);
        l.observe(10 * MIN, &existing, &[]);
        let got = l.learned(10 * MIN);
        assert_eq!(got.observed_window, 5 * MIN);
        assert!((got.observed_rate * MIN as f64 - 2.0).abs() < 1e-9);
        assert!((got.rate * MIN as f64 - 2.0).abs() < 1e-9);
        // They stay in the live window until it passes them.
        l.observe(11 * MIN, &[10 * MIN + 30_000; 2], &[]);
        let got = l.learned(11 * MIN);
        assert_eq!(got.observed_window, 5 * MIN);
        assert!((got.observed_rate * (5 * MIN) as f64 - 12.0).abs() < 1e-9);
        // During a class, the live rate is seeded and the background is not.
        let class = class_of_300_over_10_min(5 * MIN);
        let mut l = learner(5, 30);
        l.observe(10 * MIN, &existing, &[class]);
        assert_eq!(l.learned(10 * MIN).rate, 0.0);
        assert!((l.learned(10 * MIN).observed_rate * MIN as f64 - 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_live_rate_is_counted_over_the_time_watched() {
        let mut l = learner(5, 30);
        l.observe(0, &[], &[]);
        // 4 users in the first minute: 4 a minute, not 4 over the 5-minute window.
        l.observe(30_000, &[10_000, 20_000], &[]);
        l.observe(MIN, &[40_000, 50_000], &[]);
        let got = l.learned(MIN);
        assert_eq!(got.observed_window, MIN);
        assert!((got.observed_rate * MIN as f64 - 4.0).abs() < 1e-9);
        // Watch-triggered steps a second apart: never less than the minimum span.
        let mut l = learner(5, 30);
        l.observe(0, &[], &[]);
        l.observe(1_000, &[500], &[]);
        let got = l.learned(1_000);
        assert_eq!(got.observed_window, 30_000);
        assert!((got.observed_rate - 1.0 / 30_000.0).abs() < 1e-15);
        // After the window, arrivals created before it are gone, whenever they were seen:
        // 10 created in the first minute, 5 at 2:50 seen only at 7:00.
        let mut l = learner(5, 30);
        l.observe(0, &[], &[]);
        l.observe(MIN, &[30_000; 10], &[]);
        l.observe(7 * MIN, &[2 * MIN + 50_000; 5], &[]);
        let got = l.learned(7 * MIN);
        assert_eq!(got.observed_window, 5 * MIN);
        assert!((got.observed_rate * (5 * MIN) as f64 - 5.0).abs() < 1e-9);
        assert_eq!(l.learned(8 * MIN).observed_rate, 0.0);
    }

    #[test]
    fn the_background_is_not_learned_during_an_event() {
        let class = class_of_300_over_10_min(10 * MIN);
        let mut l = learner(5, 30);
        l.observe(0, &[], std::slice::from_ref(&class));
        l.observe(5 * MIN, &[MIN; 5], std::slice::from_ref(&class));
        let before = l.learned(5 * MIN).rate;
        assert!((before * MIN as f64 - 1.0).abs() < 1e-9);
        l.observe(15 * MIN, &[12 * MIN; 150], std::slice::from_ref(&class));
        assert_eq!(l.learned(15 * MIN).rate, before);
        // ... but the live rate sees the class.
        assert!(l.learned(15 * MIN).observed_rate > 0.0);
        // Stragglers half a minute after its window are the class's too.
        l.observe(
            20 * MIN + 30_000,
            &[20 * MIN + 10_000; 3],
            std::slice::from_ref(&class),
        );
        assert_eq!(l.learned(20 * MIN + 30_000).rate, before);
    }

    #[test]
    fn arrived_since_counts_from_a_minute_before_the_class() {
        let class = class_of_300_over_10_min(10 * MIN);
        let created = [8 * MIN, 9 * MIN + 30_000, 11 * MIN];
        assert_eq!(
            arrived_since(std::slice::from_ref(&class), 12 * MIN, created),
            Some((9 * MIN, 2.0))
        );
        assert_eq!(arrived_since(&[class], 25 * MIN, created), None);
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
}
