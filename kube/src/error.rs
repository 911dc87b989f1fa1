//! The crate's error type; each variant has a stable metric label.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("lease: {0}")]
    Lease(String),
    #[error("metrics server: {0}")]
    Http(String),
    /// Another replica holds the lease we held: stop (fail-stop, like kube-scheduler).
    #[error("lost the lease: {0}")]
    LeaseLost(String),
    #[error("{task} ended: {detail}")]
    TaskEnded { task: &'static str, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, fixed label for metrics (`errors{kind=…}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Lease(_) => "lease",
            Error::Http(_) => "http",
            Error::LeaseLost(_) => "lease_lost",
            Error::TaskEnded { .. } => "task_ended",
        }
    }

    /// The HTTP status code of an API error, if this is one.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Kube(kube::Error::Api(status)) => Some(status.code),
            _ => None,
        }
    }
}
