//! What a run records: one row per user (times and the cause of any wait), a time series of
//! the cluster, and counters. The engine and the models write into it; it reads only the
//! cluster state and the values handed to `RunResult::collect`, never the engine.

use crate::cluster_state::{ClusterState, NodeId, NodePhase, PodId, PodKind};
use crate::scenario::PolicySpec;
use crate::session::Session;
use hubpack_core::model::Millis;
use serde::Serialize;

/// Waits this much longer than a warm start count as "waited".
pub const WAIT_SLACK: Millis = 30_000;

/// A user's state during the run.
#[derive(Debug, Clone)]
pub struct UserRun {
    pub session: Session,
    pub attempts: u32,
    pub failed_attempt: Option<u32>,
    pub failed_spawns: u32,
    pub pod: Option<PodId>,
    pub spawn_limited: bool,
    /// Refused by the spawn limit while every unplaced user had a warm seat.
    pub hub_queue_blocked: bool,
    /// Bound to a cold node while a warm seat existed at arrival and at bind time.
    pub placement_hol: bool,
    pub warm_seat_at_arrival: bool,
    pub node: Option<NodeId>,
    pub node_was_new: bool,
    pub node_ready_at: Millis,
    pub bound_at: Option<Millis>,
    pub pulled: bool,
    pub ready: Option<Millis>,
    pub gave_up: Option<Millis>,
    /// When the culler removed the server.
    pub culled: Option<Millis>,
}

impl UserRun {
    pub fn new(session: Session) -> UserRun {
        UserRun {
            session,
            attempts: 0,
            failed_attempt: None,
            failed_spawns: 0,
            pod: None,
            spawn_limited: false,
            hub_queue_blocked: false,
            placement_hol: false,
            warm_seat_at_arrival: false,
            node: None,
            node_was_new: false,
            node_ready_at: 0,
            bound_at: None,
            pulled: false,
            ready: None,
            gave_up: None,
            culled: None,
        }
    }
}

/// Why a user waited longer than a warm start (+ slack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitCause {
    None,
    /// Their node was booted after they arrived.
    NodeBoot,
    /// Their node was up but pulling the image.
    Pull,
    /// The hub's concurrent spawn limit held them back.
    SpawnLimit,
    /// Earlier attempts timed out.
    FailedSpawn,
    /// Pending for another reason (queue, autoscaler max).
    Pending,
    /// Never got a server.
    GaveUp,
    /// Still waiting when the run ended.
    Unfinished,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub user: usize,
    pub profile: usize,
    pub arrival_s: f64,
    pub bound_s: Option<f64>,
    pub ready_s: Option<f64>,
    pub wait_s: Option<f64>,
    /// Arrival → giving up, for users who never got a server.
    pub gave_up_after_s: Option<f64>,
    pub node: Option<String>,
    pub node_was_new: bool,
    pub culled_s: Option<f64>,
    pub attempts: u32,
    pub failed_spawns: u32,
    pub warm_seat_at_arrival: bool,
    pub head_of_line_blocked: bool,
    /// Placement head-of-line blocking: bound to a cold node (booting, or without this
    /// user's image) while a warm seat they fit, free or held by a placeholder, existed at
    /// their arrival and still at bind time. The scheduler's doing.
    pub placement_hol: bool,
    /// Hub-queue head-of-line blocking: held back by the hub's concurrent spawn limit
    /// while warm seats existed for every user not yet placed, and waited for it.
    pub hub_queue_hol: bool,
    pub cause: WaitCause,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub nodes_ready: usize,
    pub nodes_booting: usize,
    pub users_running: usize,
    pub users_pending: usize,
    pub placeholders_running: usize,
    pub placeholders_pending: usize,
    /// Share of Ready allocatable cpu requested by users / placeholders.
    pub cpu_alloc_users: f64,
    pub cpu_alloc_placeholders: f64,
}

/// A node's life, seconds.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRecord {
    pub name: String,
    pub created_s: f64,
    pub ready_s: f64,
    pub deleted_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub policy: PolicySpec,
    pub seed: u64,
    pub users: Vec<UserRecord>,
    pub samples: Vec<Sample>,
    pub nodes: Vec<NodeRecord>,
    pub node_hours: f64,
    pub peak_nodes: usize,
    pub scale_ups: usize,
    pub scale_downs: usize,
    /// Running servers Karpenter's consolidation evicted (users without
    /// `karpenter.sh/do-not-disrupt`): lost sessions.
    pub servers_evicted: usize,
    pub failed_spawns: u32,
    pub events: u64,
    /// Preemptions after which the pod did not fit: 0 unless the model is inconsistent.
    pub misfits: u64,
    /// What a warm start takes: spawn overhead + container start.
    pub warm_start_s: f64,
}

/// Milliseconds as seconds, for the records.
fn seconds(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

impl Sample {
    /// The cluster at `now`, as the time series shows it.
    pub fn observe(cluster: &ClusterState, now: Millis) -> Sample {
        let mut sample = Sample {
            t_s: seconds(now),
            nodes_ready: 0,
            nodes_booting: 0,
            users_running: 0,
            users_pending: 0,
            placeholders_running: 0,
            placeholders_pending: 0,
            cpu_alloc_users: 0.0,
            cpu_alloc_placeholders: 0.0,
        };
        let (mut cap, mut held, mut used) = (0i64, 0i64, 0i64);
        for n in &cluster.nodes {
            match n.phase {
                NodePhase::Ready => {
                    sample.nodes_ready += 1;
                    cap += n.allocatable.cpu_milli;
                    held += n.held.cpu_milli;
                    used += n.requested.cpu_milli - n.held.cpu_milli;
                }
                NodePhase::Booting => sample.nodes_booting += 1,
                NodePhase::Deleted => {}
            }
        }
        for p in cluster.pending() {
            match cluster.pods[p].kind {
                PodKind::User(_) => sample.users_pending += 1,
                PodKind::Placeholder => sample.placeholders_pending += 1,
            }
        }
        sample.users_running = cluster.nodes.iter().map(|n| n.users).sum();
        sample.placeholders_running = cluster.nodes.iter().map(|n| n.placeholders).sum();
        if cap > 0 {
            sample.cpu_alloc_users = used as f64 / cap as f64;
            sample.cpu_alloc_placeholders = held as f64 / cap as f64;
        }
        sample
    }
}

/// What the engine and the autoscaler model counted during a run.
#[derive(Debug, Clone, Copy)]
pub struct RunCounters {
    pub events: u64,
    pub misfits: u64,
    pub peak_nodes: usize,
    pub scale_ups: usize,
    pub scale_downs: usize,
    pub servers_evicted: usize,
}

impl UserRecord {
    /// The row of user `user`, whose warm start takes `warm_start`.
    pub fn of(user: usize, u: &UserRun, warm_start: Millis, cluster: &ClusterState) -> UserRecord {
        let wait = u.ready.map(|r| r - u.session.arrival);
        let waited = match (u.ready, u.gave_up) {
            (Some(r), _) => r - u.session.arrival > warm_start + WAIT_SLACK,
            (None, _) => true,
        };
        let cause = if u.ready.is_none() {
            if u.gave_up.is_some() {
                WaitCause::GaveUp
            } else {
                WaitCause::Unfinished
            }
        } else if !waited {
            WaitCause::None
        } else if u.failed_spawns > 0 {
            WaitCause::FailedSpawn
        } else if u.node_was_new || u.node_ready_at > u.session.arrival {
            WaitCause::NodeBoot
        } else if u.pulled {
            WaitCause::Pull
        } else if u.spawn_limited {
            WaitCause::SpawnLimit
        } else {
            WaitCause::Pending
        };
        // Finished users only: a user still waiting at the end is censored.
        let hol = waited && u.warm_seat_at_arrival && cause != WaitCause::Unfinished;
        let hub_queue_hol = waited && u.hub_queue_blocked;
        UserRecord {
            user,
            profile: u.session.profile,
            arrival_s: seconds(u.session.arrival),
            bound_s: u.bound_at.map(seconds),
            ready_s: u.ready.map(seconds),
            wait_s: wait.map(seconds),
            gave_up_after_s: u.gave_up.map(|g| seconds(g - u.session.arrival)),
            node: u.node.map(|n| cluster.nodes[n].name.clone()),
            node_was_new: u.node_was_new,
            culled_s: u.culled.map(seconds),
            attempts: u.attempts,
            failed_spawns: u.failed_spawns,
            warm_seat_at_arrival: u.warm_seat_at_arrival,
            head_of_line_blocked: hol,
            placement_hol: u.placement_hol,
            hub_queue_hol,
            cause,
        }
    }
}

impl RunResult {
    /// The outcome of a run of `policy` that ended at `end`, from what it recorded.
    pub fn collect(
        policy: PolicySpec,
        end: Millis,
        warm_start: Millis,
        users: &[UserRun],
        cluster: &ClusterState,
        samples: Vec<Sample>,
        counters: RunCounters,
    ) -> RunResult {
        let records = users
            .iter()
            .enumerate()
            .map(|(i, u)| UserRecord::of(i, u, warm_start, cluster))
            .collect();
        let node_hours = cluster
            .nodes
            .iter()
            .map(|n| (n.deleted_at.unwrap_or(end).min(end) - n.created).max(0) as f64 / 3.6e6)
            .sum();
        let nodes = cluster
            .nodes
            .iter()
            .map(|n| NodeRecord {
                name: n.name.clone(),
                created_s: seconds(n.created),
                ready_s: seconds(n.ready_at),
                deleted_s: n.deleted_at.map(seconds),
            })
            .collect();
        RunResult {
            failed_spawns: users.iter().map(|u| u.failed_spawns).sum(),
            events: counters.events,
            misfits: counters.misfits,
            policy,
            seed: 0,
            users: records,
            samples,
            node_hours,
            peak_nodes: counters.peak_nodes,
            nodes,
            scale_ups: counters.scale_ups,
            scale_downs: counters.scale_downs,
            servers_evicted: counters.servers_evicted,
            warm_start_s: seconds(warm_start),
        }
    }
}
