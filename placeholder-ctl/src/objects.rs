//! The objects the controller owns, built as values (pure): PriorityClasses, one
//! placeholder Deployment (+ PDB) per pool and zone, one pre-pull DaemonSet per pool, and
//! the deletion-cost annotation of placeholder pods. The adapter (`adapter::apply`) writes them by
//! server-side apply.

use crate::config::{Config, PoolConfig, PoolSizes, prepuller_request};
use crate::resources::to_quantities;
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, Deployment, DeploymentSpec,
    DeploymentStrategy, RollingUpdateDaemonSet, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, LocalObjectReference, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecurityContext,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

pub const MANAGER: &str = "hubpack-placeholder-ctl";
/// Placeholders carry it: the scheduler judges their warmth by these images.
pub const USER_IMAGES_ANNOTATION: &str = "hubpack.io/user-images";
pub const POOL_LABEL: &str = "hubpack.io/pool";
pub const ZONE_LABEL: &str = "hubpack.io/zone";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// With [`INSTANCE_LABEL`], marks the objects this controller owns (and may delete).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const PLACEHOLDER_COMPONENT: &str = "user-placeholder";
pub const PREPULLER_COMPONENT: &str = "image-prepuller";
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Karpenter leaves a node alone (no consolidation, no drift replacement) while a running pod
/// on it carries this annotation `"true"` (`pkg/controllers/state/statenode.go`
/// `ValidatePodsDisruptable`). Placeholders carry it, so Karpenter never moves them and the
/// nodes they hold stay; a node they leave is empty and goes. Pre-pullers do not: a DaemonSet
/// pod with it would keep every node (Karpenter counts DaemonSet pods there).
pub const KARPENTER_DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";

/// Name of the placeholder Deployment (and PDB) of a pool, per zone when split.
pub fn placeholder_name(pool: &str, zone: Option<&str>) -> String {
    match zone {
        Some(z) => format!("hubpack-placeholder-{pool}-{z}"),
        None => format!("hubpack-placeholder-{pool}"),
    }
}

pub fn prepuller_name(pool: &str) -> String {
    format!("hubpack-prepuller-{pool}")
}

/// The labels of every object the controller creates: its component, pool and zone, and
/// the ownership pair (managed-by, instance) that [`crate::prune`] selects by.
pub fn owner_labels(
    cfg: &Config,
    component: &str,
    pool: &str,
    zone: Option<&str>,
) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = [
        (COMPONENT_LABEL.to_string(), component.to_string()),
        (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
        (POOL_LABEL.to_string(), pool.to_string()),
    ]
    .into();
    if let Some(i) = &cfg.instance {
        l.insert(INSTANCE_LABEL.to_string(), i.clone());
    }
    if let Some(z) = zone {
        l.insert(ZONE_LABEL.to_string(), z.to_string());
    }
    l
}

/// The label selector of the objects this controller owns.
pub fn owner_selector(cfg: &Config) -> String {
    match &cfg.instance {
        Some(i) => format!("{MANAGED_BY_LABEL}={MANAGER},{INSTANCE_LABEL}={i}"),
        None => format!("{MANAGED_BY_LABEL}={MANAGER},!{INSTANCE_LABEL}"),
    }
}

/// Placeholders at −10 that never preempt; pre-pullers at −5.
pub fn priority_classes(cfg: &Config) -> Vec<PriorityClass> {
    let mut out = vec![PriorityClass {
        metadata: ObjectMeta {
            name: Some(cfg.placeholders.priority_class_name.clone()),
            labels: Some(owner_labels(cfg, PLACEHOLDER_COMPONENT, "all", None)),
            ..Default::default()
        },
        value: cfg.placeholders.priority,
        preemption_policy: Some("Never".into()),
        global_default: Some(false),
        description: Some(
            "hubpack placeholders: evicted by any user, never preempting, still scaled up for by the cluster autoscaler".into(),
        ),
    }];
    if cfg.pre_puller.enabled {
        out.push(PriorityClass {
            metadata: ObjectMeta {
                name: Some(cfg.pre_puller.priority_class_name.clone()),
                labels: Some(owner_labels(cfg, PREPULLER_COMPONENT, "all", None)),
                ..Default::default()
            },
            value: cfg.pre_puller.priority,
            preemption_policy: Some("Never".into()),
            global_default: Some(false),
            description: Some("hubpack image pre-pullers".into()),
        });
    }
    out
}

/// The user every container of the pods it creates runs as: `nobody`, present in every
/// base image, so the pre-puller's no-op runs in any user image, root-built ones included.
pub const RUN_AS_USER: i64 = 65534;

/// Pod-level settings of PodSecurity `restricted`: non-root, the runtime's seccomp profile.
fn restricted_pod() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// Container-level settings of PodSecurity `restricted`, as the chart's own pods have them.
fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// The pool's `imagePullSecrets`, in the pod's form.
fn pull_secrets(pool: &PoolConfig) -> Option<Vec<LocalObjectReference>> {
    (!pool.image_pull_secrets.is_empty()).then(|| {
        pool.image_pull_secrets
            .iter()
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect()
    })
}

/// The pool's node selector, plus the zone label when split.
fn node_selector(pool: &PoolConfig, zone: Option<&str>) -> Option<BTreeMap<String, String>> {
    let mut sel = pool.node_selector.clone();
    if let (Some(z), Some(split)) = (zone, &pool.zones) {
        sel.insert(split.key.clone(), z.to_string());
    }
    (!sel.is_empty()).then_some(sel)
}

/// One placeholder Deployment: pause pods of N users' request, the pool's constraints,
/// grace 0, hubpack's scheduler, and the users' images in an annotation.
pub fn placeholder_deployment(
    cfg: &Config,
    pool: &PoolConfig,
    sizes: &PoolSizes,
    zone: Option<&str>,
    replicas: i32,
    user_images: &[String],
    owner: Option<&OwnerReference>,
) -> Deployment {
    let name = placeholder_name(&pool.name, zone);
    let labels = owner_labels(cfg, PLACEHOLDER_COMPONENT, &pool.name, zone);
    let mut pod_labels = labels.clone();
    pod_labels.insert("hubpack.io/placeholder".into(), name.clone());
    let requests = to_quantities(&sizes.placeholder_request);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(cfg.namespace()),
            labels: Some(labels.clone()),
            owner_references: owner.map(|o| vec![o.clone()]),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas.max(0)),
            selector: LabelSelector {
                match_labels: Some([("hubpack.io/placeholder".to_string(), name.clone())].into()),
                ..Default::default()
            },
            // Never surge: an extra placeholder during a rollout is one more pending pod
            // the autoscaler adds a node for. A replaced one frees its seat for its successor.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(0)),
                    max_unavailable: Some(IntOrString::String("25%".into())),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(
                        [
                            (USER_IMAGES_ANNOTATION.to_string(), user_images.join(",")),
                            (KARPENTER_DO_NOT_DISRUPT.to_string(), "true".to_string()),
                        ]
                        .into(),
                    ),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    scheduler_name: Some(cfg.scheduler_name.clone()),
                    priority_class_name: Some(cfg.placeholders.priority_class_name.clone()),
                    termination_grace_period_seconds: Some(0),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    node_selector: node_selector(pool, zone),
                    affinity: pool.affinity.clone(),
                    tolerations: (!pool.tolerations.is_empty()).then(|| pool.tolerations.clone()),
                    security_context: Some(restricted_pod()),
                    image_pull_secrets: pull_secrets(pool),
                    containers: vec![Container {
                        name: "pause".into(),
                        image: Some(cfg.placeholders.image.clone()),
                        resources: Some(ResourceRequirements {
                            requests: Some(requests.clone()),
                            limits: Some(requests),
                            ..Default::default()
                        }),
                        security_context: Some(restricted_container()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// A PDB that allows evicting every placeholder (the Eviction API answers 429 for pods
/// whose PDB forbids it); owned by its Deployment.
pub fn placeholder_pdb(
    cfg: &Config,
    pool: &PoolConfig,
    zone: Option<&str>,
    deployment_owner: Option<&OwnerReference>,
) -> PodDisruptionBudget {
    let name = placeholder_name(&pool.name, zone);
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(cfg.namespace()),
            labels: Some(owner_labels(cfg, PLACEHOLDER_COMPONENT, &pool.name, zone)),
            owner_references: deployment_owner.map(|o| vec![o.clone()]),
            ..Default::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::String("100%".into())),
            selector: Some(LabelSelector {
                match_labels: Some([("hubpack.io/placeholder".to_string(), name)].into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// One pre-pull DaemonSet: an init container per image running a no-op (so the kubelet
/// pulls it), pause as the main container; Ready = every image present on the node.
pub fn prepuller_daemonset(
    cfg: &Config,
    pool: &PoolConfig,
    images: &[String],
    owner: Option<&OwnerReference>,
) -> DaemonSet {
    let name = prepuller_name(&pool.name);
    let labels = owner_labels(cfg, PREPULLER_COMPONENT, &pool.name, None);
    let mut pod_labels = labels.clone();
    pod_labels.insert("hubpack.io/prepuller".into(), name.clone());
    let small = Some(ResourceRequirements {
        requests: Some(to_quantities(&prepuller_request())),
        limits: Some(to_quantities(&prepuller_request())),
        ..Default::default()
    });
    let init: Vec<Container> = images
        .iter()
        .enumerate()
        .map(|(i, img)| Container {
            name: format!("pull-{i}"),
            image: Some(img.clone()),
            command: Some(cfg.pre_puller.command.clone()),
            image_pull_policy: Some("IfNotPresent".into()),
            resources: small.clone(),
            security_context: Some(restricted_container()),
            ..Default::default()
        })
        .collect();
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(cfg.namespace()),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o.clone()]),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some([("hubpack.io/prepuller".to_string(), name)].into()),
                ..Default::default()
            },
            // Roll every node's puller, a few at a time: a changed list pulls everywhere.
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::String("20%".into())),
                    ..Default::default()
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    priority_class_name: Some(cfg.pre_puller.priority_class_name.clone()),
                    termination_grace_period_seconds: Some(0),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    node_selector: node_selector(pool, None),
                    affinity: pool.affinity.clone(),
                    tolerations: (!pool.tolerations.is_empty()).then(|| pool.tolerations.clone()),
                    security_context: Some(restricted_pod()),
                    image_pull_secrets: pull_secrets(pool),
                    init_containers: (!init.is_empty()).then_some(init),
                    containers: vec![Container {
                        name: "pause".into(),
                        image: Some(cfg.pre_puller.image.clone()),
                        resources: small,
                        security_context: Some(restricted_container()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// Owner reference to an object we applied (for the PDB → its Deployment).
pub fn owner_of(kind: &str, api_version: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(false),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::parse(include_str!("../config.example.yaml"), "t").unwrap()
    }

    #[test]
    fn the_deployment_carries_sizes_constraints_and_user_images() {
        let c = cfg();
        let sizes = c.pool_sizes().unwrap();
        let images = vec!["quay.io/jupyter/scipy-notebook:2024-12-02".to_string()];
        let d = placeholder_deployment(&c, &c.pools[0], &sizes[0], None, 3, &images, None);
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.scheduler_name.as_deref(), Some("hubpack-scheduler"));
        assert_eq!(
            pod.priority_class_name.as_deref(),
            Some("hubpack-placeholder")
        );
        assert_eq!(pod.termination_grace_period_seconds, Some(0));
        assert_eq!(pod.tolerations.as_ref().unwrap().len(), 1);
        assert_eq!(
            pod.node_selector.as_ref().unwrap()["hub.jupyter.org/node-purpose"],
            "user"
        );
        let req = pod.containers[0]
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        // N = 14 (cpu: (8000 - 301) / 500 = 15; memory: (32Gi - 520Mi) / 2Gi = 15; the
        // example's daemonSets leave 15), × 500m.
        let n = sizes[0].seats_each;
        assert_eq!(req["cpu"].0, format!("{}m", 500 * n));
        let ann = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap();
        assert_eq!(ann[USER_IMAGES_ANNOTATION], images[0]);
        assert_eq!(
            ann[KARPENTER_DO_NOT_DISRUPT], "true",
            "Karpenter never moves them"
        );
        let labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(labels[COMPONENT_LABEL], PLACEHOLDER_COMPONENT);
        let rolling = spec
            .strategy
            .as_ref()
            .unwrap()
            .rolling_update
            .as_ref()
            .unwrap();
        assert_eq!(rolling.max_surge, Some(IntOrString::Int(0)), "never surge");
    }

    #[test]
    fn zones_add_the_zone_to_name_and_selector() {
        let mut c = cfg();
        c.pools[0].zones = Some(crate::config::ZoneSplit {
            key: "topology.kubernetes.io/zone".into(),
            values: vec!["a".into()],
        });
        let sizes = c.pool_sizes().unwrap();
        let d = placeholder_deployment(&c, &c.pools[0], &sizes[0], Some("a"), 1, &[], None);
        assert_eq!(
            d.metadata.name.as_deref(),
            Some("hubpack-placeholder-default-a")
        );
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.node_selector.unwrap()["topology.kubernetes.io/zone"],
            "a"
        );
    }

    #[test]
    fn the_prepuller_has_one_noop_init_container_per_image() {
        let c = cfg();
        let images = vec!["a:1".to_string(), "b:2".to_string()];
        let ds = prepuller_daemonset(&c, &c.pools[0], &images, None);
        let pod = ds.spec.unwrap().template.spec.unwrap();
        let init = pod.init_containers.unwrap();
        assert_eq!(init.len(), 2);
        assert_eq!(init[1].image.as_deref(), Some("b:2"));
        assert_eq!(init[0].command.as_ref().unwrap(), &c.pre_puller.command);
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some("registry.k8s.io/pause:3.10")
        );
        assert_eq!(
            pod.priority_class_name.as_deref(),
            Some("hubpack-prepuller")
        );
    }

    #[test]
    fn prepullers_never_block_karpenter_disruption() {
        // A DaemonSet pod with do-not-disrupt would keep every node it runs on.
        let c = cfg();
        let ds = prepuller_daemonset(&c, &c.pools[0], &["a:1".to_string()], None);
        let annotations = ds.spec.unwrap().template.metadata.unwrap().annotations;
        assert!(
            !annotations
                .unwrap_or_default()
                .contains_key(KARPENTER_DO_NOT_DISRUPT)
        );
    }

    /// Every container of `pod` meets PodSecurity `restricted` as the apiserver checks it.
    fn assert_restricted(pod: &PodSpec) {
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert!(psc.run_as_user.unwrap() > 0);
        assert_eq!(
            psc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let all = pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten());
        for c in all {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_string()][..]),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn placeholder_and_prepuller_pods_are_podsecurity_restricted() {
        let c = cfg();
        let sizes = c.pool_sizes().unwrap();
        let d = placeholder_deployment(&c, &c.pools[0], &sizes[0], None, 1, &[], None);
        assert_restricted(d.spec.unwrap().template.spec.as_ref().unwrap());
        let ds = prepuller_daemonset(&c, &c.pools[0], &["a:1".to_string()], None);
        let pod = ds.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.init_containers.as_ref().unwrap().len(), 1);
        assert_restricted(&pod);
    }

    #[test]
    fn the_pools_image_pull_secrets_reach_placeholder_and_prepuller_pods() {
        let mut c = cfg();
        let sizes = c.pool_sizes().unwrap();
        let d = placeholder_deployment(&c, &c.pools[0], &sizes[0], None, 1, &[], None);
        assert_eq!(
            d.spec.unwrap().template.spec.unwrap().image_pull_secrets,
            None
        );
        c.pools[0].image_pull_secrets = vec!["registry".into()];
        let d = placeholder_deployment(&c, &c.pools[0], &sizes[0], None, 1, &[], None);
        let want = Some(vec![LocalObjectReference {
            name: "registry".into(),
        }]);
        assert_eq!(
            d.spec.unwrap().template.spec.unwrap().image_pull_secrets,
            want
        );
        let ds = prepuller_daemonset(&c, &c.pools[0], &["a:1".to_string()], None);
        assert_eq!(
            ds.spec.unwrap().template.spec.unwrap().image_pull_secrets,
            want
        );
    }

    #[test]
    fn priority_classes_never_preempt() {
        let pcs = priority_classes(&cfg());
        assert_eq!(pcs.len(), 2);
        assert_eq!(pcs[0].value, -10);
        assert_eq!(pcs[1].value, -5);
        assert!(
            pcs.iter()
                .all(|p| p.preemption_policy.as_deref() == Some("Never"))
        );
    }

    #[test]
    fn the_pdb_allows_evicting_all() {
        let c = cfg();
        let pdb = placeholder_pdb(&c, &c.pools[0], None, None);
        assert_eq!(
            pdb.spec.unwrap().max_unavailable,
            Some(IntOrString::String("100%".into()))
        );
    }
}
