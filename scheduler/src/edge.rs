//! What both binaries (hubpack-scheduler and hubpack-placeholder-ctl) do at their edge before
//! any work starts: connect to the API server, name the replica, and turn SIGTERM or Ctrl-C
//! into a cancellation their graceful shutdown follows.

use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig given and none found in-cluster or in $KUBECONFIG: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("building the API client: {0}")]
    Client(#[from] kube::Error),
}

/// A client from `kubeconfig`, else the in-cluster configuration (or `$KUBECONFIG`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, ConnectError> {
    let config = match kubeconfig {
        Some(path) => {
            let err = |source| ConnectError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(err)?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// The replica's identity (its Lease holder name): the pod name, else the host name, else
/// `<program>-<pid>`.
pub fn identity(program: &str) -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("{program}-{}", std::process::id()))
}

/// A token cancelled on SIGTERM (what the kubelet sends) or Ctrl-C.
pub fn cancel_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received");
        on_signal.cancel();
    });
    shutdown
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_kubeconfig_is_named() {
        let Err(e) = client(Some(Path::new("/nonexistent/kubeconfig"))).await else {
            panic!("a client from a missing kubeconfig");
        };
        assert!(e.to_string().contains("/nonexistent/kubeconfig"), "{e}");
    }
}
