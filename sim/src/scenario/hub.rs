//! The hub (spawner, culler) and the cluster autoscaler's settings.

use super::DurationDist;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpec {
    /// `c.JupyterHub.concurrent_spawn_limit` (z2jh `hub.concurrentSpawnLimit`).
    #[serde(default = "default_spawn_limit")]
    pub concurrent_spawn_limit: usize,
    /// A user refused by the spawn limit tries again after this long (until served: the
    /// model has no give-up at the spawn limit, only after `max_attempts` timeouts).
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
