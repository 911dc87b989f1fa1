//! hubpack-scheduler run in-process by an e2e test (`hubpack_scheduler::app::run` on a
//! spawned task, stopped by cancellation as SIGTERM would), so tests need no image or
//! binary of it and see its failures as values.

use hubpack_scheduler::config::{Config, ConfigError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a stopped scheduler may take to finish its in-flight work and release its lease.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A test's scheduler config: a `scheduler_name` of its own (so tests sharing a cluster never
/// place each other's pods), metrics on any free port, no leader election, and no warm
/// settling (kwok nodes turn Ready seconds before a test uses them).
pub fn test_config(scheduler_name: &str) -> Config {
    let mut config = Config {
        scheduler_name: scheduler_name.to_string(),
        metrics_address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    config.leader_election.enabled = false;
    config.policy.warm_settle_seconds = 0;
    config
}

/// Why [`InProcessScheduler::stop`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("hubpack-scheduler did not stop within {0:?}")]
    Timeout(Duration),
    #[error("hubpack-scheduler panicked or was aborted: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("hubpack-scheduler failed: {0}")]
    Failed(#[from] hubpack_scheduler::error::Error),
}

/// hubpack-scheduler running in-process until [`InProcessScheduler::stop`].
pub struct InProcessScheduler {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), hubpack_scheduler::error::Error>>,
}

impl InProcessScheduler {
    /// Validates `config` and starts the scheduler as replica `identity` (its Lease holder
    /// name and events' reporting instance). Call it inside a tokio runtime.
    pub fn start(
        client: &kube::Client,
        config: Config,
        identity: &str,
    ) -> Result<InProcessScheduler, ConfigError> {
        config.validate()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hubpack_scheduler::app::run(
            client.clone(),
            config,
            identity.to_string(),
            shutdown.clone(),
        ));
        Ok(InProcessScheduler { shutdown, task })
    }

    /// Cancels it and waits (at most [`STOP_TIMEOUT`]) for it to finish; an error if it hung,
    /// panicked or ended with one.
    pub async fn stop(self) -> Result<(), StopError> {
        self.shutdown.cancel();
        tokio::time::timeout(STOP_TIMEOUT, self.task)
            .await
            .map_err(|_| StopError::Timeout(STOP_TIMEOUT))???;
        Ok(())
    }
}
