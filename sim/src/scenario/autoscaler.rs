//! The autoscaler the pools run under: cluster-autoscaler (the default) or Karpenter, with
//! each one's settings at upstream defaults. `autoscaler: karpenter` is short for
//! `autoscaler: {kind: karpenter}`.

use serde::{Deserialize, Deserializer};

/// Which autoscaler adds and removes the pools' nodes.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AutoscalerKind {
    /// kubernetes/autoscaler's cluster-autoscaler, one node group per pool.
    #[default]
    ClusterAutoscaler,
    /// Karpenter (sigs.k8s.io/karpenter), one NodePool per pool with one instance type.
    Karpenter,
}

impl AutoscalerKind {
    pub fn name(self) -> &'static str {
        match self {
            AutoscalerKind::ClusterAutoscaler => "cluster-autoscaler",
            AutoscalerKind::Karpenter => "karpenter",
        }
    }
}

impl std::str::FromStr for AutoscalerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cluster-autoscaler" | "ca" => Ok(AutoscalerKind::ClusterAutoscaler),
            "karpenter" => Ok(AutoscalerKind::Karpenter),
            _ => Err(format!(
                "autoscaler {s:?}: use cluster-autoscaler (or ca) or karpenter"
            )),
        }
    }
}

/// The autoscaler's settings: cluster-autoscaler 1.36 flags with upstream defaults, or,
/// with `kind: karpenter`, Karpenter's (`karpenter:`); the other kind's settings are unused.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalerSpec {
    #[serde(default)]
    pub kind: AutoscalerKind,
    /// Karpenter's NodePool and controller settings (`kind: karpenter`).
    #[serde(default)]
    pub karpenter: KarpenterSpec,
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
            kind: AutoscalerKind::default(),
            karpenter: KarpenterSpec::default(),
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

/// `autoscaler:` as a map of settings, or just the kind's name (`autoscaler: karpenter`).
pub fn spec_or_kind<'de, D: Deserializer<'de>>(d: D) -> Result<AutoscalerSpec, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum SpecOrKind {
        Kind(AutoscalerKind),
        Spec(Box<AutoscalerSpec>),
    }
    Ok(match SpecOrKind::deserialize(d)? {
        SpecOrKind::Kind(kind) => AutoscalerSpec {
            kind,
            ..AutoscalerSpec::default()
        },
        SpecOrKind::Spec(spec) => *spec,
    })
}

/// Karpenter's `consolidationPolicy`.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
pub enum ConsolidationPolicy {
    /// Only nodes with no pod (DaemonSets aside) are removed.
    WhenEmpty,
    /// Also nodes whose pods fit on the other nodes (and at most one new, cheaper node).
    #[default]
    WhenEmptyOrUnderutilized,
}

impl std::str::FromStr for ConsolidationPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "WhenEmpty" => Ok(ConsolidationPolicy::WhenEmpty),
            "WhenEmptyOrUnderutilized" => Ok(ConsolidationPolicy::WhenEmptyOrUnderutilized),
            _ => Err(format!(
                "consolidation policy {s:?}: use WhenEmpty or WhenEmptyOrUnderutilized"
            )),
        }
    }
}

/// Karpenter v1.14's settings that shape when nodes come and go (upstream defaults).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KarpenterSpec {
    /// The NodePool's `disruption.consolidationPolicy`.
    #[serde(default)]
    pub consolidation_policy: ConsolidationPolicy,
    /// The NodePool's `disruption.consolidateAfter`: a node is a candidate only once no pod
    /// has come to or left it for this long.
    #[serde(default)]
    pub consolidate_after_s: f64,
    /// `BATCH_IDLE_DURATION`: a provisioning batch ends this long after its last new
    /// pending pod…
    #[serde(default = "default_batch_idle")]
    pub batch_idle_s: f64,
    /// …or this long after its first (`BATCH_MAX_DURATION`).
    #[serde(default = "default_batch_max")]
    pub batch_max_s: f64,
    /// The NodePool's `disruption.budgets[].nodes`: a count (`"3"`) or a share of the
    /// pool's nodes (`"10%"`, rounded up) that may be disrupted at once.
    #[serde(default = "default_budget")]
    pub budget_nodes: Budget,
    /// Whether the hub sets `karpenter.sh/do-not-disrupt: "true"` on user pods (the chart
    /// README asks it to). Without it, consolidation may evict a running server.
    #[serde(default = "default_true")]
    pub user_pods_do_not_disrupt: bool,
    /// Karpenter's own constants, not settings of a real cluster: the disruption
    /// controller's pass (`pollingPeriod`, 10 s), a command's re-validation
    /// (`commandValidationDelay`, 15 s) and the floor of the nomination window (10 s). They
    /// are here so a time-compressed run (the side-by-side bench) can be simulated at its
    /// scale, where they take compression × as long.
    #[serde(default = "default_poll")]
    pub disruption_poll_s: f64,
    #[serde(default = "default_validation")]
    pub validation_delay_s: f64,
    #[serde(default = "default_poll")]
    pub nomination_min_s: f64,
}

fn default_poll() -> f64 {
    10.0
}
fn default_validation() -> f64 {
    15.0
}

fn default_batch_idle() -> f64 {
    1.0
}
fn default_batch_max() -> f64 {
    10.0
}
fn default_budget() -> Budget {
    Budget::Percent(10)
}

impl Default for KarpenterSpec {
    fn default() -> Self {
        KarpenterSpec {
            consolidation_policy: ConsolidationPolicy::default(),
            consolidate_after_s: 0.0,
            batch_idle_s: default_batch_idle(),
            batch_max_s: default_batch_max(),
            budget_nodes: default_budget(),
            user_pods_do_not_disrupt: true,
            disruption_poll_s: default_poll(),
            validation_delay_s: default_validation(),
            nomination_min_s: default_poll(),
        }
    }
}

/// A disruption budget's `nodes`, read (written as Karpenter takes it: `"3"`, `"10%"`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Budget {
    Nodes(usize),
    /// Whole percent, 0–100, as the NodePool's schema allows.
    Percent(u32),
}

impl Budget {
    pub fn parse(s: &str) -> Result<Budget, String> {
        let bad = || {
            format!(
                "autoscaler.karpenter.budget_nodes {s:?}: write a node count (\"3\") or a \
                 whole percentage (\"10%\")"
            )
        };
        match s.trim().strip_suffix('%') {
            Some(p) => match p.trim().parse::<u32>() {
                Ok(v) if v <= 100 => Ok(Budget::Percent(v)),
                _ => Err(bad()),
            },
            None => s.trim().parse().map(Budget::Nodes).map_err(|_| bad()),
        }
    }

    /// Nodes that may be disrupted at once in a pool of `nodes` (a share rounds up, as
    /// Karpenter's `GetAllowedDisruptions` does).
    pub fn allowed(self, nodes: usize) -> usize {
        match self {
            Budget::Nodes(n) => n,
            Budget::Percent(p) => (p as usize * nodes).div_ceil(100),
        }
    }
}

impl TryFrom<String> for Budget {
    type Error = String;

    fn try_from(s: String) -> Result<Budget, String> {
        Budget::parse(&s)
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Nodes(n) => write!(f, "{n}"),
            Budget::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl From<Budget> for String {
    fn from(b: Budget) -> String {
        b.to_string()
    }
}

impl KarpenterSpec {
    /// Checks each setting, naming the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        for (field, v, e) in [
            ("batch_idle_s", self.batch_idle_s, "1"),
            ("batch_max_s", self.batch_max_s, "10"),
            ("disruption_poll_s", self.disruption_poll_s, "10"),
            ("validation_delay_s", self.validation_delay_s, "15"),
            ("nomination_min_s", self.nomination_min_s, "10"),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "autoscaler.karpenter.{field} must be a number of seconds > 0 (e.g. {e}), \
                     not {v}"
                ));
            }
        }
        if !(self.consolidate_after_s.is_finite() && self.consolidate_after_s >= 0.0) {
            return Err(format!(
                "autoscaler.karpenter.consolidate_after_s must be seconds >= 0 (e.g. 0 or 30), \
                 not {}",
                self.consolidate_after_s
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_percentage_budget_rounds_up_as_karpenter_does() {
        let b = Budget::parse("10%").unwrap();
        assert_eq!(b.allowed(0), 0);
        assert_eq!(b.allowed(1), 1);
        assert_eq!(b.allowed(10), 1);
        assert_eq!(b.allowed(11), 2);
        assert_eq!(Budget::parse("3").unwrap().allowed(100), 3);
        assert_eq!(Budget::parse("0%").unwrap().allowed(100), 0);
        let e = Budget::parse("ten").unwrap_err();
        assert!(e.contains("budget_nodes") && e.contains("10%"), "{e}");
        // As the NodePool writes it, both ways.
        assert_eq!(Budget::Percent(10).to_string(), "10%");
        // Karpenter's schema takes whole percents only.
        assert!(Budget::parse("12.5%").is_err());
        assert_eq!(
            Budget::parse(&Budget::Nodes(3).to_string()),
            Ok(Budget::Nodes(3))
        );
    }

    #[test]
    fn the_kind_alone_or_a_map_both_read() {
        #[derive(Deserialize)]
        struct W {
            #[serde(deserialize_with = "spec_or_kind")]
            autoscaler: AutoscalerSpec,
        }
        let w: W = serde_saphyr::from_str("autoscaler: karpenter").unwrap();
        assert_eq!(w.autoscaler.kind, AutoscalerKind::Karpenter);
        let w: W = serde_saphyr::from_str(
            "autoscaler: {kind: karpenter, karpenter: {consolidation_policy: WhenEmpty}}",
        )
        .unwrap();
        assert_eq!(
            w.autoscaler.karpenter.consolidation_policy,
            ConsolidationPolicy::WhenEmpty
        );
        let w: W = serde_saphyr::from_str("autoscaler: {scan_interval_s: 5}").unwrap();
        assert_eq!(w.autoscaler.kind, AutoscalerKind::ClusterAutoscaler);
        assert!(serde_saphyr::from_str::<W>("autoscaler: kapenter").is_err());
    }
}
