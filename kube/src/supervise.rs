//! Every long-running task of a replica runs under a [`Supervisor`]: if one ends while the
//! replica is meant to run (an error, a panic, or a plain return), the replica stops as a
//! whole (the shutdown token is cancelled, so the loop drains its writes and the lease goes
//! last) and the binary's `app::run` returns that task's error, for a non-zero exit. Without
//! this a replica whose loop or watch had died would keep renewing its lease and stay Ready
//! while doing nothing: a zombie leader.

use crate::error::Error;
use futures::FutureExt;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Supervises tasks whose error type is `E` (the binary's own, which can hold this crate's
/// [`Error`]: a task that ended is reported as [`Error::TaskEnded`]).
pub struct Supervisor<E = Error> {
    shutdown: CancellationToken,
    failure: Arc<Mutex<Option<E>>>,
}

impl<E> Supervisor<E>
where
    E: From<Error> + Display + Send + 'static,
{
    pub fn new(shutdown: CancellationToken) -> Self {
        Supervisor {
            shutdown,
            failure: Arc::default(),
        }
    }

    /// Spawns `task`. Its end counts as a failure unless it returned `Ok` after shutdown
    /// began (every task is expected to return then).
    pub fn spawn<F>(&self, name: &'static str, task: F) -> JoinHandle<()>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        let failure = self.failure.clone();
        tokio::spawn(async move {
            let outcome = AssertUnwindSafe(task).catch_unwind().await;
            let error = match outcome {
                Ok(Ok(())) if shutdown.is_cancelled() => return,
                Ok(Ok(())) => E::from(Error::TaskEnded {
                    task: name,
                    detail: "returned while the replica was running".into(),
                }),
                Ok(Err(e)) => e,
                Err(panic) => E::from(Error::TaskEnded {
                    task: name,
                    detail: format!("panicked: {}", panic_message(&panic)),
                }),
            };
            tracing::error!(task = name, error = %error, "task ended; stopping the replica");
            failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(error);
            shutdown.cancel();
        })
    }

    /// The first failure, if any task failed.
    pub fn take_failure(&self) -> Option<E> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_or_returns_early_stops_everything_and_is_reported() {
        let shutdown = CancellationToken::new();
        let sup = Supervisor::<Error>::new(shutdown.clone());
        let steady = sup.spawn("steady", {
            let s = shutdown.clone();
            async move {
                s.cancelled().await;
                Ok(())
            }
        });
        let crash = sup.spawn("loop", async { panic!("boom") });
        crash.await.unwrap();
        assert!(
            shutdown.is_cancelled(),
            "one task ended: all are told to stop"
        );
        steady.await.unwrap();
        match sup.take_failure() {
            Some(Error::TaskEnded { task, detail }) => {
                assert_eq!(task, "loop");
                assert!(detail.contains("boom"), "{detail}");
            }
            other => panic!("{other:?}"),
        }

        let shutdown = CancellationToken::new();
        let sup = Supervisor::<Error>::new(shutdown.clone());
        sup.spawn("watch pods", async { Ok(()) }).await.unwrap();
        assert!(shutdown.is_cancelled());
        assert!(matches!(
            sup.take_failure(),
            Some(Error::TaskEnded {
                task: "watch pods",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn tasks_that_end_after_shutdown_are_no_failure() {
        let shutdown = CancellationToken::new();
        let sup = Supervisor::<Error>::new(shutdown.clone());
        let t = sup.spawn("steady", {
            let s = shutdown.clone();
            async move {
                s.cancelled().await;
                Ok(())
            }
        });
        shutdown.cancel();
        t.await.unwrap();
        assert!(sup.take_failure().is_none());
    }
}
