//! The controller's memory and its decision per reconcile, both pure: each pool's view
//! (see [`crate::observe`]) becomes a core [`PoolObservation`] for the pool's
//! [`PoolReconciler`] (arrivals, lead time, targets, hysteresis: the one the simulator
//! runs too); this module adds what Kubernetes needs around it (Deployment names, deletion
//! costs, pre-pull images, problems). The adapter carries the [`Decision`] out; tests
//! drive [`Controller::step`] directly.

use crate::buffer;
use crate::checkpoint::PoolCheckpoint;
use crate::config::{Backend, Config, Lead, PoolConfig, PoolSizes};
use crate::forecast::{PoolForecast, headroom_config, pool_events, with_sources};
use crate::objects::placeholder_name;
use crate::observe::{PoolView, UserPodProblem};
use crate::sources::{SourcedEvent, secs};
use hubpack_core::headroom::{
    LeadTimeConfig, LearnerConfig, PlaceholderObservation, PlacementObservation, PoolObservation,
    PoolReconciler, ReconcilerConfig, TargetForecast,
};
use hubpack_core::model::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// What one placeholder Deployment should be.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementDecision {
    pub name: String,
    pub zone: Option<String>,
    /// Placeholders the forecast asks for now.
    pub target: usize,
    /// What to set `spec.replicas` to (after hysteresis and dropping surplus pending ones).
    pub replicas: usize,
    /// `spec.replicas` before (None: the Deployment does not exist yet).
    pub previous: Option<usize>,
    /// Why, in words (for the Event and the log line).
    pub reason: String,
    /// Placeholder pod name → deletion cost to write (only changed ones).
    pub deletion_costs: Vec<(String, i32)>,
    pub placed: usize,
    pub pending: usize,
    /// The replicas the forecast asked for when the pool's cost guard (`maxNodes`) cut
    /// them to `replicas`; None when not capped.
    pub capped_from: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolDecision {
    pub pool: String,
    pub forecast: PoolForecast,
    pub lead_learned: bool,
    pub lead_samples: usize,
    pub free_warm_seats: i64,
    pub placements: Vec<PlacementDecision>,
    /// The pre-puller's images: configured ones, then the learned most used (stable).
    pub prepull_images: Vec<String>,
    pub problems: Vec<UserPodProblem>,
    /// Pool nodes a placeholder cannot fit: (node, why).
    pub misfits: Vec<(String, String)>,
    /// Lead-time samples taken this step (ms), for the log.
    pub new_lead_samples: Vec<Millis>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub now: Millis,
    pub pools: Vec<PoolDecision>,
}

/// Per-pool learning state: the pool reconciler and the learned pre-pull images.
#[derive(Debug, Clone)]
struct PoolMemory {
    reconciler: PoolReconciler,
    learned_images: Vec<String>,
    images_changed_at: Option<Millis>,
    /// After a restore: users created up to this time were counted by the process that
    /// wrote the checkpoint, so the first step does not count them again.
    counted_through: Option<Millis>,
}

/// A user pod not seen for this long is forgotten (a pod that is gone does not come back
/// with its uid; the margin covers a watch that relists).
pub const FORGET_USERS_AFTER: Millis = 3_600_000;
/// At most this many users are remembered; the least recently seen go first.
pub const MAX_SEEN_USERS: usize = 200_000;

/// The controller's memory across reconciles.
#[derive(Debug, Clone)]
pub struct Controller {
    pools: BTreeMap<String, PoolMemory>,
    /// User pod uid → when it was last seen.
    seen_users: BTreeMap<String, Millis>,
    max_seen_users: usize,
}

/// How arrivals are learned, from the config.
pub fn learner_config(cfg: &Config) -> LearnerConfig {
    let bg = &cfg.background;
    LearnerConfig {
        half_life: secs(bg.half_life_seconds),
        observed_window: secs(bg.observed_window_seconds),
        min_span: secs(cfg.reconcile_interval_seconds),
        weekly_profile: bg.weekly_profile,
    }
}

/// The core estimator's settings from the config.
pub fn lead_time_config(cfg: &Config) -> LeadTimeConfig {
    let lt = &cfg.lead_time;
    LeadTimeConfig {
        initial: secs(lt.initial_seconds),
        quantile: lt.quantile,
        window: lt.window_samples,
        min_samples: lt.min_samples,
        reaction: secs(lt.reaction_seconds),
        min: secs(lt.min_seconds),
        max: secs(lt.max_seconds),
    }
}

/// How one pool is reconciled, from the config.
pub fn reconciler_config(cfg: &Config, pool: &PoolConfig) -> ReconcilerConfig {
    ReconcilerConfig {
        learner: learner_config(cfg),
        lead_time: lead_time_config(cfg),
        fixed_lead: match pool.lead {
            Lead::Seconds(s) => Some(secs(s)),
            Lead::Auto => None,
        },
        headroom: headroom_config(pool),
        scale_down_after: secs(cfg.placeholders.scale_down_after_seconds),
        zones: pool.zone_values(),
    }
}

impl Controller {
    pub fn new(cfg: &Config) -> Controller {
        let pools = cfg
            .pools
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    PoolMemory {
                        reconciler: {
                            let mut r = PoolReconciler::new(reconciler_config(cfg, p));
                            r.assume_background(p.background.initial_rate_per_ms());
                            r
                        },
                        learned_images: Vec::new(),
                        images_changed_at: None,
                        counted_through: None,
                    },
                )
            })
            .collect();
        Controller {
            pools,
            seen_users: BTreeMap::new(),
            max_seen_users: MAX_SEEN_USERS,
        }
    }

    /// The same, remembering at most `max` users (tests of the bound).
    #[cfg(test)]
    pub(crate) fn with_max_seen_users(mut self, max: usize) -> Controller {
        self.max_seen_users = max;
        self
    }

    /// What each pool has learned, for the checkpoint.
    pub fn checkpoint(&self) -> BTreeMap<String, PoolCheckpoint> {
        self.pools
            .iter()
            .map(|(name, m)| {
                (
                    name.clone(),
                    PoolCheckpoint {
                        reconciler: m.reconciler.state(),
                        learned_images: m.learned_images.clone(),
                        images_changed_at: m.images_changed_at,
                    },
                )
            })
            .collect()
    }

    /// Continues from a checkpoint: each configured pool from its saved state (pools it
    /// does not name keep what they have). Returns the pools restored.
    pub fn restore(&mut self, pools: &BTreeMap<String, PoolCheckpoint>) -> Vec<String> {
        let mut restored = Vec::new();
        for (name, saved) in pools {
            let Some(mem) = self.pools.get_mut(name) else {
                continue;
            };
            mem.reconciler.restore(&saved.reconciler);
            mem.learned_images = saved.learned_images.clone();
            mem.images_changed_at = saved.images_changed_at;
            mem.counted_through = mem.reconciler.last_step();
            restored.push(name.clone());
        }
        restored
    }

    /// User pods remembered as seen (bounded by [`FORGET_USERS_AFTER`] and
    /// [`MAX_SEEN_USERS`]).
    pub fn seen_user_count(&self) -> usize {
        self.seen_users.len()
    }

    /// Forgets users not seen for [`FORGET_USERS_AFTER`], then the least recently seen
    /// beyond [`MAX_SEEN_USERS`] (a user forgotten while it still exists is counted as an
    /// arrival again: rarer than the memory a hub's whole history would take).
    fn forget_users(&mut self, now: Millis) {
        self.seen_users
            .retain(|_, seen| now - *seen <= FORGET_USERS_AFTER);
        if self.seen_users.len() > self.max_seen_users {
            let mut by_age: Vec<(Millis, String)> = self
                .seen_users
                .iter()
                .map(|(uid, seen)| (*seen, uid.clone()))
                .collect();
            by_age.sort();
            let excess = by_age.len() - self.max_seen_users;
            for (_, uid) in by_age.into_iter().take(excess) {
                self.seen_users.remove(&uid);
            }
        }
    }

    /// The lead time a pool uses now (ms): configured, or learned with `lead: auto`.
    pub fn lead_of(&self, cfg: &Config, pool: &str) -> Millis {
        match self.pools.get(pool) {
            Some(m) => m.reconciler.lead(),
            None => secs(cfg.lead_time.initial_seconds),
        }
    }

    /// A pool's learned background (rate and weekly shape, not the live window).
    pub fn background_of(&self, pool: &str) -> Option<hubpack_core::headroom::LearnedArrivals> {
        self.pools.get(pool).map(|m| m.reconciler.background())
    }

    /// One reconcile. `views[i]` and `sizes[i]` belong to `cfg.pools[i]`; `replicas` maps
    /// Deployment names to their current `spec.replicas`.
    pub fn step(
        &mut self,
        now: Millis,
        cfg: &Config,
        sizes: &[PoolSizes],
        views: &[PoolView],
        events: &[SourcedEvent],
        replicas: &BTreeMap<String, usize>,
    ) -> Decision {
        let mut out = Vec::new();
        for ((pool, size), view) in cfg.pools.iter().zip(sizes).zip(views) {
            // Arrivals: user pods not seen before (at the first step, every one: the learner
            // takes those created within its window as that window's arrivals).
            let counted_through = self
                .pools
                .get_mut(&pool.name)
                .and_then(|m| m.counted_through.take());
            let mut new_arrivals = Vec::new();
            for (uid, created) in &view.user_creations {
                if self.seen_users.insert(uid.clone(), now).is_none()
                    && counted_through.is_none_or(|t| *created > t)
                {
                    new_arrivals.push(*created);
                }
            }
            let Some(mem) = self.pools.get_mut(&pool.name) else {
                continue;
            };
            let buffered = (pool.backend == Backend::CapacityBuffer)
                .then(|| buffer_view(pool, size, view, replicas));
            let view = buffered.as_ref().map_or(view, |(v, _)| v);
            let mut obs = pool_observation(pool, view, new_arrivals, replicas);
            if let Some((_, held)) = &buffered {
                for (zone, seen) in obs.placements.iter_mut() {
                    seen.placed = held.get(zone).copied().unwrap_or(0);
                }
            }
            let step = mem
                .reconciler
                .step(now, &pool_events(pool, events), size.seats_each, &obs);
            let caps = placement_caps(size.max_placeholders, step.placements.len());
            let placements = step
                .placements
                .iter()
                .zip(caps)
                .map(|(pl, cap)| {
                    let name = placeholder_name(&pool.name, pl.zone.as_deref());
                    let mine = placeholders_in(pool, view, &pl.zone);
                    let placed = match &buffered {
                        Some((_, held)) => held.get(&pl.zone).copied().unwrap_or(0),
                        None => mine.iter().filter(|p| p.node.is_some()).count(),
                    };
                    let previous = replicas.get(&name).copied();
                    // Fewest users first to go: the ReplicaSet deletes the lowest cost first.
                    let deletion_costs = mine
                        .iter()
                        .filter_map(|p| {
                            let cost = i32::try_from(p.users_on_node?).unwrap_or(i32::MAX);
                            (p.deletion_cost != Some(cost)).then(|| (p.name.clone(), cost))
                        })
                        .collect();
                    let capped_from = (pl.replicas > cap).then_some(pl.replicas);
                    PlacementDecision {
                        previous,
                        name,
                        zone: pl.zone.clone(),
                        target: pl.target.min(cap),
                        replicas: pl.replicas.min(cap),
                        reason: match capped_from {
                            Some(wanted) => format!(
                                "{}; capped from {wanted} by maxNodes ({} placeholders at most)",
                                pl.reason, size.max_placeholders
                            ),
                            None => pl.reason.clone(),
                        },
                        deletion_costs,
                        placed,
                        pending: match &buffered {
                            Some(_) => previous.unwrap_or(0).saturating_sub(placed),
                            None => mine.len() - placed,
                        },
                        capped_from,
                    }
                })
                .collect();
            let forecast = with_sources(
                now,
                step.lead,
                pool,
                events,
                TargetForecast {
                    expected: step.expected,
                    headroom: step.headroom,
                    targets: step
                        .placements
                        .iter()
                        .map(|pl| (pl.zone.clone(), pl.target))
                        .collect(),
                },
            );
            let prepull_images = prepull_images(cfg, pool, view, mem, now);
            out.push(PoolDecision {
                pool: pool.name.clone(),
                lead_learned: mem.reconciler.lead_estimator().is_learned(),
                lead_samples: mem.reconciler.lead_estimator().sample_count(),
                free_warm_seats: view.free_warm_seats.values().sum(),
                forecast,
                placements,
                prepull_images,
                problems: view.problems.clone(),
                misfits: view.misfits.clone(),
                new_lead_samples: step.lead_samples,
            });
        }
        self.forget_users(now);
        Decision { now, pools: out }
    }
}

/// A `capacityBuffer` pool's view as the pool reconciler reads it: the buffer's chunks
/// that the autoscaler packs onto warm nodes hold those seats (as placed placeholders
/// would), so they are not free; returns the view and the chunks held per placement.
fn buffer_view(
    pool: &PoolConfig,
    size: &PoolSizes,
    view: &PoolView,
    replicas: &BTreeMap<String, usize>,
) -> (PoolView, BTreeMap<Option<String>, usize>) {
    let mut out = view.clone();
    let mut held = BTreeMap::new();
    for (name, zone) in buffer::placements(pool) {
        let current = replicas.get(&name).copied().unwrap_or(0);
        let free = view.free_warm_seats.get(&zone).copied().unwrap_or(0);
        let (on_warm, left) = buffer::chunks_on_warm_nodes(current, free, size.seats_each);
        out.free_warm_seats.insert(zone.clone(), left);
        held.insert(zone, on_warm);
    }
    (out, held)
}

/// The cost guard per placement: `max` placeholders shared over `placements` zones, the
/// remainder to the first ones, so the pool's total never exceeds `max`.
pub fn placement_caps(max: usize, placements: usize) -> Vec<usize> {
    let n = placements.max(1);
    (0..placements)
        .map(|i| max / n + usize::from(i < max % n))
        .collect()
}

/// The pool's placeholders in one placement (all of them when the pool is not split).
fn placeholders_in<'a>(
    pool: &PoolConfig,
    view: &'a PoolView,
    zone: &Option<String>,
) -> Vec<&'a crate::observe::PlaceholderPod> {
    view.placeholders
        .iter()
        .filter(|p| pool.zones.is_none() || p.zone == *zone)
        .collect()
}

/// What the pool reconciler reads of one pool's view: `new_arrivals` are the creation
/// times of the user pods seen for the first time, `replicas` the Deployments' current
/// `spec.replicas` by name.
pub fn pool_observation(
    pool: &PoolConfig,
    view: &PoolView,
    new_arrivals: Vec<Millis>,
    replicas: &BTreeMap<String, usize>,
) -> PoolObservation {
    let placements = pool
        .zone_values()
        .into_iter()
        .map(|zone| {
            let name = placeholder_name(&pool.name, zone.as_deref());
            let placed = placeholders_in(pool, view, &zone)
                .iter()
                .filter(|p| p.node.is_some())
                .count();
            let seen = PlacementObservation {
                replicas: replicas.get(&name).copied().unwrap_or(0),
                placed,
            };
            (zone, seen)
        })
        .collect();
    PoolObservation {
        new_arrivals,
        user_creations: view.user_creations.iter().map(|(_, t)| *t).collect(),
        free_warm_seats: view.free_warm_seats.clone(),
        placements,
        placeholders: view
            .placeholders
            .iter()
            .map(|p| PlaceholderObservation {
                uid: p.uid.clone(),
                node: p.node.clone(),
                unschedulable_since: p.unschedulable_since,
            })
            .collect(),
        warm_nodes: view.warm_nodes.keys().cloned().collect(),
        warm_since: view.warm_since.clone(),
        node_created: view.node_created.clone(),
    }
}

/// Configured images, then up to `learnedImages` of the most used among running user pods
/// (ties by name), changed at most every `learnedImagesMinChangeSeconds`.
fn prepull_images(
    cfg: &Config,
    pool: &PoolConfig,
    view: &PoolView,
    mem: &mut PoolMemory,
    now: Millis,
) -> Vec<String> {
    let configured: BTreeSet<&str> = pool.images.iter().map(String::as_str).collect();
    let normalized: BTreeSet<String> = pool
        .images
        .iter()
        .map(|i| {
            hubpack_core::model::ImageName::normalize(i)
                .as_str()
                .to_string()
        })
        .collect();
    let mut by_use: Vec<(&String, &usize)> = view
        .user_images
        .iter()
        .filter(|(img, _)| !configured.contains(img.as_str()) && !normalized.contains(*img))
        .collect();
    by_use.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut wanted: Vec<String> = by_use
        .into_iter()
        .take(cfg.pre_puller.learned_images)
        .map(|(i, _)| i.clone())
        .collect();
    wanted.sort();
    let min_gap = secs(cfg.pre_puller.learned_images_min_change_seconds);
    let may_change = mem.images_changed_at.is_none_or(|t| now - t >= min_gap);
    if wanted != mem.learned_images && (may_change || mem.learned_images.is_empty()) {
        mem.learned_images = wanted;
        mem.images_changed_at = Some(now);
    }
    pool.images
        .iter()
        .cloned()
        .chain(mem.learned_images.iter().cloned())
        .collect()
}
