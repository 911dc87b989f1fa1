//! What every part of the running scheduler shares: the API client, settings, caches, the
//! cluster state, the queue, the leader gate, metrics. Locks are std mutexes held only for
//! short, synchronous sections, never across an `.await`.

use crate::actions::RateLimiter;
use crate::actions::events::Events;
use crate::actions::status_lane::StatusLane;
use crate::cluster_state::{Classifier, ClusterState};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::SchedulingQueue;
pub use crate::stores::Stores;
use hubpack_core::model::Millis;
use hubpack_kube::leader::LeaderGate;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, Semaphore};

pub struct Context {
    pub client: kube::Client,
    pub config: Config,
    /// `config.policy` as the core takes it.
    pub policy: hubpack_core::policy::PolicyConfig,
    pub classifier: Classifier,
    pub limiter: RateLimiter,
    pub events: Events,
    pub metrics: Metrics,
    pub leader: Arc<LeaderGate>,
    pub stores: Stores,
    state: Mutex<ClusterState>,
    queue: Mutex<SchedulingQueue>,
    /// Rung when the queue gets work or leadership changes.
    pub wake: Arc<Notify>,
    /// Bounds binds in flight (`api.bindConcurrency`).
    pub bind_slots: Arc<Semaphore>,
    /// Watched kinds whose first list is complete (see [`Self::caches_synced`]).
    pub synced: Arc<AtomicUsize>,
    /// Wall-clock milliseconds of the scheduling loop's last round (`/healthz`).
    pub heartbeat: Arc<AtomicI64>,
    /// Status writes that can wait, one per pod, behind binds and evictions.
    pub status_lane: StatusLane,
}

impl Context {
    pub fn new(
        client: kube::Client,
        config: Config,
        stores: Stores,
        leader: LeaderGate,
        metrics: Metrics,
        instance: Option<String>,
    ) -> Self {
        let leader = Arc::new(leader);
        // Writes wait for their turn in the limiter; leadership is checked after that wait.
        let gate = {
            let leader = leader.clone();
            move || leader.is_leading(wall_clock_ms())
        };
        let gate: crate::actions::rate_limit::WriteGate = Arc::new(gate);
        Context {
            classifier: Classifier {
                scheduler_name: config.scheduler_name.clone(),
                placeholder_selectors: config.placeholder_selectors.clone(),
                prepull_selectors: config.warmth.prepull_selectors.clone(),
            },
            limiter: RateLimiter::new(config.api.qps, config.api.burst)
                .gated(gate.clone())
                .observed(metrics.limiter_wait_seconds.clone(), "urgent"),
            events: Events::new(
                client.clone(),
                &config.scheduler_name,
                instance,
                RateLimiter::new(config.api.qps, config.api.burst)
                    .gated(gate)
                    .observed(metrics.limiter_wait_seconds.clone(), "events"),
            ),
            queue: Mutex::new(SchedulingQueue::new(config.backoff())),
            bind_slots: Arc::new(Semaphore::new(config.api.bind_concurrency)),
            state: Mutex::new(ClusterState::default()),
            wake: Arc::new(Notify::new()),
            synced: Arc::new(AtomicUsize::new(0)),
            policy: config.policy.core(),
            heartbeat: Arc::new(AtomicI64::new(wall_clock_ms())),
            status_lane: StatusLane::default(),
            client,
            config,
            metrics,
            leader,
            stores,
        }
    }

    /// Wall-clock milliseconds: the clock of pod creation and node Ready times.
    pub fn now(&self) -> Millis {
        wall_clock_ms()
    }

    /// Every watched kind has listed once. Deciding before that would see nodes without
    /// their pods and overcommit them.
    pub fn caches_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire) >= crate::stores::WATCHED_KINDS
    }

    /// Whether this replica may write to the API right now (leader, within the lease's
    /// deadline). Checked before every write, not only when an attempt starts.
    pub fn may_write(&self) -> bool {
        self.leader.is_leading(self.now())
    }

    // A poisoned lock means a panic mid-update elsewhere; the data is still the best we
    // have, and refusing to schedule would strand every pod.
    pub fn state(&self) -> MutexGuard<'_, ClusterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn queue(&self) -> MutexGuard<'_, SchedulingQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publish_queue_depth(&self) {
        let (depth, oldest) = {
            let q = self.queue();
            (q.depth(), q.oldest_created())
        };
        self.metrics.set_queue_depth(depth.0, depth.1, depth.2);
        let age_ms = oldest.map_or(0, |c| (self.now() - c).max(0));
        self.metrics.oldest_pending_seconds.set(age_ms / 1000);
    }
}

/// Wall-clock milliseconds, the one clock of the scheduler's decisions and lease checks.
fn wall_clock_ms() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}
