//! The crate's error type; each variant has a stable metric label.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("calendar {name}: {message}")]
    Calendar { name: String, message: String },
    #[error("lease: {0}")]
    Lease(String),
    #[error("metrics server: {0}")]
    Http(String),
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
            Error::Lease(_) => "lease",
            Error::Http(_) => "http",
            Error::Config(_) => "config",
        }
    }
}
