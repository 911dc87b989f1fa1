//! A stand-in for cluster-autoscaler, used because CA cannot be built on our machines (the Go
//! module proxy refuses its module). It is a model of CA's documented behaviour, not CA:
//!
//! - **Scale-up**, every scan: pods with `PodScheduled=False, reason=Unschedulable`, not bound,
//!   not nominated, not deleting, with priority ≥ the expendable cutoff (−10) are pending. As
//!   in CA's filter-out-schedulable step they are first packed (largest cpu first, first fit)
//!   onto free capacity of schedulable nodes and of upcoming nodes (group nodes not yet Ready);
//!   the rest open new nodes from the first node group, in template order, whose template they
//!   fit (nodeSelector, required node affinity, NoSchedule/NoExecute taints, cpu, memory, pod
//!   slots) while the group is below its max. A `TriggeredScaleUp` Event goes on each such pod.
//! - **Scale-down** of empty group nodes only (no pods but DaemonSet pods) after
//!   `unneeded_time`, and not within `delay_after_add` of the last scale-up. Draining nodes
//!   whose pods could move, and the 0.5 utilization rule, are not modelled.
//!
//! Node groups are read from the same templates ConfigMap CA's kwok provider reads
//! (`autoscaler.rs`), and nodes are made the way that provider makes them (name
//! `<group>-<suffix>`, `spec.providerID=kwok:<name>`), so tests are unchanged when CA comes back.

use crate::autoscaler::{NAMESPACE, TEMPLATES_CONFIG_MAP};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, ObjectReference, Pod};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use std::collections::HashMap;
use std::time::{Duration, Instant};

mod plan;

pub use plan::{
    EXPENDABLE_PRIORITY_CUTOFF, Group, NODE_GROUP_NAME_ANNOTATION, ScaleUpPlan, empty_group_nodes,
    group_of, new_node, parse_groups, plan_scale_up, triggers_scale_up,
};

#[derive(Clone, Debug)]
pub struct ScaleUpConfig {
    pub scan_interval: Duration,
    pub unneeded_time: Duration,
    pub delay_after_add: Duration,
}

impl Default for ScaleUpConfig {
    fn default() -> Self {
        ScaleUpConfig {
            scan_interval: Duration::from_secs(2),
            unneeded_time: Duration::from_secs(30),
            delay_after_add: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScaleUpError {
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("templates ConfigMap {NAMESPACE}/{TEMPLATES_CONFIG_MAP}: {0}")]
    Templates(String),
}

fn kube_err(what: &str) -> impl FnOnce(kube::Error) -> ScaleUpError + '_ {
    move |source| ScaleUpError::Kube {
        what: what.to_string(),
        source,
    }
}

/// Runs the model until the process ends; API errors are logged and retried next scan.
pub async fn run(client: kube::Client, config: ScaleUpConfig) {
    let mut state = State::default();
    tracing::info!(
        ?config,
        "scale-up model running (a stand-in for cluster-autoscaler)"
    );
    loop {
        if let Err(error) = scan(&client, &config, &mut state).await {
            tracing::warn!(%error, "scale-up scan failed; retrying next scan");
        }
        tokio::time::sleep(config.scan_interval).await;
    }
}

#[derive(Default)]
struct State {
    last_scale_up: Option<Instant>,
    empty_since: HashMap<String, Instant>,
    created: u64,
}

async fn scan(
    client: &kube::Client,
    config: &ScaleUpConfig,
    state: &mut State,
) -> Result<(), ScaleUpError> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let groups = parse_groups(
        &cms.get(TEMPLATES_CONFIG_MAP)
            .await
            .map_err(kube_err("reading templates"))?,
    )?;
    let nodes_api: Api<Node> = Api::all(client.clone());
    let nodes = nodes_api
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing nodes"))?
        .items;
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing pods"))?
        .items;

    let plan = plan_scale_up(&groups, &nodes, &pods);
    for (namespace, name) in &plan.no_fit {
        tracing::debug!(%namespace, %name, "pending pod fits no node group");
    }
    for (group_name, count) in &plan.add {
        let Some(group) = groups.iter().find(|g| &g.name == group_name) else {
            continue;
        };
        for _ in 0..*count {
            state.created += 1;
            let suffix = node_suffix(state.created);
            let node = new_node(group, &suffix);
            nodes_api
                .create(&PostParams::default(), &node)
                .await
                .map_err(kube_err("creating a node"))?;
            tracing::info!(group = %group_name, node = ?node.metadata.name, "scale-up: node added");
        }
        state.last_scale_up = Some(Instant::now());
        for (namespace, pod) in plan.triggered_by.get(group_name).into_iter().flatten() {
            // CA's wording: "pod triggered scale-up: [{<group> <from>-><to> (max: <max>)}]".
            let before = nodes
                .iter()
                .filter(|n| group_of(n) == Some(group_name.as_str()))
                .count();
            let message = format!(
                "pod triggered scale-up: [{{{group_name} {before}->{} (max: {})}}]",
                before + *count as usize,
                group.max
            );
            if let Err(error) = post_event(client, namespace, pod, &message).await {
                tracing::warn!(%error, %pod, "could not record TriggeredScaleUp");
            }
        }
    }

    let now = Instant::now();
    let empty = empty_group_nodes(&nodes, &pods);
    state.empty_since.retain(|name, _| empty.contains(name));
    let after_add = state
        .last_scale_up
        .is_none_or(|t| now.duration_since(t) >= config.delay_after_add);
    let mut sizes: HashMap<String, u32> = HashMap::new();
    for node in &nodes {
        if let Some(g) = group_of(node) {
            *sizes.entry(g.to_string()).or_default() += 1;
        }
    }
    for name in empty {
        let since = *state.empty_since.entry(name.clone()).or_insert(now);
        let group = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name.as_str()))
            .and_then(group_of)
            .unwrap_or_default()
            .to_string();
        let min = groups.iter().find(|g| g.name == group).map_or(0, |g| g.min);
        let size = sizes.get(&group).copied().unwrap_or(0);
        if after_add && now.duration_since(since) >= config.unneeded_time && size > min {
            nodes_api
                .delete(&name, &DeleteParams::default())
                .await
                .map_err(kube_err("deleting an empty node"))?;
            sizes.insert(group.clone(), size - 1);
            state.empty_since.remove(&name);
            tracing::info!(%group, node = %name, "scale-down: empty node removed");
        }
    }
    Ok(())
}

/// A short suffix unique within this run, lowercase as node names need.
fn node_suffix(n: u64) -> String {
    let seed =
        jiff::Timestamp::now().as_nanosecond() as u64 ^ (n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut x = seed;
    (0..5)
        .map(|_| {
            let c = b"bcdfghjklmnpqrstvwxz2456789"[(x % 27) as usize] as char;
            x /= 27;
            c
        })
        .collect()
}

async fn post_event(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    message: &str,
) -> Result<(), kube::Error> {
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{pod}.")),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        reason: Some("TriggeredScaleUp".into()),
        message: Some(message.into()),
        type_: Some("Normal".into()),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("cluster-autoscaler".into()),
            host: None,
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    };
    Api::<Event>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &event)
        .await?;
    Ok(())
}
