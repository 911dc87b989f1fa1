//! The clairvoyant bound: the fewest node-hours any policy could pay to start every user
//! with no wait beyond a warm start.
//!
//! The oracle knows every session (arrival, length) in advance. Each user's pod exists from
//! arrival + spawn overhead until the culler removes it (a warm start, the session, the cull
//! timeout, rounded up to the culler's run), on a node that is Ready with the image at that
//! instant; booting and pulling cost it nothing. Pods move between nodes for free, so at
//! each instant it runs the fewest nodes that can hold the pods alive then, and none more:
//! for each resource, ⌈total requests / what a node offers after its DaemonSets⌉ (pods
//! counted as a resource), and the number of pods that each take more than half a node of
//! one resource (no two of them share a node); never fewer than the nodes the autoscaler
//! keeps (`min(min_nodes, initial_nodes)`). Any schedule that starts every user without
//! waiting needs at least that many Ready nodes at that instant, so the integral,
//! [`Bound::node_hours`], is a lower bound of its node-hours. [`Bound::node_hours_ca_unneeded`]
//! keeps each of those nodes for the autoscaler's scale-down-unneeded time after it empties
//! (a node needed again within it is kept), as a real cluster-autoscaler would.

pub mod step;

use crate::clock::secs;
use crate::models::arrivals::{self, ArrivalError};
use crate::scenario::Scenario;
use crate::session::Session;
use hubpack_core::model::{Millis, Resources};
pub use step::Step;

/// The bound's row in tables and files.
pub const ORACLE: &str = "oracle";
/// The bound with each node kept for the autoscaler's unneeded time after it empties.
pub const ORACLE_CA_UNNEEDED: &str = "oracle+ca-unneeded";

/// One user's pod as the oracle serves it: on `pool` from `start` until `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupancy {
    pub pool: usize,
    pub request: Resources,
    pub start: Millis,
    pub end: Millis,
}

/// The bound for one seed's arrivals.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub seed: u64,
    /// Users the bound serves: every user whose pod fits a fresh node of its pool.
    pub users: usize,
    pub node_hours: f64,
    pub node_hours_ca_unneeded: f64,
    pub peak_nodes: u64,
    /// Ready nodes over time, every pool.
    pub nodes: Step,
    /// Users with a pod over time.
    pub users_running: Step,
}

/// The bound for `seed`'s sessions (the same ones every policy's run of that seed plays).
pub fn bound(sc: &Scenario, seed: u64) -> Result<Bound, ArrivalError> {
    let sessions = arrivals::generate(sc, seed)?;
    let mut b = bound_of(sc, &occupancies(sc, &sessions));
    b.seed = seed;
    Ok(b)
}

/// Each session's pod served without a wait: created after the spawn overhead, Ready a
/// container start later, removed at the first culler run after the session's end plus the
/// cull timeout.
pub fn occupancies(sc: &Scenario, sessions: &[Session]) -> Vec<Occupancy> {
    let hub = &sc.hub;
    let interval = secs(hub.cull_interval_min * 60.0).max(1);
    sessions
        .iter()
        .map(|s| {
            let profile = &sc.profiles[s.profile];
            let start = s.arrival + secs(hub.spawn_overhead_s);
            let ready = start + secs(hub.container_start_s);
            let due = ready + s.active + secs(hub.cull_timeout_min * 60.0);
            // The culler's first run at or after `due`, as the hub model does.
            let end = due.div_euclid(interval) * interval
                + if due % interval == 0 { 0 } else { interval };
            Occupancy {
                pool: sc.pool_index(&profile.pool).unwrap_or(0),
                request: profile.request.to_resources().with_pods(1),
                start,
                end,
            }
        })
        .collect()
}

/// What one node of `pool` offers user pods: allocatable less its DaemonSets (at least one
/// pod slot, as the simulated node counts them).
pub fn per_node(sc: &Scenario, pool: usize) -> Resources {
    let p = &sc.pools[pool];
    let ds = p.daemonset_overhead.to_resources();
    let ds = Resources {
        pods: ds.pods.max(1),
        ..ds
    };
    &p.allocatable.to_resources() - &ds
}

/// The bound of these pods over the scenario's duration (seed left 0).
pub fn bound_of(sc: &Scenario, pods: &[Occupancy]) -> Bound {
    let end = secs(sc.duration_h * 3600.0);
    let window = sc
        .autoscaler
        .scale_down_enabled
        .then(|| secs(sc.autoscaler.scale_down_unneeded_min * 60.0));
    let mut per_pool = Vec::new();
    let mut kept = Vec::new();
    let mut running = Vec::new();
    let mut users = 0;
    for pool in 0..sc.pools.len() {
        let cap = per_node(sc, pool);
        let mine: Vec<&Occupancy> = pods
            .iter()
            .filter(|o| o.pool == pool && o.request.fits_in(&cap) && o.start < end)
            .collect();
        users += mine.len();
        let spec = &sc.pools[pool];
        let floor = spec.min_nodes.min(spec.initial_nodes) as u64;
        let (nodes, alive) = needed(&mine, &cap, floor);
        kept.push(nodes.sliding_max(window));
        per_pool.push(nodes);
        running.push(alive);
    }
    let nodes = Step::sum(&per_pool);
    Bound {
        seed: 0,
        users,
        node_hours: per_pool.iter().map(|s| s.hours(end)).sum(),
        node_hours_ca_unneeded: kept.iter().map(|s| s.hours(end)).sum(),
        peak_nodes: nodes.peak(end),
        nodes,
        users_running: Step::sum(&running),
    }
}

/// The amounts of every resource `cap` or a request names, in one order.
fn amounts(r: &Resources, keys: &[String]) -> Vec<i64> {
    let mut v = vec![r.cpu_milli, r.memory, r.ephemeral_storage, r.pods];
    v.extend(keys.iter().map(|k| r.extended(k)));
    v
}

/// The fewest nodes holding these pods at each instant (see the module doc), never below
/// `floor`, and the number of pods alive.
fn needed(pods: &[&Occupancy], cap: &Resources, floor: u64) -> (Step, Step) {
    let mut keys: Vec<String> = cap.extended.keys().cloned().collect();
    for o in pods {
        keys.extend(o.request.extended.keys().cloned());
    }
    keys.sort();
    keys.dedup();
    let cap = amounts(cap, &keys);
    // +1 at the start, −1 at the end; the count between two instants is what holds there.
    let mut changes: Vec<(Millis, i64, Vec<i64>)> = Vec::with_capacity(2 * pods.len());
    for o in pods {
        let req = amounts(&o.request, &keys);
        changes.push((o.start, 1, req.clone()));
        changes.push((o.end, -1, req));
    }
    changes.sort_by_key(|c| c.0);
    let dims = cap.len();
    let mut total = vec![0i128; dims];
    // Pods that take more than half a node of one resource, per resource.
    let mut big = vec![0i64; dims];
    let mut alive = 0i64;
    let mut nodes = vec![(0, floor)];
    let mut users = vec![(0, 0)];
    let mut i = 0;
    while i < changes.len() {
        let t = changes[i].0;
        while i < changes.len() && changes[i].0 == t {
            let (_, sign, req) = &changes[i];
            alive += sign;
            for d in 0..dims {
                total[d] += i128::from(sign * req[d]);
                if 2 * req[d] > cap[d] && cap[d] > 0 {
                    big[d] += sign;
                }
            }
            i += 1;
        }
        let mut n = floor;
        for d in 0..dims {
            if cap[d] > 0 && total[d] > 0 {
                let c = i128::from(cap[d]);
                n = n.max(u64::try_from((total[d] + c - 1) / c).unwrap_or(u64::MAX));
                n = n.max(u64::try_from(big[d]).unwrap_or(0));
            }
        }
        nodes.push((t, n));
        users.push((t, u64::try_from(alive).unwrap_or(0)));
    }
    (Step::from_sorted(nodes), Step::from_sorted(users))
}

#[cfg(test)]
mod tests;
