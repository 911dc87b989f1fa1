//! The simulated world ([`Sim`]) and its parts around the scheduler: node pools, the cluster
//! autoscaler or Karpenter, a CapacityBuffer, the hub (spawner + culler), user arrivals, the placeholder Deployment/controller
//! and the image pre-puller. `Sim` holds the clock's agenda, the cluster and each part's
//! state; each file extends it with the handlers of its own events. The models do not know
//! the event loop: the `engine` module, above them, builds a `Sim` and dispatches to them.

pub mod arrivals;
pub mod autoscaler;
pub mod buffer;
pub mod dist;
pub mod hub;
pub mod karpenter;
pub mod placeholders;
pub mod pool;
pub mod prepull;

use crate::clock::Agenda;
use crate::cluster_state::ClusterState;
use crate::events::Event;
use crate::outcome::{Sample, UserRun};
use crate::policy::Scheduler;
use crate::scenario::{PolicySpec, Scenario};
use autoscaler::AutoscalerState;
use hubpack_core::model::Millis;
use karpenter::KarpenterState;
use placeholders::PlaceholderState;
use rand_chacha::ChaCha8Rng;

/// One run's world: the scenario, the policy under test, pending events, the cluster and
/// the state of every model.
pub struct Sim<'a> {
    pub sc: &'a Scenario,
    pub policy: PolicySpec,
    pub agenda: Agenda<Event>,
    pub cluster: ClusterState,
    pub(crate) scheduler: Box<dyn Scheduler>,
    pub rng: ChaCha8Rng,
    pub users: Vec<UserRun>,
    pub active_spawns: usize,
    /// Users who arrived and are not yet bound to a node (nor gave up).
    pub users_unbound: usize,
    pub(crate) schedule_queued: bool,
    pub autoscaler: AutoscalerState,
    pub karpenter: KarpenterState,
    pub placeholders: PlaceholderState,
    pub samples: Vec<Sample>,
    pub end: Millis,
    /// Settle time after Ready before hubpack counts a node warm.
    pub warm_settle: Millis,
    /// Binds, or preemptions, after which the pod would not fit (a model inconsistency).
    pub misfits: u64,
    /// (instant, scheduling passes requested at it).
    pub(crate) passes_at: (Millis, u32),
}

const MAX_PASSES_PER_INSTANT: u32 = 1000;

impl Sim<'_> {
    /// Coalesces scheduling triggers into one pass at `now`. Passes that keep triggering
    /// each other at one instant (evict → replace → place → evict) are spread out by a
    /// second after `MAX_PASSES_PER_INSTANT`, so a policy bug cannot hang the run.
    pub fn request_schedule(&mut self, now: Millis) {
        if !self.schedule_queued && self.cluster.pending_count() > 0 {
            self.schedule_queued = true;
            if self.passes_at.0 == now {
                self.passes_at.1 += 1;
            } else {
                self.passes_at = (now, 1);
            }
            let at = if self.passes_at.1 > MAX_PASSES_PER_INSTANT {
                now + 1000
            } else {
                now
            };
            self.agenda.at(at, Event::Schedule);
        }
    }
}
