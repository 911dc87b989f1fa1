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
