//! The pure forecast of one pool at one time: expected arrivals over the lead time per
//! source, the headroom H, and the placeholder target per placement (zone). The live
//! reconcile and the `plan` subcommand both compute it with hubpack-core's
//! [`forecast_targets`]; the reconcile through its [`PoolReconciler`](hubpack_core::headroom::PoolReconciler).

use crate::config::{PoolConfig, PoolSizes};
use crate::sources::{Source, SourcedEvent};
use hubpack_core::headroom::{HeadroomConfig, LearnedArrivals, TargetForecast, forecast_targets};
use hubpack_core::model::Millis;
use std::collections::BTreeMap;

/// One pool's forecast at `now` over `lead`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolForecast {
    pub pool: String,
    pub lead: Millis,
    /// Expected arrivals μ per source label over `[now, now + lead)`.
    pub per_source: BTreeMap<String, f64>,
    /// μ, all sources.
    pub expected: f64,
    /// H = μ + z·√μ clamped.
    pub headroom: f64,
    /// Placeholders wanted per placement (zone, or `None`), before hysteresis.
    pub targets: Vec<(Option<String>, usize)>,
}

impl PoolForecast {
    pub fn total_target(&self) -> usize {
        self.targets.iter().map(|(_, n)| n).sum()
    }
}

pub fn headroom_config(pool: &PoolConfig) -> HeadroomConfig {
    HeadroomConfig {
        z: pool.headroom.z,
        min_seats: pool.headroom.min_users,
        max_seats: pool.headroom.max_users,
    }
}

/// The forecast for `pool`: its events (any pool's may be passed; others are ignored)
/// added to what was learned, H from μ, and per zone ceil(max(0, H/zones − F_zone) / N).
/// `free_warm_seats` gives F per zone (missing = 0).
pub fn forecast_pool(
    now: Millis,
    lead: Millis,
    pool: &PoolConfig,
    sizes: &PoolSizes,
    events: &[SourcedEvent],
    learned: LearnedArrivals,
    free_warm_seats: &BTreeMap<Option<String>, i64>,
) -> PoolForecast {
    let forecast = learned.forecast(pool_events(pool, events));
    let targets = forecast_targets(
        &forecast,
        now,
        lead,
        &headroom_config(pool),
        &pool.zone_values(),
        free_warm_seats,
        sizes.seats_each,
    );
    with_sources(now, lead, pool, events, targets)
}

/// The scheduled events of `pool` among `events`.
pub fn pool_events(
    pool: &PoolConfig,
    events: &[SourcedEvent],
) -> Vec<hubpack_core::headroom::ScheduledEvent> {
    events
        .iter()
        .filter(|e| e.pool == pool.name)
        .map(|e| e.event.clone())
        .collect()
}

/// The forecast of `pool` from its targets, with μ split per source: each source's
/// scheduled events, the rest learned (`background`).
pub fn with_sources(
    now: Millis,
    lead: Millis,
    pool: &PoolConfig,
    events: &[SourcedEvent],
    targets: TargetForecast,
) -> PoolForecast {
    let mut per_source: BTreeMap<String, f64> = BTreeMap::new();
    for e in events.iter().filter(|e| e.pool == pool.name) {
        *per_source.entry(e.source.label()).or_default() += e.event.expected_in(now, now + lead);
    }
    let scheduled: f64 = per_source.values().sum();
    per_source.insert(
        Source::Background.label(),
        (targets.expected - scheduled).max(0.0),
    );
    PoolForecast {
        pool: pool.name.clone(),
        lead,
        per_source,
        expected: targets.expected,
        headroom: targets.headroom,
        targets: targets.targets,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::config::Config;
    use hubpack_core::headroom::ScheduledEvent;

    const MIN: Millis = 60_000;

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!(
                "pools:\n\
                 - name: default\n\
                 \x20 allNodes: true\n\
                 \x20 perUser: {{cpu: 100m, memory: 500Mi}}\n\
                 \x20 usersPerPlaceholder: 64\n\
                 \x20 freshNode: {{allocatable: {{cpu: \"16\", memory: 64Gi, pods: \"110\"}}}}\n{extra}"
            ),
            "t",
        )
        .unwrap()
    }

    fn stream(source: Source) -> Vec<SourcedEvent> {
        // 60 users every 3 minutes.
        (0..20)
            .map(|i| SourcedEvent {
                source: source.clone(),
                pool: "default".into(),
                name: format!("burst-{i}"),
                event: ScheduledEvent {
                    start: i * 3 * MIN,
                    window: 3 * MIN,
                    users: 60.0,
                    weekly: false,
                },
            })
            .collect()
    }

    #[test]
    fn the_2i2c_worked_example() {
        // 60 users per 3 minutes with a 10 minute lead: μ = 200, H = 200 + 1.64·√200.
        let c = config("");
        let sizes = c.pool_sizes().unwrap();
        let f = forecast_pool(
            0,
            10 * MIN,
            &c.pools[0],
            &sizes[0],
            &stream(Source::Config),
            LearnedArrivals::default(),
            &BTreeMap::new(),
        );
        assert!((f.expected - 200.0).abs() < 1e-9, "{}", f.expected);
        assert!((f.per_source["config"] - 200.0).abs() < 1e-9);
        assert_eq!(f.per_source["background"], 0.0);
        assert!((f.headroom - 223.19).abs() < 0.01, "{}", f.headroom);
        // N = 64: ceil(223.19 / 64) = 4; 100 free warm seats leave ceil(123.19 / 64) = 2.
        assert_eq!(f.total_target(), 4);
        let free = [(None, 100)].into();
        let f = forecast_pool(
            0,
            10 * MIN,
            &c.pools[0],
            &sizes[0],
            &stream(Source::Config),
            LearnedArrivals::default(),
            &free,
        );
        assert_eq!(f.total_target(), 2);
    }

    #[test]
    fn sources_add_up_and_other_pools_are_ignored() {
        let c = config("");
        let sizes = c.pool_sizes().unwrap();
        let mut events = stream(Source::Config);
        events.extend(stream(Source::Calendar("course".into())));
        let mut other = stream(Source::Config);
        for e in &mut other {
            e.pool = "gpu".into();
        }
        events.extend(other);
        let bg = LearnedArrivals {
            rate: 1.0 / MIN as f64,
            ..Default::default()
        };
        let f = forecast_pool(
            0,
            10 * MIN,
            &c.pools[0],
            &sizes[0],
            &events,
            bg,
            &BTreeMap::new(),
        );
        assert!((f.per_source["config"] - 200.0).abs() < 1e-9);
        assert!((f.per_source["calendar/course"] - 200.0).abs() < 1e-9);
        assert!((f.per_source["background"] - 10.0).abs() < 1e-9);
        assert!((f.expected - 410.0).abs() < 1e-9);
    }

    #[test]
    fn zones_share_the_headroom() {
        let c = config("  zones: {values: [a, b]}\n");
        let sizes = c.pool_sizes().unwrap();
        let free = [(Some("a".to_string()), 1000)].into();
        let f = forecast_pool(
            0,
            10 * MIN,
            &c.pools[0],
            &sizes[0],
            &stream(Source::Config),
            LearnedArrivals::default(),
            &free,
        );
        // H/2 = 111.6 per zone: zone a is covered by its free seats, zone b needs 2.
        assert_eq!(
            f.targets,
            vec![(Some("a".to_string()), 0), (Some("b".to_string()), 2)]
        );
    }
}
