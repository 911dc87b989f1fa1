//! Pod requests and node capacity in the units the end-state checks compare: cpu millicores,
//! memory bytes, pod slots. Requests follow Kubernetes' aggregation for plain containers (sum
//! of containers, at least the largest init container); sidecars, pod overhead and pod-level
//! resources are not modelled here (the core crate does that for the product).

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;
use std::ops::{Add, Sub};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub pods: i64,
}

impl Add for Resources {
    type Output = Resources;
    fn add(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis + o.cpu_millis,
            memory_bytes: self.memory_bytes + o.memory_bytes,
            pods: self.pods + o.pods,
        }
    }
}

impl Sub for Resources {
    type Output = Resources;
    fn sub(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis - o.cpu_millis,
            memory_bytes: self.memory_bytes - o.memory_bytes,
            pods: self.pods - o.pods,
        }
    }
}

impl Resources {
    /// Whether `request` fits in `self` (free capacity).
    pub fn fits(&self, request: &Resources) -> bool {
        request.cpu_millis <= self.cpu_millis
            && request.memory_bytes <= self.memory_bytes
            && request.pods <= self.pods
    }

    fn max(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.max(o.cpu_millis),
            memory_bytes: self.memory_bytes.max(o.memory_bytes),
            pods: self.pods.max(o.pods),
        }
    }

    fn from_map(map: Option<&BTreeMap<String, Quantity>>, pods: i64) -> Resources {
        let get = |k: &str, parse: fn(&str) -> Option<i64>| {
            map.and_then(|m| m.get(k))
                .and_then(|q| parse(&q.0))
                .unwrap_or(0)
        };
        Resources {
            cpu_millis: get("cpu", parse_cpu_millis),
            memory_bytes: get("memory", parse_bytes),
            pods,
        }
    }
}

/// A node's allocatable resources.
pub fn allocatable(node: &Node) -> Resources {
    let map = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let pods = map
        .and_then(|m| m.get("pods"))
        .and_then(|q| parse_bytes(&q.0))
        .unwrap_or(0);
    Resources::from_map(map, pods)
}

/// What a pod requests, one pod slot included.
pub fn pod_request(pod: &Pod) -> Resources {
    let Some(spec) = &pod.spec else {
        return Resources::default();
    };
    let requests = |c: &Container| {
        Resources::from_map(c.resources.as_ref().and_then(|r| r.requests.as_ref()), 0)
    };
    let containers = spec
        .containers
        .iter()
        .map(requests)
        .fold(Resources::default(), Add::add);
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(requests)
        .fold(Resources::default(), Resources::max);
    let mut total = containers.max(init);
    total.pods = 1;
    total
}

/// Parses a cpu quantity to millicores: `"2"`, `"500m"`, `"0.5"`.
pub fn parse_cpu_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(m) = text.strip_suffix('m') {
        return m.parse::<f64>().ok().map(|v| v.ceil() as i64);
    }
    parse_scaled(text).map(|v| (v * 1000.0).ceil() as i64)
}

/// Parses a quantity to a plain number (bytes for memory): `"128Mi"`, `"1G"`, `"110"`, `"1e3"`.
pub fn parse_bytes(text: &str) -> Option<i64> {
    parse_scaled(text.trim()).map(|v| v.ceil() as i64)
}

fn parse_scaled(text: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|v| v * factor);
        }
    }
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_cpu_millis("2"), Some(2000));
        assert_eq!(parse_cpu_millis("500m"), Some(500));
        assert_eq!(parse_cpu_millis("0.25"), Some(250));
        assert_eq!(parse_bytes("128Mi"), Some(128 << 20));
        assert_eq!(parse_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_bytes("110"), Some(110));
        assert_eq!(parse_bytes("1e3"), Some(1000));
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn a_pod_requests_its_containers_sum_or_its_largest_init_container() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m"}}}
                ],
                "initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "2", "memory": "100Mi"}}}
                ]
            }
        }))
        .unwrap();
        assert_eq!(
            pod_request(&pod),
            Resources {
                cpu_millis: 2000,
                memory_bytes: 1 << 30,
                pods: 1
            }
        );
        let free = Resources {
            cpu_millis: 2000,
            memory_bytes: 2 << 30,
            pods: 1,
        };
        assert!(free.fits(&pod_request(&pod)));
        assert!(!(free - pod_request(&pod)).fits(&pod_request(&pod)));
    }
}
