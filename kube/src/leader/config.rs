//! The one leader-election config both binaries embed, and its validation.

use serde::{Deserialize, Deserializer};

/// Stop acting this long before the lease could expire: time for an in-flight bind to
/// leave, and for clock drift between renewals.
pub const SAFETY_MARGIN_MS: i64 = 2_000;

/// Longest lease duration accepted: longer ones are mistakes (and would overflow
/// millisecond arithmetic).
const MAX_LEASE_DURATION_SECONDS: u64 = 86_400;

/// Leader election settings (YAML, camelCase keys, unknown keys rejected). Each binary has
/// its own default Lease name: it deserializes the field with
/// [`LeaderElectionConfig::deserialize_named`] and defaults it with
/// [`LeaderElectionConfig::named`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    pub lease_name: String,
    /// The Lease's namespace; when unset, the binary's default (e.g. `$POD_NAMESPACE`).
    pub namespace: Option<String>,
    pub lease_duration_seconds: u64,
    /// Renew this long before the lease expires; writes stop this long before expiry too.
    pub renew_grace_seconds: u64,
}

/// The keys a config file may set; missing ones keep the binary's defaults.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LeaderElectionFields {
    enabled: Option<bool>,
    lease_name: Option<String>,
    namespace: Option<String>,
    lease_duration_seconds: Option<u64>,
    renew_grace_seconds: Option<u64>,
}

/// Why a [`LeaderElectionConfig`] is refused: the field (its full path in the binary's
/// config), the problem, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config field `{field}` {problem}; fix: {fix}")]
pub struct InvalidElection {
    pub field: String,
    pub problem: String,
    pub fix: &'static str,
}

impl LeaderElectionConfig {
    /// Enabled, on the Lease `lease_name`, 15 s long, renewed 5 s before it expires
    /// (kube-scheduler's defaults).
    pub fn named(lease_name: &str) -> Self {
        LeaderElectionConfig {
            enabled: true,
            lease_name: lease_name.into(),
            namespace: None,
            lease_duration_seconds: 15,
            renew_grace_seconds: 5,
        }
    }

    /// Deserializes the settings a config file gives; the others are those of
    /// [`Self::named`]`(default_lease_name)`. For a `#[serde(deserialize_with)]` helper.
    pub fn deserialize_named<'de, D>(
        deserializer: D,
        default_lease_name: &str,
    ) -> std::result::Result<Self, D::Error>
    where
        D: Deserializer<'de>,
    {
        let f = LeaderElectionFields::deserialize(deserializer)?;
        let d = Self::named(default_lease_name);
        Ok(LeaderElectionConfig {
            enabled: f.enabled.unwrap_or(d.enabled),
            lease_name: f.lease_name.unwrap_or(d.lease_name),
            namespace: f.namespace.or(d.namespace),
            lease_duration_seconds: f.lease_duration_seconds.unwrap_or(d.lease_duration_seconds),
            renew_grace_seconds: f.renew_grace_seconds.unwrap_or(d.renew_grace_seconds),
        })
    }

    /// Checks the settings; `key` is where they sit in the binary's config (e.g.
    /// `leaderElection`), so errors name the field as the operator wrote it.
    pub fn validate(&self, key: &str) -> std::result::Result<(), InvalidElection> {
        let invalid = |field: &str, problem: String, fix| {
            Err(InvalidElection {
                field: format!("{key}.{field}"),
                problem,
                fix,
            })
        };
        if self.lease_duration_seconds > MAX_LEASE_DURATION_SECONDS {
            return invalid(
                "leaseDurationSeconds",
                format!(
                    "({}) is above a day ({MAX_LEASE_DURATION_SECONDS} s)",
                    self.lease_duration_seconds
                ),
                "use a duration in seconds below a day",
            );
        }
        if !self.enabled {
            return Ok(());
        }
        if self.lease_name.trim().is_empty() {
            return invalid(
                "leaseName",
                "is empty".into(),
                "name the Lease object, e.g. the binary's name",
            );
        }
        let margin = u64::try_from(SAFETY_MARGIN_MS / 1000).unwrap_or(2);
        if self.lease_duration_seconds <= margin {
            return invalid(
                "leaseDurationSeconds",
                format!(
                    "({}) is {margin} s or less: the lease would be past its safety margin as soon as it is renewed",
                    self.lease_duration_seconds
                ),
                "use e.g. 15 (kube-scheduler's default)",
            );
        }
        if self.renew_grace_seconds >= self.lease_duration_seconds {
            return invalid(
                "renewGraceSeconds",
                format!(
                    "({}) is not below leaseDurationSeconds ({})",
                    self.renew_grace_seconds, self.lease_duration_seconds
                ),
                "make renewGraceSeconds smaller than leaseDurationSeconds, e.g. 5 and 15",
            );
        }
        if self.renew_grace_seconds == 0 {
            return invalid(
                "renewGraceSeconds",
                "is 0: the lease would expire before it is renewed".into(),
                "use at least 1, e.g. 5",
            );
        }
        Ok(())
    }
}
