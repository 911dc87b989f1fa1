//! Arrival sources: Poisson, bursts, weekly classes, CSV traces.

use serde::Deserialize;
use std::path::PathBuf;

/// Where users come from. Generated users pick a profile by weight unless one is named.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BurstSpec {
    pub at_h: f64,
    pub users: usize,
    pub over_min: f64,
    #[serde(default)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklySpec {
    pub days: Vec<u8>,
    pub at_h: f64,
    pub users: usize,
    pub over_min: f64,
    #[serde(default)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// Relative to the scenario file.
    pub csv: PathBuf,
}
