//! Before simulating: can the pool hold the event at all? The peak of concurrent users
//! (the first seed's sessions, at the load the plan is checked against) against the pool's
//! maximum nodes × the users a fresh node seats. A pool that cannot is refused with the
//! numbers and the fix, per pool, before any run: no setting could meet the target, and a
//! large event would only spend minutes showing it. An event too large to search in
//! reasonable time is refused too, saying how to plan it in slices.

use crate::models::arrivals::generate;
use crate::models::placeholders::mean_user;
use crate::scenario::{Scenario, human};
use hubpack_core::headroom::seats_in;

/// Users per pool beyond which the search (dozens of runs of the whole event) takes far
/// too long: one run of 5,000 users takes seconds on two cores, and the time grows faster
/// than the users.
pub const MAX_USERS_PER_POOL: usize = 20_000;

/// What the pool holds and what the event needs at its peak.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Capacity {
    pub pool: String,
    pub max_nodes: usize,
    pub seats_per_node: i64,
    /// Users on at once at the peak (first seed, with the plan's margin).
    pub peak_users: usize,
    /// Users arriving in the scenario (first seed, with the margin).
    pub users: usize,
}

impl Capacity {
    pub fn seats(&self) -> usize {
        self.max_nodes * usize::try_from(self.seats_per_node).unwrap_or(0)
    }

    pub fn fits(&self) -> bool {
        self.peak_users <= self.seats()
    }

    /// Whether the search can run in reasonable time.
    pub fn searchable(&self) -> bool {
        self.users <= MAX_USERS_PER_POOL
    }

    /// Why the event is too large to search, and how to plan it anyway.
    pub fn too_large(&self, load: f64) -> String {
        let k = self.users.div_ceil(MAX_USERS_PER_POOL / 2).max(2);
        format!(
            "pool {pool}: {users} users ({load}× the expected users) are more than plan \
             searches in reasonable time (at most {max} per pool: the search runs the whole \
             event dozens of times, and one run of 5,000 users already takes seconds). Plan \
             a 1/{k} slice instead (--users and --max-nodes divided by {k}, the same window) \
             and multiply its placeholder count by {k}: the headroom needed grows with the \
             arrival rate",
            pool = self.pool,
            users = self.users,
            max = MAX_USERS_PER_POOL,
        )
    }

    /// Why the pool cannot hold the event, and what to change. (A margin the pool cannot
    /// hold is not refused: it shrinks, see [`largest_margin`].)
    pub fn refusal(&self, sc: &Scenario, load: f64) -> String {
        let per = self.seats_per_node.max(1) as usize;
        let request = sc
            .profile_index(&sc.profiles[0].name)
            .map_or_else(String::new, |_| {
                let pool = sc.pool_index(&self.pool).unwrap_or(0);
                human(&mean_user(sc, pool))
            });
        format!(
            "pool {pool}: at most {max} nodes × {per} users ({request} each) = {seats} seats, \
             but about {peak} users are on at once at the peak ({load}× the expected users): \
             the event cannot fit, so no setting could meet the target. Give the pool at least \
             {need} nodes (--max-nodes {need} for the event's pool, max:{need} in its --pool \
             flag, or pools[{pool}].max_nodes in the scenario), or larger nodes",
            pool = self.pool,
            max = self.max_nodes,
            seats = self.seats(),
            peak = self.peak_users,
            need = self.peak_users.div_ceil(per),
        )
    }
}

/// The largest load, between 1 and `wanted`, whose peak the pool still holds, from the
/// peaks at the expected users (`expected`) and at `wanted` × them (`at_wanted`): the peak
/// grows about linearly with the load, and the answer is rounded down to 0.01.
pub fn largest_margin(at_wanted: &Capacity, expected: &Capacity, wanted: f64) -> f64 {
    let seats = at_wanted.seats() as f64;
    let (lo, hi) = (expected.peak_users as f64, at_wanted.peak_users as f64);
    if hi <= seats || wanted <= 1.0 {
        return wanted;
    }
    if hi <= lo {
        return 1.0;
    }
    let m = 1.0 + (wanted - 1.0) * (seats - lo) / (hi - lo);
    ((m * 100.0).floor() / 100.0).clamp(1.0, wanted)
}

/// The pool's capacity against the event's peak (`sc` a one-pool scenario, as `plan`
/// searches it).
pub fn check(sc: &Scenario) -> Result<Capacity, crate::models::arrivals::ArrivalError> {
    let pool_i = sc.pool_index(&sc.profiles[0].pool).unwrap_or(0);
    let pool = &sc.pools[pool_i];
    let fresh = &pool.allocatable.to_resources() - &pool.daemonset_overhead.to_resources();
    let seats_per_node = seats_in(&fresh, &mean_user(sc, pool_i));
    let sessions = generate(sc, 0)?;
    // Each session holds its seat from arrival until the culler removes it.
    let cull = crate::clock::secs(sc.hub.cull_timeout_min.min(1e6) * 60.0);
    let mut edges: Vec<(i64, i32)> = Vec::with_capacity(sessions.len() * 2);
    for s in &sessions {
        edges.push((s.arrival, 1));
        edges.push((s.arrival.saturating_add(s.active).saturating_add(cull), -1));
    }
    edges.sort_unstable();
    let (mut on, mut peak) = (0i64, 0i64);
    for (_, d) in edges {
        on += i64::from(d);
        peak = peak.max(on);
    }
    Ok(Capacity {
        pool: pool.name.clone(),
        max_nodes: pool.max_nodes,
        seats_per_node,
        peak_users: usize::try_from(peak).unwrap_or(0),
        users: sessions.len(),
    })
}
