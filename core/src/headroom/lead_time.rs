//! The lead time L learned from observed scale-ups: for each placeholder that had to wait
//! for a new node, the time from its Unschedulable condition (or the autoscaler's
//! TriggeredScaleUp) until that node was warm. L is an upper quantile (default p90) of the
//! most recent samples plus the controller's own reaction time, clamped to configured
//! bounds. Not a mean: boots and pulls have long tails (a lognormal with σ 0.35 has its p95
//! at 1.8× its median), and a lead time at the median leaves the slow half of every burst
//! waiting. Until enough samples exist the configured value is used.
//!
//! The live controller feeds it what it observes; the simulator feeds it its simulated boots
//! and pulls, so both learn the same way.

use crate::model::Millis;
use std::collections::VecDeque;

/// How the estimate is formed.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadTimeConfig {
    /// Used until `min_samples` samples exist (the operator's configured lead time).
    pub initial: Millis,
    /// Upper quantile of the samples, in (0, 1]; 0.9 = p90.
    pub quantile: f64,
    /// How many of the most recent samples are kept.
    pub window: usize,
    /// Samples needed before the learned value replaces `initial`.
    pub min_samples: usize,
    /// Added to the quantile: the controller's own reaction time (reconcile interval and the
    /// scheduler's grace before a placeholder is marked Unschedulable).
    pub reaction: Millis,
    /// Bounds of the learned value (the initial value is clamped too).
    pub min: Millis,
    pub max: Millis,
}

impl Default for LeadTimeConfig {
    fn default() -> Self {
        LeadTimeConfig {
            initial: 10 * 60_000,
            quantile: 0.9,
            window: 50,
            min_samples: 5,
            reaction: 0,
            min: 60_000,
            max: 60 * 60_000,
        }
    }
}

/// Learns L from observed (scale-up trigger → node warm) durations.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadTimeEstimator {
    config: LeadTimeConfig,
    /// Most recent last; at most `config.window` long.
    samples: VecDeque<Millis>,
}

impl LeadTimeEstimator {
    pub fn new(config: LeadTimeConfig) -> LeadTimeEstimator {
        LeadTimeEstimator {
            samples: VecDeque::with_capacity(config.window.min(1024)),
            config,
        }
    }

    pub fn config(&self) -> &LeadTimeConfig {
        &self.config
    }

    /// Records one placeholder's wait from its scale-up trigger until its node was warm.
    /// Negative durations (clock skew between the trigger and the node's timestamps) are
    /// dropped: they say nothing about how long a node takes.
    pub fn observe(&mut self, duration: Millis) {
        if duration < 0 || self.config.window == 0 {
            return;
        }
        while self.samples.len() >= self.config.window {
            self.samples.pop_front();
        }
        self.samples.push_back(duration);
    }

    /// The samples in the window, oldest first (what a restarted controller observes
    /// again to continue from).
    pub fn samples(&self) -> Vec<Millis> {
        self.samples.iter().copied().collect()
    }

    /// Samples currently in the window.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Whether the estimate is learned (enough samples) rather than the configured value.
    pub fn is_learned(&self) -> bool {
        self.samples.len() >= self.config.min_samples.max(1)
    }

    /// The quantile of the current samples (nearest rank: the smallest sample such that at
    /// least `quantile` of the samples are ≤ it), without reaction time or bounds.
    pub fn sample_quantile(&self) -> Option<Millis> {
        quantile(self.samples.iter().copied(), self.config.quantile)
    }

    /// L in milliseconds: the configured value until enough samples exist, then the sample
    /// quantile plus the reaction time; always within `[min, max]`.
    pub fn lead_time(&self) -> Millis {
        let cfg = &self.config;
        let (lo, hi) = (cfg.min.min(cfg.max), cfg.max.max(cfg.min));
        let raw = match self.sample_quantile() {
            Some(q) if self.is_learned() => q.saturating_add(cfg.reaction),
            _ => cfg.initial,
        };
        raw.clamp(lo, hi)
    }
}

/// Nearest-rank quantile of `values`: the smallest value v such that at least `q` of the
/// values are ≤ v. `q` is clamped to (0, 1]. None for no values.
pub fn quantile(values: impl IntoIterator<Item = Millis>, q: f64) -> Option<Millis> {
    let mut sorted: Vec<Millis> = values.into_iter().collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable();
    let n = sorted.len();
    let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
    // rank in 1..=n; the epsilon keeps 0.9 × 10 = 9.000000000000002 at rank 9.
    let rank = ((q * n as f64) - 1e-9).ceil().max(1.0) as usize;
    Some(sorted[rank.min(n) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: Millis = 60_000;

    fn cfg() -> LeadTimeConfig {
        LeadTimeConfig {
            initial: 10 * MIN,
            quantile: 0.9,
            window: 100,
            min_samples: 5,
            reaction: 0,
            min: MIN,
            max: 30 * MIN,
        }
    }

    #[test]
    fn starts_from_the_configured_value_until_enough_samples() {
        let mut e = LeadTimeEstimator::new(cfg());
        assert_eq!(e.lead_time(), 10 * MIN);
        for _ in 0..4 {
            e.observe(3 * MIN);
            assert_eq!(e.lead_time(), 10 * MIN, "{} samples", e.sample_count());
        }
        e.observe(3 * MIN);
        assert!(e.is_learned());
        assert_eq!(e.lead_time(), 3 * MIN);
    }

    #[test]
    fn p90_of_one_to_hundred_is_ninety_plus_reaction() {
        let mut e = LeadTimeEstimator::new(LeadTimeConfig {
            reaction: 15_000,
            ..cfg()
        });
        for s in 1..=100 {
            e.observe(s * 10_000);
        }
        assert_eq!(e.sample_quantile(), Some(900_000));
        assert_eq!(e.lead_time(), 915_000);
    }

    #[test]
    fn the_window_forgets_old_samples() {
        let mut e = LeadTimeEstimator::new(LeadTimeConfig {
            window: 10,
            ..cfg()
        });
        for _ in 0..10 {
            e.observe(20 * MIN);
        }
        assert_eq!(e.lead_time(), 20 * MIN);
        for _ in 0..10 {
            e.observe(4 * MIN);
        }
        assert_eq!(e.sample_count(), 10);
        assert_eq!(e.lead_time(), 4 * MIN);
    }

    #[test]
    fn a_mean_would_be_too_short_for_a_long_tail() {
        // Nine fast scale-ups and one slow one: the mean (~3.6 min) leaves the slow case
        // waiting; p90 covers nine in ten, p95 (nearest rank of 10 samples) all ten.
        let mut e = LeadTimeEstimator::new(LeadTimeConfig {
            quantile: 0.95,
            ..cfg()
        });
        for _ in 0..9 {
            e.observe(3 * MIN);
        }
        e.observe(9 * MIN);
        assert_eq!(e.lead_time(), 9 * MIN);
    }

    #[test]
    fn negative_samples_are_dropped() {
        let mut e = LeadTimeEstimator::new(cfg());
        e.observe(-5);
        assert_eq!(e.sample_count(), 0);
    }

    #[test]
    fn quantile_edges() {
        assert_eq!(quantile([], 0.9), None);
        assert_eq!(quantile([7], 0.9), Some(7));
        assert_eq!(quantile([1, 2, 3, 4], 0.0), Some(1));
        assert_eq!(quantile([1, 2, 3, 4], 1.0), Some(4));
        assert_eq!(quantile([4, 3, 2, 1], 0.5), Some(2));
    }

    proptest! {
        /// Once learned and unclamped, the estimate minus the reaction time is exactly the
        /// nearest-rank quantile of the window: at least q of the samples are ≤ it and fewer
        /// than q are < it.
        #[test]
        fn converges_to_the_quantile_of_its_samples(
            samples in prop::collection::vec(0i64..3_600_000, 5..200),
            q in 0.05f64..1.0,
            reaction in 0i64..60_000,
        ) {
            let mut e = LeadTimeEstimator::new(LeadTimeConfig {
                quantile: q, window: 1000, min_samples: 5, reaction,
                min: 0, max: Millis::MAX, initial: 1,
            });
            for &s in &samples { e.observe(s); }
            let est = e.lead_time() - reaction;
            let n = samples.len() as f64;
            let le = samples.iter().filter(|&&s| s <= est).count() as f64;
            let lt = samples.iter().filter(|&&s| s < est).count() as f64;
            prop_assert!(le >= q * n - 1e-6, "le {le} n {n} q {q}");
            prop_assert!(lt < q * n + 1e-6, "lt {lt} n {n} q {q}");
            prop_assert!(samples.contains(&est));
        }

        /// Whatever is observed, the estimate stays within [min, max], and before
        /// `min_samples` it is the (clamped) configured value.
        #[test]
        fn bounded_and_initial_until_enough_samples(
            samples in prop::collection::vec(-1_000i64..10_000_000, 0..60),
            initial in 0i64..10_000_000,
            lo in 0i64..1_000_000,
            span in 0i64..5_000_000,
            min_samples in 1usize..20,
            window in 1usize..40,
        ) {
            let hi = lo + span;
            let mut e = LeadTimeEstimator::new(LeadTimeConfig {
                initial, quantile: 0.9, window, min_samples, reaction: 1_000, min: lo, max: hi,
            });
            let mut kept = 0usize;
            for &s in &samples {
                e.observe(s);
                if s >= 0 { kept = (kept + 1).min(window); }
                let l = e.lead_time();
                prop_assert!(l >= lo && l <= hi, "{l} not in [{lo}, {hi}]");
                if kept < min_samples {
                    prop_assert_eq!(l, initial.clamp(lo, hi));
                }
            }
            prop_assert_eq!(e.sample_count(), kept);
        }

        /// More samples from a fixed distribution move the estimate toward that
        /// distribution's quantile: uniform on [0, 1000 s), p90 → 900 s (within 5%).
        #[test]
        fn converges_to_the_distribution_quantile(seed in 0u64..1000) {
            let mut e = LeadTimeEstimator::new(LeadTimeConfig {
                window: 2000, min: 0, max: Millis::MAX, ..cfg()
            });
            // A small LCG: no rand dependency in core.
            let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            for _ in 0..2000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                e.observe(((x >> 33) % 1_000_000) as i64);
            }
            let l = e.lead_time() as f64;
            prop_assert!((l - 900_000.0).abs() < 45_000.0, "{l}");
        }
    }
}
