//! The policy grid `compare` runs, one point of it, and the predictive controller's settings.

use serde::Deserialize;

/// The grid `compare` runs: every scheduler × every placeholder mode.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
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
        PlaceholderMode::PredictiveBuffer,
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

/// One point of the comparison grid: the policy one run simulates.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PolicySpec {
    pub scheduler: SchedulerKind,
    pub placeholders: PlaceholderMode,
    pub prepull: bool,
}

impl PolicySpec {
    pub fn label(&self) -> String {
        format!(
            "{} / {}{}",
            self.scheduler.name(),
            self.placeholders.label(),
            if self.prepull { "" } else { " / no pre-pull" }
        )
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
    /// The same sizing written to a CapacityBuffer instead of placeholder pods: the
    /// cluster-autoscaler provisions for the buffer's virtual pods, nothing is preempted.
    PredictiveBuffer,
}

impl PlaceholderMode {
    /// Sized by the predictive controller (placeholder pods or a CapacityBuffer).
    pub fn is_predictive(&self) -> bool {
        matches!(
            self,
            PlaceholderMode::Predictive | PlaceholderMode::PredictiveBuffer
        )
    }

    pub fn label(&self) -> String {
        match self {
            PlaceholderMode::None => "none".into(),
            PlaceholderMode::PerUser { k } => format!("per-user {k}"),
            PlaceholderMode::NUser { n: Some(n), k } => format!("n-user {n}x{k}"),
            PlaceholderMode::NUser { n: None, k } => format!("n-user node x{k}"),
            PlaceholderMode::Predictive => "predictive".into(),
            PlaceholderMode::PredictiveBuffer => "predictive-buffer".into(),
        }
    }
}

/// The command line's spelling: `none`, `per-user:K`, `n-user:K`, `n-user:NxK`,
/// `predictive`, `predictive-buffer`.
impl std::str::FromStr for PlaceholderMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "placeholders {s:?}: use none, per-user:K, n-user:K, n-user:NxK, predictive or \
                 predictive-buffer"
            )
        };
        let num = |x: &str| x.parse().map_err(|_| bad());
        Ok(match s.split_once(':') {
            None if s == "none" => PlaceholderMode::None,
            None if s == "predictive" => PlaceholderMode::Predictive,
            None if s == "predictive-buffer" => PlaceholderMode::PredictiveBuffer,
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

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PredictiveSpec {
    /// Lead time L: placeholder Unschedulable → its new node warm, plus reaction time.
    /// Minutes, or `auto`: learned from the run's own scale-ups with hubpack-core's
    /// lead-time estimator (the live controller's), starting from `lead_initial_min`.
    #[serde(default)]
    pub lead_min: Lead,
    /// `lead_min: auto` only: the value used until 5 scale-ups were seen.
    #[serde(default = "default_lead")]
    pub lead_initial_min: f64,
    /// `lead_min: auto` only: the upper quantile of the observed waits (0.9 = p90).
    #[serde(default = "default_lead_quantile")]
    pub lead_quantile: f64,
    #[serde(default = "default_z")]
    pub z: f64,
    #[serde(default)]
    pub min_seats: f64,
    #[serde(default = "default_max_seats")]
    pub max_seats: f64,
    #[serde(default = "default_reconcile")]
    pub reconcile_s: f64,
    /// Hysteresis: remove only after the target has been lower this long.
    #[serde(default = "default_remove_after")]
    pub remove_after_min: f64,
    /// Half-life of the learned background rate.
    #[serde(default = "default_half_life")]
    pub background_half_life_min: f64,
    /// Users per placeholder; default a fresh node's worth.
    #[serde(default)]
    pub users_per_placeholder: Option<i64>,
    /// How soon the controller reacts to a pod event (an evicted placeholder): it
    /// recomputes the target and lowers the Deployment's replicas if the replacement is
    /// surplus. Within hubpack-scheduler's `placeholder_grace_s` that replacement never
    /// reaches the autoscaler.
    #[serde(default = "default_reaction")]
    pub reaction_s: f64,
}

/// A lead time in minutes, or `auto`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Lead {
    Minutes(f64),
    /// Must be the word `auto` (checked when the scenario is loaded).
    Word(String),
}

impl Default for Lead {
    fn default() -> Self {
        Lead::Minutes(default_lead())
    }
}

impl Lead {
    pub fn is_auto(&self) -> bool {
        matches!(self, Lead::Word(w) if w == "auto")
    }

    /// The configured minutes (`auto`: `None`).
    pub fn minutes(&self) -> Option<f64> {
        match self {
            Lead::Minutes(m) => Some(*m),
            Lead::Word(_) => None,
        }
    }
}

fn default_lead_quantile() -> f64 {
    0.9
}

fn default_reaction() -> f64 {
    1.0
}
fn default_remove_after() -> f64 {
    10.0
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
            lead_min: Lead::default(),
            lead_initial_min: default_lead(),
            lead_quantile: default_lead_quantile(),
            z: default_z(),
            min_seats: 0.0,
            max_seats: default_max_seats(),
            reconcile_s: default_reconcile(),
            remove_after_min: default_remove_after(),
            background_half_life_min: default_half_life(),
            users_per_placeholder: None,
            reaction_s: default_reaction(),
        }
    }
}
