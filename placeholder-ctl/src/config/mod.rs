//! The controller's config file (YAML, camelCase keys, durations in seconds, unknown keys
//! rejected) and its validation. Every error names the field and says how to fix it; the
//! binary exits 2 on any of them, because a controller that starts with a wrong pool keeps
//! warm seats nobody can use, or none at all.

use hubpack_kube::leader::{InvalidElection, LeaderElectionConfig};
use hubpack_kube::process::{self, LoadError};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use thiserror::Error;

mod checkpoint;
mod checks;
mod events;
mod pool;
mod pool_background;

pub use checkpoint::CheckpointConfig;
use checks::*;
pub use events::*;
pub use pool::*;
pub use pool_background::PoolBackgroundConfig;

#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read or is not a config (names the file).
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("config field `{field}` {problem}; fix: {fix}")]
    Invalid {
        field: String,
        problem: String,
        fix: String,
    },
}

impl From<InvalidElection> for ConfigError {
    fn from(e: InvalidElection) -> Self {
        ConfigError::Invalid {
            field: e.field,
            problem: e.problem,
            fix: e.fix.into(),
        }
    }
}

pub(super) fn invalid<T>(
    field: impl Into<String>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
        fix: fix.into(),
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Where placeholders, pre-pullers, the Lease and event ConfigMaps live. Defaults to
    /// `$POD_NAMESPACE`, else `default`.
    pub namespace: Option<String>,
    /// The `app.kubernetes.io/instance` label on every object the controller creates (the
    /// chart sets the release name): with `app.kubernetes.io/managed-by:
    /// hubpack-placeholder-ctl` it marks the objects this controller owns, and deletes
    /// when no configured pool wants them. Unset: objects without the label are its own.
    pub instance: Option<String>,
    /// A ConfigMap in `namespace` (the chart's config ConfigMap) that the placeholder
    /// Deployments and pre-pull DaemonSets name as their owner, so deleting it (`helm
    /// uninstall`) garbage-collects them. Unset: they have no owner.
    pub owner_config_map: Option<String>,
    /// `spec.schedulerName` of the placeholders: hubpack-scheduler places them.
    pub scheduler_name: String,
    /// How often the forecast and targets are recomputed (also on every relevant change).
    pub reconcile_interval_seconds: f64,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics_address: SocketAddr,
    /// The Lease's namespace defaults to the controller's.
    #[serde(deserialize_with = "leader_election")]
    pub leader_election: LeaderElectionConfig,
    pub user_pods: UserPodsConfig,
    pub placeholders: PlaceholdersConfig,
    pub pre_puller: PrePullerConfig,
    pub lead_time: LeadTimeConfig,
    pub background: BackgroundConfig,
    /// The learned state kept across restarts.
    pub checkpoint: CheckpointConfig,
    /// Scheduled events: one-off (`start`) or recurring (`schedule`, cron).
    pub events: Vec<EventConfig>,
    /// iCalendar feeds (files or URLs).
    pub calendars: Vec<CalendarConfig>,
    pub event_config_maps: EventConfigMapsConfig,
    /// User pools: one placeholder Deployment and one pre-pull DaemonSet each (per zone
    /// when split).
    pub pools: Vec<PoolConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: None,
            instance: None,
            owner_config_map: None,
            scheduler_name: "hubpack-scheduler".into(),
            reconcile_interval_seconds: 10.0,
            metrics_address: SocketAddr::from(([0, 0, 0, 0], 9091)),
            leader_election: LeaderElectionConfig::named(DEFAULT_LEASE_NAME),
            user_pods: UserPodsConfig::default(),
            placeholders: PlaceholdersConfig::default(),
            pre_puller: PrePullerConfig::default(),
            lead_time: LeadTimeConfig::default(),
            background: BackgroundConfig::default(),
            checkpoint: CheckpointConfig::default(),
            events: Vec::new(),
            calendars: Vec::new(),
            event_config_maps: EventConfigMapsConfig::default(),
            pools: Vec::new(),
        }
    }
}

/// The Lease's name unless `leaderElection.leaseName` says otherwise.
const DEFAULT_LEASE_NAME: &str = "hubpack-placeholder-ctl";

/// `leaderElection`: the shared settings, with this binary's Lease name as the default.
fn leader_election<'de, D>(d: D) -> Result<LeaderElectionConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    LeaderElectionConfig::deserialize_named(d, DEFAULT_LEASE_NAME)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UserPodsConfig {
    /// Labels every user pod carries (z2jh: `component: singleuser-server`). Their
    /// creations are the observed arrivals; their images feed the pre-puller.
    pub selector: BTreeMap<String, String>,
    /// Namespace of the user pods; all namespaces when unset.
    pub namespace: Option<String>,
}

impl Default for UserPodsConfig {
    fn default() -> Self {
        UserPodsConfig {
            selector: [("component".to_string(), "singleuser-server".to_string())].into(),
            namespace: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PlaceholdersConfig {
    pub priority_class_name: String,
    /// At most −10: above the autoscaler's expendable cutoff (−10), so placeholders trigger
    /// scale-up, and below every user.
    pub priority: i32,
    pub image: String,
    /// A lower target is applied only after it has held this long (each recreated
    /// placeholder is a scale-up that resets the autoscaler's scale-down delay).
    pub scale_down_after_seconds: f64,
    /// `backend: capacityBuffer` pools: a raise of the buffer is written only once it has
    /// been wanted this long (hubpack-scheduler's placeholder grace, which a new placeholder
    /// waits before the autoscaler sees it); drops are written at once.
    pub buffer_raise_grace_seconds: f64,
}

impl Default for PlaceholdersConfig {
    fn default() -> Self {
        PlaceholdersConfig {
            priority_class_name: "hubpack-placeholder".into(),
            priority: -10,
            image: "registry.k8s.io/pause:3.10".into(),
            scale_down_after_seconds: 600.0,
            buffer_raise_grace_seconds: hubpack_core::headroom::buffer::RAISE_GRACE_MS as f64
                / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PrePullerConfig {
    pub enabled: bool,
    pub priority_class_name: String,
    /// Above placeholders (−10), below users.
    pub priority: i32,
    /// The main container, kept running so the pod's readiness says "images present".
    pub image: String,
    /// The no-op each image's init container runs (the image must contain it).
    pub command: Vec<String>,
    /// How many of the most used images among running user pods are added to the pool's
    /// configured images.
    pub learned_images: usize,
    /// The learned image list changes at most this often: a change rolls every node's puller.
    pub learned_images_min_change_seconds: f64,
}

impl Default for PrePullerConfig {
    fn default() -> Self {
        PrePullerConfig {
            enabled: true,
            priority_class_name: "hubpack-prepuller".into(),
            priority: -5,
            image: "registry.k8s.io/pause:3.10".into(),
            command: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            learned_images: 3,
            learned_images_min_change_seconds: 3600.0,
        }
    }
}

/// How `lead: auto` learns: an upper quantile of recent (Unschedulable → node warm)
/// waits plus the reaction time, within bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LeadTimeConfig {
    /// Used by `lead: auto` until `minSamples` waits were observed.
    pub initial_seconds: f64,
    pub quantile: f64,
    pub window_samples: usize,
    pub min_samples: usize,
    /// The controller's own reaction time added to the quantile (the reconcile interval
    /// and the scheduler's placeholder grace).
    pub reaction_seconds: f64,
    pub min_seconds: f64,
    pub max_seconds: f64,
}

impl Default for LeadTimeConfig {
    fn default() -> Self {
        LeadTimeConfig {
            initial_seconds: 600.0,
            quantile: 0.9,
            window_samples: 50,
            min_samples: 5,
            reaction_seconds: 15.0,
            min_seconds: 60.0,
            max_seconds: 3600.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BackgroundConfig {
    /// EWMA half-life of the user-pod creation rate.
    pub half_life_seconds: f64,
    /// Learn a per-hour-of-week profile from the same counts and shape the background by it.
    pub weekly_profile: bool,
    /// The live observed rate (over this window) can only raise the forecast.
    pub observed_window_seconds: f64,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        BackgroundConfig {
            half_life_seconds: 1800.0,
            weekly_profile: false,
            observed_window_seconds: 300.0,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        process::load_yaml(path, Config::validate)
    }

    /// Parses and validates. An empty document is all defaults (no pools: nothing to do).
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        process::parse_yaml(text, origin, Config::validate)
    }

    pub fn namespace(&self) -> String {
        self.namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into())
    }

    pub fn lease_namespace(&self) -> String {
        self.leader_election
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace())
    }

    /// Every pool's sizes, in config order.
    pub fn pool_sizes(&self) -> Result<Vec<PoolSizes>, ConfigError> {
        self.pools
            .iter()
            .enumerate()
            .map(|(i, p)| p.sizes(i, self.pre_puller.enabled))
            .collect()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("reconcileIntervalSeconds", self.reconcile_interval_seconds)?;
        if self.reconcile_interval_seconds > 20.0 {
            return invalid(
                "reconcileIntervalSeconds",
                format!(
                    "({}) is above 20: /healthz reports a loop idle for 30 s as stuck",
                    self.reconcile_interval_seconds
                ),
                "use at most 20, e.g. 10",
            );
        }
        if let Some(i) = &self.instance
            && !is_label_value(i)
        {
            return invalid(
                "instance",
                format!("({i:?}) is not a label value (at most 63 letters, digits, '-', '_', '.')"),
                "use the Helm release name, e.g. hub",
            );
        }
        if let Some(cm) = &self.owner_config_map
            && !is_dns_subdomain(cm)
        {
            return invalid(
                "ownerConfigMap",
                format!("({cm:?}) is not a ConfigMap name"),
                "name the chart's controller ConfigMap, e.g. hubpack-placeholder-ctl, or drop it",
            );
        }
        if self.scheduler_name.trim().is_empty() {
            return invalid(
                "schedulerName",
                "is empty",
                "set it to hubpack-scheduler's name, e.g. hubpack-scheduler",
            );
        }
        self.leader_election.validate("leaderElection")?;
        if self.user_pods.selector.is_empty() {
            return invalid(
                "userPods.selector",
                "is empty (it would count every pod as a user)",
                "give the user pods' labels, e.g. {component: singleuser-server}",
            );
        }
        let ph = &self.placeholders;
        if ph.priority > -10 {
            return invalid(
                "placeholders.priority",
                format!(
                    "({}) is above -10: users of priority 0 could not always preempt it and it outranks the pre-puller",
                    ph.priority
                ),
                "use -10 (the autoscaler ignores pods below -10, so not lower either)",
            );
        }
        if ph.priority < -10 {
            return invalid(
                "placeholders.priority",
                format!(
                    "({}) is below the autoscaler's expendable cutoff (-10): it would never scale up for placeholders",
                    ph.priority
                ),
                "use -10",
            );
        }
        nonempty("placeholders.priorityClassName", &ph.priority_class_name)?;
        nonempty("placeholders.image", &ph.image)?;
        non_negative(
            "placeholders.scaleDownAfterSeconds",
            ph.scale_down_after_seconds,
        )?;
        non_negative(
            "placeholders.bufferRaiseGraceSeconds",
            ph.buffer_raise_grace_seconds,
        )?;
        let pp = &self.pre_puller;
        if pp.enabled {
            if !(pp.priority > ph.priority && pp.priority < 0) {
                return invalid(
                    "prePuller.priority",
                    format!(
                        "({}) must be above placeholders.priority ({}) and below 0",
                        pp.priority, ph.priority
                    ),
                    "use -5",
                );
            }
            nonempty("prePuller.priorityClassName", &pp.priority_class_name)?;
            nonempty("prePuller.image", &pp.image)?;
            if pp.command.is_empty() {
                return invalid(
                    "prePuller.command",
                    "is empty",
                    "give a no-op the user images contain, e.g. [/bin/sh, -c, \"true\"]",
                );
            }
            non_negative(
                "prePuller.learnedImagesMinChangeSeconds",
                pp.learned_images_min_change_seconds,
            )?;
        }
        let lt = &self.lead_time;
        positive("leadTime.initialSeconds", lt.initial_seconds)?;
        if !(lt.quantile > 0.0 && lt.quantile <= 1.0) {
            return invalid(
                "leadTime.quantile",
                format!("({}) is not in (0, 1]", lt.quantile),
                "use e.g. 0.9 (p90)",
            );
        }
        if lt.window_samples == 0 || lt.min_samples == 0 || lt.min_samples > lt.window_samples {
            return invalid(
                "leadTime.minSamples",
                format!(
                    "({}) must be ≥ 1 and ≤ leadTime.windowSamples ({})",
                    lt.min_samples, lt.window_samples
                ),
                "use e.g. minSamples: 5, windowSamples: 50",
            );
        }
        non_negative("leadTime.reactionSeconds", lt.reaction_seconds)?;
        positive("leadTime.minSeconds", lt.min_seconds)?;
        if !(lt.max_seconds >= lt.min_seconds && lt.max_seconds.is_finite()) {
            return invalid(
                "leadTime.maxSeconds",
                format!(
                    "({}) is below leadTime.minSeconds ({})",
                    lt.max_seconds, lt.min_seconds
                ),
                "use e.g. minSeconds: 60, maxSeconds: 3600",
            );
        }
        positive(
            "background.halfLifeSeconds",
            self.background.half_life_seconds,
        )?;
        positive(
            "background.observedWindowSeconds",
            self.background.observed_window_seconds,
        )?;
        self.checkpoint.validate()?;
        self.validate_pools()?;
        let pools: BTreeSet<&str> = self.pools.iter().map(|p| p.name.as_str()).collect();
        for (i, e) in self.events.iter().enumerate() {
            e.validate(&format!("events[{i}]"), &pools)?;
        }
        for (i, c) in self.calendars.iter().enumerate() {
            c.validate(&format!("calendars[{i}]"), &pools)?;
        }
        Ok(())
    }

    fn validate_pools(&self) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        for (i, p) in self.pools.iter().enumerate() {
            let at = |f: &str| format!("pools[{i}].{f}");
            if !is_dns_label(&p.name) || p.name.len() > 40 {
                return invalid(
                    at("name"),
                    format!("({:?}) is not a DNS label of at most 40 characters", p.name),
                    "use lowercase letters, digits and '-', e.g. default or gpu",
                );
            }
            if !seen.insert(p.name.as_str()) {
                return invalid(
                    at("name"),
                    format!("({}) is used by two pools", p.name),
                    "give each pool its own name",
                );
            }
            let required_affinity = p
                .affinity
                .as_ref()
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .is_some_and(|r| !r.node_selector_terms.is_empty());
            if p.node_selector.is_empty() && !required_affinity && !p.all_nodes {
                return invalid(
                    at("nodeSelector"),
                    "is empty and there is no required node affinity: every node of the cluster (the hub's core nodes, other pools') would count as this pool's",
                    "give the user nodes' labels, e.g. nodeSelector: {hub.jupyter.org/node-purpose: user}, or set allNodes: true if every node may take these users",
                );
            }
            let h = &p.headroom;
            if !(h.min_users >= 0.0 && h.max_users >= h.min_users && h.max_users.is_finite()) {
                return invalid(
                    at("headroom.maxUsers"),
                    format!(
                        "({}) must be finite and ≥ headroom.minUsers ({}) ≥ 0",
                        h.max_users, h.min_users
                    ),
                    "use e.g. minUsers: 0, maxUsers: 500",
                );
            }
            if !(h.z >= 0.0 && h.z.is_finite()) {
                return invalid(
                    at("headroom.z"),
                    format!("({}) must be ≥ 0", h.z),
                    "use e.g. 1.64",
                );
            }
            if let Lead::Seconds(s) = p.lead {
                positive(&at("lead"), s)?;
            }
            p.background.validate(&at("background"))?;
            if let Some(z) = &p.zones {
                if z.values.is_empty() || z.key.trim().is_empty() {
                    return invalid(
                        at("zones"),
                        "has no key or no values",
                        "list the zones, e.g. {values: [us-east-1a, us-east-1b]}, or drop zones",
                    );
                }
                if let Some(bad) = z.values.iter().find(|v| !is_dns_label(v)) {
                    return invalid(
                        at("zones.values"),
                        format!("({bad:?}) is not usable in an object name"),
                        "use the zone names as the node labels carry them",
                    );
                }
            }
            for (j, img) in p.images.iter().enumerate() {
                nonempty(&at(&format!("images[{j}]")), img)?;
            }
            if p.max_nodes == 0 {
                return invalid(
                    at("maxNodes"),
                    "(0) leaves the pool no placeholder at all",
                    format!("use at least 1 (default {DEFAULT_MAX_NODES}), or drop the pool"),
                );
            }
            for (j, secret) in p.image_pull_secrets.iter().enumerate() {
                if !is_dns_subdomain(secret) {
                    return invalid(
                        at(&format!("imagePullSecrets[{j}]")),
                        format!("({secret:?}) is not a Secret name"),
                        "name a Secret of type kubernetes.io/dockerconfigjson in the controller's namespace",
                    );
                }
            }
            p.sizes(i, self.pre_puller.enabled)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
