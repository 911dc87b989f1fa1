//! core/v1 Pod → [`hubpack_core::model::Pod`]: exact request aggregation (sidecars,
//! overhead, pod-level resources), role from the placeholder selector, constraints, and the
//! constraints hubpack does not implement listed in `unsupported`.

use super::quantity::{QuantityError, parse_milli, parse_units};
use super::volume::{VolumeCatalog, pod_volumes};
use super::{ConvertError, selector, time_millis};
use hubpack_core::model::{
    ContainerRequest, HostPort, ImageName, Pod, PodKey, PodRequest, PodRole, PreemptionPolicy,
    Resources, USER_IMAGES_ANNOTATION,
};
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An equality label selector (`matchLabels`): every pair must be present. An empty
/// selector matches nothing, so a missing setting never turns every pod into a placeholder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelMatch(pub BTreeMap<String, String>);

impl LabelMatch {
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let Some(labels) = labels else { return false };
        !self.0.is_empty()
            && self
                .0
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|have| have == v))
    }
}

/// What pod conversion needs to know besides the pod.
pub struct PodContext<'a> {
    /// Our `schedulerName`: pods with it that are not placeholders are users.
    pub scheduler_name: &'a str,
    /// Pods matching any of these are placeholders.
    pub placeholder_selectors: &'a [LabelMatch],
    pub volumes: &'a dyn VolumeCatalog,
}

/// A placeholder stands for users: its warmth is judged by their images, listed in its
/// `hubpack.io/user-images` annotation, never by its own `pause` image. Without the
/// annotation it has none, and only the pre-puller's readiness makes a node warm for it.
fn placeholder_images(p: &k8s::Pod) -> Vec<ImageName> {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(USER_IMAGES_ANNOTATION))
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(ImageName::normalize)
                .collect()
        })
        .unwrap_or_default()
}

pub fn pod_from_k8s(p: &k8s::Pod, ctx: &PodContext<'_>) -> Result<Pod, ConvertError> {
    let namespace = p.metadata.namespace.as_deref().unwrap_or("default");
    let name = p
        .metadata
        .name
        .as_deref()
        .ok_or_else(|| ConvertError::Missing {
            field: "metadata.name".into(),
        })?;
    let spec = p.spec.as_ref().ok_or_else(|| ConvertError::Missing {
        field: "spec".into(),
    })?;
    let request = pod_request(spec, p.status.as_ref())?;

    let labels = p.metadata.labels.as_ref();
    let role = if ctx.placeholder_selectors.iter().any(|s| s.matches(labels)) {
        PodRole::Placeholder
    } else if spec.scheduler_name.as_deref() == Some(ctx.scheduler_name) {
        PodRole::User
    } else {
        PodRole::Other
    };
    let preemption_policy = match spec.preemption_policy.as_deref() {
        None | Some("PreemptLowerPriority") => PreemptionPolicy::PreemptLowerPriority,
        Some("Never") => PreemptionPolicy::Never,
        Some(other) => {
            return Err(ConvertError::UnknownValue {
                field: "spec.preemptionPolicy".into(),
                value: other.into(),
            });
        }
    };

    let images = match role {
        PodRole::Placeholder => placeholder_images(p),
        _ => spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .filter_map(|c| c.image.as_deref())
            .map(ImageName::normalize)
            .collect(),
    };
    let tolerations = spec
        .tolerations
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| selector::toleration(format!("spec.tolerations[{i}]"), t))
        .collect::<Result<_, _>>()?;

    let node_affinity = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref());
    let required_affinity = node_affinity
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|s| {
            selector::node_selector(
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
                s,
            )
        })
        .transpose()?;
    let preferred_affinity = match node_affinity.and_then(|na| {
        na.preferred_during_scheduling_ignored_during_execution
            .as_ref()
    }) {
        Some(terms) => selector::preferred(
            "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution",
            terms,
        )?,
        None => Vec::new(),
    };

    let status = p.status.as_ref();
    Ok(Pod {
        key: PodKey::new(namespace, name),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        role,
        priority: spec.priority.unwrap_or(0),
        preemption_policy,
        requests: request.effective(),
        score_requests: request.for_scoring(),
        images,
        tolerations,
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        required_affinity,
        preferred_affinity,
        host_ports: host_ports(spec)?,
        volumes: pod_volumes(namespace, name, spec, ctx.volumes)?,
        unsupported: unsupported(namespace, name, spec, ctx.volumes),
        scheduling_gated: spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty()),
        deleting: p.metadata.deletion_timestamp.is_some(),
        created: p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(time_millis)
            .unwrap_or(0),
        node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
        nominated_node: status
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty()),
    })
}

/// A pod already on a node whose full conversion failed (a toleration operator such as
/// `Gt`, behind upstream's `TaintTolerationComparisonOperators`, an affinity operator this
/// version does not read): counted by what it holds on its node, its requests and host
/// ports, with no constraints. kube-scheduler counts every assigned pod in its node's
/// `NodeInfo` whatever else it says (pkg/scheduler/framework/types.go `NodeInfo.AddPod`);
/// leaving it out would overcommit the node. Its role is `Other`: never a victim.
/// `None` when the pod is not placed, or its requests themselves cannot be read.
pub fn placed_pod_by_resources(p: &k8s::Pod) -> Option<Pod> {
    let spec = p.spec.as_ref()?;
    let node_name = spec.node_name.clone().filter(|n| !n.is_empty())?;
    let request = pod_request(spec, p.status.as_ref()).ok()?;
    Some(Pod {
        key: PodKey::new(
            p.metadata.namespace.as_deref().unwrap_or("default"),
            p.metadata.name.as_deref()?,
        ),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        role: PodRole::Other,
        priority: spec.priority.unwrap_or(0),
        preemption_policy: PreemptionPolicy::default(),
        requests: request.effective(),
        score_requests: request.for_scoring(),
        images: Vec::new(),
        tolerations: Vec::new(),
        node_selector: BTreeMap::new(),
        required_affinity: None,
        preferred_affinity: Vec::new(),
        host_ports: host_ports(spec).unwrap_or_default(),
        volumes: Vec::new(),
        unsupported: Vec::new(),
        scheduling_gated: false,
        deleting: p.metadata.deletion_timestamp.is_some(),
        created: p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(time_millis)
            .unwrap_or(0),
        node_name: Some(node_name),
        nominated_node: None,
    })
}

/// Kubernetes resource names → core [`Resources`]; anything not cpu/memory/storage/pods is
/// an extended resource (e.g. `nvidia.com/gpu`, `hugepages-2Mi`).
pub fn resources(
    field: &str,
    map: Option<&BTreeMap<String, Quantity>>,
) -> Result<Resources, ConvertError> {
    let mut out = Resources::default();
    for (name, q) in map.into_iter().flatten() {
        let qerr = |source| ConvertError::Quantity {
            field: format!("{field}.{name}"),
            source,
        };
        match name.as_str() {
            "cpu" => out.cpu_milli = parse_milli(&q.0).map_err(qerr)?,
            "memory" => out.memory = parse_units(&q.0).map_err(qerr)?,
            "ephemeral-storage" => out.ephemeral_storage = parse_units(&q.0).map_err(qerr)?,
            "pods" => out.pods = parse_units(&q.0).map_err(qerr)?,
            other => {
                out.extended
                    .insert(other.to_string(), parse_units(&q.0).map_err(qerr)?);
            }
        }
    }
    Ok(out)
}

/// The status the kubelet reports for the container `name`.
fn status_of<'a>(
    list: Option<&'a Vec<k8s::ContainerStatus>>,
    name: &str,
) -> Option<&'a k8s::ContainerStatus> {
    list.into_iter().flatten().find(|cs| cs.name == name)
}

/// A container's request for fit: its spec's, or, once the kubelet reports the container's
/// resources (in-place resize, `InPlacePodVerticalScaling`, GA), the largest of the spec's,
/// the allocated (`allocatedResources`) and the actuated (`resources.requests`) per
/// resource, as upstream counts an assigned pod while a resize is pending or under way
/// (pkg/api/v1/resource/helpers.go `determineContainerReqs`).
fn container_request(
    field: &str,
    c: &k8s::Container,
    status: Option<&k8s::ContainerStatus>,
) -> Result<ContainerRequest, ConvertError> {
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut req = resources(&format!("{field}.resources.requests"), requests)?;
    if let Some(cs) = status.filter(|cs| cs.resources.is_some()) {
        let allocated = resources(
            &format!("status.containerStatuses[{:?}].allocatedResources", cs.name),
            cs.allocated_resources.as_ref(),
        )?;
        let actuated = resources(
            &format!("status.containerStatuses[{:?}].resources.requests", cs.name),
            cs.resources.as_ref().and_then(|r| r.requests.as_ref()),
        )?;
        req = req.max(&allocated).max(&actuated);
    }
    // A container's "pods" request is meaningless; the pod takes exactly one slot.
    req.pods = 0;
    Ok(ContainerRequest {
        requests: req,
        has_cpu: requests.is_some_and(|r| r.contains_key("cpu")),
        has_memory: requests.is_some_and(|r| r.contains_key("memory")),
        restartable: c.restart_policy.as_deref() == Some("Always"),
    })
}

fn pod_request(
    spec: &k8s::PodSpec,
    status: Option<&k8s::PodStatus>,
) -> Result<PodRequest, ConvertError> {
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    let init_statuses = status.and_then(|s| s.init_container_statuses.as_ref());
    let containers = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            container_request(
                &format!("spec.containers[{i}]"),
                c,
                status_of(statuses, &c.name),
            )
        })
        .collect::<Result<_, _>>()?;
    let init_containers = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            // Only a sidecar is resized in place; a plain init container has exited.
            let status = (c.restart_policy.as_deref() == Some("Always"))
                .then(|| status_of(init_statuses, &c.name))
                .flatten();
            container_request(&format!("spec.initContainers[{i}]"), c, status)
        })
        .collect::<Result<_, _>>()?;
    let overhead = resources("spec.overhead", spec.overhead.as_ref())?;
    let pod_level = spec.resources.as_ref().and_then(|r| r.requests.as_ref());
    let pod_level_quantity = |name: &str, parse: fn(&str) -> Result<i64, QuantityError>| {
        pod_level
            .and_then(|r| r.get(name))
            .map(|q| {
                parse(&q.0).map_err(|source| ConvertError::Quantity {
                    field: format!("spec.resources.requests.{name}"),
                    source,
                })
            })
            .transpose()
    };
    Ok(PodRequest {
        containers,
        init_containers,
        overhead,
        pod_level_cpu_milli: pod_level_quantity("cpu", parse_milli)?,
        pod_level_memory: pod_level_quantity("memory", parse_units)?,
        pod_level_hugepages: pod_level
            .into_iter()
            .flatten()
            .filter(|(name, _)| name.starts_with("hugepages-"))
            .map(|(name, _)| {
                Ok((
                    name.clone(),
                    pod_level_quantity(name, parse_units)?.unwrap_or(0),
                ))
            })
            .collect::<Result<_, ConvertError>>()?,
    })
}

/// Host ports of the regular containers and of the sidecars (init containers with
/// `restartPolicy: Always`, which run beside them), as upstream's `GetHostPorts`
/// (pkg/scheduler/util/utils.go) counts them for the NodePorts plugin; a plain init
/// container has exited before the pod's containers start, so its ports are not counted.
fn host_ports(spec: &k8s::PodSpec) -> Result<Vec<HostPort>, ConvertError> {
    let mut out = Vec::new();
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    for c in spec.containers.iter().chain(sidecars) {
        for p in c.ports.iter().flatten() {
            let Some(port) = p.host_port.filter(|&h| h > 0) else {
                continue;
            };
            let port = u16::try_from(port).map_err(|_| ConvertError::UnknownValue {
                field: format!("container {:?} hostPort", c.name),
                value: port.to_string(),
            })?;
            out.push(HostPort {
                port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                host_ip: p.host_ip.clone().unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Hard constraints hubpack does not evaluate. Soft ones (preferred pod affinity,
/// `ScheduleAnyway` spread) are ignored: they cannot make a placement invalid.
fn unsupported(
    namespace: &str,
    name: &str,
    spec: &k8s::PodSpec,
    volumes: &dyn VolumeCatalog,
) -> Vec<String> {
    let mut out = Vec::new();
    let affinity = spec.affinity.as_ref();
    if affinity
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|pa| {
            pa.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|t| !t.is_empty())
    {
        out.push("required pod affinity".to_string());
    }
    if affinity
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|pa| {
            pa.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|t| !t.is_empty())
    {
        out.push("required pod anti-affinity".to_string());
    }
    if spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .any(|c| c.when_unsatisfiable == "DoNotSchedule")
    {
        out.push("topologySpreadConstraints with whenUnsatisfiable: DoNotSchedule".to_string());
    }
    if spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty()) {
        out.push("resourceClaims (dynamic resource allocation)".to_string());
    }
    // kube-scheduler's VolumeRestrictions: disks a node may mount only once.
    for v in spec.volumes.iter().flatten() {
        let kind = if v.gce_persistent_disk.is_some() {
            "gcePersistentDisk"
        } else if v.aws_elastic_block_store.is_some() {
            "awsElasticBlockStore"
        } else if v.iscsi.is_some() {
            "iscsi"
        } else if v.rbd.is_some() {
            "rbd"
        } else {
            continue;
        };
        out.push(format!(
            "inline {kind} volume {:?} (VolumeRestrictions)",
            v.name
        ));
    }
    for claim in super::volume::claim_names(name, spec) {
        let once = volumes.claim(namespace, &claim).is_some_and(|c| {
            c.spec
                .as_ref()
                .and_then(|s| s.access_modes.as_ref())
                .is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod"))
        });
        if once {
            out.push(format!(
                "claim {claim:?} with access mode ReadWriteOncePod (VolumeRestrictions)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
