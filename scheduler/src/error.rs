//! The crate's error type; each variant has a stable metric label.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("not the leader")]
    NotLeader,
    /// From the shared edge: the lease (lost, or its election failed), the HTTP server, a
    /// supervised task that ended.
    #[error(transparent)]
    Edge(#[from] hubpack_kube::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, fixed label for metrics (`errors{kind=…}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::NotLeader => "not_leader",
            Error::Edge(e) => e.metric_label(),
        }
    }

    /// The HTTP status code of an API error, if this is one.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Kube(kube::Error::Api(status)) => Some(status.code),
            Error::Edge(e) => e.api_code(),
            _ => None,
        }
    }
}
