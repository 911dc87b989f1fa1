//! The side-by-side experiment's arithmetic, pure (unit-tested by
//! `tests/side_by_side_metrics.rs`): the finite values a quantile is taken over (the quantile
//! itself is hubpack-sim's [`quantile`]), node-hours from node lifetimes, nodes removed after
//! the peak, warm seats (the simulator's definition), relative errors, and the calibration of
//! the simulator's warm-start parameter from a real run.

use hubpack_sim::stats::quantile;

/// cpu (millicores), memory (bytes), pod slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub cpu_m: i64,
    pub mem: i64,
    pub pods: i64,
}

impl std::ops::Add for Request {
    type Output = Request;

    fn add(self, o: Request) -> Request {
        Request {
            cpu_m: self.cpu_m + o.cpu_m,
            mem: self.mem + o.mem,
            pods: self.pods + o.pods,
        }
    }
}

impl std::ops::Sub for Request {
    type Output = Request;

    fn sub(self, o: Request) -> Request {
        Request {
            cpu_m: self.cpu_m - o.cpu_m,
            mem: self.mem - o.mem,
            pods: self.pods - o.pods,
        }
    }
}

impl Request {
    pub fn fits_in(self, room: Request) -> bool {
        self.cpu_m <= room.cpu_m && self.mem <= room.mem && self.pods <= room.pods
    }

    /// How many `req` fit in `self` (0 when any dimension is short).
    pub fn seats(self, req: Request) -> i64 {
        let dim = |room: i64, r: i64| if r <= 0 { i64::MAX } else { room.max(0) / r };
        dim(self.cpu_m, req.cpu_m)
            .min(dim(self.mem, req.mem))
            .min(dim(self.pods, req.pods))
    }
}

/// One node's room for a user: allocatable minus what every pod but placeholders requests
/// (a placeholder's room is a seat: users preempt it), as the simulator's `warm_seats`.
pub fn room(allocatable: Request, users_and_daemons: Request) -> Request {
    allocatable - users_and_daemons
}

/// The finite values, ascending: what [`quantile`] takes (a run without users, or a user who
/// never started, gives NaN or infinity, and a quantile over runs ignores them).
pub fn finite_sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of the finite values, NaN when there are none.
pub fn median(values: &[f64]) -> f64 {
    quantile(&finite_sorted(values), 0.5)
}

/// A node's life in seconds from the run's start: created, deleted (None: still there).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Life {
    pub created_s: f64,
    pub deleted_s: Option<f64>,
}

/// Node-hours within `[0, end_s]`, as the simulator counts them (creation to deletion,
/// booting included).
pub fn node_hours(lives: &[Life], end_s: f64) -> f64 {
    lives
        .iter()
        .map(|l| {
            let to = l.deleted_s.unwrap_or(end_s).min(end_s);
            (to - l.created_s.max(0.0)).max(0.0)
        })
        .sum::<f64>()
        / 3600.0
}

/// Nodes alive at `t_s`.
pub fn nodes_at(lives: &[Life], t_s: f64) -> usize {
    lives
        .iter()
        .filter(|l| l.created_s <= t_s && l.deleted_s.is_none_or(|d| d > t_s))
        .count()
}

/// (peak node count, first time it was reached, nodes deleted after that time and by
/// `end_s`).
pub fn peak_and_removed_after(lives: &[Life], end_s: f64) -> (usize, f64, usize) {
    // The count changes only at creations and deletions: check it right after each.
    let mut times: Vec<f64> = lives
        .iter()
        .flat_map(|l| [Some(l.created_s), l.deleted_s])
        .flatten()
        .filter(|t| *t <= end_s)
        .collect();
    times.sort_by(f64::total_cmp);
    let (mut peak, mut at) = (nodes_at(lives, 0.0), 0.0);
    for t in times {
        let n = nodes_at(lives, t);
        if n > peak {
            (peak, at) = (n, t);
        }
    }
    let removed = lives
        .iter()
        .filter(|l| l.deleted_s.is_some_and(|d| d > at && d <= end_s))
        .count();
    (peak, at, removed)
}

/// |sim − real| / real; 0 when both are 0, infinite when only real is 0.
pub fn rel_err(sim: f64, real: f64) -> f64 {
    if real == 0.0 {
        return if sim == 0.0 { 0.0 } else { f64::INFINITY };
    }
    (sim - real).abs() / real.abs()
}

/// The simulator's warm-start parameter (`hub.container_start_s`: pod created → Ready on a
/// warm node) as the real cluster shows it: the median, over users bound to a node that was
/// already warm, of creation → Ready, de-compressed. `None` without such users.
pub fn calibrated_container_start_s(
    warm_create_to_ready_s: &[f64],
    compression: f64,
) -> Option<f64> {
    (!warm_create_to_ready_s.is_empty()).then(|| median(warm_create_to_ready_s) * compression)
}

/// The warm start's spread (`hub.container_start_sigma`) as the real cluster shows it: the
/// log-normal σ whose p95 over the median matches the real ones, ln(p95 / p50) / 1.645
/// (0 when the tail is no longer than the median, or with fewer than 20 users, too few for
/// a p95). Compression scales both quantiles alike, so it leaves σ as it is.
pub fn calibrated_container_start_sigma(warm_create_to_ready_s: &[f64]) -> Option<f64> {
    const Z95: f64 = 1.644_853_6;
    let v = finite_sorted(warm_create_to_ready_s);
    if v.len() < 20 {
        return None;
    }
    let (p50, p95) = (median(&v), hubpack_sim::stats::quantile(&v, 0.95));
    Some(if p50 > 0.0 && p95 > p50 {
        (p95 / p50).ln() / Z95
    } else {
        0.0
    })
}

/// Empirical CDF points (value, share ≤ value) of finite values, sorted.
pub fn cdf(values: &[f64]) -> Vec<(f64, f64)> {
    let v = finite_sorted(values);
    let n = v.len() as f64;
    v.into_iter()
        .enumerate()
        .map(|(i, x)| (x, (i + 1) as f64 / n))
        .collect()
}
