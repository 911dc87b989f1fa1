//! `checkpoint`: where the leader keeps what it has learned across restarts (a ConfigMap of
//! its own, see [`crate::checkpoint`]), and how often it writes it.

use super::checks::{is_dns_subdomain, positive};
use super::{ConfigError, invalid};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Write the learned state and start from it. Off: every start learns from nothing
    /// (the lead time back to `leadTime.initialSeconds`, the background to
    /// `background.initialUsersPerHour`).
    pub enabled: bool,
    /// The ConfigMap in `namespace` that holds it (the chart derives it from the release:
    /// `<fullname>-placeholder-ctl-state`).
    pub config_map_name: String,
    /// The leader writes it this often, and once more on shutdown.
    pub interval_seconds: f64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            enabled: true,
            config_map_name: "hubpack-placeholder-ctl-state".into(),
            interval_seconds: 60.0,
        }
    }
}

impl CheckpointConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !is_dns_subdomain(&self.config_map_name) {
            return invalid(
                "checkpoint.configMapName",
                format!("({:?}) is not a ConfigMap name", self.config_map_name),
                "use lowercase letters, digits, '-' and '.', e.g. hubpack-placeholder-ctl-state",
            );
        }
        positive("checkpoint.intervalSeconds", self.interval_seconds)
    }
}
