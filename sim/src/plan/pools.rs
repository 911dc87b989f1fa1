//! Node pools in `plan`: `--pool NAME=cpu:8,memory:52Gi,gpu:1,boot:6m` describes another
//! pool (GPU, high-memory), and a scenario with profiles on several pools is split into
//! one scenario per pool. Pools are disjoint node sets the autoscaler scales independently,
//! so each is simulated as its own cluster with its share of the users (by the profile
//! mix), and the plan is reported per pool and in total.

use super::event::parse_duration_with_unit;
use crate::scenario::{DurationDist, PoolSpec, ResourceSpec, Scenario, scale_users};
use std::collections::BTreeMap;

/// One `--pool` flag: a pool and how to recognise it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolArg {
    pub name: String,
    pub cpu: f64,
    pub memory_gib: f64,
    pub pods: i64,
    pub extended: BTreeMap<String, i64>,
    pub boot_s: f64,
    pub pull_s: Option<f64>,
    pub max_nodes: usize,
    /// `label:KEY=VALUE` (repeatable): node labels a profile may select it by.
    pub labels: Vec<String>,
}

const POOL_HELP: &str = "write NAME=cpu:8,memory:52Gi,boot:6m[,gpu:1][,pull:5m][,max:10]\
                         [,pods:110][,label:KEY=VALUE]";

impl std::str::FromStr for PoolArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((name, rest)) = s.split_once('=') else {
            return Err(format!("{s:?} has no pool name; {POOL_HELP}"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("{s:?} has no pool name; {POOL_HELP}"));
        }
        let mut p = PoolArg {
            name: name.to_string(),
            cpu: 0.0,
            memory_gib: 0.0,
            pods: 110,
            extended: BTreeMap::new(),
            boot_s: 0.0,
            pull_s: None,
            max_nodes: 10,
            labels: Vec::new(),
        };
        let mut boot = false;
        for part in rest.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let Some((key, value)) = part.split_once(':') else {
                return Err(format!(
                    "pool {name}: {part:?} is not key:value; {POOL_HELP}"
                ));
            };
            let bad = |what: &str| format!("pool {name}: {key}:{value}: {what}");
            let positive = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| *x > 0.0 && x.is_finite())
            };
            let whole = |v: &str| v.trim().parse::<i64>().ok().filter(|x| *x >= 0);
            match key.trim() {
                "cpu" => p.cpu = positive(value).ok_or_else(|| bad("cores > 0, e.g. cpu:8"))?,
                "memory" => {
                    let bytes = crate::scenario::z2jh_values::k8s_bytes(
                        &serde_json::Value::String(value.trim().to_string()),
                    )
                    .ok()
                    .filter(|b| *b > 0.0)
                    .ok_or_else(|| bad("a memory quantity > 0, e.g. memory:52Gi"))?;
                    // A bare number is GiB, as everywhere else in plan's flags.
                    p.memory_gib = match value.trim().parse::<f64>() {
                        Ok(gib) => gib,
                        Err(_) => bytes / (1u64 << 30) as f64,
                    };
                }
                "pods" => {
                    p.pods = whole(value)
                        .filter(|x| *x > 0)
                        .ok_or_else(|| bad("pod slots ≥ 1, e.g. pods:110"))?;
                }
                "gpu" => {
                    let g = whole(value).ok_or_else(|| bad("whole GPUs, e.g. gpu:1"))?;
                    p.extended.insert("nvidia.com/gpu".into(), g);
                }
                "boot" => {
                    p.boot_s = parse_duration_with_unit(value).map_err(|e| bad(&e))?;
                    boot = true;
                }
                "pull" => p.pull_s = Some(parse_duration_with_unit(value).map_err(|e| bad(&e))?),
                "max" => {
                    p.max_nodes = whole(value)
                        .filter(|x| *x > 0)
                        .ok_or_else(|| bad("nodes ≥ 1, e.g. max:10"))?
                        as usize;
                }
                "label" => p.labels.push(value.trim().to_string()),
                k if k.contains('/') => {
                    let n = whole(value).ok_or_else(|| bad("a whole number, e.g. 1"))?;
                    p.extended.insert(k.to_string(), n);
                }
                _ => return Err(bad(&format!("unknown key; {POOL_HELP}"))),
            }
        }
        if p.cpu <= 0.0 || p.memory_gib <= 0.0 || !boot {
            return Err(format!(
                "pool {name}: cpu, memory and boot are needed; {POOL_HELP}"
            ));
        }
        Ok(p)
    }
}

impl PoolArg {
    /// The pool, with DaemonSets as the first pool's and no node before the event.
    pub fn spec(&self, daemonsets: &ResourceSpec) -> PoolSpec {
        PoolSpec {
            name: self.name.clone(),
            allocatable: ResourceSpec {
                cpu: self.cpu,
                memory_gib: self.memory_gib,
                pods: self.pods,
                extended: self.extended.clone(),
            },
            daemonset_overhead: daemonsets.clone(),
            min_nodes: 0,
            max_nodes: self.max_nodes,
            initial_nodes: 0,
            boot: DurationDist {
                median_s: self.boot_s,
                sigma: 0.2,
            },
            node_labels: self.labels.clone(),
            image_pull: self.pull_s.map(|median_s| DurationDist {
                median_s,
                sigma: 0.3,
            }),
            serialize_image_pulls: true,
        }
    }
}

/// Adds (or replaces, by name) the `--pool` pools in the scenario.
pub fn add_pools(sc: &mut Scenario, pools: &[PoolArg]) {
    let daemonsets = sc.pools[0].daemonset_overhead.clone();
    for p in pools {
        let spec = p.spec(&daemonsets);
        match sc.pools.iter_mut().find(|x| x.name == p.name) {
            Some(x) => *x = spec,
            None => sc.pools.push(spec),
        }
    }
}

/// One pool's part of the event: its users' share and the scenario of that pool alone.
#[derive(Debug, Clone)]
pub struct PoolPart {
    pub pool: String,
    /// Its share of the users (the weights of its profiles).
    pub share: f64,
    pub scenario: Scenario,
}

/// The scenario split by pool: each pool with profiles, alone, with its profiles (weights
/// renormalised), its images (pulled in the pool's `image_pull` if set) and its share of
/// the users. A scenario whose profiles all run on one pool is returned whole.
pub fn split(sc: &Scenario) -> Vec<PoolPart> {
    let total: f64 = sc.profiles.iter().map(|p| p.weight.max(0.0)).sum();
    let mut parts = Vec::new();
    for pool in &sc.pools {
        let profiles: Vec<_> = sc
            .profiles
            .iter()
            .filter(|p| p.pool == pool.name)
            .cloned()
            .collect();
        if profiles.is_empty() {
            continue;
        }
        let weight: f64 = profiles.iter().map(|p| p.weight.max(0.0)).sum();
        let share = if total > 0.0 { weight / total } else { 1.0 };
        let mut part = sc.clone();
        if sc.pools.len() > 1 || pool.image_pull.is_some() {
            part.pools = vec![pool.clone()];
            part.images
                .retain(|i| profiles.iter().any(|p| p.image == i.name));
            if let Some(pull) = &pool.image_pull {
                for i in &mut part.images {
                    i.pull = pull.clone();
                }
            }
            part.profiles = profiles;
            if weight > 0.0 {
                for p in &mut part.profiles {
                    p.weight /= weight;
                }
            }
        }
        if share < 1.0 - 1e-9 {
            part.name = format!("{} / pool {}", sc.name, pool.name);
            scale_users(&mut part, share);
        }
        parts.push(PoolPart {
            pool: pool.name.clone(),
            share,
            scenario: part,
        });
    }
    parts
}

/// Pools described (by `--pool` or the scenario) on which no profile users pick runs.
pub fn idle_pools(sc: &Scenario) -> Vec<String> {
    sc.pools
        .iter()
        .filter(|p| !sc.profiles.iter().any(|pr| pr.pool == p.name))
        .map(|p| p.name.clone())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn pool_flags_in_the_units_people_write() {
        let p: PoolArg = "gpu=cpu:8,memory:52Gi,gpu:1,boot:6m,pull:5m,max:4,label:a/b=c"
            .parse()
            .unwrap();
        assert_eq!((p.cpu, p.memory_gib, p.boot_s), (8.0, 52.0, 360.0));
        assert_eq!(p.extended.get("nvidia.com/gpu"), Some(&1));
        assert_eq!((p.pull_s, p.max_nodes), (Some(300.0), 4));
        assert_eq!(p.labels, vec!["a/b=c".to_string()]);
        let p: PoolArg = "x=cpu:4,memory:16,boot:5m,amd.com/gpu:2".parse().unwrap();
        assert_eq!(
            (p.memory_gib, p.extended.get("amd.com/gpu")),
            (16.0, Some(&2))
        );
        for (bad, says) in [
            ("cpu:8", "no pool name"),
            ("g=cpu:8,memory:1Gi", "boot are needed"),
            ("g=cpu:8,memory:1Gi,boot:6", "no unit"),
            ("g=cpu:8,memory:lots,boot:6m", "memory quantity"),
            ("g=cpu:8,memory:1Gi,boot:6m,disk:1", "unknown key"),
        ] {
            let err = bad.parse::<PoolArg>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
