//! The controller's memory and its decision per reconcile, both pure: from the pool views
//! (see [`crate::observe`]) and the expected events it learns arrivals and lead times, and
//! returns what every placeholder Deployment, pre-puller and placeholder pod should be.
//! The adapter carries the [`Decision`] out; tests drive [`Controller::step`] directly.

use crate::config::{Config, Lead, PoolSizes};
use crate::objects::placeholder_name;
use crate::observe::{PoolView, UserPodProblem};
use crate::plan::{Background, PoolForecast, forecast_pool};
use crate::sources::{SourcedEvent, secs};
use hubpack_core::headroom::{
    ArrivalLearner, Hysteresis, LeadTimeConfig, LeadTimeEstimator, LearnerConfig, ScheduledEvent,
    arrived_since, trim_pending_above_target,
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

/// Per-pool learning state.
#[derive(Debug, Clone)]
struct PoolMemory {
    arrivals: ArrivalLearner,
    lead: LeadTimeEstimator,
    /// Placeholder uid → when it was marked Unschedulable, until its node is warm.
    waiting: BTreeMap<String, Millis>,
    /// When a node was first seen warm (used when no pre-puller reports it).
    first_seen_warm: BTreeMap<String, Millis>,
    learned_images: Vec<String>,
    images_changed_at: Option<Millis>,
}

/// The controller's memory across reconciles.
#[derive(Debug, Clone)]
pub struct Controller {
    pools: BTreeMap<String, PoolMemory>,
    hysteresis: BTreeMap<String, Hysteresis>,
    seen_users: BTreeSet<String>,
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

impl Controller {
    pub fn new(cfg: &Config) -> Controller {
        let pools = cfg
            .pools
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    PoolMemory {
                        arrivals: ArrivalLearner::new(learner_config(cfg)),
                        lead: LeadTimeEstimator::new(lead_time_config(cfg)),
                        waiting: BTreeMap::new(),
                        first_seen_warm: BTreeMap::new(),
                        learned_images: Vec::new(),
                        images_changed_at: None,
                    },
                )
            })
            .collect();
        Controller {
            pools,
            hysteresis: BTreeMap::new(),
            seen_users: BTreeSet::new(),
        }
    }

    /// The lead time a pool uses now (ms): configured, or learned with `lead: auto`.
    pub fn lead_of(&self, cfg: &Config, pool: &str) -> Millis {
        let Some(p) = cfg.pools.iter().find(|p| p.name == pool) else {
            return secs(cfg.lead_time.initial_seconds);
        };
        match p.lead {
            Lead::Seconds(s) => secs(s),
            Lead::Auto => self
                .pools
                .get(pool)
                .map_or(secs(cfg.lead_time.initial_seconds), |m| m.lead.lead_time()),
        }
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
            let mut new_arrivals = Vec::new();
            for (uid, created) in &view.user_creations {
                if self.seen_users.insert(uid.clone()) {
                    new_arrivals.push(*created);
                }
            }
            let Some(mem) = self.pools.get_mut(&pool.name) else {
                continue;
            };
            let mine: Vec<ScheduledEvent> = events
                .iter()
                .filter(|e| e.pool == pool.name)
                .map(|e| e.event.clone())
                .collect();
            mem.arrivals.observe(now, &new_arrivals, &mine);
            // A class that logs in faster than its window plans is not expected twice.
            let background = Background {
                arrived_since: arrived_since(
                    &mine,
                    now,
                    view.user_creations.iter().map(|(_, t)| *t),
                ),
                ..mem.arrivals.learned(now)
            };
            let new_lead_samples = learn_lead(mem, view, now);
            let lead = match pool.lead {
                Lead::Seconds(s) => secs(s),
                Lead::Auto => mem.lead.lead_time(),
            };
            let forecast = forecast_pool(
                now,
                lead,
                pool,
                size,
                events,
                background,
                &view.free_warm_seats,
            );
            let mut placements = Vec::new();
            for (zone, target) in &forecast.targets {
                let name = placeholder_name(&pool.name, zone.as_deref());
                let mine: Vec<_> = view
                    .placeholders
                    .iter()
                    .filter(|p| pool.zones.is_none() || p.zone == *zone)
                    .collect();
                let placed = mine.iter().filter(|p| p.node.is_some()).count();
                let pending = mine.len() - placed;
                let previous = replicas.get(&name).copied();
                let current = previous.unwrap_or(0);
                let h = self.hysteresis.entry(name.clone()).or_insert_with(|| {
                    Hysteresis::new(secs(cfg.placeholders.scale_down_after_seconds))
                });
                let held = h.step(current, *target, now);
                let replicas = trim_pending_above_target(held, *target, placed);
                let free = view.free_warm_seats.get(zone).copied().unwrap_or(0);
                let reason = format!(
                    "target {target} placeholder(s) of {n} users: expected {mu:.1} users within the {lead_s:.0} s lead time, headroom {h:.1}, {free} free warm seat(s){held}",
                    n = size.seats_each,
                    mu = forecast.expected,
                    lead_s = lead as f64 / 1000.0,
                    h = forecast.headroom,
                    held = if replicas > *target {
                        format!(
                            "; keeping {replicas} until the target has been lower for {} s",
                            cfg.placeholders.scale_down_after_seconds
                        )
                    } else {
                        String::new()
                    },
                );
                // Fewest users first to go: the ReplicaSet deletes the lowest cost first.
                let deletion_costs = mine
                    .iter()
                    .filter_map(|p| {
                        let cost = i32::try_from(p.users_on_node?).unwrap_or(i32::MAX);
                        (p.deletion_cost != Some(cost)).then(|| (p.name.clone(), cost))
                    })
                    .collect();
                placements.push(PlacementDecision {
                    name,
                    zone: zone.clone(),
                    target: *target,
                    replicas,
                    previous,
                    reason,
                    deletion_costs,
                    placed,
                    pending,
                });
            }
            let prepull_images = prepull_images(cfg, pool, view, mem, now);
            out.push(PoolDecision {
                pool: pool.name.clone(),
                lead_learned: mem.lead.is_learned(),
                lead_samples: mem.lead.sample_count(),
                free_warm_seats: view.free_warm_seats.values().sum(),
                forecast,
                placements,
                prepull_images,
                problems: view.problems.clone(),
                misfits: view.misfits.clone(),
                new_lead_samples,
            });
        }
        Decision { now, pools: out }
    }
}

/// Samples the wait of each placeholder that was Unschedulable and then landed on a node
/// created after that moment, once the node is warm: warm time − Unschedulable time.
fn learn_lead(mem: &mut PoolMemory, view: &PoolView, now: Millis) -> Vec<Millis> {
    for node in view.warm_nodes.keys() {
        mem.first_seen_warm.entry(node.clone()).or_insert(now);
    }
    mem.first_seen_warm
        .retain(|n, _| view.node_created.contains_key(n));
    let mut samples = Vec::new();
    let alive: BTreeSet<&str> = view.placeholders.iter().map(|p| p.uid.as_str()).collect();
    for p in &view.placeholders {
        if let Some(t0) = p.unschedulable_since {
            mem.waiting.entry(p.uid.clone()).or_insert(t0);
        }
        let (Some(node), Some(&t0)) = (p.node.as_deref(), mem.waiting.get(&p.uid)) else {
            continue;
        };
        let created = view.node_created.get(node).copied();
        if created.is_some_and(|c| c < t0) {
            // It waited, but for a node that already existed: not a scale-up.
            mem.waiting.remove(&p.uid);
            continue;
        }
        let warm_at = view
            .warm_since
            .get(node)
            .or_else(|| mem.first_seen_warm.get(node))
            .copied();
        if let Some(t1) = warm_at.filter(|_| view.warm_nodes.contains_key(node)) {
            let sample = (t1 - t0).max(0);
            mem.lead.observe(sample);
            samples.push(sample);
            mem.waiting.remove(&p.uid);
        }
    }
    mem.waiting.retain(|uid, _| alive.contains(uid.as_str()));
    samples
}

/// Configured images, then up to `learnedImages` of the most used among running user pods
/// (ties by name), changed at most every `learnedImagesMinChangeSeconds`.
fn prepull_images(
    cfg: &Config,
    pool: &crate::config::PoolConfig,
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
