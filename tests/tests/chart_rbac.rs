//! hubpack's binaries on the chart's own ServiceAccounts, against the real API server: the
//! chart is rendered, its RBAC and static placeholders applied, a token of the scheduler's
//! ServiceAccount made with `kubectl create token`, and `hubpack-scheduler` run as a local
//! process with exactly the container args the chart renders (the config file is the rendered
//! ConfigMap's). It talks to the API server through a recording proxy
//! (`chart_support/proxy.rs`), so the test sees every request it makes.
//!
//! A scheduling scenario then runs on that identity: the placeholder is bound, a user
//! preempts it (eviction, nomination, bind), the Deployment's replacement waits Unschedulable,
//! a WaitForFirstConsumer claim is pre-bound to its static volume and another gets its
//! selected node. Then:
//! - sufficient: the scenario passed and the API server refused (403) no request;
//! - minimal: every verb the roles grant was used by the binary, except the few listed in
//!   [`SCHEDULER_NOT_EXERCISED`] with the code path that uses them;
//! - the dashboard: every metric it queries is in the scheduler's live `/metrics`.
//!
//! Takes about 35 s.

#![allow(clippy::unwrap_used)]

mod chart_support;

use chart_support::proxy::{NON_RESOURCE, Proxy, Seen};
use chart_support::*;
use hubpack_e2e::nodes::{NodeTemplate, Pool};
use hubpack_e2e::{harness, wait};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const IMAGE: &str = "jupyter/base-notebook:2024";
const IMAGE_FULL: &str = "docker.io/jupyter/base-notebook:2024";
const TEST_LABEL: &str = "e2e.hubpack.dev/test";
const WAIT: Duration = Duration::from_secs(60);

/// Grants the scenario does not exercise, each with where the scheduler uses it. Every entry
/// must be granted (checked), so the list cannot outlive the grant.
const SCHEDULER_NOT_EXERCISED: &[(&str, &str, &str)] = &[
    // kube-runtime's events::Recorder patches an Event into a series when the same event
    // repeats within its cache; the scenario may end before a repeat.
    (
        "patch",
        "events.k8s.io/events",
        "scheduler/src/actions/events.rs (kube Recorder)",
    ),
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A local process of a hubpack binary with the chart's container args; killed on drop.
struct Process {
    child: tokio::process::Child,
    log: std::path::PathBuf,
}

impl Process {
    /// Runs `container`'s command with its args, `/etc/hubpack/config.yaml` replaced by a file
    /// holding `config`, plus `--kubeconfig` and the env the Deployment sets.
    fn start(
        dir: &std::path::Path,
        container: &Value,
        config: &str,
        kubeconfig: &str,
        namespace: &str,
    ) -> Process {
        let command = strings(&container["command"]);
        let bin = command[0].strip_prefix("/usr/local/bin/").unwrap();
        let config_path = dir.join(format!("{bin}.yaml"));
        std::fs::write(&config_path, config).unwrap();
        let kc_path = dir.join(format!("{bin}.kubeconfig"));
        std::fs::write(&kc_path, kubeconfig).unwrap();
        let args: Vec<String> = strings(&container["args"])
            .into_iter()
            .map(|a| {
                if a.starts_with("/etc/hubpack/") {
                    config_path.display().to_string()
                } else {
                    a
                }
            })
            .collect();
        let log = dir.join(format!("{bin}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(hubpack_binary(bin))
            .args(&args)
            .arg("--kubeconfig")
            .arg(&kc_path)
            .env("POD_NAMESPACE", namespace)
            .env("POD_NAME", format!("{bin}-e2e"))
            .env("RUST_LOG", "info")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Process { child, log }
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "exited with {status}:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What went wrong when the scenario stalls: the requests the API server refused (a missing
/// grant shows here first) and the end of the binary's log.
fn diagnosis(proxy: &Proxy, process: &Process) -> String {
    let refused: Vec<Seen> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.status == 403)
        .collect();
    let log = process.log();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    format!(
        "refused requests: {refused:#?}\nlast log lines:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

/// `# TYPE <name> <type>` lines of a Prometheus text scrape.
async fn scrape_metric_names(port: u16) -> BTreeSet<String> {
    let body = wait::until("a /metrics scrape", WAIT, || async move {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await.ok()?;
        out.starts_with("HTTP/1.1 200").then_some(out)
    })
    .await
    .unwrap();
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The `hubpack_*` metric names the dashboard's queries use, with the sample suffixes of
/// histograms and counters taken off (the scrape's TYPE lines name the family).
fn dashboard_metrics(dashboard: &Value) -> BTreeSet<String> {
    fn exprs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => exprs(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    exprs(dashboard, &mut all);
    let mut names = BTreeSet::new();
    for e in all {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("hubpack_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

fn family(sample: &str, exported: &BTreeSet<String>) -> Option<String> {
    if exported.contains(sample) {
        return Some(sample.to_string());
    }
    ["_bucket", "_sum", "_count", "_total", "_created"]
        .iter()
        .filter_map(|s| sample.strip_suffix(s))
        .find(|f| exported.contains(*f))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_on_the_charts_service_account_needs_and_uses_exactly_its_grants() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap();
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "chart-sa")
        .await
        .unwrap();
    let release = harness::unique_name("sa");
    let scheduler_name = harness::unique_name("hubpack");
    let port = free_port();
    let sets = [
        format!("scheduler.config.schedulerName={scheduler_name}"),
        // kwok nodes are Ready seconds before the scenario.
        "scheduler.config.policy.warm_settle_ms=0".into(),
        "scheduler.config.queue.unschedulableRetrySeconds=2".into(),
        "scheduler.config.volumes.bindTimeoutSeconds=30".into(),
        format!("scheduler.metrics.port={port}"),
        "placeholders.enabled=true".into(),
        "placeholders.usersPerPlaceholder=3".into(),
        "placeholders.userRequests.memoryMiB=256".into(),
        format!("userPool.nodeSelector.e2e\\.hubpack\\.dev/test={scheduler_name}"),
    ];
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let docs = documents(&render(&release, &ns, &[], &sets));
    // Everything but the scheduler's Deployment: this test runs the scheduler itself.
    let applied: Vec<&Value> = docs
        .iter()
        .filter(|d| !(kind(d) == "Deployment" && name(d).ends_with("-scheduler")))
        .collect();
    let kc = &cluster.kubeconfig;
    kubectl_ok(
        kc,
        &["apply", "--server-side", "-n", &ns, "-f", "-"],
        &to_stream(&applied),
    );
    let sa = format!("{release}-hubpack-scheduler");
    let token = kubectl_ok(
        kc,
        &["create", "token", &sa, "-n", &ns, "--duration=1h"],
        "",
    );

    // One 2-cpu user node; the placeholder (3 users x 500m) leaves 500m free.
    let node = harness::unique_name("sa-user");
    let mut template = NodeTemplate::new(Pool::User)
        .with_images([IMAGE_FULL])
        .with_boot_delay(Duration::ZERO)
        .with_resources("2", "8Gi", 110);
    template
        .extra_labels
        .insert(TEST_LABEL.into(), scheduler_name.clone());
    harness::create_node(&client, &node, &template)
        .await
        .unwrap();
    harness::wait_node_schedulable(&client, &node, WAIT)
        .await
        .unwrap();

    let proxy = Proxy::start(kc).await;
    let dir = tempfile::tempdir().unwrap();
    let deployment = find(&docs, "Deployment", "-scheduler");
    let config = find(&docs, "ConfigMap", "-scheduler")["data"]["config.yaml"]
        .as_str()
        .unwrap();
    let mut scheduler = Process::start(
        dir.path(),
        container(deployment, "scheduler"),
        config,
        &proxy.kubeconfig(token.trim()),
        &ns,
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let placeholders = ListParams::default().labels("app.kubernetes.io/component=user-placeholder");
    let placed = wait::until("the placeholder bound", WAIT, || {
        let pods = pods.clone();
        let placeholders = placeholders.clone();
        async move {
            let list = pods.list(&placeholders).await.ok()?;
            list.items
                .into_iter()
                .find(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
                .and_then(|p| p.metadata.name)
        }
    })
    .await;
    let first_placeholder =
        placed.unwrap_or_else(|e| panic!("{e}\n{}", diagnosis(&proxy, &scheduler)));

    // A user needing 1 cpu: only evicting the placeholder makes room.
    let user_pod = |name: &str, cpu: &str| {
        let mut pod = harness::user_pod(name, IMAGE);
        harness::set_cpu_request(&mut pod, cpu);
        let spec = pod.spec.as_mut().unwrap();
        spec.scheduler_name = Some(scheduler_name.clone());
        spec.node_selector
            .get_or_insert_default()
            .insert(TEST_LABEL.into(), scheduler_name.clone());
        pod
    };
    pods.create(&PostParams::default(), &user_pod("user-1", "1"))
        .await
        .unwrap();
    harness::wait_pod(&client, &ns, "user-1", "bound", WAIT, |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", diagnosis(&proxy, &scheduler)));
    // The replacement waits with the condition the autoscaler acts on.
    wait::until("the replacement placeholder Unschedulable", WAIT, || {
        let pods = pods.clone();
        let placeholders = placeholders.clone();
        let first = first_placeholder.clone();
        async move {
            let list = pods.list(&placeholders).await.ok()?;
            list.items.into_iter().find(|p| {
                p.metadata.name.as_deref() != Some(first.as_str())
                    && p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| {
                                c.type_ == "PodScheduled"
                                    && c.status == "False"
                                    && c.reason.as_deref() == Some("Unschedulable")
                            })
                        })
            })
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", diagnosis(&proxy, &scheduler)));

    // WaitForFirstConsumer: a static volume (the scheduler writes the PV's claimRef) and a
    // class with a provisioner (the scheduler writes the PVC's selected-node annotation).
    let static_class = harness::unique_name("sa-static");
    let dynamic_class = harness::unique_name("sa-dynamic");
    for (class, provisioner) in [
        (&static_class, "kubernetes.io/no-provisioner"),
        (&dynamic_class, "e2e.hubpack.dev/nobody"),
    ] {
        let sc: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": class},
            "provisioner": provisioner,
            "volumeBindingMode": "WaitForFirstConsumer",
        }))
        .unwrap();
        Api::<StorageClass>::all(client.clone())
            .create(&PostParams::default(), &sc)
            .await
            .unwrap();
    }
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": harness::unique_name("sa-pv")},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": static_class,
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": "/tmp/hubpack-e2e"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
        },
    }))
    .unwrap();
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    for (claim, class) in [
        ("home-static", &static_class),
        ("home-dynamic", &dynamic_class),
    ] {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": claim},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                     "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .unwrap();
        claims.create(&PostParams::default(), &pvc).await.unwrap();
        let mut pod = user_pod(&format!("user-{claim}"), "100m");
        pod.spec.as_mut().unwrap().volumes = Some(vec![
            serde_json::from_value(
                json!({"name": "home", "persistentVolumeClaim": {"claimName": claim}}),
            )
            .unwrap(),
        ]);
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    harness::wait_pod(&client, &ns, "user-home-static", "bound", WAIT, |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", diagnosis(&proxy, &scheduler)));
    wait::until("the dynamic claim's selected node", WAIT, || {
        let claims = claims.clone();
        let node = node.clone();
        async move {
            let c = claims.get("home-dynamic").await.ok()?;
            (c.metadata
                .annotations?
                .get("volume.kubernetes.io/selected-node")
                == Some(&node))
            .then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", diagnosis(&proxy, &scheduler)));
    // A kubelet rejection, as a kubelet reports one at admission (kwok plays the kubelet
    // here and never rejects): the scheduler counts it and reports it on the pod.
    pods.create(&PostParams::default(), &user_pod("user-rejected", "100m"))
        .await
        .unwrap();
    harness::wait_pod(&client, &ns, "user-rejected", "bound", WAIT, |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", diagnosis(&proxy, &scheduler)));
    let failed = json!({"status": {"phase": "Failed", "reason": "OutOfcpu",
        "message": "Pod was rejected: Node didn't have enough resource: cpu"}});
    pods.patch_status(
        "user-rejected",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&failed),
    )
    .await
    .unwrap();
    scheduler.assert_running();

    // The dashboard's metrics, against this scheduler's live scrape (a labelled family
    // shows up once it has a sample).
    let exported = wait::until("the kubelet rejection counted", WAIT, || async {
        let names = scrape_metric_names(port).await;
        names
            .contains("hubpack_scheduler_kubelet_rejections")
            .then_some(names)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", diagnosis(&proxy, &scheduler)));
    let dashboard: Value = serde_json::from_str(
        find(&docs, "ConfigMap", "-dashboard")["data"]["hubpack.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let queried = dashboard_metrics(&dashboard);
    assert!(queried.len() >= 5, "the dashboard queries {queried:?}");
    let missing: Vec<&String> = queried
        .iter()
        .filter(|m| family(m, &exported).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics no binary exports: {missing:?}\nexported: {exported:?}"
    );

    // Sufficient: nothing was refused.
    let seen: Vec<Seen> = proxy.seen();
    let refused: Vec<&Seen> = seen.iter().filter(|s| s.status == 403).collect();
    assert!(
        refused.is_empty(),
        "the API server refused the scheduler's ServiceAccount: {refused:#?}\n{}",
        scheduler.log()
    );
    // Minimal: each grant was used, or is listed with the code that uses it.
    let roles: Vec<&Value> = docs
        .iter()
        .filter(|d| ["Role", "ClusterRole"].contains(&kind(d)) && name(d).contains("-scheduler"))
        .collect();
    let granted = grants(&roles);
    let used = |g: &Grant| {
        seen.iter().any(|s| {
            s.verb == g.0
                && s.resource == g.1
                && (g.2.is_empty() || s.name == g.2)
                && s.status < 400
        })
    };
    let mut unused: Vec<&Grant> = granted.iter().filter(|g| !used(g)).collect();
    unused.retain(|g| {
        !SCHEDULER_NOT_EXERCISED
            .iter()
            .any(|(v, r, _)| g.0 == *v && g.1 == *r)
    });
    for (v, r, why) in SCHEDULER_NOT_EXERCISED {
        assert!(
            granted.iter().any(|g| g.0 == *v && g.1 == *r),
            "{v} {r} is listed as not exercised ({why}) but not granted"
        );
    }
    let requests: BTreeSet<(String, String)> = seen
        .iter()
        .map(|s| (s.verb.clone(), s.resource.clone()))
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never used by hubpack-scheduler: {unused:?}\nits requests: {requests:#?}"
    );
    // And every request it made is covered by a grant (non-resource URLs, e.g. /version, are
    // open to every authenticated user by system:discovery).
    for s in seen
        .iter()
        .filter(|s| !s.resource.starts_with(NON_RESOURCE))
    {
        let covered = granted
            .iter()
            .any(|g| g.0 == s.verb && g.1 == s.resource && (g.2.is_empty() || g.2 == s.name));
        assert!(covered, "request not covered by the chart's roles: {s:?}");
    }
    println!("hubpack-scheduler requests on its ServiceAccount: {requests:#?}");
    drop(scheduler);
}
