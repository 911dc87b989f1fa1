//! A scheduler replica on its own OS thread and tokio runtime, so a test can crash it.
//!
//! Why a runtime of its own rather than a task: a crash must not run any of the scheduler's
//! shutdown path (stop binding, drain binds, release the lease), and aborting a task on the
//! test's runtime would leave behind whatever it spawned (watchers, the lease manager, the
//! client's connection tasks), still renewing the lease. `Runtime::shutdown_background` drops
//! every task the replica ever spawned without polling any of them again, which, like SIGKILL,
//! stops everything at once and closes its connections. (Drop impls run, unlike under SIGKILL;
//! none of them writes to the API.) The replica's client is made on that runtime, so no
//! connection of it outlives the crash. SIGKILL of the `hubpack-scheduler` binary would be the
//! same test, but cargo gives an integration test no path to another package's binary.

use hubpack_e2e::cluster::Cluster;
use hubpack_scheduler::config::Config;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

enum Exit {
    /// Drop everything at once.
    Crash,
    /// SIGTERM's path: cancel, let in-flight work finish, release the lease.
    Stop,
}

pub struct Replica {
    pub identity: String,
    exit: mpsc::Sender<Exit>,
    thread: JoinHandle<Result<(), String>>,
    /// Set when the scheduler returned on its own (before any crash or stop): how.
    exited: Arc<Mutex<Option<String>>>,
}

impl Replica {
    pub fn start(cluster: &'static Cluster, config: Config, identity: String) -> Replica {
        let (exit, commands) = mpsc::channel();
        let id = identity.clone();
        let exited = Arc::new(Mutex::new(None));
        let exited_by_task = exited.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(format!("replica-{id}"))
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let shutdown = CancellationToken::new();
            let task = runtime.spawn({
                let shutdown = shutdown.clone();
                async move {
                    let result = match cluster.client().await {
                        Ok(client) => hubpack_scheduler::app::run(client, config, id, shutdown)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Ok(mut slot) = exited_by_task.lock() {
                        *slot = Some(match &result {
                            Ok(()) => "returned Ok".to_string(),
                            Err(e) => format!("failed: {e}"),
                        });
                    }
                    result
                }
            });
            // A dropped handle (the test panicked) crashes the replica too.
            match commands.recv().unwrap_or(Exit::Crash) {
                Exit::Crash => {
                    let was_running = !task.is_finished();
                    runtime.shutdown_background();
                    if was_running {
                        Ok(())
                    } else {
                        Err("the replica had already exited before the crash".into())
                    }
                }
                Exit::Stop => {
                    shutdown.cancel();
                    runtime.block_on(async {
                        match tokio::time::timeout(Duration::from_secs(30), task).await {
                            Ok(Ok(result)) => result,
                            Ok(Err(e)) => Err(format!("the replica panicked: {e}")),
                            Err(_) => Err("the replica did not stop within 30 s".into()),
                        }
                    })
                }
            }
        });
        Replica {
            identity,
            exit,
            thread,
            exited,
        }
    }

    /// How the scheduler ended, if it has (a test waiting on this replica fails at once
    /// with its error instead of timing out).
    pub fn exited(&self) -> Option<String> {
        self.exited.lock().ok().and_then(|slot| slot.clone())
    }

    /// Kills the replica abruptly; fails if it was not running.
    pub fn crash(self) -> Result<(), String> {
        self.finish(Exit::Crash)
    }

    /// Stops the replica gracefully; fails if it does not stop cleanly within 30 s.
    pub fn stop(self) -> Result<(), String> {
        self.finish(Exit::Stop)
    }

    fn finish(self, how: Exit) -> Result<(), String> {
        // A send fails only if the thread is gone already; join reports why.
        let _ = self.exit.send(how);
        self.thread
            .join()
            .unwrap_or_else(|_| Err("the replica's thread panicked".into()))
    }
}
