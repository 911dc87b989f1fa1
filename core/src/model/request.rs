//! A pod's effective request, aggregated exactly as Kubernetes does it
//! (k8s.io/component-helpers resource.PodRequests / AggregateContainerRequests):
//! restartable init containers (sidecars) add to the containers' sum and to every later init
//! container; plain init containers take the max; pod-level `spec.resources.requests`
//! override cpu/memory; pod overhead is added last.

use super::Resources;
use std::collections::BTreeMap;

/// kube-scheduler's NonZeroRequested defaults (pkg/scheduler/util): a container without a
/// cpu or memory request counts as this much when scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerRequest {
    pub requests: Resources,
    /// Whether the container set a cpu / memory request at all (for NonZeroRequested).
    pub has_cpu: bool,
    pub has_memory: bool,
    /// An init container with `restartPolicy: Always` (a sidecar).
    pub restartable: bool,
}

impl ContainerRequest {
    pub fn new(requests: Resources) -> Self {
        ContainerRequest {
            requests,
            has_cpu: true,
            has_memory: true,
            restartable: false,
        }
    }

    fn non_zero(&self) -> Resources {
        let mut r = self.requests.clone();
        if !self.has_cpu && r.cpu_milli == 0 {
            r.cpu_milli = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !self.has_memory && r.memory == 0 {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
        r
    }
}

/// The request-relevant parts of a pod spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodRequest {
    pub containers: Vec<ContainerRequest>,
    pub init_containers: Vec<ContainerRequest>,
    /// `spec.overhead`.
    pub overhead: Resources,
    /// `spec.resources.requests` (pod-level resources), cpu and memory only.
    pub pod_level_cpu_milli: Option<i64>,
    pub pod_level_memory: Option<i64>,
    /// `spec.resources.requests` of `hugepages-<size>`: upstream's pod-level resources
    /// cover them too (pkg/apis/core/v1/helper/qos `IsSupportedPodLevelResource`).
    pub pod_level_hugepages: BTreeMap<String, i64>,
}

impl PodRequest {
    /// The request used for fit, with one pod slot.
    pub fn effective(&self) -> Resources {
        self.aggregate(|c| c.requests.clone())
    }

    /// The request used for scoring (NonZeroRequested), with one pod slot.
    pub fn for_scoring(&self) -> Resources {
        self.aggregate(ContainerRequest::non_zero)
    }

    fn aggregate(&self, each: impl Fn(&ContainerRequest) -> Resources) -> Resources {
        let mut reqs = Resources::default();
        for c in &self.containers {
            reqs += &each(c);
        }
        let mut sidecars = Resources::default();
        let mut init_max = Resources::default();
        for c in &self.init_containers {
            let own = each(c);
            let during = if c.restartable {
                reqs += &own;
                sidecars += &own;
                sidecars.clone()
            } else {
                &own + &sidecars
            };
            init_max = init_max.max(&during);
        }
        let mut reqs = reqs.max(&init_max);
        if let Some(cpu) = self.pod_level_cpu_milli {
            reqs.cpu_milli = cpu;
        }
        if let Some(mem) = self.pod_level_memory {
            reqs.memory = mem;
        }
        for (name, amount) in &self.pod_level_hugepages {
            reqs.extended.insert(name.clone(), *amount);
        }
        reqs += &self.overhead;
        reqs.pods = 1;
        reqs
    }
}
