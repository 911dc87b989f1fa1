//! hubpack-scheduler and hubpack-placeholder-ctl run in-process by an e2e test (each
//! binary's `app::run` on a spawned task, stopped by cancellation as SIGTERM would), so
//! tests need no image or binary of them and see their failures as values.

use hubpack_scheduler::config::{Config, ConfigError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a stopped binary may take to finish its in-flight work and release its lease.
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

/// Why stopping an in-process binary failed.
#[derive(Debug, thiserror::Error)]
pub enum StopError<E: std::error::Error + 'static> {
    #[error("{0} did not stop within {STOP_TIMEOUT:?}")]
    Timeout(&'static str),
    #[error("{0} panicked or was aborted: {1}")]
    Join(&'static str, tokio::task::JoinError),
    #[error("{0} failed: {1}")]
    Failed(&'static str, E),
}

/// Cancels `shutdown` and waits (at most [`STOP_TIMEOUT`]) for `task`: an error if it hung,
/// panicked or ended with one.
async fn stop_task<E: std::error::Error + 'static>(
    name: &'static str,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), E>>,
) -> Result<(), StopError<E>> {
    shutdown.cancel();
    match tokio::time::timeout(STOP_TIMEOUT, task).await {
        Err(_) => Err(StopError::Timeout(name)),
        Ok(Err(join)) => Err(StopError::Join(name, join)),
        Ok(Ok(Err(e))) => Err(StopError::Failed(name, e)),
        Ok(Ok(Ok(()))) => Ok(()),
    }
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
    pub async fn stop(self) -> Result<(), StopError<hubpack_scheduler::error::Error>> {
        stop_task("hubpack-scheduler", self.shutdown, self.task).await
    }
}

/// hubpack-placeholder-ctl running in-process until [`InProcessController::stop`].
pub struct InProcessController {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), hubpack_placeholder_ctl::error::Error>>,
}

impl InProcessController {
    /// Starts the controller with `config` as replica `identity` (its Lease holder name and
    /// Events' reporting instance). Call it inside a tokio runtime.
    pub fn start(
        client: &kube::Client,
        config: hubpack_placeholder_ctl::config::Config,
        identity: &str,
    ) -> InProcessController {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hubpack_placeholder_ctl::adapter::app::run(
            client.clone(),
            config,
            identity.to_string(),
            shutdown.clone(),
        ));
        InProcessController { shutdown, task }
    }

    /// Whether it has ended (it never should before [`InProcessController::stop`]).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Cancels it and waits (at most [`STOP_TIMEOUT`]) for it to finish; an error if it hung,
    /// panicked or ended with one.
    pub async fn stop(self) -> Result<(), StopError<hubpack_placeholder_ctl::error::Error>> {
        stop_task("hubpack-placeholder-ctl", self.shutdown, self.task).await
    }
}
