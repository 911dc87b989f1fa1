//! Resource quantities in the units the scheduler compares: cpu in millicores, memory and
//! ephemeral storage in bytes, pod slots as a count, extended resources (e.g. `nvidia.com/gpu`)
//! as integers. Parsing of Kubernetes quantity strings happens in the adapters.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// A vector of resource amounts. Missing extended resources are zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_milli: i64,
    pub memory: i64,
    #[serde(default)]
    pub ephemeral_storage: i64,
    /// Pod slots. A pod requests exactly one; a node's allocatable says how many it holds.
    #[serde(default)]
    pub pods: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extended: BTreeMap<String, i64>,
}

/// The name of one resource, for "Insufficient …" reasons.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceName {
    Cpu,
    Memory,
    EphemeralStorage,
    Pods,
    Extended(String),
}

impl std::fmt::Display for ResourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResourceName::Cpu => f.write_str("cpu"),
            ResourceName::Memory => f.write_str("memory"),
            ResourceName::EphemeralStorage => f.write_str("ephemeral-storage"),
            ResourceName::Pods => f.write_str("pods"),
            ResourceName::Extended(n) => f.write_str(n),
        }
    }
}

impl Resources {
    pub fn new(cpu_milli: i64, memory: i64) -> Self {
        Resources {
            cpu_milli,
            memory,
            ..Default::default()
        }
    }

    pub fn with_pods(mut self, pods: i64) -> Self {
        self.pods = pods;
        self
    }

    pub fn with_extended(mut self, name: impl Into<String>, amount: i64) -> Self {
        self.extended.insert(name.into(), amount);
        self
    }

    pub fn extended(&self, name: &str) -> i64 {
        self.extended.get(name).copied().unwrap_or(0)
    }

    /// Component-wise maximum (how plain init containers combine).
    pub fn max(&self, other: &Resources) -> Resources {
        let mut out = Resources {
            cpu_milli: self.cpu_milli.max(other.cpu_milli),
            memory: self.memory.max(other.memory),
            ephemeral_storage: self.ephemeral_storage.max(other.ephemeral_storage),
            pods: self.pods.max(other.pods),
            extended: self.extended.clone(),
        };
        for (k, v) in &other.extended {
            let e = out.extended.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
        out
    }

    /// Resources of `self` (a request) that do not fit in `free`, in a stable order.
    pub fn shortfalls(&self, free: &Resources) -> Vec<ResourceName> {
        let mut out = Vec::new();
        if self.pods > free.pods {
            out.push(ResourceName::Pods);
        }
        if self.cpu_milli > free.cpu_milli {
            out.push(ResourceName::Cpu);
        }
        if self.memory > free.memory {
            out.push(ResourceName::Memory);
        }
        if self.ephemeral_storage > free.ephemeral_storage {
            out.push(ResourceName::EphemeralStorage);
        }
        for (k, v) in &self.extended {
            if *v > 0 && *v > free.extended(k) {
                out.push(ResourceName::Extended(k.clone()));
            }
        }
        out
    }

    /// True when every component of `self` is at most the matching one of `free`.
    pub fn fits_in(&self, free: &Resources) -> bool {
        self.pods <= free.pods
            && self.cpu_milli <= free.cpu_milli
            && self.memory <= free.memory
            && self.ephemeral_storage <= free.ephemeral_storage
            && self
                .extended
                .iter()
                .all(|(k, v)| *v <= 0 || *v <= free.extended(k))
    }

    fn zip(&mut self, other: &Resources, f: impl Fn(i64, i64) -> i64) {
        self.cpu_milli = f(self.cpu_milli, other.cpu_milli);
        self.memory = f(self.memory, other.memory);
        self.ephemeral_storage = f(self.ephemeral_storage, other.ephemeral_storage);
        self.pods = f(self.pods, other.pods);
        for (k, v) in &other.extended {
            let e = self.extended.entry(k.clone()).or_insert(0);
            *e = f(*e, *v);
        }
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, rhs: &Resources) {
        self.zip(rhs, |a, b| a + b);
    }
}

impl SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, rhs: &Resources) {
        self.zip(rhs, |a, b| a - b);
    }
}

impl Add<&Resources> for &Resources {
    type Output = Resources;
    fn add(self, rhs: &Resources) -> Resources {
        let mut out = self.clone();
        out += rhs;
        out
    }
}

impl Sub<&Resources> for &Resources {
    type Output = Resources;
    fn sub(self, rhs: &Resources) -> Resources {
        let mut out = self.clone();
        out -= rhs;
        out
    }
}
