//! The scenario file (YAML): cluster pools, images, user profiles, hub and autoscaler
//! settings, arrivals and the policy grid to compare. Unknown fields are rejected so a typo
//! is an error naming the field, not a silently ignored setting.

use serde::Deserialize;
use std::path::{Path, PathBuf};

const GIB: f64 = (1u64 << 30) as f64;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("scenario {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Simulated time span; the clock starts on a Monday at 00:00.
    pub duration_h: f64,
    #[serde(default = "default_seeds")]
    pub seeds: u64,
    #[serde(default = "default_price")]
    pub price_per_node_hour: f64,
    pub pools: Vec<PoolSpec>,
    pub images: Vec<ImageSpec>,
    pub profiles: Vec<ProfileSpec>,
    #[serde(default)]
    pub hub: HubSpec,
    #[serde(default)]
    pub autoscaler: AutoscalerSpec,
    pub arrivals: Vec<ArrivalSpec>,
    #[serde(default)]
    pub policies: PolicyGrid,
    #[serde(default)]
    pub predictive: PredictiveSpec,
    /// Sampling interval of timeseries.csv.
    #[serde(default = "default_sample_s")]
    pub sample_s: f64,
}

fn default_seeds() -> u64 {
    20
}
fn default_price() -> f64 {
    1.0
}
fn default_sample_s() -> f64 {
    60.0
}

/// A resource amount in human units.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// Cores (0.5 = 500m).
    pub cpu: f64,
    pub memory_gib: f64,
    #[serde(default)]
    pub pods: i64,
}

impl ResourceSpec {
    pub fn to_resources(&self) -> hubpack_core::model::Resources {
        hubpack_core::model::Resources::new(
            (self.cpu * 1000.0).round() as i64,
            (self.memory_gib * GIB).round() as i64,
        )
        .with_pods(self.pods)
    }
}

/// A log-normal duration: median and shape σ (0 = always the median).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DurationDist {
    pub median_s: f64,
    #[serde(default)]
    pub sigma: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub name: String,
    /// Node allocatable, pods included.
    pub allocatable: ResourceSpec,
    /// Every DaemonSet pod on a node (the pre-puller included).
    pub daemonset_overhead: ResourceSpec,
    #[serde(default)]
    pub min_nodes: usize,
    pub max_nodes: usize,
    /// Nodes present, Ready and with every image, at time 0.
    #[serde(default)]
    pub initial_nodes: usize,
    /// From the autoscaler's request to a Ready node.
    pub boot: DurationDist,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub name: String,
    pub pull: DurationDist,
    #[serde(default = "default_image_mb")]
    pub size_mb: f64,
}

fn default_image_mb() -> f64 {
    2000.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub name: String,
    pub request: ResourceSpec,
    pub image: String,
    pub pool: String,
    /// Relative share of generated arrivals that pick this profile.
    #[serde(default = "default_weight")]
    pub weight: f64,
}

fn default_weight() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpec {
    /// `c.JupyterHub.concurrent_spawn_limit` (z2jh `hub.concurrentSpawnLimit`).
    #[serde(default = "default_spawn_limit")]
    pub concurrent_spawn_limit: usize,
    /// A user refused by the spawn limit tries again after this long.
    #[serde(default = "default_retry_s")]
    pub spawn_retry_s: f64,
    /// `singleuser.startTimeout`: a server not ready by then is a failed spawn.
    #[serde(default = "default_start_timeout")]
    pub start_timeout_s: f64,
    /// KubeSpawner's work before the pod exists (API calls, PVC).
    #[serde(default = "default_spawn_overhead")]
    pub spawn_overhead_s: f64,
    /// Container start once the image is present.
    #[serde(default = "default_container_start")]
    pub container_start_s: f64,
    pub session: DurationDist,
    /// Spawn attempts a user makes (after a timeout) before giving up.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_cull_timeout")]
    pub cull_timeout_min: f64,
    #[serde(default = "default_cull_interval")]
    pub cull_interval_min: f64,
}

fn default_spawn_limit() -> usize {
    64
}
fn default_retry_s() -> f64 {
    10.0
}
fn default_start_timeout() -> f64 {
    300.0
}
fn default_spawn_overhead() -> f64 {
    2.0
}
fn default_container_start() -> f64 {
    3.0
}
fn default_attempts() -> u32 {
    3
}
fn default_cull_timeout() -> f64 {
    60.0
}
fn default_cull_interval() -> f64 {
    5.0
}

impl Default for HubSpec {
    fn default() -> Self {
        HubSpec {
            concurrent_spawn_limit: default_spawn_limit(),
            spawn_retry_s: default_retry_s(),
            start_timeout_s: default_start_timeout(),
            spawn_overhead_s: default_spawn_overhead(),
            container_start_s: default_container_start(),
            session: DurationDist {
                median_s: 3600.0,
                sigma: 0.6,
            },
            max_attempts: default_attempts(),
            cull_timeout_min: default_cull_timeout(),
            cull_interval_min: default_cull_interval(),
        }
    }
}

/// cluster-autoscaler flags (defaults as upstream: reference/sched.md §3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalerSpec {
    #[serde(default = "default_scan")]
    pub scan_interval_s: f64,
    #[serde(default = "default_ten")]
    pub scale_down_unneeded_min: f64,
    #[serde(default = "default_ten")]
    pub scale_down_delay_after_add_min: f64,
    #[serde(default = "default_util")]
    pub scale_down_utilization_threshold: f64,
    #[serde(default = "default_cutoff")]
    pub expendable_pods_priority_cutoff: i32,
    /// Empty nodes deleted per scan at most.
    #[serde(default = "default_bulk")]
    pub max_empty_bulk_delete: usize,
    #[serde(default = "default_true")]
    pub scale_down_enabled: bool,
}

fn default_scan() -> f64 {
    10.0
}
fn default_ten() -> f64 {
    10.0
}
fn default_util() -> f64 {
    0.5
}
fn default_cutoff() -> i32 {
    -10
}
fn default_bulk() -> usize {
    10
}
fn default_true() -> bool {
    true
}

impl Default for AutoscalerSpec {
    fn default() -> Self {
        AutoscalerSpec {
            scan_interval_s: default_scan(),
            scale_down_unneeded_min: default_ten(),
            scale_down_delay_after_add_min: default_ten(),
            scale_down_utilization_threshold: default_util(),
            expendable_pods_priority_cutoff: default_cutoff(),
            max_empty_bulk_delete: default_bulk(),
            scale_down_enabled: true,
        }
    }
}

/// Where users come from. Generated users pick a profile by weight unless one is named.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ArrivalSpec {
    /// Poisson arrivals, optionally shaped by time of day and weekends.
    Poisson(PoissonSpec),
    /// `users` arriving uniformly at random over `over_min`, once, `at_h` hours after start.
    Burst(BurstSpec),
    /// A burst repeated on weekdays (0 = Monday) at `at_h` hours after midnight.
    Weekly(WeeklySpec),
    /// Replay a CSV: `arrival_s,duration_s,profile` (header line required).
    Trace(TraceSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoissonSpec {
    pub rate_per_h: f64,
    /// Rate × (1 + amplitude·cos(2π(hour − peak_h)/24)); amplitude in [0, 1].
    #[serde(default)]
    pub diurnal_amplitude: f64,
    #[serde(default = "default_peak")]
    pub peak_h: f64,
    /// Rate multiplier on Saturday and Sunday.
    #[serde(default = "default_one")]
    pub weekend_factor: f64,
    #[serde(default)]
    pub profile: Option<String>,
}

fn default_peak() -> f64 {
    14.0
}
fn default_one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstSpec {
    pub at_h: f64,
    pub users: usize,
    pub over_min: f64,
    #[serde(default)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklySpec {
    pub days: Vec<u8>,
    pub at_h: f64,
    pub users: usize,
    pub over_min: f64,
    #[serde(default)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// Relative to the scenario file.
    pub csv: PathBuf,
}

/// The grid `compare` runs: every scheduler × every placeholder mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyGrid {
    #[serde(default = "default_schedulers")]
    pub schedulers: Vec<SchedulerKind>,
    #[serde(default = "default_placeholders")]
    pub placeholders: Vec<PlaceholderMode>,
    /// The continuous image pre-puller DaemonSet: `true`, `false`, or `[true, false]` to
    /// compare both.
    #[serde(default)]
    pub prepull: PrepullChoice,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PrepullChoice {
    One(bool),
    Each(Vec<bool>),
}

impl Default for PrepullChoice {
    fn default() -> Self {
        PrepullChoice::One(true)
    }
}

impl PrepullChoice {
    pub fn values(&self) -> Vec<bool> {
        match self {
            PrepullChoice::One(b) => vec![*b],
            PrepullChoice::Each(v) => v.clone(),
        }
    }
}

fn default_schedulers() -> Vec<SchedulerKind> {
    vec![
        SchedulerKind::Spread,
        SchedulerKind::Z2jh,
        SchedulerKind::Hubpack,
    ]
}
fn default_placeholders() -> Vec<PlaceholderMode> {
    vec![
        PlaceholderMode::None,
        PlaceholderMode::PerUser { k: 30 },
        PlaceholderMode::NUser { n: None, k: 1 },
        PlaceholderMode::Predictive,
    ]
}

impl Default for PolicyGrid {
    fn default() -> Self {
        PolicyGrid {
            schedulers: default_schedulers(),
            placeholders: default_placeholders(),
            prepull: PrepullChoice::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// kube-scheduler defaults: LeastAllocated.
    Spread,
    /// kube-scheduler as z2jh configures it: MostAllocated + ImageLocality.
    Z2jh,
    /// hubpack-core's warm-first packing.
    Hubpack,
}

impl SchedulerKind {
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Spread => "spread",
            SchedulerKind::Z2jh => "z2jh",
            SchedulerKind::Hubpack => "hubpack",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum PlaceholderMode {
    None,
    /// K placeholders, each sized like one user of the first profile (z2jh's way).
    PerUser {
        k: usize,
    },
    /// K placeholders, each sized for N users (N defaults to a fresh node's worth).
    NUser {
        #[serde(default)]
        n: Option<i64>,
        k: usize,
    },
    /// hubpack-core headroom sizing from the scenario's schedule and learned background.
    Predictive,
}

impl PlaceholderMode {
    pub fn label(&self) -> String {
        match self {
            PlaceholderMode::None => "none".into(),
            PlaceholderMode::PerUser { k } => format!("per-user {k}"),
            PlaceholderMode::NUser { n: Some(n), k } => format!("n-user {n}x{k}"),
            PlaceholderMode::NUser { n: None, k } => format!("n-user node x{k}"),
            PlaceholderMode::Predictive => "predictive".into(),
        }
    }
}

/// The command line's spelling: `none`, `per-user:K`, `n-user:K`, `n-user:NxK`,
/// `predictive`.
impl std::str::FromStr for PlaceholderMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("placeholders {s:?}: use none, per-user:K, n-user:K, n-user:NxK or predictive")
        };
        let num = |x: &str| x.parse().map_err(|_| bad());
        Ok(match s.split_once(':') {
            None if s == "none" => PlaceholderMode::None,
            None if s == "predictive" => PlaceholderMode::Predictive,
            Some(("per-user", k)) => PlaceholderMode::PerUser { k: num(k)? },
            Some(("n-user", spec)) => match spec.split_once('x') {
                Some((n, k)) => PlaceholderMode::NUser {
                    n: Some(n.parse().map_err(|_| bad())?),
                    k: num(k)?,
                },
                None => PlaceholderMode::NUser {
                    n: None,
                    k: num(spec)?,
                },
            },
            _ => return Err(bad()),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictiveSpec {
    /// Lead time L: placeholder Unschedulable → its new node warm, plus reaction time.
    #[serde(default = "default_lead")]
    pub lead_min: f64,
    #[serde(default = "default_z")]
    pub z: f64,
    #[serde(default)]
    pub min_seats: f64,
    #[serde(default = "default_max_seats")]
    pub max_seats: f64,
    #[serde(default = "default_reconcile")]
    pub reconcile_s: f64,
    /// Hysteresis: remove only after the target has been lower this long.
    #[serde(default = "default_ten")]
    pub remove_after_min: f64,
    /// Half-life of the learned background rate.
    #[serde(default = "default_half_life")]
    pub background_half_life_min: f64,
    /// Users per placeholder; default a fresh node's worth.
    #[serde(default)]
    pub users_per_placeholder: Option<i64>,
    /// Not in DESIGN.md (an experiment): pending placeholders above the latest target are
    /// dropped at once, hysteresis or not, and an evicted placeholder is only replaced up
    /// to that target. Pending ones hold no seat yet, so dropping them costs nothing and
    /// saves the scale-up they would trigger.
    #[serde(default)]
    pub drop_pending_above_target: bool,
}

fn default_lead() -> f64 {
    12.0
}
fn default_z() -> f64 {
    1.64
}
fn default_max_seats() -> f64 {
    10_000.0
}
fn default_reconcile() -> f64 {
    30.0
}
fn default_half_life() -> f64 {
    30.0
}

impl Default for PredictiveSpec {
    fn default() -> Self {
        PredictiveSpec {
            lead_min: default_lead(),
            z: default_z(),
            min_seats: 0.0,
            max_seats: default_max_seats(),
            reconcile_s: default_reconcile(),
            remove_after_min: default_ten(),
            background_half_life_min: default_half_life(),
            users_per_placeholder: None,
            drop_pending_above_target: false,
        }
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut s = Scenario::parse(&text, path)?;
        // Trace paths are relative to the scenario file.
        let base = path.parent().unwrap_or(Path::new("."));
        for a in &mut s.arrivals {
            if let ArrivalSpec::Trace(t) = a
                && t.csv.is_relative()
            {
                t.csv = base.join(&t.csv);
            }
        }
        Ok(s)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let s: Scenario = serde_saphyr::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        s.validate().map_err(|message| ScenarioError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(s)
    }

    /// Cross-field checks, each message saying what to change.
    fn validate(&self) -> Result<(), String> {
        if self.duration_h.is_nan() || self.duration_h <= 0.0 {
            return Err("duration_h must be > 0".into());
        }
        if self.seeds == 0 {
            return Err("seeds must be at least 1".into());
        }
        if self.pools.is_empty() || self.profiles.is_empty() || self.images.is_empty() {
            return Err("pools, images and profiles each need at least one entry".into());
        }
        for p in &self.pools {
            if p.allocatable.pods <= 0 {
                return Err(format!(
                    "pools[{}].allocatable.pods must be > 0 (e.g. 110)",
                    p.name
                ));
            }
            if p.max_nodes < p.min_nodes.max(p.initial_nodes) {
                return Err(format!(
                    "pools[{}].max_nodes must be >= min_nodes and initial_nodes",
                    p.name
                ));
            }
        }
        for pr in &self.profiles {
            if self.pool_index(&pr.pool).is_none() {
                return Err(format!(
                    "profiles[{}].pool: no pool named {:?}; add it under pools",
                    pr.name, pr.pool
                ));
            }
            if self.image_index(&pr.image).is_none() {
                return Err(format!(
                    "profiles[{}].image: no image named {:?}; add it under images",
                    pr.name, pr.image
                ));
            }
        }
        for a in &self.arrivals {
            let named = match a {
                ArrivalSpec::Poisson(p) => p.profile.as_ref(),
                ArrivalSpec::Burst(b) => b.profile.as_ref(),
                ArrivalSpec::Weekly(w) => {
                    if w.days.iter().any(|d| *d > 6) {
                        return Err("arrivals.weekly.days: use 0 (Monday) .. 6 (Sunday)".into());
                    }
                    w.profile.as_ref()
                }
                ArrivalSpec::Trace(_) => None,
            };
            if let Some(n) = named
                && self.profile_index(n).is_none()
            {
                return Err(format!(
                    "arrivals: profile {n:?} is not defined under profiles"
                ));
            }
        }
        Ok(())
    }

    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name == name)
    }
    pub fn image_index(&self, name: &str) -> Option<usize> {
        self.images.iter().position(|p| p.name == name)
    }
    pub fn profile_index(&self, name: &str) -> Option<usize> {
        self.profiles.iter().position(|p| p.name == name)
    }
}
