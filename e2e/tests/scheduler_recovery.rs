//! hubpack-scheduler across a kube-apiserver restart (its own test binary, so its own
//! cluster: restarting the API server would disturb other tests). While the API server is
//! down the lease cannot be renewed, so the scheduler must stop acting on its own deadline;
//! once it is back, the scheduler renews and schedules again, and a burst cut in two by the
//! restart ends with every pod that fits bound and no node over its allocatable.

#![allow(clippy::unwrap_used)] // a test binary

mod common;

use hubpack_e2e::harness;
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_scheduler::config::Config;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "jupyter/base-notebook:2024";
const IMAGE_FULL: &str = "docker.io/jupyter/base-notebook:2024";
const TEST_LABEL: &str = "e2e.hubpack.dev/test";
const WAIT: Duration = Duration::from_secs(60);

async fn metrics(port: u16) -> Option<String> {
    hubpack_e2e::wait::http_body(port, "/metrics").await
}

async fn wait_is_leader(port: u16, want: bool) {
    let line = format!("hubpack_scheduler_is_leader {}", i32::from(want));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if metrics(port)
            .await
            .is_some_and(|m| m.lines().any(|l| l == line))
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never saw `{line}`");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A warm user node labelled for this test's scheduler, schedulable.
async fn warm_node(client: &kube::Client, scheduler: &str) -> String {
    let node = harness::unique_name("node");
    let mut template = NodeTemplate::new(Pool::User)
        .with_images([IMAGE_FULL])
        .with_boot_delay(Duration::ZERO);
    template
        .extra_labels
        .insert(TEST_LABEL.into(), scheduler.to_string());
    harness::create_node(client, &node, &template)
        .await
        .unwrap();
    harness::wait_node_schedulable(client, &node, WAIT)
        .await
        .unwrap();
    node
}

/// Leader election on `lease` in `ns` (6 s, renewed 2 s before expiry); metrics on `port`
/// (0: any).
fn leader_config(scheduler: &str, ns: &str, lease: &str, port: u16) -> Config {
    let mut config = Config {
        scheduler_name: scheduler.to_string(),
        metrics_address: format!("127.0.0.1:{port}").parse().unwrap(),
        ..Config::default()
    };
    config.policy.warm_settle_seconds = 0;
    config.leader_election.lease_name = lease.to_string();
    config.leader_election.namespace = Some(ns.to_string());
    config.leader_election.lease_duration_seconds = 6;
    config.leader_election.renew_grace_seconds = 2;
    config.validate().unwrap();
    config
}

/// The tests of this binary stop the one API server they share: one at a time, whatever
/// `--test-threads` says.
static API_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_on_its_lease_deadline_while_the_api_server_is_down_and_resumes_after() {
    let _exclusive = API_SERVER.lock().await;
    let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "recovery")
        .await
        .unwrap();
    let scheduler = harness::unique_name("hubpack");
    warm_node(&client, &scheduler).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = leader_config(&scheduler, &ns, &harness::unique_name("lease"), port);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(hubpack_scheduler::app::run(
        client.clone(),
        config,
        format!("{scheduler}-0"),
        shutdown.clone(),
    ));

    let pod = |name: &str| {
        let mut p = harness::user_pod(name, IMAGE);
        let spec = p.spec.as_mut().unwrap();
        spec.scheduler_name = Some(scheduler.clone());
        spec.node_selector
            .get_or_insert_default()
            .insert(TEST_LABEL.into(), scheduler.clone());
        p
    };
    let bound = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &pod("before"))
        .await
        .unwrap();
    harness::wait_pod(&client, &ns, "before", "bound", WAIT, bound)
        .await
        .unwrap();
    wait_is_leader(port, true).await;

    // No renewals possible: the scheduler must stand down by its own deadline.
    cluster.stop_apiserver();
    wait_is_leader(port, false).await;
    cluster.start_apiserver().await.unwrap();

    let client = cluster.client().await.unwrap();
    Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod("after"))
        .await
        .unwrap();
    harness::wait_pod(&client, &ns, "after", "bound", WAIT, bound)
        .await
        .unwrap();
    wait_is_leader(port, true).await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("stops within 30 s")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_cut_by_an_api_server_restart_is_finished_and_nothing_is_overcommitted() {
    use common::{Burst, DISRUPT_AFTER, FITTING};
    let _exclusive = API_SERVER.lock().await;
    let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let mut burst = Burst::setup(&client, "restart").await;
    let config = burst.config(&harness::unique_name("lease"));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(hubpack_scheduler::app::run(
        client.clone(),
        config,
        format!("{}-0", burst.scheduler),
        shutdown.clone(),
    ));

    burst.create_all().await;
    burst.wait_bound_at_least(DISRUPT_AFTER).await;
    cluster.restart_apiserver().await.unwrap();
    // The test's own client starts afresh; the scheduler keeps the one it had.
    burst.client = cluster.client().await.unwrap();
    let bound_after_restart = burst.bound().await.unwrap();
    assert!(
        bound_after_restart < FITTING,
        "the burst was over before the restart ({bound_after_restart} bound): nothing to recover"
    );
    eprintln!("API server back with {bound_after_restart}/{FITTING} bound");
    burst.check_end_state().await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("stops within 30 s")
        .unwrap()
        .unwrap();
}

/// Fail-stop: the leader loses its lease to another holder while a pod waits
/// for its claim to be provisioned. It must stop (an error, so the Deployment restarts it),
/// not carry on with what it assumed; the restarted replica takes the lease once the other
/// holder's expires and binds the pod where its claim was provisioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lease_mid_provisioning_stops_and_its_successor_binds_the_pod() {
    use hubpack_e2e::provisioner::{Provisioner, SELECTED_NODE, create_claim, create_class};
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use kube::api::{Patch, PatchParams};
    let _exclusive = API_SERVER.lock().await;
    let cluster = hubpack_e2e::shared_cluster!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "lease-lost")
        .await
        .unwrap();
    let scheduler = harness::unique_name("hubpack");
    let node = warm_node(&client, &scheduler).await;

    let provisioner_name = format!("e2e.hubpack.dev/{}", harness::unique_name("disk"));
    let class = harness::unique_name("dynamic");
    create_class(&client, &class, &provisioner_name)
        .await
        .unwrap();
    create_claim(&client, &ns, "home", &class, "1Gi", serde_json::json!({}))
        .await
        .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);

    let lease = harness::unique_name("lease");
    let config = leader_config(&scheduler, &ns, &lease, 0);
    let first = tokio::spawn(hubpack_scheduler::app::run(
        client.clone(),
        config.clone(),
        format!("{scheduler}-0"),
        CancellationToken::new(),
    ));

    let mut pod = harness::user_pod("with-home", IMAGE);
    let spec = pod.spec.as_mut().unwrap();
    spec.scheduler_name = Some(scheduler.clone());
    spec.node_selector
        .get_or_insert_default()
        .insert(TEST_LABEL.into(), scheduler.clone());
    spec.volumes = Some(vec![
        serde_json::from_value(
            serde_json::json!({"name": "home", "persistentVolumeClaim": {"claimName": "home"}}),
        )
        .unwrap(),
    ]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // Provisioning under way: a node selected, no provisioner running yet.
    let selected = hubpack_e2e::wait::until("selected-node on the claim", WAIT, || async {
        claims
            .get("home")
            .await
            .ok()?
            .metadata
            .annotations?
            .get(SELECTED_NODE)
            .cloned()
    })
    .await
    .unwrap();
    assert_eq!(selected, node);

    // Another holder takes the lease (as a replica would after a partition).
    // A MicroTime: exactly six fractional digits.
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let steal = serde_json::json!({"spec": {"holderIdentity": "someone-else",
        "acquireTime": now, "renewTime": now, "leaseDurationSeconds": 6}});
    Api::<Lease>::namespaced(client.clone(), &ns)
        .patch(&lease, &PatchParams::default(), &Patch::Merge(&steal))
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), first)
        .await
        .expect("the replica stops after losing its lease")
        .unwrap();
    assert!(
        matches!(
            ended,
            Err(hubpack_scheduler::error::Error::Edge(
                hubpack_kube::Error::LeaseLost(_)
            ))
        ),
        "{ended:?}"
    );

    // The Deployment restarts it; the provisioner finishes; the pod binds to the node of
    // its claim.
    let shutdown = CancellationToken::new();
    let second = tokio::spawn(hubpack_scheduler::app::run(
        client.clone(),
        config,
        format!("{scheduler}-1"),
        shutdown.clone(),
    ));
    let _provisioner = Provisioner::start(client.clone(), &provisioner_name);
    let bound = harness::wait_pod(&client, &ns, "with-home", "bound", WAIT, |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
    })
    .await
    .unwrap();
    assert_eq!(
        bound.spec.unwrap().node_name.as_deref(),
        Some(node.as_str())
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .expect("stops within 30 s")
        .unwrap()
        .unwrap();
}
