//! The objects and schedulers of each stack, as the charts render them: KubeSpawner-shaped
//! user pods, z2jh's user-placeholder StatefulSet (−10) and continuous image puller (−5),
//! z2jh's user-scheduler (the stock kube-scheduler binary, a second scheduler process, with
//! z2jh's profile), hubpack-scheduler (in-process), hubpack's static N-user placeholder
//! Deployment, and hubpack-placeholder-ctl (in-process) configured from the scenario.

use crate::plan::{Plan, Stack};
use hubpack_e2e::binaries::{self, Component};
use hubpack_e2e::cluster::Cluster;
use hubpack_e2e::karpenter::DO_NOT_DISRUPT_ANNOTATION;
use hubpack_e2e::nodes::{DEDICATED_TAINT, NODE_PURPOSE_LABEL};
use hubpack_e2e::processes::{self, Managed};
use hubpack_sim::scenario::AutoscalerKind;
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, Container, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    Pod, PodSpec, PodTemplateSpec, ResourceRequirements, Toleration,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const NAMESPACE: &str = "hub";
/// z2jh's user-scheduler name; hubpack's stacks use hubpack's.
pub const Z2JH_SCHEDULER: &str = "user-scheduler";
pub const HUBPACK_SCHEDULER: &str = "hubpack-scheduler";
const PLACEHOLDER_CLASS: &str = "sbs-user-placeholder";
const PULLER_CLASS: &str = "sbs-image-puller";
const PAUSE: &str = "registry.k8s.io/pause:3.10";
/// kube-proxy's CPU request on every node (GKE's; CA's templates assume the same).
pub const KUBE_PROXY_CPU: &str = "100m";
/// The label telling the bench's user pods apart (value: the user's index).
pub const USER_LABEL: &str = "sbs.hubpack.dev/user";

pub fn scheduler_name(stack: Stack) -> &'static str {
    if stack.is_hubpack() {
        HUBPACK_SCHEDULER
    } else {
        Z2JH_SCHEDULER
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// z2jh's user pod constraints: both dedicated-taint tolerations and node-purpose affinity
/// (`matchNodePurpose: require`).
fn user_constraints(spec: &mut PodSpec) {
    spec.tolerations = Some(
        [DEDICATED_TAINT, "hub.jupyter.org_dedicated"]
            .iter()
            .map(|key| Toleration {
                key: Some((*key).into()),
                operator: Some("Equal".into()),
                value: Some("user".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            })
            .collect(),
    );
    spec.affinity = Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: NODE_PURPOSE_LABEL.into(),
                        operator: "In".into(),
                        values: Some(vec!["user".into()]),
                    }]),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
}

fn resources(cpu: &str, memory: &str) -> ResourceRequirements {
    let r = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.into())),
        ("memory".to_string(), Quantity(memory.into())),
    ]);
    ResourceRequirements {
        requests: Some(r.clone()),
        limits: Some(r),
        ..Default::default()
    }
}

/// A user pod as KubeSpawner renders it in z2jh: its labels, requests = limits, the
/// scheduler, tolerations and node-purpose affinity; on Karpenter also
/// `karpenter.sh/do-not-disrupt: "true"` (through `singleuser.extraAnnotations`, as the
/// chart README asks), unless the scenario says the hub does not set it.
pub fn user_pod(plan: &Plan, stack: Stack, user: usize, attempt: u32) -> Pod {
    let name = format!("jupyter-user-{user}");
    let mut spec = PodSpec {
        scheduler_name: Some(scheduler_name(stack).into()),
        containers: vec![Container {
            name: "notebook".into(),
            image: Some(plan.image.clone()),
            resources: Some(resources(
                &plan.cpu(plan.user_cpu),
                &plan.gib(plan.user_memory_gib),
            )),
            ..Default::default()
        }],
        restart_policy: Some("OnFailure".into()),
        termination_grace_period_seconds: Some(0),
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    user_constraints(&mut spec);
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{attempt}")),
            labels: Some(labels(&[
                ("app", "jupyterhub"),
                ("component", "singleuser-server"),
                ("heritage", "jupyterhub"),
                ("release", "sbs"),
                ("hub.jupyter.org/network-access-hub", "true"),
                ("hub.jupyter.org/servername", ""),
                ("hub.jupyter.org/username", &format!("user-{user}")),
                (USER_LABEL, &user.to_string()),
            ])),
            annotations: Some(user_annotations(plan, user)),
            ..Default::default()
        },
        spec: Some(spec),
        ..Default::default()
    }
}

/// A user pod's annotations (see [`user_pod`]).
pub fn user_annotations(plan: &Plan, user: usize) -> BTreeMap<String, String> {
    let mut a = labels(&[("hub.jupyter.org/username", &format!("user-{user}"))]);
    if plan.autoscaler_kind == AutoscalerKind::Karpenter && plan.karpenter.user_pods_do_not_disrupt
    {
        a.insert(DO_NOT_DISRUPT_ANNOTATION.into(), "true".into());
    }
    a
}

fn placeholder_template(scheduler: &str, cpu: &str, memory: &str, app: &str) -> PodTemplateSpec {
    let mut spec = PodSpec {
        scheduler_name: Some(scheduler.into()),
        priority_class_name: Some(PLACEHOLDER_CLASS.into()),
        termination_grace_period_seconds: Some(0),
        automount_service_account_token: Some(false),
        containers: vec![Container {
            name: "pause".into(),
            image: Some(PAUSE.into()),
            resources: Some(resources(cpu, memory)),
            ..Default::default()
        }],
        ..Default::default()
    };
    user_constraints(&mut spec);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&[("app", app), ("component", "user-placeholder")])),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

/// A selector for the pods of `template` (its labels).
fn selecting(template: &PodTemplateSpec) -> LabelSelector {
    LabelSelector {
        match_labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
        ..Default::default()
    }
}

/// z2jh's `user-placeholder` StatefulSet (podManagementPolicy Parallel).
fn z2jh_placeholders(replicas: usize, cpu: &str, memory: &str) -> StatefulSet {
    let template = placeholder_template(Z2JH_SCHEDULER, cpu, memory, "user-placeholder");
    StatefulSet {
        metadata: ObjectMeta {
            name: Some("user-placeholder".into()),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas as i32),
            pod_management_policy: Some("Parallel".into()),
            service_name: Some("user-placeholder".into()),
            selector: selecting(&template),
            template,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// hubpack's chart's static N-user placeholders: one Deployment of N-user pods, with
/// `karpenter.sh/do-not-disrupt: "true"` as hubpack-placeholder-ctl's placeholders have it
/// (Karpenter would otherwise consolidate a placeholder's node and provision it again; the
/// cluster-autoscaler ignores it). z2jh's placeholders have none.
fn hubpack_placeholders(replicas: usize, cpu: &str, memory: &str) -> Deployment {
    let mut template = placeholder_template(HUBPACK_SCHEDULER, cpu, memory, "hubpack-placeholder");
    if let Some(meta) = template.metadata.as_mut() {
        meta.annotations = Some(labels(&[(DO_NOT_DISRUPT_ANNOTATION, "true")]));
    }
    Deployment {
        metadata: ObjectMeta {
            name: Some("hubpack-placeholder".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas as i32),
            selector: selecting(&template),
            template,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// z2jh's continuous image puller: one init container per image running a no-op (the
/// kubelet, here the image model, pulls it), pause as the main container, −5.
fn continuous_puller(image: &str) -> DaemonSet {
    let mut spec = PodSpec {
        priority_class_name: Some(PULLER_CLASS.into()),
        termination_grace_period_seconds: Some(0),
        automount_service_account_token: Some(false),
        init_containers: Some(vec![Container {
            name: "image-pull-singleuser".into(),
            image: Some(image.into()),
            command: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo \"Pulling complete\"".into(),
            ]),
            ..Default::default()
        }]),
        containers: vec![Container {
            name: "pause".into(),
            image: Some(PAUSE.into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    user_constraints(&mut spec);
    let l = labels(&[
        ("app", "jupyterhub"),
        ("component", "continuous-image-puller"),
    ]);
    daemon_set("continuous-image-puller", None, l, spec)
}

/// A DaemonSet of `spec` pods labelled (and selected by) `l`.
fn daemon_set(
    name: &str,
    namespace: Option<&str>,
    l: BTreeMap<String, String>,
    spec: PodSpec,
) -> DaemonSet {
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: namespace.map(Into::into),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(l.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(l),
                    ..Default::default()
                }),
                spec: Some(spec),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// kube-proxy as clusters run it on every node: 100m CPU requested, every taint tolerated
/// (so it is there from registration). cluster-autoscaler's node templates always hold a
/// 100m kube-proxy pod (`cloudprovider.BuildKubeProxy`, in the kwok provider too), so
/// without it the real nodes would have 100m more room than CA believes, and a placeholder
/// sized to the whole node would never get a node from CA ("Insufficient cpu" on the
/// template). With it, the scheduler and CA agree on the users a new node holds.
fn kube_proxy() -> DaemonSet {
    let l = labels(&[("k8s-app", "kube-proxy")]);
    let spec = PodSpec {
        priority_class_name: Some("system-node-critical".into()),
        termination_grace_period_seconds: Some(0),
        automount_service_account_token: Some(false),
        tolerations: Some(vec![Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        }]),
        containers: vec![Container {
            name: "kube-proxy".into(),
            image: Some(PAUSE.into()),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "cpu".to_string(),
                    Quantity(KUBE_PROXY_CPU.into()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    daemon_set("kube-proxy", Some("kube-system"), l, spec)
}

fn priority_class(name: &str, value: i32) -> PriorityClass {
    PriorityClass {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        value,
        global_default: Some(false),
        ..Default::default()
    }
}

/// What runs for a stack besides the cluster: a scheduler process or in-process tasks.
pub struct Running {
    process: Option<Managed>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// hubpack-placeholder-ctl's metrics port, when it runs.
    ctl_metrics_port: Option<u16>,
}

/// The controller's `hubpack_placeholder_ctl_api_writes_total`, summed over its kinds, from a
/// `/metrics` text.
pub fn api_writes(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("hubpack_placeholder_ctl_api_writes_total"))
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum()
}

impl Running {
    /// The controller's API writes so far (None: no controller, or its metrics did not
    /// answer).
    pub async fn api_writes(&self) -> Option<f64> {
        let port = self.ctl_metrics_port?;
        let text = hubpack_e2e::wait::http_body(port, "/metrics").await?;
        Some(api_writes(&text))
    }

    pub async fn stop(mut self, state_dir: &Path) {
        self.stop.cancel();
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        if let Some(mut p) = self.process.take() {
            p.stop(state_dir, Duration::from_secs(5));
        }
    }
}

async fn create<K>(api: &Api<K>, obj: &K) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(format!("creating {:?}: {e}", obj.meta().name)),
    }
}

/// Creates the namespace's shared objects and the stack's own, and starts its scheduler
/// (and controller). `t0`: when the scenario's clock started (events are placed from it).
pub async fn start(
    cluster: &Cluster,
    client: &kube::Client,
    plan: &Plan,
    stack: Stack,
    t0_ms: i64,
) -> Result<Running, String> {
    let pcs: Api<PriorityClass> = Api::all(client.clone());
    create(&pcs, &priority_class(PLACEHOLDER_CLASS, -10)).await?;
    create(&pcs, &priority_class(PULLER_CLASS, -5)).await?;
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    create(
        &ns,
        &k8s_openapi::api::core::v1::Namespace {
            metadata: ObjectMeta {
                name: Some(NAMESPACE.into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;
    let system: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    create(&system, &kube_proxy()).await?;
    if !stack.is_predictive() {
        // hubpack-placeholder-ctl makes its own pre-puller.
        let ds: Api<DaemonSet> = Api::namespaced(client.clone(), NAMESPACE);
        create(&ds, &continuous_puller(&plan.image)).await?;
    }
    let stop = CancellationToken::new();
    let mut running = Running {
        process: None,
        stop: stop.clone(),
        tasks: vec![],
        ctl_metrics_port: None,
    };
    if stack.is_hubpack() {
        running
            .tasks
            .push(start_hubpack(client, plan, stop.clone()));
    } else {
        running.process = Some(start_user_scheduler(cluster, plan).await?);
    }
    let (cpu, mem) = (plan.user_cpu, plan.user_memory_gib);
    match stack {
        Stack::Z2jh => {
            let sts: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
            let ph = z2jh_placeholders(plan.per_user_seats, &plan.cpu(cpu), &plan.gib(mem));
            create(&sts, &ph).await?;
        }
        Stack::Z2jhNuser => {
            let n = plan.seats_per_node as f64;
            let sts: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
            let ph = z2jh_placeholders(1, &plan.cpu(cpu * n), &plan.gib(mem * n));
            create(&sts, &ph).await?;
        }
        Stack::Hubpack => {
            let (pods, n) = plan.static_n_user();
            let n = n as f64;
            let d: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
            create(
                &d,
                &hubpack_placeholders(pods, &plan.cpu(cpu * n), &plan.gib(mem * n)),
            )
            .await?;
        }
        Stack::HubpackPredictive | Stack::HubpackPredictiveBuffer => {
            let metrics_port = processes::free_port().map_err(|e| e.to_string())?;
            running.ctl_metrics_port = Some(metrics_port);
            let backend = if stack.uses_capacity_buffers() {
                "capacityBuffer"
            } else {
                "placeholders"
            };
            let yaml = ctl_config(plan, t0_ms, metrics_port, backend)?;
            let config = hubpack_placeholder_ctl::config::Config::parse(&yaml, "side-by-side")
                .map_err(|e| format!("{e}\n{yaml}"))?;
            let c = client.clone();
            let s = stop.clone();
            running.tasks.push(tokio::spawn(async move {
                if let Err(e) =
                    hubpack_placeholder_ctl::adapter::app::run(c, config, "ctl-0".into(), s).await
                {
                    eprintln!("hubpack-placeholder-ctl stopped: {e}");
                }
            }));
        }
    }
    Ok(running)
}

fn start_hubpack(
    client: &kube::Client,
    plan: &Plan,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut config = hubpack_scheduler::config::Config {
        scheduler_name: HUBPACK_SCHEDULER.into(),
        metrics_address: "127.0.0.1:0".parse().expect("a socket address"),
        placeholder_unschedulable_grace_seconds: plan.placeholder_grace_s,
        ..Default::default()
    };
    config.leader_election.enabled = false;
    // Its clocks at their defaults, compressed: warm this long after Ready, retry backoff.
    let f = plan.compression;
    config.policy.warm_settle_seconds =
        (config.policy.warm_settle_seconds as f64 / f).round() as u64;
    let q = &mut config.queue;
    q.initial_backoff_seconds /= f;
    q.max_backoff_seconds /= f;
    q.unschedulable_retry_seconds /= f;
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(e) = config.validate() {
            eprintln!("hubpack-scheduler config: {e}");
            return;
        }
        if let Err(e) = hubpack_scheduler::app::run(client, config, "hubpack-0".into(), stop).await
        {
            eprintln!("hubpack-scheduler stopped: {e}");
        }
    })
}

/// z2jh's profile with kube-scheduler's retry backoff (1 s doubling to 10 s) compressed
/// like every other clock: 10 s is 100 s of the scenario at factor 10. Whole seconds, at
/// least 1 (the API's floor).
fn user_scheduler_config(cluster: &Cluster, plan: &Plan) -> String {
    let max = (10.0 / plan.compression).round() as u32;
    hubpack_e2e::components::z2jh_user_scheduler_config(
        &cluster.kubeconfig,
        Z2JH_SCHEDULER,
        None,
        Some(max),
    )
}

/// z2jh's user-scheduler: the stock kube-scheduler as a second scheduler process.
async fn start_user_scheduler(cluster: &Cluster, plan: &Plan) -> Result<Managed, String> {
    let dir = &cluster.state_dir;
    let config = dir.join("user-scheduler.yaml");
    std::fs::write(&config, user_scheduler_config(cluster, plan)).map_err(|e| e.to_string())?;
    let bin = binaries::find(Component::K8s, "kube-scheduler").map_err(|e| e.to_string())?;
    let port = processes::free_port().map_err(|e| e.to_string())?;
    let args = vec![
        format!("--config={}", config.display()),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        // As z2jh runs its user-scheduler: don't read kube-system's
        // extension-apiserver-authentication ConfigMap (no RBAC needed for it).
        "--authentication-skip-lookup=true".into(),
    ];
    let process =
        processes::start(dir, "user-scheduler", &bin, &args, &[]).map_err(|e| e.to_string())?;
    let addr = format!("127.0.0.1:{port}");
    hubpack_e2e::wait::until("user-scheduler listening", Duration::from_secs(60), || {
        let addr = addr.clone();
        async move { tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ()) }
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(process)
}

/// hubpack-placeholder-ctl's config for the scenario: the pool as the users' constraints,
/// the scenario's events at their compressed times from `t0_ms`, a fixed lead (the
/// scenario's `predictive.lead_min`) and its headroom z, reconcile and scale-down delay
/// compressed, its `backend` (`placeholders` or `capacityBuffer`). A fresh node as the
/// autoscaler sees it: on cluster-autoscaler the template's own kube-proxy pod plus the
/// kube-proxy DaemonSet's (CA adds DaemonSet pods to templates), 200m; on Karpenter the
/// instance type's allocatable and the DaemonSet's 100m.
pub fn ctl_config(
    plan: &Plan,
    t0_ms: i64,
    metrics_port: u16,
    backend: &str,
) -> Result<String, String> {
    let secs = |d: Duration| d.as_secs().max(1);
    let mut events = String::new();
    for (i, (start, window, users)) in plan.events.iter().enumerate() {
        let at = jiff::Timestamp::from_millisecond(t0_ms + start.as_millis() as i64)
            .map_err(|e| e.to_string())?;
        events.push_str(&format!(
            "  - name: event-{i}\n    pool: user\n    start: \"{at}\"\n    users: {users}\n    arrivalWindowSeconds: {}\n",
            secs(*window)
        ));
    }
    if events.is_empty() {
        events.push_str("  []\n");
    }
    let (node_cpu, node_mem) = plan.fresh_node();
    Ok(format!(
        "namespace: {NAMESPACE}
schedulerName: {HUBPACK_SCHEDULER}
reconcileIntervalSeconds: {reconcile}
metricsAddress: 127.0.0.1:{metrics_port}
leaderElection:
  enabled: false
userPods:
  selector: {{component: singleuser-server}}
  namespace: {NAMESPACE}
placeholders:
  scaleDownAfterSeconds: {remove_after}
  bufferRaiseGraceSeconds: {raise_grace}
background:
  halfLifeSeconds: {half_life}
  observedWindowSeconds: {observed}
events:
{events}eventConfigMaps:
  enabled: false
pools:
  - name: user
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
            - matchExpressions:
                - {{key: {NODE_PURPOSE_LABEL}, operator: In, values: [user]}}
    tolerations:
      - {{key: {DEDICATED_TAINT}, operator: Equal, value: user, effect: NoSchedule}}
      - {{key: hub.jupyter.org_dedicated, operator: Equal, value: user, effect: NoSchedule}}
    userSelector: {{component: singleuser-server}}
    perUser: {{cpu: {cpu}, memory: {mem}}}
    usersPerPlaceholder: auto
    headroom: {{z: {z}}}
    freshNode:
      allocatable: {{cpu: \"{node_cpu}\", memory: {node_mem}, pods: \"{node_pods}\"}}
      daemonSets: {{cpu: {daemon_cpu}m, memory: \"0\", pods: \"2\"}}
    lead: {lead}
    images: [{image}]
    maxNodes: {max_nodes}
    backend: {backend}
",
        reconcile = secs(plan.reconcile),
        remove_after = secs(plan.remove_after),
        // As the scheduler's placeholder grace, compressed: a buffer raise waits as long as
        // a new placeholder does before the autoscaler sees it.
        raise_grace = plan.placeholder_grace_s,
        half_life = secs(plan.background_half_life),
        observed = secs(Duration::from_secs_f64(300.0 / plan.compression)),
        cpu = plan.cpu(plan.user_cpu),
        mem = plan.gib(plan.user_memory_gib),
        node_cpu = plan.cpu(node_cpu),
        node_mem = plan.gib(node_mem),
        daemon_cpu = plan.fresh_node_daemon_cpu_m(),
        node_pods = plan.node_pods,
        // The cost guard at the node group's size: the scenario's own bound.
        max_nodes = plan.max_nodes.max(1),
        lead = secs(plan.predictive_lead),
        z = plan.predictive_z,
        image = plan.image,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn the_controllers_cost_guard_is_the_scenarios_node_group_size() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let file = root.join("sim/scenarios/side-by-side/class-burst.yaml");
        let sc = hubpack_sim::scenario::Scenario::load(&file).unwrap();
        let plan = Plan::new(&sc, 10.0).unwrap();
        let yaml = ctl_config(&plan, 0, 1, "placeholders").unwrap();
        let config = hubpack_placeholder_ctl::config::Config::parse(&yaml, "t").unwrap();
        assert_eq!(config.pools[0].max_nodes as usize, plan.max_nodes.max(1));
    }
}
