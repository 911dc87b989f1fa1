//! One event described by flags (`plan --users 300 --window 8m …`) as a scenario: one pool,
//! one image, one profile, a burst after an hour of quiet, sessions, and the autoscaler
//! and hub defaults.

use crate::scenario::{
    ArrivalSpec, BurstSpec, DurationDist, ImageSpec, PoolSpec, ProfileSpec, ResourceSpec, Scenario,
};

/// The event and the cluster it runs on. Defaults: a 300-student class.
#[derive(Debug, Clone, clap::Args)]
pub struct EventArgs {
    /// Users in the event.
    #[arg(long)]
    pub users: Option<usize>,
    /// Their arrivals spread over this window (e.g. 8m).
    #[arg(long, default_value = "8m", value_parser = parse_duration_with_unit)]
    pub window: f64,
    /// The event starts this long after the (quiet) start of the simulation.
    #[arg(long, default_value = "1h", value_parser = parse_duration_with_unit)]
    pub start: f64,
    /// Median session length (log-normal, σ 0.3).
    #[arg(long, default_value = "50m", value_parser = parse_duration_with_unit)]
    pub session: f64,
    /// Node allocatable CPU (cores).
    #[arg(long, default_value_t = 16.0)]
    pub node_cpu: f64,
    /// Node allocatable memory (GiB).
    #[arg(long, default_value_t = 64.0)]
    pub node_memory_gib: f64,
    /// Node pod slots.
    #[arg(long, default_value_t = 110)]
    pub node_pods: i64,
    /// Every DaemonSet on a node, the pre-puller included: CPU (cores).
    #[arg(long, default_value_t = 0.4)]
    pub daemonset_cpu: f64,
    /// Every DaemonSet on a node: memory (GiB).
    #[arg(long, default_value_t = 1.0)]
    pub daemonset_memory_gib: f64,
    /// One user's CPU request (z2jh singleuser.cpu.guarantee), cores.
    #[arg(long, default_value_t = 0.5)]
    pub user_cpu: f64,
    /// One user's memory request (z2jh singleuser.memory.guarantee), GiB.
    #[arg(long, default_value_t = 1.8)]
    pub user_memory_gib: f64,
    /// Autoscaler request → node Ready (median; log-normal σ 0.2).
    #[arg(long, default_value = "4m", value_parser = parse_duration_with_unit)]
    pub boot: f64,
    /// Image pull on a fresh node (median; σ 0.3).
    #[arg(long, default_value = "3m", value_parser = parse_duration_with_unit)]
    pub pull: f64,
    /// The user image.
    #[arg(
        long,
        default_value = "quay.io/jupyter/datascience-notebook:2025-01-01"
    )]
    pub image: String,
    /// The most nodes the autoscaler may add to the pool.
    #[arg(long, default_value_t = 20)]
    pub max_nodes: usize,
    /// Warm nodes before the event.
    #[arg(long, default_value_t = 1)]
    pub initial_nodes: usize,
    /// Price of a node-hour.
    #[arg(long, default_value_t = 1.0)]
    pub price: f64,
}

impl EventArgs {
    /// Checks the flags before anything runs.
    pub fn check(&self, users: usize) -> Result<(), EventError> {
        let bad = |flag: &str, what: &str| Err(EventError(format!("{flag}: {what}")));
        if users < 1 {
            return bad("--users", "must be at least 1, e.g. --users 300");
        }
        for (flag, v) in [
            ("--user-cpu", self.user_cpu),
            ("--user-memory-gib", self.user_memory_gib),
            ("--node-cpu", self.node_cpu),
            ("--node-memory-gib", self.node_memory_gib),
            ("--window", self.window),
        ] {
            if v.is_nan() || v <= 0.0 {
                return bad(flag, &format!("must be > 0 (got {v})"));
            }
        }
        if self.node_pods < 1 {
            return bad(
                "--node-pods",
                "must be at least 1 (Kubernetes' default is 110)",
            );
        }
        if self.max_nodes < 1 {
            return bad("--max-nodes", "must be at least 1");
        }
        Ok(())
    }

    /// The event and its default pool in one line (for the report's inputs).
    pub fn describe(&self, users: usize) -> String {
        format!(
            "--users {users} --window {:.0}m --start {:.0}m --session {:.0}m; pool user: \
             {} CPU, {} GiB, {} pods per node (DaemonSets {} CPU, {} GiB), boot {:.0}s, pull \
             {:.0}s, {}..{} nodes; users {} CPU, {} GiB; image {}",
            self.window / 60.0,
            self.start / 60.0,
            self.session / 60.0,
            self.node_cpu,
            self.node_memory_gib,
            self.node_pods,
            self.daemonset_cpu,
            self.daemonset_memory_gib,
            self.boot,
            self.pull,
            self.initial_nodes,
            self.max_nodes.max(self.initial_nodes),
            self.user_cpu,
            self.user_memory_gib,
            self.image
        )
    }

    /// The scenario these flags describe (`users` must be set).
    pub fn scenario(&self, users: usize) -> Scenario {
        let duration_h = (self.start + self.window + 3.0 * self.session) / 3600.0 + 1.0;
        let mut sc = Scenario {
            name: format!("event-{users}-users"),
            duration_h: (duration_h * 4.0).ceil() / 4.0,
            seeds: 20,
            price_per_node_hour: self.price,
            pools: vec![PoolSpec {
                name: "user".into(),
                allocatable: ResourceSpec {
                    cpu: self.node_cpu,
                    memory_gib: self.node_memory_gib,
                    pods: self.node_pods,
                    ..Default::default()
                },
                daemonset_overhead: ResourceSpec {
                    cpu: self.daemonset_cpu,
                    memory_gib: self.daemonset_memory_gib,
                    pods: 0,
                    ..Default::default()
                },
                min_nodes: self.initial_nodes.min(1),
                max_nodes: self.max_nodes.max(self.initial_nodes),
                initial_nodes: self.initial_nodes,
                boot: DurationDist {
                    median_s: self.boot,
                    sigma: 0.2,
                },
                node_labels: Vec::new(),
                image_pull: None,
                serialize_image_pulls: true,
            }],
            images: vec![ImageSpec {
                name: self.image.clone(),
                pull: DurationDist {
                    median_s: self.pull,
                    sigma: 0.3,
                },
                size_mb: 2000.0,
            }],
            profiles: vec![ProfileSpec {
                name: "user".into(),
                request: ResourceSpec {
                    cpu: self.user_cpu,
                    memory_gib: self.user_memory_gib,
                    pods: 0,
                    ..Default::default()
                },
                image: self.image.clone(),
                pool: "user".into(),
                weight: 1.0,
            }],
            hub: Default::default(),
            autoscaler: Default::default(),
            arrivals: vec![ArrivalSpec::Burst(BurstSpec {
                at_h: self.start / 3600.0,
                users,
                over_min: self.window / 60.0,
                profile: None,
            })],
            policies: Default::default(),
            predictive: Default::default(),
            hubpack: Default::default(),
            forecast: Default::default(),
            placeholder: Default::default(),
            sample_s: 60.0,
        };
        sc.hub.session = DurationDist {
            median_s: self.session,
            sigma: 0.3,
        };
        // Lead time: boot + pull at their p90 (σ 0.2 and 0.3) plus a scan and reaction.
        sc.predictive.lead_min = crate::scenario::Lead::Minutes(
            ((self.boot * 1.3 + self.pull * 1.5 + 40.0) / 60.0).ceil(),
        );
        sc
    }
}

/// A duration that must say its unit ("10m", not "10": minutes or seconds?).
pub fn parse_duration_with_unit(s: &str) -> Result<f64, String> {
    if s.trim().parse::<f64>().is_ok() {
        return Err(format!("{s:?} has no unit; write e.g. {s}s, {s}m or {s}h"));
    }
    parse_duration_s(s)
}

/// Flags that describe an impossible event: the message names the flag and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EventError(pub String);

/// "30s", "8m", "1.5h", "90" (seconds) → seconds.
pub fn parse_duration_s(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("min") {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x >= 0.0 && x.is_finite() => Ok(x * mult),
        _ => Err(format!(
            "{s:?} is not a duration; write e.g. 30s, 8m or 1.5h"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_units_people_write() {
        assert_eq!(parse_duration_s("30s"), Ok(30.0));
        assert_eq!(parse_duration_s("8m"), Ok(480.0));
        assert_eq!(parse_duration_s("10min"), Ok(600.0));
        assert_eq!(parse_duration_s("1.5h"), Ok(5400.0));
        assert_eq!(parse_duration_s("45"), Ok(45.0));
        assert!(parse_duration_s("soon").is_err());
    }

    #[test]
    fn event_durations_need_a_unit() {
        assert_eq!(parse_duration_with_unit("10m"), Ok(600.0));
        match parse_duration_with_unit("10") {
            Err(err) => assert!(err.contains("no unit") && err.contains("10m"), "{err}"),
            Ok(x) => panic!("10 without a unit was read as {x} s"),
        }
    }
}
