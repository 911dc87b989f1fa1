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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use crate::config::Config;

    #[test]
    fn on_by_default_and_its_name_and_interval_are_checked() {
        let c = Config::parse("", "t").unwrap();
        assert!(c.checkpoint.enabled);
        assert_eq!(
            c.checkpoint.config_map_name,
            "hubpack-placeholder-ctl-state"
        );
        assert_eq!(c.checkpoint.interval_seconds, 60.0);
        let c = Config::parse(
            "checkpoint: {configMapName: hub-state, intervalSeconds: 30}",
            "t",
        )
        .unwrap();
        assert_eq!(c.checkpoint.config_map_name, "hub-state");
        for (bad, field) in [
            ("{configMapName: Hub_State}", "checkpoint.configMapName"),
            ("{configMapName: \"\"}", "checkpoint.configMapName"),
            ("{intervalSeconds: 0}", "checkpoint.intervalSeconds"),
            ("{intervalSeconds: .inf}", "checkpoint.intervalSeconds"),
        ] {
            let e = Config::parse(&format!("checkpoint: {bad}"), "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }
}
