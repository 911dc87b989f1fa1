//! hubpack-e2e: a real local Kubernetes control plane for end-to-end tests and demos.
//!
//! There is no container runtime on our machines, so the cluster is: etcd, kube-apiserver
//! (RBAC on, a static admin token), kube-controller-manager (lifts node not-ready taints, runs
//! Deployments, ReplicaSets, DaemonSets, GC, podgc), the stock kube-scheduler (places DaemonSet
//! pods and `default-scheduler` pods), kwok (fake nodes and pod lifecycle: a node turns Ready
//! after a boot delay, a pod starts when its images are on its node), and this crate's models
//! of what kwok lacks, run by the `hubpack-e2e-model` binary: [`images`], per-node image
//! caches (a pod on a node lacking its image waits for the pull, then the node lists the image
//! in `status.images`); and, when asked for, the real cluster-autoscaler 1.36.1 with its kwok
//! provider ([`autoscaler`]): node groups from templates in a ConfigMap, nodes it adds boot and
//! pull like any other, with compressed but upstream-meaning timings; or the real Karpenter
//! v1.14.1 with its kwok provider ([`karpenter`]): user NodePools, nodes that register
//! NotReady and boot like the others.
//!
//! The Go components are built from their Go modules by `e2e/controlplane/build.sh`
//! (`cargo xtask cluster build`) and cached in `~/.cache/hubpack/k8s`; cluster-autoscaler, which
//! the module proxy refuses, builds as the main module from the upstream source bundle in
//! `../shared/upstream/`.
//!
//! # Writing an end-to-end test
//! ```no_run
//! use hubpack_e2e::harness::{self, TEST_PULL_TIME};
//! use hubpack_e2e::nodes::{NodeTemplate, Pool};
//! use std::time::Duration;
//!
//! # // Doctests get no CARGO_BIN_EXE_* variables: stand in for the crate's macro.
//! # macro_rules! shared_cluster { () => { hubpack_e2e::harness::shared("hubpack-e2e-model", hubpack_e2e::harness::WithAutoscaler::No) } }
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // One cluster per test binary (`hubpack_e2e::shared_cluster!`), started on first use
//! // (about 5-10 s once built); stopped when the test binary exits.
//! let cluster = shared_cluster!()?;
//! let client = cluster.client().await?;          // a fresh client per test (per runtime)
//! let ns = harness::create_namespace(&client, "my-test").await?;
//!
//! // A warm user-pool node (the image is already there) that boots at once.
//! let node = harness::unique_name("user");
//! let warm = NodeTemplate::new(Pool::User)
//!     .with_images(["docker.io/jupyter/base-notebook:2024"])
//!     .with_boot_delay(Duration::ZERO);
//! harness::create_node(&client, &node, &warm).await?;
//! harness::wait_node_schedulable(&client, &node, Duration::from_secs(60)).await?;
//!
//! // A user pod (tolerates the user pool, scheduler name nobody serves) ...
//! let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &ns);
//! let pod = pods.create(&Default::default(), &harness::user_pod("u1", "jupyter/base-notebook:2024")).await?;
//! // ... bound by the test (or by the scheduler under test: give it that schedulerName).
//! harness::bind(&client, &ns, &pod, &node).await?;
//! harness::wait_pod(&client, &ns, "u1", "Ready", Duration::from_secs(30), hubpack_e2e::wait::pod_ready).await?;
//! # let _ = TEST_PULL_TIME; Ok(()) }
//! ```
//! On a node lacking an image, the pod becomes Ready only after [`harness::TEST_PULL_TIME`]
//! and then the node lists the image in `status.images`. With
//! `shared_cluster_with_autoscaler!()` the cluster runs the real cluster-autoscaler: a pod
//! marked `PodScheduled=False, reason=Unschedulable` that fits a node-group template
//! ([`harness::test_node_groups`]) makes it add a node, which registers with the not-ready taint
//! and boots in [`harness::TEST_BOOT_DELAY`]; only group nodes carry the
//! `e2e.hubpack.dev/nodegroup` label. Nodes of a group left unneeded go after
//! [`harness::test_autoscaler_timings`]' unneeded time, as CA decides.
//! [`cluster::Cluster::restart_apiserver`] stops and restarts the kube-apiserver alone (or
//! `stop_apiserver` / `start_apiserver` for a longer outage). Per object knobs: a node's boot time is its
//! `e2e.hubpack.dev/boot-delay` annotation ([`nodes::NodeTemplate::with_boot_delay`]), a pod's
//! pull time its `e2e.hubpack.dev/pull-time` annotation ([`images::PULL_TIME_ANNOTATION`]).
//! Logs of every component are in the cluster's `state_dir/logs/`.
//! After a burst, [`checks`] judges the end state from the API objects alone: nodes over
//! their allocatable, pods where their selector or taints forbid, pending pods that would fit.
//! A test runs hubpack-scheduler in-process with [`in_process::InProcessScheduler`] (start
//! with [`in_process::test_config`], stop and see whether it failed).
//!
//! With `shared_cluster_with_karpenter!()` the cluster runs Karpenter over
//! [`karpenter::test_options`]' NodePools (one per test: a pod selects one by the
//! node-group label).
//!
//! For people: `cargo xtask cluster up [--nodes N] [--pool user=N] [--autoscaler | --karpenter]` starts the
//! same cluster detached (state in `/tmp/hubpack-cluster`) and prints its kubeconfig and a
//! kubectl built with the control plane; `cargo xtask cluster down` stops it.

// Tests may unwrap (the workspace warns on unwrap elsewhere).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod autoscaler;
pub mod binaries;
pub mod capacity_buffers;
pub mod checks;
pub mod cluster;
pub mod components;
pub mod harness;
pub mod images;
pub mod in_process;
pub mod karpenter;
pub mod kwok;
pub mod nodes;
pub mod ordering;
pub mod pki;
pub mod placement;
pub mod pod_facts;
pub mod processes;
pub mod provisioner;
pub mod resources;
pub mod wait;
