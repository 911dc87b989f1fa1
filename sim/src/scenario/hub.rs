//! The hub (spawner, culler) and the cluster autoscaler's settings.

use super::DurationDist;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpec {
    /// `c.JupyterHub.concurrent_spawn_limit` (z2jh `hub.concurrentSpawnLimit`).
    #[serde(default = "default_spawn_limit")]
    pub concurrent_spawn_limit: usize,
    /// JupyterHub answers a spawn over the limit with 429 and a Retry-After drawn uniformly
    /// from `c.JupyterHub.spawn_throttle_retry_range` (default 30–60 s); the user clicks
    /// again then. Seconds, `[low, high]`.
    #[serde(default = "default_throttle_range")]
    pub spawn_throttle_retry_range_s: [f64; 2],
    /// Chance that a user refused by the spawn limit gives up instead of retrying (each
    /// refusal). 0 = everyone retries until served.
    #[serde(default)]
    pub throttle_give_up_probability: f64,
    /// After a failed (timed-out) spawn, the user tries again this long later.
    #[serde(default = "default_retry_s")]
    pub spawn_retry_s: f64,
    /// `singleuser.startTimeout`: a server not ready by then is a failed spawn.
    #[serde(default = "default_start_timeout")]
    pub start_timeout_s: f64,
    /// KubeSpawner's work before the pod exists (API calls, PVC).
    #[serde(default = "default_spawn_overhead")]
    pub spawn_overhead_s: f64,
    /// Pod bound → server answering, once the image is present: volume attach, z2jh's
    /// `block-cloud-metadata` init container, the container start and the server's own
    /// start-up. With `spawn_overhead_s` a warm start takes ~17 s, as JupyterHub's
    /// spawn-duration dashboards show for warm nodes (not the 5 s of a bare container).
    #[serde(default = "default_container_start")]
    pub container_start_s: f64,
    pub session: DurationDist,
    /// Spawn attempts a user makes (after a timeout) before giving up.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// z2jh `cull.timeout` (3600 s).
    #[serde(default = "default_cull_timeout")]
    pub cull_timeout_min: f64,
    /// z2jh `cull.every` (600 s).
    #[serde(default = "default_cull_interval")]
    pub cull_interval_min: f64,
}

fn default_spawn_limit() -> usize {
    64
}
fn default_throttle_range() -> [f64; 2] {
    [30.0, 60.0]
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
    15.0
}
fn default_attempts() -> u32 {
    3
}
fn default_cull_timeout() -> f64 {
    60.0
}
fn default_cull_interval() -> f64 {
    10.0
}

impl Default for HubSpec {
    fn default() -> Self {
        HubSpec {
            concurrent_spawn_limit: default_spawn_limit(),
            spawn_throttle_retry_range_s: default_throttle_range(),
            throttle_give_up_probability: 0.0,
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

/// cluster-autoscaler 1.36 flags, with upstream defaults.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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
    /// `--max-scale-down-parallelism`: nodes deleted per scan at most, empty or not.
    #[serde(default = "default_parallelism")]
    pub max_scale_down_parallelism: usize,
    /// `--max-drain-parallelism`: non-empty nodes (placeholders to move) deleted per scan.
    #[serde(default = "default_drain")]
    pub max_drain_parallelism: usize,
    /// `--unremovable-node-recheck-timeout`: a node whose pods could not be moved elsewhere
    /// is not looked at again for this long.
    #[serde(default = "default_recheck")]
    pub unremovable_node_recheck_timeout_min: f64,
    #[serde(default = "default_true")]
    pub scale_down_enabled: bool,
    /// How long one CA loop takes: after a loop that scaled up, the next starts as soon as
    /// it ends (loop/trigger.go), not a scan interval later. About a second on a real
    /// cluster; on the side-by-side bench's time-compressed clusters the loop's wall time
    /// is multiplied by the compression factor.
    #[serde(default = "default_loop")]
    pub loop_s: f64,
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
fn default_parallelism() -> usize {
    10
}
fn default_drain() -> usize {
    1
}
fn default_recheck() -> f64 {
    5.0
}
fn default_true() -> bool {
    true
}
fn default_loop() -> f64 {
    1.0
}

impl Default for AutoscalerSpec {
    fn default() -> Self {
        AutoscalerSpec {
            scan_interval_s: default_scan(),
            scale_down_unneeded_min: default_ten(),
            scale_down_delay_after_add_min: default_ten(),
            scale_down_utilization_threshold: default_util(),
            expendable_pods_priority_cutoff: default_cutoff(),
            max_scale_down_parallelism: default_parallelism(),
            max_drain_parallelism: default_drain(),
            unremovable_node_recheck_timeout_min: default_recheck(),
            scale_down_enabled: true,
            loop_s: default_loop(),
        }
    }
}
