//! One run's numbers, real or simulated: what the report draws, `summary.json` holds and
//! `--real-from` reads back.

use serde::{Deserialize, Serialize};

/// One run's numbers, real or simulated, at the scenario's scale.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunNumbers {
    pub scenario: String,
    pub stack: String,
    /// `real` or `sim`.
    pub kind: String,
    pub seed: u64,
    pub users: usize,
    pub unfinished: usize,
    #[serde(deserialize_with = "nan_if_null")]
    pub p50_start_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p95_start_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p95_create_to_bound_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p95_create_to_ready_s: f64,
    /// Real runs: user pod creation → Ready, p99. Simulated runs: arrival → Ready less the
    /// spawn overhead, first attempts only (the simulator records no pod creation, so a
    /// user the hub's spawn limit held counts that wait too).
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub p99_create_to_ready_s: f64,
    /// hubpack-placeholder-ctl's API writes (`hubpack_placeholder_ctl_api_writes_total`
    /// summed) at the run's end: real runs of the predictive stacks only.
    #[serde(default)]
    pub api_writes: Option<f64>,
    #[serde(deserialize_with = "nan_if_null")]
    pub node_hours: f64,
    pub peak_nodes: usize,
    pub nodes_removed_after_peak: usize,
    pub placement_hol_users: usize,
    /// Arrival → Ready of every finished user (sorted).
    pub waits_s: Vec<f64>,
    /// (t, user-pool nodes)
    pub nodes: Vec<(f64, f64)>,
    /// Real runs: per node added, created → schedulable and schedulable → warm (seconds).
    #[serde(default)]
    pub node_boot_s: Vec<f64>,
    #[serde(default)]
    pub node_pull_s: Vec<f64>,
}

fn nan() -> f64 {
    f64::NAN
}

/// JSON has no NaN: serde_json writes it as null; read null back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
