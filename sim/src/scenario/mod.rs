//! The scenario file (YAML): cluster pools, images, user profiles, hub and autoscaler
//! settings, arrivals and the policy grid to compare. Unknown fields are rejected so a typo
//! is an error naming the field, not a silently ignored setting.

mod arrivals;
mod autoscaler;
mod cluster;
mod hub;
mod policies;
pub mod values_layers;
pub mod z2jh_values;

pub use arrivals::{ArrivalSpec, BurstSpec, PoissonSpec, TraceSpec, WeeklySpec};
pub use autoscaler::{AutoscalerKind, AutoscalerSpec, Budget, ConsolidationPolicy, KarpenterSpec};
pub use cluster::{DurationDist, ImageSpec, PoolSpec, ProfileSpec, ResourceSpec};
pub use hub::HubSpec;
pub use policies::{
    Lead, PlaceholderMode, PolicyGrid, PolicySpec, PredictiveSpec, PrepullChoice, SchedulerKind,
};

use serde::Deserialize;
use std::path::{Path, PathBuf};

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

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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
    #[serde(default, deserialize_with = "autoscaler::spec_or_kind")]
    pub autoscaler: AutoscalerSpec,
    pub arrivals: Vec<ArrivalSpec>,
    #[serde(default)]
    pub policies: PolicyGrid,
    #[serde(default)]
    pub predictive: PredictiveSpec,
    /// hubpack-scheduler settings the model honours.
    #[serde(default)]
    pub hubpack: HubpackSpec,
    /// Forecast error: the calendar the predictive controller reads vs what happens.
    #[serde(default)]
    pub forecast: ForecastSpec,
    /// Placeholders as z2jh's `scheduling.userPlaceholder` / `podPriority` set them.
    #[serde(default)]
    pub placeholder: PlaceholderSpec,
    /// Sampling interval of timeseries.csv.
    #[serde(default = "default_sample_s")]
    pub sample_s: f64,
}

/// hubpack-scheduler's behaviour that matters to the autoscaler.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HubpackSpec {
    /// A pending placeholder's Unschedulable condition is held back this long after its
    /// creation, so the controller can drop a surplus replacement before the autoscaler
    /// sees it (the scheduler's `placeholderUnschedulableGraceSeconds`). 0 = none.
    #[serde(default = "default_grace")]
    pub placeholder_grace_s: f64,
}

fn default_grace() -> f64 {
    5.0
}

impl Default for HubpackSpec {
    fn default() -> Self {
        HubpackSpec {
            placeholder_grace_s: default_grace(),
        }
    }
}

/// What the predictive controller is told vs what happens.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSpec {
    /// Actual users of every `burst` and `weekly` arrival = the users written there (what
    /// the calendar says) × this factor. 1 = a perfect forecast.
    #[serde(default = "default_factor")]
    pub actual_factor: f64,
    /// The calendar the controller reads instead of the scenario's bursts (e.g. for a
    /// `trace` of what really happened): one-off events.
    #[serde(default)]
    pub calendar: Option<Vec<CalendarEvent>>,
}

fn default_factor() -> f64 {
    1.0
}

impl Default for ForecastSpec {
    fn default() -> Self {
        ForecastSpec {
            actual_factor: 1.0,
            calendar: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarEvent {
    pub at_h: f64,
    pub users: f64,
    pub over_min: f64,
}

/// Placeholder pods as z2jh's chart makes them.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceholderSpec {
    /// Request of one `per_user` placeholder (z2jh `userPlaceholder.resources`); default
    /// the first profile's request.
    #[serde(default)]
    pub request: Option<ResourceSpec>,
    /// z2jh without `scheduling.podPriority.enabled` gives placeholders the users'
    /// priority (0): users cannot preempt them. Default −10.
    #[serde(default)]
    pub priority: Option<i32>,
}

/// Resources as people write them: "0.5 CPU, 1.8 GiB".
pub fn human(r: &hubpack_core::model::Resources) -> String {
    let cpu = r.cpu_milli as f64 / 1000.0;
    let gib = r.memory as f64 / GIB;
    format!("{} CPU, {} GiB", trim_num(cpu), trim_num(gib))
}

/// 15.5 → "15.5", 57.0 → "57", 1.75 → "1.75".
fn trim_num(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

const GIB: f64 = (1u64 << 30) as f64;

/// Deserializes YAML, naming the field of any error by its path
/// (`arrivals[0].burst.users: invalid value: integer `-5`, expected usize`), with the line.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let mut msg = inner.to_string();
            // serde-saphyr says "invalid u64" for -5: say what is expected.
            if ["invalid u", "invalid i"].iter().any(|p| msg.contains(p)) {
                msg.push_str(" (expected a whole number, e.g. 300)");
            }
            <serde_saphyr::Error as serde::de::Error>::custom(if path.is_empty() || path == "." {
                msg
            } else {
                format!("{path}: {msg}")
            })
        })
    })
    .map_err(|e| e.to_string())
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

/// Scales the scenario's users by `factor` (a pool's share of them): every burst and
/// weekly class (rounded), every Poisson rate and the forecast's calendar. A trace is
/// replayed as recorded.
pub fn scale_users(sc: &mut Scenario, factor: f64) {
    let users = |u: usize| (u as f64 * factor).round() as usize;
    for a in &mut sc.arrivals {
        match a {
            ArrivalSpec::Poisson(p) => p.rate_per_h *= factor,
            ArrivalSpec::Burst(b) => b.users = users(b.users),
            ArrivalSpec::Weekly(w) => w.users = users(w.users),
            ArrivalSpec::Trace(_) => {}
        }
    }
    if let Some(cal) = &mut sc.forecast.calendar {
        for e in cal {
            e.users *= factor;
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
        let s: Scenario = from_yaml(text).map_err(|message| ScenarioError::Parse {
            path: path.to_path_buf(),
            message,
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
        let a = &self.autoscaler;
        for (field, v, e) in [
            ("scan_interval_s", a.scan_interval_s, "10"),
            ("loop_s", a.loop_s, "1"),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "autoscaler.{field} must be a number of seconds > 0 (e.g. {e}), not {v}"
                ));
            }
        }
        a.karpenter.validate()?;
        let hub = &self.hub;
        for (field, v, e) in [
            ("container_start_s", hub.container_start_s, "15"),
            ("container_start_sigma", hub.container_start_sigma, "0.3"),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "hub.{field} must be a number ≥ 0 (e.g. {e}), not {v}"
                ));
            }
        }
        if let Lead::Word(w) = &self.predictive.lead_min
            && w != "auto"
        {
            return Err(format!(
                "predictive.lead_min: {w:?} is neither minutes nor `auto`; write e.g. 12 or auto"
            ));
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
            if let Some(pool) = self.pool_index(&pr.pool).map(|i| &self.pools[i]) {
                let fresh =
                    &pool.allocatable.to_resources() - &pool.daemonset_overhead.to_resources();
                let request = pr.request.to_resources().with_pods(1);
                if !request.fits_in(&fresh) {
                    return Err(format!(
                        "profiles[{}].request: one user ({}) does not fit on a fresh node of pool \
                         {}, which has {} after DaemonSets; use a larger node type \
                         (pools[{}].allocatable) or a smaller request",
                        pr.name,
                        human(&request),
                        pool.name,
                        human(&fresh),
                        pool.name
                    ));
                }
            }
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
