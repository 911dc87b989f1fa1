//! The hub: spawner and culler settings.

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
    /// The spread of a warm start: each is a log-normal draw with median `container_start_s`
    /// and this σ (0: every one takes exactly `container_start_s`). Real clusters have a
    /// right tail (API, scheduler and kubelet latency); the side-by-side bench fits it.
    #[serde(default)]
    pub container_start_sigma: f64,
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
            container_start_sigma: 0.0,
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

impl HubSpec {
    /// The warm start's distribution (pod bound, image present → Ready).
    pub fn container_start(&self) -> DurationDist {
        DurationDist {
            median_s: self.container_start_s,
            sigma: self.container_start_sigma,
        }
    }
}
