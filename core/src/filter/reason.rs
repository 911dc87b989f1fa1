//! Why a node cannot take a pod, rendered exactly as kube-scheduler's plugins word it.

use crate::model::ResourceName;

/// How a refusal only hubpack makes begins (see [`Reason::Unsupported`]).
pub const UNSUPPORTED_PREFIX: &str = "not supported by hubpack-scheduler: ";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// nodeunschedulable.ErrReasonUnschedulable
    NodeUnschedulable,
    /// tainttoleration: "node(s) had untolerated taint {key: value}"
    UntoleratedTaint { key: String, value: String },
    /// nodeaffinity.ErrReasonPod
    NodeAffinity,
    /// nodeports.ErrReason
    HostPorts,
    /// noderesources: "Too many pods"
    TooManyPods,
    /// noderesources: `Insufficient <resource>`
    Insufficient(ResourceName),
    /// nodevolumelimits.ErrReasonMaxVolumeCountExceeded
    VolumeLimits,
    /// volumebinding.ErrReasonNodeConflict
    VolumeNodeConflict,
    /// volumebinding.ErrReasonBindConflict
    VolumeBindConflict,
    /// volumebinding PreFilter: an Immediate claim is not bound yet.
    UnboundImmediateClaims,
    /// volumebinding PreFilter: `persistentvolumeclaim "<name>" not found`.
    MissingClaim(String),
    /// A constraint hubpack does not implement.
    Unsupported(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NodeUnschedulable => f.write_str("node(s) were unschedulable"),
            Reason::UntoleratedTaint { key, value } => {
                write!(f, "node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reason::NodeAffinity => {
                f.write_str("node(s) didn't match Pod's node affinity/selector")
            }
            Reason::HostPorts => {
                f.write_str("node(s) didn't have free ports for the requested pod ports")
            }
            Reason::TooManyPods => f.write_str("Too many pods"),
            Reason::Insufficient(r) => write!(f, "Insufficient {r}"),
            Reason::VolumeLimits => f.write_str("node(s) exceed max volume count"),
            Reason::VolumeNodeConflict => f.write_str("node(s) had volume node affinity conflict"),
            Reason::VolumeBindConflict => {
                f.write_str("node(s) didn't find available persistent volumes to bind")
            }
            Reason::UnboundImmediateClaims => {
                f.write_str("pod has unbound immediate PersistentVolumeClaims")
            }
            Reason::MissingClaim(c) => write!(f, "persistentvolumeclaim \"{c}\" not found"),
            Reason::Unsupported(what) => write!(f, "{UNSUPPORTED_PREFIX}{what}"),
        }
    }
}
