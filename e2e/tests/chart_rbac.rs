//! hubpack's binaries on the chart's own ServiceAccounts, against the real API server: the
//! chart is rendered with both components, everything but their Deployments applied, a token
//! of each ServiceAccount made with `kubectl create token`, and `hubpack-scheduler` and
//! `hubpack-placeholder-ctl` run as local processes with exactly the container command and
//! args the chart renders (the config file is the rendered ConfigMap's). Each talks to the API
//! server through its own recording proxy (`chart_support/proxy.rs`), so the test sees every
//! request each makes.
//!
//! The scenario on those identities: the controller sizes a pool (PriorityClasses, placeholder
//! Deployment, PDB, pre-pull DaemonSet, deletion cost, Events), the scheduler places its
//! placeholder, a user preempts it (eviction, nomination, bind), a replacement waits
//! Unschedulable, a WaitForFirstConsumer claim is pre-bound to its static volume and another
//! gets its selected node, a kubelet rejection is counted, an event ConfigMap and a user pod
//! without requests reach the controller, the objects of a pool renamed away are deleted, and
//! a restarted controller reads the checkpoint its predecessor wrote.
//! Then, per binary:
//! - sufficient: the scenario passed and the API server refused (403) no request;
//! - minimal: every verb its roles grant was used, except the few listed in
//!   [`SCHEDULER_NOT_EXERCISED`] / [`CONTROLLER_NOT_EXERCISED`] with the code using them;
//! - and every metric the dashboard queries is in the binaries' live `/metrics`.
//!
//! Takes about 40 s.

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
const CONTROLLER_NOT_EXERCISED: &[(&str, &str, &str)] = &[(
    "patch",
    "events.k8s.io/events",
    "placeholder-ctl/src/adapter/events.rs (kube Recorder)",
)];

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
        wait::http_body(port, "/metrics").await
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

/// The values this test installs with: both binaries on one test node of their own.
fn test_values(scheduler_name: &str, scheduler_port: u16, controller_port: u16) -> String {
    format!(
        r#"
scheduler:
  config:
    schedulerName: {scheduler_name}
    policy: {{warmSettleSeconds: 0}}       # kwok nodes are Ready seconds before the scenario
    queue: {{unschedulableRetrySeconds: 2}}
    volumes: {{bindTimeoutSeconds: 30}}
    placeholderUnschedulableGraceSeconds: 1
  metrics: {{port: {scheduler_port}}}
controller:
  enabled: true
  metrics: {{port: {controller_port}}}
  config:
    reconcileIntervalSeconds: 1
    userPods: {{selector: {{app: hubpack-e2e}}}}
    pools:
      - name: e2e
        nodeSelector: {{{TEST_LABEL}: {scheduler_name}}}
        perUser: {{cpu: 500m, memory: 256Mi}}
        usersPerPlaceholder: 3
        freshNode: {{allocatable: {{cpu: "2", memory: 8Gi, pods: "110"}}}}
        # Six seats wanted, three free on the empty node: placeholders of 3 users each.
        headroom: {{minUsers: 6, maxUsers: 6}}
        lead: 60
        images: [{IMAGE}]
"#
    )
}

/// Roles and ClusterRoles of one binary (by the name part `-scheduler` or `-placeholder-ctl`).
fn roles_of<'a>(docs: &'a [Value], part: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| ["Role", "ClusterRole"].contains(&kind(d)) && name(d).contains(part))
        .collect()
}

/// Sufficient and minimal: no request refused; every grant used, or listed in
/// `not_exercised` (checked to be granted); every request covered by a grant.
fn check_grants(
    bin: &str,
    granted: &BTreeSet<Grant>,
    seen: &[Seen],
    not_exercised: &[(&str, &str, &str)],
    log: &str,
) {
    let refused: Vec<&Seen> = seen.iter().filter(|s| s.status == 403).collect();
    assert!(
        refused.is_empty(),
        "the API server refused {bin}'s ServiceAccount: {refused:#?}\n{log}"
    );
    for (v, r, why) in not_exercised {
        assert!(
            granted.iter().any(|g| g.0 == *v && g.1 == *r),
            "{bin}: {v} {r} is listed as not exercised ({why}) but not granted"
        );
    }
    let used = |g: &Grant| {
        seen.iter().any(|s| {
            s.verb == g.0
                && s.resource == g.1
                && (g.2.is_empty() || s.name == g.2)
                && s.status < 400
        })
    };
    let unused: Vec<&Grant> = granted
        .iter()
        .filter(|g| !used(g))
        .filter(|g| !not_exercised.iter().any(|(v, r, _)| g.0 == *v && g.1 == *r))
        .collect();
    let requests: BTreeSet<(String, String)> = seen
        .iter()
        .map(|s| (s.verb.clone(), s.resource.clone()))
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never used by {bin}: {unused:?}\nits requests: {requests:#?}"
    );
    // Every request it made is covered by a grant (non-resource URLs, e.g. /version, are
    // open to every authenticated user by system:discovery).
    for s in seen
        .iter()
        .filter(|s| !s.resource.starts_with(NON_RESOURCE))
    {
        let covered = granted
            .iter()
            .any(|g| g.0 == s.verb && g.1 == s.resource && (g.2.is_empty() || g.2 == s.name));
        assert!(
            covered,
            "{bin}: request not covered by the chart's roles: {s:?}"
        );
    }
    println!("{bin} requests on its ServiceAccount: {requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_on_the_charts_service_accounts_need_and_use_exactly_their_grants() {
    let cluster = hubpack_e2e::shared_cluster!().unwrap();
    let client = cluster.client().await.unwrap();
    let ns = harness::create_namespace(&client, "chart-sa")
        .await
        .unwrap();
    let release = harness::unique_name("sa");
    let scheduler_name = harness::unique_name("hubpack");
    let (scheduler_port, controller_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        test_values(&scheduler_name, scheduler_port, controller_port),
    )
    .unwrap();
    let docs = documents(&render(&release, &ns, &[&values], &[]));
    // Everything but the two Deployments: this test runs the binaries itself.
    let applied: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            !(kind(d) == "Deployment"
                && (name(d).ends_with("-scheduler") || name(d).ends_with("-placeholder-ctl")))
        })
        .collect();
    let kc = &cluster.kubeconfig;
    kubectl_ok(
        kc,
        &["apply", "--server-side", "-n", &ns, "-f", "-"],
        &to_stream(&applied),
    );
    let token = |sa: &str| {
        kubectl_ok(kc, &["create", "token", sa, "-n", &ns, "--duration=1h"], "")
            .trim()
            .to_string()
    };

    // One 2-cpu user node: room for one placeholder (3 users x 500m).
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

    // What a pool renamed away left behind: the controller deletes these (labelled as this
    // release's) objects, which exercises its delete grants.
    let leftover_labels = json!({
        "app.kubernetes.io/managed-by": "hubpack-placeholder-ctl",
        "app.kubernetes.io/instance": release,
        "hubpack.io/pool": "renamed",
    });
    let leftover_pod = json!({
        "metadata": {"labels": {"e2e.hubpack.dev/leftover": "renamed"}},
        "spec": {"nodeSelector": {"e2e.hubpack.dev/nowhere": "true"},
                 "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]},
    });
    let selector = json!({"matchLabels": {"e2e.hubpack.dev/leftover": "renamed"}});
    let leftovers = [
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "hubpack-placeholder-renamed", "labels": leftover_labels},
               "spec": {"replicas": 0, "selector": selector, "template": leftover_pod}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "hubpack-placeholder-renamed", "labels": leftover_labels},
               "spec": {"maxUnavailable": "100%", "selector": selector}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "hubpack-prepuller-renamed", "labels": leftover_labels},
               "spec": {"selector": selector, "template": leftover_pod}}),
    ];
    kubectl_ok(
        kc,
        &["apply", "--server-side", "-n", &ns, "-f", "-"],
        &to_stream(&leftovers.iter().collect::<Vec<_>>()),
    );

    // Each binary with the chart's command and args, its rendered config, its own token,
    // through its own recording proxy.
    let start = |suffix: &str, container_name: &str, proxy: &Proxy, token: &str| {
        let deployment = find(&docs, "Deployment", suffix);
        let config = find(&docs, "ConfigMap", suffix)["data"]["config.yaml"]
            .as_str()
            .unwrap();
        Process::start(
            dir.path(),
            container(deployment, container_name),
            config,
            &proxy.kubeconfig(token),
            &ns,
        )
    };
    let scheduler_proxy = Proxy::start(kc).await;
    let mut scheduler = start(
        "-scheduler",
        "scheduler",
        &scheduler_proxy,
        &token(&format!("{release}-hubpack-scheduler")),
    );
    let controller_proxy = Proxy::start(kc).await;
    let mut controller = start(
        "-placeholder-ctl",
        "placeholder-ctl",
        &controller_proxy,
        &token(&format!("{release}-hubpack-placeholder-ctl")),
    );
    let why = |scheduler: &Process, controller: &Process| {
        format!(
            "hubpack-scheduler: {}\nhubpack-placeholder-ctl: {}",
            diagnosis(&scheduler_proxy, scheduler),
            diagnosis(&controller_proxy, controller)
        )
    };

    // The controller's placeholder, placed by the scheduler.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let placeholders = ListParams::default().labels("app.kubernetes.io/component=user-placeholder");
    let first_placeholder = wait::until("a placeholder bound", WAIT, || {
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
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));

    // The controller ranks placed placeholders for scale-down by the users on their node.
    harness::wait_pod(
        &client,
        &ns,
        &first_placeholder,
        "with a deletion cost",
        WAIT,
        |p| {
            p.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("controller.kubernetes.io/pod-deletion-cost"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));

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
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
    // A replacement waits with the condition the autoscaler acts on.
    wait::until("a replacement placeholder Unschedulable", WAIT, || {
        let pods = pods.clone();
        let placeholders = placeholders.clone();
        let first = first_placeholder.clone();
        async move {
            let list = pods.list(&placeholders).await.ok()?;
            list.items.into_iter().find(|p| {
                p.metadata.name.as_deref() != Some(first.as_str())
                    && hubpack_e2e::wait::pod_unschedulable(p)
            })
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
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
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
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
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
    // A kubelet rejection, as a kubelet reports one at admission (kwok plays the kubelet
    // here and never rejects): the scheduler counts it and reports it on the pod.
    pods.create(&PostParams::default(), &user_pod("user-rejected", "100m"))
        .await
        .unwrap();
    harness::wait_pod(&client, &ns, "user-rejected", "bound", WAIT, |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
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

    // An event ConfigMap an instructor adds, and a user pod without requests (bad input,
    // which the controller reports as a metric and a warning Event).
    let events_cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "lecture", "labels": {"hubpack.io/events": "true"}},
        "data": {"events.yaml": "- {name: lecture, pool: e2e, start: \"2030-01-01T09:00:00Z\", users: 10}\n"},
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &events_cm)
        .await
        .unwrap();
    let mut no_requests = user_pod("user-no-requests", "100m");
    no_requests.spec.as_mut().unwrap().containers[0].resources = None;
    pods.create(&PostParams::default(), &no_requests)
        .await
        .unwrap();
    scheduler.assert_running();
    controller.assert_running();

    // The dashboard's metrics, against the binaries' live scrapes (a labelled family shows
    // up once it has a sample).
    let mut exported = wait::until("the kubelet rejection counted", WAIT, || async {
        let names = scrape_metric_names(scheduler_port).await;
        names
            .contains("hubpack_scheduler_kubelet_rejections")
            .then_some(names)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
    let controller_metrics = wait::until("the bad input reported", WAIT, || async {
        let names = scrape_metric_names(controller_port).await;
        names
            .contains("hubpack_placeholder_ctl_bad_input")
            .then_some(names)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
    exported.extend(controller_metrics);
    let dashboard: Value = serde_json::from_str(
        find(&docs, "ConfigMap", "-dashboard")["data"]["hubpack.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let queried = dashboard_metrics(&dashboard);
    assert!(queried.len() >= 10, "the dashboard queries {queried:?}");
    let missing: Vec<&String> = queried
        .iter()
        .filter(|m| family(m, &exported).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics no binary exports: {missing:?}\nexported: {exported:?}"
    );

    for (kind, name) in [
        ("deployment", "hubpack-placeholder-renamed"),
        ("poddisruptionbudget", "hubpack-placeholder-renamed"),
        ("daemonset", "hubpack-prepuller-renamed"),
    ] {
        wait::until(&format!("the leftover {kind} deleted"), WAIT, || async {
            let out = kubectl_ok(kc, &["get", kind, "-n", &ns, "-o", "name"], "");
            (!out.contains(name)).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
    }

    // The leader checkpoints what it learned; a restarted controller reads it (the first
    // start found none).
    let state = format!("{release}-hubpack-placeholder-ctl-state");
    wait::until("the checkpoint written", WAIT, || async {
        let out = kubectl_ok(kc, &["get", "configmap", "-n", &ns, "-o", "name"], "");
        out.contains(&state).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
    drop(controller);
    controller = start(
        "-placeholder-ctl",
        "placeholder-ctl",
        &controller_proxy,
        &token(&format!("{release}-hubpack-placeholder-ctl")),
    );
    wait::until(
        "the restarted controller read the checkpoint",
        WAIT,
        || async {
            controller_proxy
                .seen()
                .iter()
                .any(|s| s.verb == "get" && s.name == state && s.status == 200)
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));

    // A lease is renewed (a patch) once its renew interval has passed: wait for one from
    // each binary, so the check below does not depend on how long the steps above took.
    for proxy in [&scheduler_proxy, &controller_proxy] {
        wait::until("the lease renewed", WAIT, || async {
            proxy
                .seen()
                .iter()
                .any(|s| {
                    s.verb == "patch"
                        && s.resource == "coordination.k8s.io/leases"
                        && s.status < 400
                })
                .then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", why(&scheduler, &controller)));
    }
    check_grants(
        "hubpack-scheduler",
        &grants(&roles_of(&docs, "-scheduler")),
        &scheduler_proxy.seen(),
        SCHEDULER_NOT_EXERCISED,
        &scheduler.log(),
    );
    check_grants(
        "hubpack-placeholder-ctl",
        &grants(&roles_of(&docs, "-placeholder-ctl")),
        &controller_proxy.seen(),
        CONTROLLER_NOT_EXERCISED,
        &controller.log(),
    );
    drop((scheduler, controller));
}
