//! The scheduler's config file (YAML, camelCase keys, unknown keys rejected) and its
//! validation. Every error names the field and says how to fix it, because a scheduler that
//! starts with a wrong setting strands users' pods in Pending.

use hubpack_core::policy::PolicyConfig;
use hubpack_kube::convert::LabelMatch;
use hubpack_kube::leader::{InvalidElection, LeaderElectionConfig};
use hubpack_kube::process::{self, LoadError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read or is not a config (names the file).
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("config field `{field}` {problem}; fix: {fix}")]
    Invalid {
        field: String,
        problem: String,
        fix: &'static str,
    },
}

impl From<InvalidElection> for ConfigError {
    fn from(e: InvalidElection) -> Self {
        ConfigError::Invalid {
            field: e.field,
            problem: e.problem,
            fix: e.fix,
        }
    }
}

/// Longest duration any setting accepts: longer ones are mistakes (and would overflow
/// millisecond arithmetic).
const MAX_SECONDS: u64 = 86_400;

/// Longest placeholder grace accepted: the controller needs seconds, not minutes.
const MAX_PLACEHOLDER_GRACE_SECONDS: u64 = 120;

fn label(k: &str, v: &str) -> LabelMatch {
    LabelMatch([(k.to_string(), v.to_string())].into())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Pods with this `spec.schedulerName` are ours.
    pub scheduler_name: String,
    /// Scoring weights and the node settle time (hubpack-core's policy settings).
    pub policy: PolicySettings,
    pub warmth: WarmthConfig,
    /// Pods matching any of these label sets are placeholders: the only pods ever preempted.
    /// Defaults match z2jh's (`component: user-placeholder`) and hubpack's chart.
    pub placeholder_selectors: Vec<LabelMatch>,
    /// A pending placeholder that does not fit is marked Unschedulable (which makes the
    /// cluster autoscaler add a node) only this long after its creation, so the placeholder
    /// controller can first lower its Deployment's replicas when it is surplus.
    pub placeholder_unschedulable_grace_seconds: u64,
    pub preemption: PreemptionConfig,
    pub volumes: VolumeConfig,
    #[serde(deserialize_with = "leader_election")]
    pub leader_election: LeaderElectionConfig,
    pub queue: QueueConfig,
    pub api: ApiConfig,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics_address: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scheduler_name: "hubpack-scheduler".into(),
            policy: PolicySettings::default(),
            warmth: WarmthConfig::default(),
            placeholder_selectors: vec![
                label("component", "user-placeholder"),
                label("app.kubernetes.io/component", "user-placeholder"),
            ],
            placeholder_unschedulable_grace_seconds: 5,
            preemption: PreemptionConfig::default(),
            volumes: VolumeConfig::default(),
            leader_election: LeaderElectionConfig::named(DEFAULT_LEASE_NAME),
            queue: QueueConfig::default(),
            api: ApiConfig::default(),
            metrics_address: SocketAddr::from(([0, 0, 0, 0], 9090)),
        }
    }
}

/// hubpack-core's policy knobs, in the config's style (camelCase, seconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PolicySettings {
    /// MostAllocated weight of cpu (kube-scheduler's NodeResourcesFit resource weights).
    pub cpu_weight: i64,
    pub memory_weight: i64,
    /// A node must have been Ready this long to count as warm.
    pub warm_settle_seconds: u64,
}

impl Default for PolicySettings {
    fn default() -> Self {
        let core = PolicyConfig::default();
        PolicySettings {
            cpu_weight: core.cpu_weight,
            memory_weight: core.memory_weight,
            warm_settle_seconds: u64::try_from(core.warm_settle_ms / 1000).unwrap_or(30),
        }
    }
}

impl PolicySettings {
    pub fn core(&self) -> PolicyConfig {
        PolicyConfig {
            cpu_weight: self.cpu_weight,
            memory_weight: self.memory_weight,
            warm_settle_ms: seconds_ms(self.warm_settle_seconds),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WarmthConfig {
    /// A node whose pre-pull pod (matching any of these) is Ready has every user image.
    /// Defaults match z2jh's continuous image puller and hubpack's chart.
    pub prepull_selectors: Vec<LabelMatch>,
}

impl Default for WarmthConfig {
    fn default() -> Self {
        WarmthConfig {
            prepull_selectors: vec![
                label("component", "continuous-image-puller"),
                label("app.kubernetes.io/component", "image-prepuller"),
            ],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PreemptionConfig {
    /// How long a nominated pod waits for its victims' deletion before the nomination is
    /// cleared and the pod is scheduled afresh.
    pub timeout_seconds: u64,
}

impl Default for PreemptionConfig {
    fn default() -> Self {
        PreemptionConfig {
            timeout_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct VolumeConfig {
    /// How long to wait for a WaitForFirstConsumer claim to become Bound before giving up
    /// on the node (kube-scheduler's bindTimeoutSeconds is 600).
    pub bind_timeout_seconds: u64,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            bind_timeout_seconds: 600,
        }
    }
}

/// The Lease's name unless `leaderElection.leaseName` says otherwise.
const DEFAULT_LEASE_NAME: &str = "hubpack-scheduler";

/// `leaderElection`: the shared settings, with this binary's Lease name as the default.
fn leader_election<'de, D>(d: D) -> Result<LeaderElectionConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    LeaderElectionConfig::deserialize_named(d, DEFAULT_LEASE_NAME)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct QueueConfig {
    pub initial_backoff_seconds: f64,
    pub max_backoff_seconds: f64,
    /// Unschedulable pods are retried at least this often even without a cluster event.
    pub unschedulable_retry_seconds: f64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff_seconds: 1.0,
            max_backoff_seconds: 10.0,
            unschedulable_retry_seconds: 30.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Sustained write requests per second (binds, evictions, status patches, events).
    pub qps: f64,
    pub burst: u32,
    /// Binds in flight at once. It must cover `qps` × the API's bind latency under load, or
    /// it, not the budget, caps throughput; but kube-rs speaks HTTP/1.1, so each bind in
    /// flight is a TLS connection of its own. Measured (`cargo xtask bench scheduler`, QPS
    /// 200): 5,000 pods on 500 nodes, 16 and 256 both reach the budget's ~216 pods/s; 400
    /// pods at once (within the burst), 16 binds 387 pods/s, 256 only 336.
    pub bind_concurrency: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        // kube-scheduler's client defaults (QPS 50, burst 100: its `apis/config/v1/defaults.go`).
        ApiConfig {
            qps: 50.0,
            burst: 100,
            bind_concurrency: 16,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        process::load_yaml(path, Config::validate)
    }

    /// Parses and validates. An empty document is all defaults.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        process::parse_yaml(text, origin, Config::validate)
    }

    /// Checks every section; the first problem found is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.validate()?;
        self.preemption.validate()?;
        self.volumes.validate()?;
        self.queue.validate()?;
        self.validate_pod_matching()?;
        self.leader_election.validate("leaderElection")?;
        self.api.validate()?;
        if self.placeholder_unschedulable_grace_seconds > MAX_PLACEHOLDER_GRACE_SECONDS {
            return invalid(
                "placeholderUnschedulableGraceSeconds",
                format!(
                    "({}) is above {MAX_PLACEHOLDER_GRACE_SECONDS}: the autoscaler would hear of wanted placeholders minutes late",
                    self.placeholder_unschedulable_grace_seconds
                ),
                "use a few seconds, e.g. 5 (0 marks placeholders Unschedulable at once)",
            );
        }
        Ok(())
    }

    /// `schedulerName`, `placeholderSelectors`, `warmth.prepullSelectors`: which pods are
    /// ours, which are placeholders, which pre-pull.
    fn validate_pod_matching(&self) -> Result<(), ConfigError> {
        if self.scheduler_name.trim().is_empty() {
            return invalid(
                "schedulerName",
                "is empty".into(),
                "set it to the schedulerName your user pods use, e.g. hubpack-scheduler",
            );
        }
        if self.placeholder_selectors.is_empty()
            || self.placeholder_selectors.iter().any(|s| s.0.is_empty())
        {
            return invalid(
                "placeholderSelectors",
                "is empty or has an empty label set (which would match nothing)".into(),
                "list label sets that only placeholder pods carry, e.g. [{component: user-placeholder}]",
            );
        }
        if self.warmth.prepull_selectors.iter().any(|s| s.0.is_empty()) {
            return invalid(
                "warmth.prepullSelectors",
                "has an empty label set".into(),
                "give each entry at least one label of the pre-pull DaemonSet's pods",
            );
        }
        Ok(())
    }

    pub fn backoff(&self) -> crate::queue::Backoff {
        let ms = |s: f64| (s * 1000.0).round() as i64;
        crate::queue::Backoff {
            initial_ms: ms(self.queue.initial_backoff_seconds),
            max_ms: ms(self.queue.max_backoff_seconds),
            park_flush_ms: ms(self.queue.unschedulable_retry_seconds),
        }
    }

    pub fn placeholder_grace_ms(&self) -> i64 {
        seconds_ms(self.placeholder_unschedulable_grace_seconds)
    }

    pub fn lease_namespace(&self) -> String {
        self.leader_election
            .namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into())
    }
}

fn invalid(field: &str, problem: String, fix: &'static str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        field: field.into(),
        problem,
        fix,
    })
}

/// Refuses a duration above a day.
fn below_a_day(field: &str, seconds: f64) -> Result<(), ConfigError> {
    if seconds > MAX_SECONDS as f64 {
        return above_a_day(field, seconds);
    }
    Ok(())
}

/// Refuses a duration in whole seconds above a day.
fn whole_seconds_below_a_day(field: &str, seconds: u64) -> Result<(), ConfigError> {
    if seconds > MAX_SECONDS {
        return above_a_day(field, seconds);
    }
    Ok(())
}

fn above_a_day(field: &str, seconds: impl std::fmt::Display) -> Result<(), ConfigError> {
    invalid(
        field,
        format!("({seconds}) is above a day ({MAX_SECONDS} s)"),
        "use a duration in seconds below a day",
    )
}

impl PolicySettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.cpu_weight < 0
            || self.memory_weight < 0
            || self.cpu_weight + self.memory_weight == 0
        {
            return invalid(
                "policy.cpuWeight",
                format!(
                    "({}) and policy.memoryWeight ({}) must not be negative, nor both 0",
                    self.cpu_weight, self.memory_weight
                ),
                "use weights of 0 or more, e.g. cpuWeight: 1, memoryWeight: 1",
            );
        }
        whole_seconds_below_a_day("policy.warmSettleSeconds", self.warm_settle_seconds)
    }
}

impl PreemptionConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        whole_seconds_below_a_day("preemption.timeoutSeconds", self.timeout_seconds)?;
        if self.timeout_seconds == 0 {
            return invalid(
                "preemption.timeoutSeconds",
                "is 0: every preemption would be abandoned at once".into(),
                "use e.g. 30",
            );
        }
        Ok(())
    }
}

impl VolumeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        whole_seconds_below_a_day("volumes.bindTimeoutSeconds", self.bind_timeout_seconds)?;
        if self.bind_timeout_seconds == 0 {
            return invalid("volumes.bindTimeoutSeconds", "is 0".into(), "use e.g. 600");
        }
        Ok(())
    }
}

impl QueueConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        below_a_day("queue.initialBackoffSeconds", self.initial_backoff_seconds)?;
        below_a_day("queue.maxBackoffSeconds", self.max_backoff_seconds)?;
        below_a_day(
            "queue.unschedulableRetrySeconds",
            self.unschedulable_retry_seconds,
        )?;
        if !(self.initial_backoff_seconds > 0.0
            && self.max_backoff_seconds >= self.initial_backoff_seconds
            && self.max_backoff_seconds.is_finite())
        {
            return invalid(
                "queue.maxBackoffSeconds",
                format!(
                    "({}) must be finite and at least queue.initialBackoffSeconds ({}) > 0",
                    self.max_backoff_seconds, self.initial_backoff_seconds
                ),
                "use e.g. initialBackoffSeconds: 1, maxBackoffSeconds: 10",
            );
        }
        if !(self.unschedulable_retry_seconds > 0.0 && self.unschedulable_retry_seconds.is_finite())
        {
            return invalid(
                "queue.unschedulableRetrySeconds",
                format!(
                    "({}) must be a positive number",
                    self.unschedulable_retry_seconds
                ),
                "use e.g. 30",
            );
        }
        Ok(())
    }
}

impl ApiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.qps > 0.0 && self.qps.is_finite()) {
            return invalid(
                "api.qps",
                format!("({}) must be a positive number", self.qps),
                "use e.g. 50",
            );
        }
        if self.burst == 0 {
            return invalid("api.burst", "is 0".into(), "use at least 1, e.g. 100");
        }
        if self.bind_concurrency == 0 {
            return invalid(
                "api.bindConcurrency",
                "is 0: nothing would ever bind".into(),
                "use at least 1, e.g. 16",
            );
        }
        Ok(())
    }
}

/// Whole seconds as milliseconds, saturating (validation bounds the settings).
fn seconds_ms(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.scheduler_name, "hubpack-scheduler");
        assert_eq!(c.placeholder_selectors.len(), 2);
        assert_eq!(c.api.burst, 100);
        assert_eq!(c.backoff().initial_ms, 1_000);
        assert_eq!(c.backoff().max_ms, 10_000);
        let c = Config::parse("{}", "t").unwrap();
        assert_eq!(c.leader_election.lease_duration_seconds, 15);
    }

    #[test]
    fn fields_are_camel_case_and_override_defaults() {
        let c = Config::parse(
            "schedulerName: my-sched\n\
             placeholderSelectors: [{hub.jupyter.org/placeholder: \"true\"}]\n\
             leaderElection: {leaseName: l, namespace: hub, leaseDurationSeconds: 20, renewGraceSeconds: 4}\n\
             api: {qps: 20, burst: 40, bindConcurrency: 4}\n\
             metricsAddress: 127.0.0.1:9999\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.scheduler_name, "my-sched");
        assert_eq!(
            c.placeholder_selectors[0].0["hub.jupyter.org/placeholder"],
            "true"
        );
        assert_eq!(c.lease_namespace(), "hub");
        assert_eq!(c.api.bind_concurrency, 4);
        assert_eq!(c.metrics_address.port(), 9999);
    }

    #[test]
    fn unknown_field_is_rejected_by_name() {
        let e = Config::parse("schedulerNmae: x\n", "t").unwrap_err();
        assert!(e.to_string().contains("schedulerNmae"), "{e}");
        let e = Config::parse("api: {qpss: 3}\n", "t").unwrap_err();
        assert!(e.to_string().contains("qpss"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_field_and_the_fix() {
        let cases = [
            ("schedulerName: \"\"", "schedulerName"),
            ("placeholderSelectors: []", "placeholderSelectors"),
            ("placeholderSelectors: [{}]", "placeholderSelectors"),
            (
                "leaderElection: {leaseDurationSeconds: 5, renewGraceSeconds: 5}",
                "leaderElection.renewGraceSeconds",
            ),
            (
                "queue: {initialBackoffSeconds: 5, maxBackoffSeconds: 1}",
                "queue.maxBackoffSeconds",
            ),
            ("api: {qps: 0}", "api.qps"),
            (
                "placeholderUnschedulableGraceSeconds: 600",
                "placeholderUnschedulableGraceSeconds",
            ),
            ("policy: {cpuWeight: -1}", "policy.cpuWeight"),
            (
                "leaderElection: {leaseDurationSeconds: 2, renewGraceSeconds: 1}",
                "leaderElection.leaseDurationSeconds",
            ),
            (
                "preemption: {timeoutSeconds: 18446744073709551615}",
                "preemption.timeoutSeconds",
            ),
            (
                "queue: {maxBackoffSeconds: 1e300}",
                "queue.maxBackoffSeconds",
            ),
            ("api: {burst: 0}", "api.burst"),
            ("api: {bindConcurrency: 0}", "api.bindConcurrency"),
            (
                "preemption: {timeoutSeconds: 0}",
                "preemption.timeoutSeconds",
            ),
        ];
        for (yaml, field) in cases {
            match Config::parse(yaml, "t") {
                Err(ConfigError::Invalid { field: f, fix, .. }) => {
                    assert_eq!(f, field, "{yaml}");
                    assert!(!fix.is_empty());
                }
                other => panic!("{yaml}: expected an Invalid error, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_example_file_parses_to_the_defaults() {
        let text = include_str!("../config.example.yaml");
        let c = Config::parse(text, "config.example.yaml").unwrap();
        let d = Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }

    #[test]
    fn wrong_type_is_a_parse_error() {
        let e = Config::parse("api: {burst: lots}", "t").unwrap_err();
        assert!(
            matches!(e, ConfigError::Load(LoadError::Parse { .. })),
            "{e}"
        );
    }
}
