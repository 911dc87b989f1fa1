//! The controller's config file (YAML, camelCase keys, durations in seconds, unknown keys
//! rejected) and its validation. Every error names the field and says how to fix it; the
//! binary exits 2 on any of them, because a controller that starts with a wrong pool keeps
//! warm seats nobody can use, or none at all.

use crate::resources::{ResourceMap, ResourceMapError};
use hubpack_core::headroom::{
    HeadroomError, placeholder_request, seats_per_placeholder, validate_placeholder,
};
use hubpack_core::model::Resources;
use hubpack_kube::leader::{InvalidElection, LeaderElectionConfig};
use hubpack_kube::process::{self, LoadError};
use k8s_openapi::api::core::v1::{Affinity, Toleration};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

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

fn invalid<T>(
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
}

impl Default for PlaceholdersConfig {
    fn default() -> Self {
        PlaceholdersConfig {
            priority_class_name: "hubpack-placeholder".into(),
            priority: -10,
            image: "registry.k8s.io/pause:3.10".into(),
            scale_down_after_seconds: 600.0,
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

/// One scheduled event: `start` (one-off, RFC 3339) or `schedule` (cron, in `timeZone`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventConfig {
    pub name: String,
    /// The pool whose users arrive.
    pub pool: String,
    /// One-off: an RFC 3339 time with offset, e.g. `2026-12-01T09:00:00+01:00`.
    #[serde(default)]
    pub start: Option<String>,
    /// Recurring: a cron expression of 5 fields, e.g. `0 9 * * MON-FRI`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule`, e.g. `Europe/Berlin`.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// Users expected to arrive.
    pub users: f64,
    /// They arrive uniformly over this long from the start.
    #[serde(default = "default_arrival_window")]
    pub arrival_window_seconds: f64,
    /// How long the event lasts (informational for `plan`; arrivals use the window).
    #[serde(default)]
    pub duration_seconds: Option<f64>,
}

fn utc() -> String {
    "UTC".into()
}

fn default_arrival_window() -> f64 {
    600.0
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarConfig {
    pub name: String,
    pub pool: String,
    /// An `http(s)://` URL of an .ics feed (one without a token in it: see `url_file`).
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the feed's `http(s)://` URL, read again on every refresh: a Secret key
    /// mounted into the pod (the chart's `urlSecret`), so a URL that carries a token is never
    /// in the config, the logs or the controller's RBAC.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// A local .ics file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Users per calendar event unless its summary or description says `users: N`.
    pub default_users: f64,
    #[serde(default = "default_arrival_window")]
    pub arrival_window_seconds: f64,
    /// Time zone of floating times (no TZID, no Z) and all-day events.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// When users of an all-day event arrive, local time (`HH:MM` in `timeZone`): a day-long
    /// exam does not fill the hub at midnight.
    #[serde(default = "default_all_day_arrival")]
    pub all_day_arrival: String,
    #[serde(default = "default_refresh")]
    pub refresh_seconds: f64,
}

fn default_all_day_arrival() -> String {
    "09:00".into()
}

/// `HH:MM` (24 h) as (hour, minute).
pub fn parse_hh_mm(text: &str) -> Option<(i8, i8)> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m) && text.trim().len() == 5).then_some((h, m))
}

fn default_refresh() -> f64 {
    300.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EventConfigMapsConfig {
    /// Watch ConfigMaps labelled `hubpack.io/events` in the controller's namespace: each
    /// `data` value is a YAML list of events (the `events` format), picked up live.
    pub enabled: bool,
}

impl Default for EventConfigMapsConfig {
    fn default() -> Self {
        EventConfigMapsConfig { enabled: true }
    }
}

/// `usersPerPlaceholder`: `auto` (what fits a fresh node) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AutoOrNumber")]
pub enum UsersPerPlaceholder {
    Auto,
    Fixed(u32),
}

/// `lead`: `auto` (learned) or seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "AutoOrNumber")]
pub enum Lead {
    Auto,
    Seconds(f64),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AutoOrNumber {
    Number(f64),
    Text(String),
}

impl TryFrom<AutoOrNumber> for UsersPerPlaceholder {
    type Error = String;
    fn try_from(v: AutoOrNumber) -> Result<Self, String> {
        match v {
            AutoOrNumber::Text(s) if s == "auto" => Ok(UsersPerPlaceholder::Auto),
            AutoOrNumber::Number(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
                Ok(UsersPerPlaceholder::Fixed(n as u32))
            }
            _ => Err("usersPerPlaceholder must be `auto` or a whole number ≥ 1".into()),
        }
    }
}

impl TryFrom<AutoOrNumber> for Lead {
    type Error = String;
    fn try_from(v: AutoOrNumber) -> Result<Self, String> {
        match v {
            AutoOrNumber::Text(s) if s == "auto" => Ok(Lead::Auto),
            AutoOrNumber::Number(n) if n > 0.0 && n.is_finite() => Ok(Lead::Seconds(n)),
            _ => Err("lead must be `auto` or a number of seconds > 0".into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolConfig {
    /// Used in object names (`hubpack-placeholder-<name>`): a DNS label.
    pub name: String,
    /// The user pods' node selector; placeholders and pre-pullers get the same.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// The user pods' affinity (Kubernetes form), copied to placeholders.
    #[serde(default)]
    pub affinity: Option<Affinity>,
    /// Every node of the cluster may take this pool's users: required when the pool has
    /// neither a `nodeSelector` nor a required node affinity (otherwise refused, since
    /// seats on the hub's core nodes or another pool's nodes would be counted as warm).
    #[serde(default)]
    pub all_nodes: bool,
    /// The user pods' tolerations, copied to placeholders and pre-pullers.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Extra labels that tell this pool's user pods from other pools' (all user pods when
    /// empty; set it when there are several pools).
    #[serde(default)]
    pub user_selector: BTreeMap<String, String>,
    /// One user's request, e.g. `{cpu: 500m, memory: 2Gi}`.
    pub per_user: ResourceMap,
    #[serde(default = "auto_users")]
    pub users_per_placeholder: UsersPerPlaceholder,
    /// A new node of this pool: what the autoscaler's node template gives.
    pub fresh_node: FreshNodeConfig,
    #[serde(default)]
    pub headroom: HeadroomSettings,
    #[serde(default = "auto_lead")]
    pub lead: Lead,
    /// Images to pre-pull (plus the most used among running user pods).
    #[serde(default)]
    pub images: Vec<String>,
    /// Split the pool per zone: one Deployment per zone, the forecast shared evenly.
    #[serde(default)]
    pub zones: Option<ZoneSplit>,
}

fn auto_users() -> UsersPerPlaceholder {
    UsersPerPlaceholder::Auto
}

fn auto_lead() -> Lead {
    Lead::Auto
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreshNodeConfig {
    /// `status.allocatable` of a new node, e.g. `{cpu: "4", memory: 16Gi, pods: "110"}`.
    pub allocatable: ResourceMap,
    /// Sum of the requests of every DaemonSet pod on such a node, other than the
    /// pre-puller (added by the controller), `pods` included.
    #[serde(default)]
    pub daemon_sets: ResourceMap,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HeadroomSettings {
    pub min_users: f64,
    pub max_users: f64,
    /// H = μ + z·√μ; 1.64 ≈ the 95th percentile.
    pub z: f64,
}

impl Default for HeadroomSettings {
    fn default() -> Self {
        HeadroomSettings {
            min_users: 0.0,
            max_users: 10_000.0,
            z: 1.64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneSplit {
    #[serde(default = "zone_key")]
    pub key: String,
    pub values: Vec<String>,
}

fn zone_key() -> String {
    "topology.kubernetes.io/zone".into()
}

/// The pre-puller pod's request per container (pause and each no-op init container): small
/// and known, so N can leave room for it on a fresh node.
pub fn prepuller_request() -> Resources {
    Resources::new(1, 8 << 20).with_pods(1)
}

/// A pool's sizes, resolved from its config at start.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSizes {
    pub per_user: Resources,
    pub allocatable: Resources,
    /// Every DaemonSet on a fresh node, the pre-puller included.
    pub daemonsets: Resources,
    /// N.
    pub seats_each: i64,
    /// One placeholder's request: N × per-user, one pod slot.
    pub placeholder_request: Resources,
}

impl PoolConfig {
    /// Resolves the pool's sizes; the error names the field and the fix.
    pub fn sizes(&self, index: usize, prepuller: bool) -> Result<PoolSizes, ConfigError> {
        let at = |f: &str| format!("pools[{index}] ({}).{f}", self.name);
        let map_err = |f: &str, e: ResourceMapError| ConfigError::Invalid {
            field: at(f),
            problem: e.to_string(),
            fix: "write Kubernetes quantities, e.g. {cpu: 500m, memory: 2Gi}".into(),
        };
        let mut per_user = self
            .per_user
            .to_resources()
            .map_err(|e| map_err("perUser", e))?;
        if per_user.cpu_milli <= 0 && per_user.memory <= 0 {
            return invalid(
                at("perUser"),
                "requests neither cpu nor memory",
                "give the user pods' request, e.g. {cpu: 500m, memory: 2Gi}",
            );
        }
        per_user.pods = 1;
        let allocatable = self
            .fresh_node
            .allocatable
            .to_resources()
            .map_err(|e| map_err("freshNode.allocatable", e))?;
        if allocatable.pods <= 0 {
            return invalid(
                at("freshNode.allocatable.pods"),
                "is missing or 0",
                "give the node's pod capacity, e.g. pods: \"110\"",
            );
        }
        let mut daemonsets = self
            .fresh_node
            .daemon_sets
            .to_resources()
            .map_err(|e| map_err("freshNode.daemonSets", e))?;
        if prepuller {
            daemonsets = &daemonsets + &prepuller_request();
        }
        let misfit = |e: HeadroomError, f: &str, fix: &str| ConfigError::Invalid {
            field: at(f),
            problem: e.to_string(),
            fix: fix.into(),
        };
        let seats_each = match self.users_per_placeholder {
            UsersPerPlaceholder::Auto => {
                seats_per_placeholder(&allocatable, &daemonsets, &per_user).map_err(|e| {
                    misfit(
                        e,
                        "perUser",
                        "lower the per-user request or use a larger node type",
                    )
                })?
            }
            UsersPerPlaceholder::Fixed(n) => i64::from(n),
        };
        let placeholder_request = placeholder_request(&per_user, seats_each);
        validate_placeholder(&allocatable, &daemonsets, &placeholder_request).map_err(|e| {
            misfit(
                e,
                "usersPerPlaceholder",
                "use `auto` or a smaller number, so one placeholder fits a new node",
            )
        })?;
        Ok(PoolSizes {
            per_user,
            allocatable,
            daemonsets,
            seats_each,
            placeholder_request,
        })
    }

    /// The placement keys: one per zone when split, else the pool alone.
    pub fn zone_values(&self) -> Vec<Option<String>> {
        match &self.zones {
            Some(z) if !z.values.is_empty() => z.values.iter().cloned().map(Some).collect(),
            _ => vec![None],
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
            p.sizes(i, self.pre_puller.enabled)?;
        }
        Ok(())
    }
}

impl EventConfig {
    pub fn validate(&self, at: &str, pools: &BTreeSet<&str>) -> Result<(), ConfigError> {
        let f = |x: &str| format!("{at}.{x}");
        nonempty(&f("name"), &self.name)?;
        known_pool(&f("pool"), &self.pool, pools)?;
        match (&self.start, &self.schedule) {
            (Some(_), Some(_)) | (None, None) => {
                return invalid(
                    f("start"),
                    "and `schedule`: exactly one must be set",
                    "use start: 2026-12-01T09:00:00+01:00 for a one-off event, or schedule: \"0 9 * * MON\" for a recurring one",
                );
            }
            _ => {}
        }
        if let Err(e) = crate::sources::schedule::EventSchedule::parse(
            self.start.as_deref(),
            self.schedule.as_deref(),
            &self.time_zone,
        ) {
            return invalid(f(e.field), e.message, e.fix);
        }
        if !(self.users >= 0.0 && self.users.is_finite()) {
            return invalid(
                f("users"),
                format!("({}) must be ≥ 0", self.users),
                "use e.g. 30",
            );
        }
        positive(&f("arrivalWindowSeconds"), self.arrival_window_seconds)?;
        if let Some(d) = self.duration_seconds {
            non_negative(&f("durationSeconds"), d)?;
        }
        Ok(())
    }
}

impl CalendarConfig {
    fn validate(&self, at: &str, pools: &BTreeSet<&str>) -> Result<(), ConfigError> {
        let f = |x: &str| format!("{at}.{x}");
        nonempty(&f("name"), &self.name)?;
        known_pool(&f("pool"), &self.pool, pools)?;
        match (&self.url, &self.url_file, &self.file) {
            (Some(u), None, None) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return invalid(
                        f("url"),
                        format!("({u}) is not an http(s) URL"),
                        "use https://…/calendar.ics, or `file:` for a local file",
                    );
                }
            }
            (None, Some(_), None) | (None, None, Some(_)) => {}
            _ => {
                return invalid(
                    f("url"),
                    ", `urlFile` and `file`: exactly one must be set",
                    "give the feed's URL, a file holding it (a mounted Secret key), or a local .ics path",
                );
            }
        }
        if !(self.default_users >= 0.0 && self.default_users.is_finite()) {
            return invalid(
                f("defaultUsers"),
                format!("({}) must be ≥ 0", self.default_users),
                "use e.g. 30",
            );
        }
        positive(&f("arrivalWindowSeconds"), self.arrival_window_seconds)?;
        positive(&f("refreshSeconds"), self.refresh_seconds)?;
        if parse_hh_mm(&self.all_day_arrival).is_none() {
            return invalid(
                f("allDayArrival"),
                format!("({:?}) is not a local time HH:MM", self.all_day_arrival),
                "use e.g. \"09:00\"",
            );
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return invalid(
                f("timeZone"),
                format!("({}) is not a known IANA time zone", self.time_zone),
                "use e.g. UTC or Europe/Berlin",
            );
        }
        Ok(())
    }
}

fn known_pool(field: &str, pool: &str, pools: &BTreeSet<&str>) -> Result<(), ConfigError> {
    if pools.contains(pool) {
        return Ok(());
    }
    invalid(
        field,
        format!("({pool}) names no configured pool"),
        format!(
            "use one of: {}",
            pools.iter().copied().collect::<Vec<_>>().join(", ")
        ),
    )
}

fn positive(field: &str, v: f64) -> Result<(), ConfigError> {
    if v > 0.0 && v.is_finite() {
        return Ok(());
    }
    invalid(
        field,
        format!("({v}) must be a positive number"),
        "use e.g. 10",
    )
}

fn non_negative(field: &str, v: f64) -> Result<(), ConfigError> {
    if v >= 0.0 && v.is_finite() {
        return Ok(());
    }
    invalid(field, format!("({v}) must be ≥ 0"), "use e.g. 600")
}

fn nonempty(field: &str, v: &str) -> Result<(), ConfigError> {
    if !v.trim().is_empty() {
        return Ok(());
    }
    invalid(field, "is empty", "give a value (see config.example.yaml)")
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && edge(s.as_bytes().first())
        && edge(s.as_bytes().last())
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const POOL: &str = "pools:\n\
        - name: default\n\
        \x20 allNodes: true\n\
        \x20 perUser: {cpu: 500m, memory: 2Gi}\n\
        \x20 freshNode: {allocatable: {cpu: \"4\", memory: 16Gi, pods: \"110\"}}\n";

    fn parse(yaml: &str) -> Result<Config, ConfigError> {
        Config::parse(yaml, "t")
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.scheduler_name, "hubpack-scheduler");
        assert_eq!(c.placeholders.priority, -10);
        assert_eq!(c.pre_puller.priority, -5);
        assert_eq!(c.leader_election.lease_name, "hubpack-placeholder-ctl");
        assert!(c.pools.is_empty());
        let c = parse("leaderElection: {leaseDurationSeconds: 20}").unwrap();
        assert_eq!(c.leader_election.lease_name, "hubpack-placeholder-ctl");
        assert_eq!(c.leader_election.lease_duration_seconds, 20);
    }

    #[test]
    fn auto_n_is_what_fits_a_fresh_node_after_daemonsets() {
        let c = parse(POOL).unwrap();
        let s = c.pool_sizes().unwrap();
        // cpu: (4000 - 1) / 500 = 7; memory: (16Gi - 8Mi) / 2Gi = 7.
        assert_eq!(s[0].seats_each, 7);
        assert_eq!(s[0].placeholder_request.cpu_milli, 3500);
        assert_eq!(s[0].placeholder_request.pods, 1);
        assert_eq!(c.pools[0].lead, Lead::Auto);
    }

    #[test]
    fn a_fixed_n_that_does_not_fit_is_refused_naming_the_pool() {
        let yaml = format!("{POOL}  usersPerPlaceholder: 8\n");
        match parse(&yaml) {
            Err(ConfigError::Invalid { field, .. }) => {
                assert_eq!(field, "pools[0] (default).usersPerPlaceholder")
            }
            other => panic!("{other:?}"),
        }
        let ok = format!("{POOL}  usersPerPlaceholder: 7\n  lead: 300\n");
        let c = parse(&ok).unwrap();
        assert_eq!(c.pools[0].lead, Lead::Seconds(300.0));
    }

    #[test]
    fn unknown_fields_are_rejected_by_name() {
        let e = parse("schedulerNmae: x\n").unwrap_err();
        assert!(e.to_string().contains("schedulerNmae"), "{e}");
        let e = parse(&format!("{POOL}  headroom: {{zz: 1}}\n")).unwrap_err();
        assert!(e.to_string().contains("zz"), "{e}");
        let e = parse(&format!("{POOL}  lead: soon\n")).unwrap_err();
        assert!(e.to_string().contains("lead must be"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_field_and_the_fix() {
        let ev = |s: &str| format!("{POOL}events:\n- {{name: a, pool: default, users: 10, {s}}}\n");
        let cases = [
            (
                "placeholders: {priority: -20}".to_string(),
                "placeholders.priority",
            ),
            ("prePuller: {priority: -12}".into(), "prePuller.priority"),
            ("leadTime: {quantile: 1.5}".into(), "leadTime.quantile"),
            (
                "leaderElection: {renewGraceSeconds: 20}".into(),
                "leaderElection.renewGraceSeconds",
            ),
            (
                "leaderElection: {leaseDurationSeconds: 2, renewGraceSeconds: 1}".into(),
                "leaderElection.leaseDurationSeconds",
            ),
            (
                format!("{POOL}  headroom: {{minUsers: 5, maxUsers: 1}}\n"),
                "pools[0].headroom.maxUsers",
            ),
            (POOL.replace("default", "Bad_Name"), "pools[0].name"),
            (
                ev("start: \"2026-12-01T09:00:00Z\", schedule: \"0 9 * * *\""),
                "events[0].start",
            ),
            (ev("start: tomorrow"), "events[0].start"),
            (ev("schedule: \"61 9 * * *\""), "events[0].schedule"),
            (
                ev("schedule: \"0 9 * * *\", timeZone: Mars/Olympus"),
                "events[0].timeZone",
            ),
            (
                format!(
                    "{POOL}events:\n- {{name: a, pool: gpu, users: 1, start: \"2026-12-01T09:00:00Z\"}}\n"
                ),
                "events[0].pool",
            ),
            (
                format!("{POOL}calendars:\n- {{name: c, pool: default, defaultUsers: 1}}\n"),
                "calendars[0].url",
            ),
            (POOL.replace("500m", "lots"), "pools[0] (default).perUser"),
            (
                format!(
                    "{POOL}calendars:\n- {{name: c, pool: default, defaultUsers: 1, file: c.ics, allDayArrival: \"9am\"}}\n"
                ),
                "calendars[0].allDayArrival",
            ),
            ("instance: \"-hub\"".into(), "instance"),
            (
                POOL.replace("  allNodes: true\n", ""),
                "pools[0].nodeSelector",
            ),
            ("ownerConfigMap: Not_A_Name".into(), "ownerConfigMap"),
        ];
        for (yaml, field) in cases {
            match parse(&yaml) {
                Err(ConfigError::Invalid { field: f, fix, .. }) => {
                    assert_eq!(f, field, "{yaml}");
                    assert!(!fix.is_empty());
                }
                other => panic!("{yaml}: expected an Invalid error, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_pool_needs_a_selector_a_required_affinity_or_all_nodes() {
        let bare = POOL.replace("  allNodes: true\n", "");
        let e = parse(&bare).unwrap_err().to_string();
        assert!(
            e.contains("pools[0].nodeSelector") && e.contains("allNodes: true"),
            "{e}"
        );
        parse(&format!("{bare}  nodeSelector: {{pool: user}}\n")).unwrap();
        let required = "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [user]}]}]}}}\n";
        parse(&format!("{bare}{required}")).unwrap();
        let preferred = "  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, preference: {matchExpressions: [{key: pool, operator: In, values: [user]}]}}]}}\n";
        assert!(parse(&format!("{bare}{preferred}")).is_err());
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../config.example.yaml");
        let c = parse(text).unwrap();
        assert!(!c.pools.is_empty());
        assert!(!c.events.is_empty());
        c.pool_sizes().unwrap();
    }
}
