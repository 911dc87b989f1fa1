//! A pool's `background`: what it assumes before it has history.

use super::ConfigError;
use super::checks::non_negative;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PoolBackgroundConfig {
    /// The background arrival rate (users per hour, outside scheduled events) used until
    /// arrivals have been observed: a new hub, or one started without its checkpoint.
    /// Observed arrivals replace it gradually (it weighs as one `background.halfLifeSeconds`
    /// of history). 0: no background until users are seen.
    pub initial_users_per_hour: f64,
}

impl PoolBackgroundConfig {
    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        non_negative(
            &format!("{at}.initialUsersPerHour"),
            self.initial_users_per_hour,
        )
    }

    /// The initial rate in users per millisecond.
    pub fn initial_rate_per_ms(&self) -> f64 {
        self.initial_users_per_hour / 3_600_000.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use crate::config::{Config, ConfigError};

    fn pool(background: &str) -> Result<Config, ConfigError> {
        Config::parse(
            &format!(
                "pools:\n\
                 - name: default\n\
                 \x20 allNodes: true\n\
                 \x20 perUser: {{cpu: 500m, memory: 2Gi}}\n\
                 \x20 freshNode: {{allocatable: {{cpu: \"4\", memory: 16Gi, pods: \"110\"}}}}\n\
                 \x20 background: {background}\n"
            ),
            "t",
        )
    }

    #[test]
    fn initial_users_per_hour_is_a_finite_rate_of_at_least_zero() {
        let c = pool("{initialUsersPerHour: 90}").unwrap();
        assert_eq!(c.pools[0].background.initial_users_per_hour, 90.0);
        assert!((c.pools[0].background.initial_rate_per_ms() * 3_600_000.0 - 90.0).abs() < 1e-9);
        assert_eq!(
            pool("{}").unwrap().pools[0]
                .background
                .initial_users_per_hour,
            0.0
        );
        for bad in ["-1", ".nan", ".inf"] {
            let e = pool(&format!("{{initialUsersPerHour: {bad}}}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("pools[0].background.initialUsersPerHour"),
                "{bad}: {e}"
            );
        }
        assert!(
            pool("{initialUsers: 3}").is_err(),
            "unknown keys are refused"
        );
    }
}
