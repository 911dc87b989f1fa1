//! The crate's error type; each variant has a stable metric label.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("calendar {name}: {message}")]
    Calendar { name: String, message: String },
    /// From the shared edge: the lease (lost, or its election failed), the HTTP server, a
    /// supervised task that ended.
    #[error(transparent)]
    Edge(#[from] hubpack_kube::Error),
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, fixed label for metrics (`errors{kind=…}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Calendar { .. } => "calendar",
            Error::Edge(e) => e.metric_label(),
            Error::Config(_) => "config",
        }
    }
}
