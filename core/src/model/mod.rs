//! The data the policy reasons about. Plain values: adapters build them from Kubernetes
//! objects, the simulator builds them from its models.

mod image;
mod node;
mod pod;
mod request;
mod resources;
mod selector;
mod time;

pub use image::ImageName;
pub use node::Node;
pub use pod::{
    HostPort, Pod, PodKey, PodRole, PodVolume, PreemptionPolicy, StaticPv, USER_IMAGES_ANNOTATION,
};
pub use request::{
    ContainerRequest, DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, PodRequest,
};
pub use resources::{ResourceName, Resources};
pub use selector::{
    NodeSelector, NodeSelectorTerm, PreferredTerm, SelectorOperator, SelectorRequirement, Taint,
    TaintEffect, Toleration, TolerationOperator,
};
pub use time::Millis;
