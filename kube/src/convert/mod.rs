//! Conversion of Kubernetes objects (k8s-openapi types) into hubpack-core model values.
//! Everything the API server could hand us malformed is a typed [`ConvertError`] naming the
//! field, so one bad object is reported and skipped, never a crash.

pub mod condition;
mod node;
mod pod;
pub mod quantity;
pub mod selector;
pub mod volume;

pub use node::{node_from_k8s, node_is_ready};
pub use pod::{LabelMatch, PodContext, placed_pod_by_resources, pod_from_k8s};
pub use volume::{VolumeCatalog, VolumeIndex, pod_volumes};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use thiserror::Error;

/// Why an object could not be converted; `field` is a JSON-path-like location.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConvertError {
    #[error("{field}: {source}")]
    Quantity {
        field: String,
        source: quantity::QuantityError,
    },
    #[error("{field}: unknown value {value:?}")]
    UnknownValue { field: String, value: String },
    #[error("{field}: missing")]
    Missing { field: String },
}

/// Milliseconds since the Unix epoch of an API timestamp.
pub fn time_millis(t: &Time) -> i64 {
    t.0.as_millisecond()
}
