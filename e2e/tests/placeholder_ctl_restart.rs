//! hubpack-placeholder-ctl restarted mid-event keeps what it learned, on the real control
//! plane with the real cluster-autoscaler (kwok provider) and hubpack-scheduler, both
//! in-process: two replicas with leader election learn the lead time from real scale-ups
//! (placeholder Unschedulable → its new node warm: boot + pull, far from the configured
//! 60 s), then both are stopped and two fresh ones started, as a rolling upgrade does. The
//! fresh replicas start from the leader's checkpoint ConfigMap: the same learned lead time
//! and samples, the same headroom target and the same placeholder count as before. Without
//! the checkpoint they would start from the configured 60 s: a headroom of 5 users instead
//! of about 1.2.
//! About 1 min.

#![allow(clippy::unwrap_used)] // a test binary

use hubpack_e2e::harness;
use hubpack_e2e::in_process::{InProcessController, InProcessScheduler, test_config};
use hubpack_e2e::nodes::{DEDICATED_TAINT, NODE_GROUP_LABEL, NODE_PURPOSE_LABEL};
use hubpack_e2e::{shared_cluster_with_autoscaler, wait};
use hubpack_placeholder_ctl::checkpoint;
use hubpack_placeholder_ctl::config::Config as CtlConfig;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use std::time::Duration;

const IMAGE: &str = "jupyter/scipy-notebook:ctl-restart-e2e";
const GROUP: &str = "user-a";
const INITIAL_LEAD_S: f64 = 60.0;

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

/// One replica's config: leader election on (a short lease, so the fresh replicas take
/// over within seconds), `lead: auto` from 60 s, and a class in progress of 300 users over
/// an hour: 5 users within the configured 60 s (2 placeholders of 3), about 1.3 within a
/// learned ~16 s (1 placeholder; the hysteresis holds the second for 5 min).
fn ctl_yaml(ns: &str, scheduler: &str, users: &str, port: u16, class_start: i64) -> String {
    format!(
        "namespace: {ns}\n\
         schedulerName: {scheduler}\n\
         reconcileIntervalSeconds: 1\n\
         metricsAddress: 127.0.0.1:{port}\n\
         leaderElection: {{enabled: true, leaseDurationSeconds: 6, renewGraceSeconds: 2}}\n\
         userPods: {{selector: {{hubpack-e2e-users: {users}}}, namespace: {ns}}}\n\
         placeholders: {{scaleDownAfterSeconds: 300}}\n\
         prePuller: {{learnedImages: 0}}\n\
         leadTime: {{initialSeconds: {INITIAL_LEAD_S}, quantile: 0.9, windowSamples: 10, minSamples: 2, reactionSeconds: 1, minSeconds: 5, maxSeconds: 120}}\n\
         checkpoint: {{intervalSeconds: 5}}\n\
         events:\n\
         - {{name: class, pool: default, start: \"{start}\", users: 300, arrivalWindowSeconds: 3600}}\n\
         pools:\n\
         - name: default\n\
         \x20 nodeSelector: {{{NODE_PURPOSE_LABEL}: user, {NODE_GROUP_LABEL}: {GROUP}}}\n\
         \x20 tolerations: [{{key: {DEDICATED_TAINT}, operator: Equal, value: user, effect: NoSchedule}}]\n\
         \x20 perUser: {{cpu: \"1\", memory: 1Gi}}\n\
         \x20 usersPerPlaceholder: auto\n\
         \x20 freshNode: {{allocatable: {{cpu: \"4\", memory: 16Gi, pods: \"110\"}}}}\n\
         \x20 headroom: {{z: 0}}\n\
         \x20 lead: auto\n\
         \x20 images: [{IMAGE}]\n",
        start = rfc3339(class_start),
    )
}

struct Replica {
    port: u16,
    running: InProcessController,
}

impl Replica {
    fn start(client: &kube::Client, config: CtlConfig, port: u16, identity: &str) -> Replica {
        let running = InProcessController::start(client, config, identity);
        Replica { port, running }
    }

    async fn stop(self) {
        self.running.stop().await.unwrap();
    }

    /// One of its metrics for the pool `default`.
    async fn metric(&self, name: &str) -> Option<f64> {
        let body = hubpack_e2e::wait::http_body(self.port, "/metrics").await?;
        let prefix = format!("{name}{{pool=\"default\"}} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }

    /// (lead time s, lead samples, headroom users) as this replica's last decision has them.
    async fn learned(&self) -> Option<(f64, f64, f64)> {
        Some((
            self.metric("hubpack_placeholder_ctl_lead_time_seconds")
                .await?,
            self.metric("hubpack_placeholder_ctl_lead_time_samples")
                .await?,
            self.metric("hubpack_placeholder_ctl_headroom_target_users")
                .await?,
        ))
    }
}

#[tokio::test]
async fn both_replicas_restarted_mid_event_keep_the_learned_lead_and_the_target() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "hubpack_placeholder_ctl=info,hubpack_kube=warn".into()),
        )
        .with_test_writer()
        .try_init();
    let cluster = shared_cluster_with_autoscaler!().unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "ctl-keep")
        .await
        .unwrap();
    let scheduler = harness::unique_name("hubpack");
    let users = harness::unique_name("users");
    let ports = [
        hubpack_e2e::processes::free_port().unwrap(),
        hubpack_e2e::processes::free_port().unwrap(),
    ];
    let class_start = now_ms() - 60_000;
    let configs: Vec<CtlConfig> = ports
        .iter()
        .map(|port| {
            let yaml = ctl_yaml(&ns, &scheduler, &users, *port, class_start);
            CtlConfig::parse(&yaml, "e2e").unwrap_or_else(|e| panic!("{e}\n{yaml}"))
        })
        .collect();
    let scheduler_running =
        InProcessScheduler::start(&client, test_config(&scheduler), "sched-0").unwrap();
    let mut replicas: Vec<Replica> = configs
        .iter()
        .zip(ports)
        .enumerate()
        .map(|(i, (c, port))| Replica::start(&client, c.clone(), port, &format!("ctl-{i}")))
        .collect();
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let placeholder_replicas = || {
        let d = deployments.clone();
        async move {
            d.get_opt("hubpack-placeholder-default")
                .await
                .ok()
                .flatten()
                .and_then(|d| d.spec?.replicas)
        }
    };

    // The configured 60 s asks for 2 placeholders; the autoscaler adds a node for each, the
    // pre-pullers warm them, and both replicas learn the two waits (boot + pull).
    let started = std::time::Instant::now();
    wait::until(
        "both replicas learned the lead time from two scale-ups",
        Duration::from_secs(150),
        || async {
            let a = replicas[0].learned().await?;
            let b = replicas[1].learned().await?;
            (a.1 >= 2.0 && a == b && a.0 != INITIAL_LEAD_S).then_some(a)
        },
    )
    .await
    .unwrap();
    // Settled: the target of the learned lead, the second placeholder held by the
    // hysteresis, nothing learned for 5 s by either replica.
    let mut before = replicas[0].learned().await.unwrap();
    let mut unchanged_since = std::time::Instant::now();
    while unchanged_since.elapsed() < Duration::from_secs(5) {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "still learning: {before:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let a = replicas[0].learned().await.unwrap();
        let b = replicas[1].learned().await.unwrap();
        if a != before || b != before {
            (before, unchanged_since) = (a, std::time::Instant::now());
        }
    }
    let replicas_before = placeholder_replicas().await;
    println!(
        "before the restart ({:.0} s in): lead {:.1} s from {} samples (configured {INITIAL_LEAD_S} s), headroom {:.2} users, {replicas_before:?} placeholders",
        started.elapsed().as_secs_f64(),
        before.0,
        before.1,
        before.2
    );
    assert!(
        (before.0 - INITIAL_LEAD_S).abs() > 10.0,
        "the learned lead {} s must differ from the configured {INITIAL_LEAD_S} s for this test to mean anything",
        before.0
    );
    assert_eq!(replicas_before, Some(2), "two placeholders wanted at 60 s");

    // A rolling upgrade: both replicas go (the leader writes its checkpoint on the way out),
    // two fresh processes come.
    for r in replicas.drain(..) {
        r.stop().await;
    }
    let saved = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("hubpack-placeholder-ctl-state")
        .await
        .unwrap();
    let text = saved.data.unwrap_or_default()[checkpoint::DATA_KEY].clone();
    let doc = checkpoint::decode(&text).unwrap();
    assert_eq!(doc.version, checkpoint::VERSION);
    assert_eq!(
        doc.pools["default"].reconciler.lead_samples.len() as f64,
        before.1,
        "{text}"
    );
    let replicas: Vec<Replica> = configs
        .iter()
        .zip(ports)
        .enumerate()
        .map(|(i, (c, port))| Replica::start(&client, c.clone(), port, &format!("ctl-{}", i + 2)))
        .collect();
    let mut after = Vec::new();
    for r in &replicas {
        after.push(
            wait::until(
                "a restarted replica's first decision",
                Duration::from_secs(30),
                || r.learned(),
            )
            .await
            .unwrap(),
        );
    }
    // Written by the new leader's first decisions (the target is applied by then).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replicas_after = placeholder_replicas().await;
    println!(
        "after the restart: {after:?} (lead s, samples, headroom users), {replicas_after:?} placeholders"
    );
    for got in &after {
        assert_eq!(got.0, before.0, "lead time s: {got:?} vs {before:?}");
        assert_eq!(got.1, before.1, "lead samples: {got:?} vs {before:?}");
        assert!(
            (got.2 - before.2).abs() < 1e-6,
            "headroom users: {got:?} vs {before:?}"
        );
    }
    assert_eq!(replicas_after, replicas_before, "placeholders");

    for r in replicas {
        r.stop().await;
    }
    scheduler_running.stop().await.unwrap();
}
