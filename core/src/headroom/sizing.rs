//! From expected arrivals to a number of placeholders: H = μ + z·√μ clamped to [min, max];
//! seats wanted = max(0, H − F) where F counts free warm seats; placeholders =
//! ceil(seats / N), N being the users one placeholder stands for.

use crate::model::{ResourceName, Resources};

/// Per-pool sizing knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadroomConfig {
    /// Upper-quantile factor: 1.64 ≈ the 95th percentile of a Poisson count's normal
    /// approximation.
    pub z: f64,
    pub min_seats: f64,
    pub max_seats: f64,
}

impl Default for HeadroomConfig {
    fn default() -> Self {
        HeadroomConfig {
            z: 1.64,
            min_seats: 0.0,
            max_seats: f64::INFINITY,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadroomError {
    /// The autoscaler never adds a node for a pod that would not fit on a fresh one, so the
    /// placeholder would stay Pending for ever: refuse the configuration instead.
    #[error(
        "a placeholder requesting {} does not fit on a fresh node of the pool \
         (allocatable {} minus DaemonSets {}): short of {:?}; lower users per \
         placeholder or use a larger node type",
        show(&.0.request), show(&.0.allocatable), show(&.0.daemonsets), .0.short
    )]
    PlaceholderTooLarge(Box<Misfit>),
    /// Not even one user fits a fresh node.
    #[error(
        "not one user requesting {} fits on a fresh node of the pool (allocatable {} \
         minus DaemonSets {}): short of {:?}; use a larger node type",
        show(&.0.request), show(&.0.allocatable), show(&.0.daemonsets), .0.short
    )]
    UserDoesNotFit(Box<Misfit>),
}

/// `cpu 500m, memory 2048Mi, pods 1, nvidia.com/gpu 1` (zero amounts left out).
fn show(r: &Resources) -> String {
    let mut parts = Vec::new();
    if r.cpu_milli != 0 {
        parts.push(format!("cpu {}m", r.cpu_milli));
    }
    if r.memory != 0 {
        parts.push(format!("memory {}Mi", r.memory / (1 << 20)));
    }
    if r.ephemeral_storage != 0 {
        parts.push(format!(
            "ephemeral-storage {}Mi",
            r.ephemeral_storage / (1 << 20)
        ));
    }
    if r.pods != 0 {
        parts.push(format!("pods {}", r.pods));
    }
    for (k, v) in &r.extended {
        parts.push(format!("{k} {v}"));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

/// What did not fit where.
#[derive(Debug, Clone, PartialEq)]
pub struct Misfit {
    pub request: Resources,
    pub allocatable: Resources,
    pub daemonsets: Resources,
    pub short: Vec<ResourceName>,
}

impl Misfit {
    fn new(request: &Resources, allocatable: &Resources, daemonsets: &Resources) -> Box<Misfit> {
        let fresh = allocatable - daemonsets;
        Box::new(Misfit {
            short: request.shortfalls(&fresh),
            request: request.clone(),
            allocatable: allocatable.clone(),
            daemonsets: daemonsets.clone(),
        })
    }
}

/// H: headroom in user seats for `expected` arrivals (μ) over the lead time.
pub fn headroom_seats(expected: f64, cfg: &HeadroomConfig) -> f64 {
    let mu = expected.max(0.0);
    let h = mu + cfg.z * mu.sqrt();
    h.max(cfg.min_seats).min(cfg.max_seats.max(cfg.min_seats))
}

/// How many copies of `per_user` fit in `free`, pod slots included (a `per_user.pods` of
/// 0 counts as 1 slot). Negative components of `free` give 0.
pub fn seats_in(free: &Resources, per_user: &Resources) -> i64 {
    fn quotient(free: i64, each: i64) -> Option<i64> {
        if each <= 0 {
            None
        } else {
            Some(free.max(0) / each)
        }
    }
    let slots = per_user.pods.max(1);
    let mut seats = free.pods.max(0) / slots;
    for q in [
        quotient(free.cpu_milli, per_user.cpu_milli),
        quotient(free.memory, per_user.memory),
        quotient(free.ephemeral_storage, per_user.ephemeral_storage),
    ]
    .into_iter()
    .flatten()
    {
        seats = seats.min(q);
    }
    for (name, each) in &per_user.extended {
        if let Some(q) = quotient(free.extended(name), *each) {
            seats = seats.min(q);
        }
    }
    seats
}

/// N by default: users that fit on one fresh node of the pool after every DaemonSet (the
/// pre-puller included) and within its pod slots. A placeholder holds one pod slot, so N is
/// also limited by the users' requests without the slot: the seats it frees when evicted are
/// taken by N users, each needing a slot.
pub fn seats_per_placeholder(
    allocatable: &Resources,
    daemonsets: &Resources,
    per_user: &Resources,
) -> Result<i64, HeadroomError> {
    let fresh = allocatable - daemonsets;
    let n = seats_in(&fresh, per_user);
    if n < 1 {
        return Err(HeadroomError::UserDoesNotFit(Misfit::new(
            per_user,
            allocatable,
            daemonsets,
        )));
    }
    Ok(n)
}

/// A placeholder's request: `n` users' requests (every resource, extended ones included) in
/// one pod slot. `n` below 1 counts as 1.
pub fn placeholder_request(per_user: &Resources, n: i64) -> Resources {
    let n = n.max(1);
    Resources {
        cpu_milli: per_user.cpu_milli * n,
        memory: per_user.memory * n,
        ephemeral_storage: per_user.ephemeral_storage * n,
        pods: 1,
        extended: per_user
            .extended
            .iter()
            .map(|(k, v)| (k.clone(), v * n))
            .collect(),
    }
}

/// Checks that a placeholder of `request` fits on a fresh node of the pool.
pub fn validate_placeholder(
    allocatable: &Resources,
    daemonsets: &Resources,
    request: &Resources,
) -> Result<(), HeadroomError> {
    let misfit = Misfit::new(request, allocatable, daemonsets);
    if misfit.short.is_empty() {
        Ok(())
    } else {
        Err(HeadroomError::PlaceholderTooLarge(misfit))
    }
}

/// Placeholders wanted in total (running + pending, pending ones being capacity in flight):
/// ceil(max(0, H − F) / N). `free_warm_seats` is F: seats on warm nodes neither used by users
/// nor held by placeholders, limited by free pod slots (see [`seats_in`]).
pub fn placeholder_target(headroom: f64, free_warm_seats: i64, seats_each: i64) -> usize {
    let wanted = (headroom - free_warm_seats.max(0) as f64).max(0.0);
    let n = seats_each.max(1) as f64;
    // Guard against 200.0000001 / 50 → 5: round away float noise before ceil.
    let count = ((wanted / n) - 1e-9).ceil().max(0.0);
    count as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::forecast::{ArrivalForecast, ScheduledEvent};

    const GIB: i64 = 1 << 30;
    const MIN: i64 = 60_000;

    #[test]
    fn the_2i2c_example_sizes_200_users_plus_a_margin() {
        // 60 users per 3 min, L = 10 min, empty cluster (F = 0).
        let f = ArrivalForecast {
            events: vec![ScheduledEvent {
                start: 0,
                window: 3 * MIN,
                users: 60.0,
                weekly: false,
            }],
            ..Default::default()
        };
        // A steady stream: the same event every 3 minutes.
        let stream = ArrivalForecast {
            events: (0..20)
                .map(|i| ScheduledEvent {
                    start: i * 3 * MIN,
                    ..f.events[0].clone()
                })
                .collect(),
            ..Default::default()
        };
        let mu = stream.expected_arrivals(0, 10 * MIN);
        assert!((mu - 200.0).abs() < 1e-9, "{mu}");
        let h = headroom_seats(mu, &HeadroomConfig::default());
        assert!((h - (200.0 + 1.64 * 200f64.sqrt())).abs() < 1e-9, "{h}");
        // 64 users per node-sized placeholder: ceil(223.19 / 64) = 4.
        assert_eq!(placeholder_target(h, 0, 64), 4);
    }

    #[test]
    fn headroom_is_clamped() {
        let cfg = HeadroomConfig {
            z: 1.64,
            min_seats: 10.0,
            max_seats: 50.0,
        };
        assert_eq!(headroom_seats(0.0, &cfg), 10.0);
        assert_eq!(headroom_seats(1000.0, &cfg), 50.0);
        assert_eq!(headroom_seats(-5.0, &HeadroomConfig::default()), 0.0);
    }

    #[test]
    fn free_seats_reduce_the_target_and_never_go_negative() {
        assert_eq!(placeholder_target(100.0, 40, 30), 2);
        assert_eq!(placeholder_target(100.0, 100, 30), 0);
        assert_eq!(placeholder_target(100.0, 500, 30), 0);
        assert_eq!(placeholder_target(90.0, 0, 30), 3);
        assert_eq!(placeholder_target(90.5, 0, 30), 4);
    }

    #[test]
    fn seats_are_limited_by_pod_slots() {
        let user = Resources::new(100, GIB / 2).with_pods(1);
        let free = Resources::new(64_000, 256 * GIB).with_pods(20);
        assert_eq!(seats_in(&free, &user), 20);
        let free = Resources::new(64_000, 4 * GIB).with_pods(20);
        assert_eq!(seats_in(&free, &user), 8);
    }

    #[test]
    fn n_is_what_fits_a_fresh_node_after_daemonsets() {
        let alloc = Resources::new(16_000, 64 * GIB).with_pods(110);
        let ds = Resources::new(500, 2 * GIB).with_pods(5);
        let user = Resources::new(500, 2 * GIB).with_pods(1);
        // cpu: 15500/500 = 31, memory: 62/2 = 31.
        assert_eq!(seats_per_placeholder(&alloc, &ds, &user), Ok(31));
        let big = Resources::new(32_000, 2 * GIB).with_pods(1);
        assert!(matches!(
            seats_per_placeholder(&alloc, &ds, &big),
            Err(HeadroomError::UserDoesNotFit(_))
        ));
    }

    #[test]
    fn a_placeholder_larger_than_a_fresh_node_is_a_configuration_error() {
        let alloc = Resources::new(16_000, 64 * GIB).with_pods(110);
        let ds = Resources::new(500, 2 * GIB).with_pods(5);
        assert!(
            validate_placeholder(&alloc, &ds, &Resources::new(15_500, 62 * GIB).with_pods(1))
                .is_ok()
        );
        let err = validate_placeholder(&alloc, &ds, &Resources::new(16_000, 62 * GIB).with_pods(1));
        match err {
            Err(HeadroomError::PlaceholderTooLarge(m)) => {
                assert_eq!(m.short, vec![ResourceName::Cpu]);
                let text = HeadroomError::PlaceholderTooLarge(m).to_string();
                assert!(
                    text.contains("requesting cpu 16000m, memory 63488Mi, pods 1")
                        && text.contains("allocatable cpu 16000m, memory 65536Mi, pods 110"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
