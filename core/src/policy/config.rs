//! The policy's knobs.

use crate::model::Millis;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// MostAllocated weight of cpu (kube-scheduler's NodeResourcesFit resource weights).
    pub cpu_weight: i64,
    /// MostAllocated weight of memory.
    pub memory_weight: i64,
    /// A node must have been Ready at least this long to count as warm.
    pub warm_settle_ms: Millis,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            cpu_weight: 1,
            memory_weight: 1,
            warm_settle_ms: 30_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PolicyConfig;

    #[test]
    fn defaults_fill_missing_fields_and_unknown_fields_are_rejected() {
        let cfg: PolicyConfig = serde_json::from_str(r#"{"memory_weight": 3}"#).unwrap_or_default();
        assert_eq!(
            cfg,
            PolicyConfig {
                memory_weight: 3,
                ..PolicyConfig::default()
            }
        );
        assert_eq!(PolicyConfig::default().warm_settle_ms, 30_000);
        assert!(serde_json::from_str::<PolicyConfig>(r#"{"cpu_wieght": 2}"#).is_err());
    }
}
