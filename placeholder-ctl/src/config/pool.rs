//! One pool of user nodes, as configured: its users' size, its fresh node, headroom,
//! lead time, zones; and its validation.

use super::{ConfigError, invalid};
use crate::resources::{ResourceMap, ResourceMapError};
use hubpack_core::headroom::{
    HeadroomError, placeholder_request, seats_per_placeholder, validate_placeholder,
};
use hubpack_core::model::Resources;
use k8s_openapi::api::core::v1::{Affinity, Toleration};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `usersPerPlaceholder`: `auto` (what fits a fresh node) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AutoOrNumber")]
pub enum UsersPerPlaceholder {
    Auto,
    Fixed(u32),
}

/// `lead`: `auto` (learned) or seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "AutoOrNumber")]
pub enum Lead {
    Auto,
    Seconds(f64),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AutoOrNumber {
    Number(f64),
    Text(String),
}

impl TryFrom<AutoOrNumber> for UsersPerPlaceholder {
    type Error = String;
    fn try_from(v: AutoOrNumber) -> Result<Self, String> {
        match v {
            AutoOrNumber::Text(s) if s == "auto" => Ok(UsersPerPlaceholder::Auto),
            AutoOrNumber::Number(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
                Ok(UsersPerPlaceholder::Fixed(n as u32))
            }
            _ => Err("usersPerPlaceholder must be `auto` or a whole number ≥ 1".into()),
        }
    }
}

impl TryFrom<AutoOrNumber> for Lead {
    type Error = String;
    fn try_from(v: AutoOrNumber) -> Result<Self, String> {
        match v {
            AutoOrNumber::Text(s) if s == "auto" => Ok(Lead::Auto),
            AutoOrNumber::Number(n) if n > 0.0 && n.is_finite() => Ok(Lead::Seconds(n)),
            _ => Err("lead must be `auto` or a number of seconds > 0".into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolConfig {
    /// Used in object names (`hubpack-placeholder-<name>`): a DNS label.
    pub name: String,
    /// The user pods' node selector; placeholders and pre-pullers get the same.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// The user pods' affinity (Kubernetes form), copied to placeholders.
    #[serde(default)]
    pub affinity: Option<Affinity>,
    /// Every node of the cluster may take this pool's users: required when the pool has
    /// neither a `nodeSelector` nor a required node affinity (otherwise refused, since
    /// seats on the hub's core nodes or another pool's nodes would be counted as warm).
    #[serde(default)]
    pub all_nodes: bool,
    /// The user pods' tolerations, copied to placeholders and pre-pullers.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Extra labels that tell this pool's user pods from other pools' (all user pods when
    /// empty; set it when there are several pools).
    #[serde(default)]
    pub user_selector: BTreeMap<String, String>,
    /// One user's request, e.g. `{cpu: 500m, memory: 2Gi}`.
    pub per_user: ResourceMap,
    #[serde(default = "auto_users")]
    pub users_per_placeholder: UsersPerPlaceholder,
    /// A new node of this pool: what the autoscaler's node template gives.
    pub fresh_node: FreshNodeConfig,
    #[serde(default)]
    pub headroom: HeadroomSettings,
    #[serde(default = "auto_lead")]
    pub lead: Lead,
    /// What the pool assumes before it has history.
    #[serde(default)]
    pub background: super::PoolBackgroundConfig,
    /// Images to pre-pull (plus the most used among running user pods).
    #[serde(default)]
    pub images: Vec<String>,
    /// Split the pool per zone: one Deployment per zone, the forecast shared evenly.
    #[serde(default)]
    pub zones: Option<ZoneSplit>,
    /// The cost guard: the pool's placeholders together hold at most this many fresh
    /// nodes' worth of seats (with `usersPerPlaceholder: auto`, at most this many
    /// placeholders). A forecast asking for more is capped, with a warning Event.
    #[serde(default = "default_max_nodes")]
    pub max_nodes: u32,
    /// Secrets (in the controller's namespace) the kubelet uses to pull the placeholder,
    /// pre-puller and user images: the user pods' `imagePullSecrets`.
    #[serde(default)]
    pub image_pull_secrets: Vec<String>,
    /// How the headroom is held: placeholder pods, or a CapacityBuffer the cluster
    /// autoscaler provisions with virtual pods.
    #[serde(default)]
    pub backend: Backend,
}

/// `backend`: what holds a pool's headroom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Backend {
    /// N-user placeholder pods at a negative priority, evicted by arriving users.
    #[default]
    Placeholders,
    /// One CapacityBuffer (`autoscaling.x-k8s.io/v1beta1`) of N-user chunks: the cluster
    /// autoscaler keeps room for them with virtual pods, so no pod is ever evicted.
    CapacityBuffer,
}

/// The default cost guard: ten idle nodes of headroom per pool at most. A class of a few
/// hundred users fits; a larger hub raises it knowingly.
pub const DEFAULT_MAX_NODES: u32 = 10;

fn default_max_nodes() -> u32 {
    DEFAULT_MAX_NODES
}

fn auto_users() -> UsersPerPlaceholder {
    UsersPerPlaceholder::Auto
}

fn auto_lead() -> Lead {
    Lead::Auto
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreshNodeConfig {
    /// `status.allocatable` of a new node, e.g. `{cpu: "4", memory: 16Gi, pods: "110"}`.
    pub allocatable: ResourceMap,
    /// Sum of the requests of every DaemonSet pod on such a node, other than the
    /// pre-puller (added by the controller), `pods` included.
    #[serde(default)]
    pub daemon_sets: ResourceMap,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HeadroomSettings {
    pub min_users: f64,
    pub max_users: f64,
    /// H = μ + z·√μ; 1.64 ≈ the 95th percentile.
    pub z: f64,
}

impl Default for HeadroomSettings {
    fn default() -> Self {
        HeadroomSettings {
            min_users: 0.0,
            max_users: 10_000.0,
            z: 1.64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneSplit {
    #[serde(default = "zone_key")]
    pub key: String,
    pub values: Vec<String>,
}

fn zone_key() -> String {
    "topology.kubernetes.io/zone".into()
}

/// The pre-puller pod's request per container (pause and each no-op init container): small
/// and known, so N can leave room for it on a fresh node.
pub fn prepuller_request() -> Resources {
    Resources::new(1, 8 << 20).with_pods(1)
}

/// A pool's sizes, resolved from its config at start.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSizes {
    pub per_user: Resources,
    pub allocatable: Resources,
    /// Every DaemonSet on a fresh node, the pre-puller included.
    pub daemonsets: Resources,
    /// N.
    pub seats_each: i64,
    /// One placeholder's request: N × per-user, one pod slot.
    pub placeholder_request: Resources,
    /// The cost guard in placeholders: `maxNodes` fresh nodes' seats ÷ N.
    pub max_placeholders: usize,
}

impl PoolConfig {
    /// Resolves the pool's sizes; the error names the field and the fix.
    pub fn sizes(&self, index: usize, prepuller: bool) -> Result<PoolSizes, ConfigError> {
        let at = |f: &str| format!("pools[{index}] ({}).{f}", self.name);
        let map_err = |f: &str, e: ResourceMapError| ConfigError::Invalid {
            field: at(f),
            problem: e.to_string(),
            fix: "write Kubernetes quantities, e.g. {cpu: 500m, memory: 2Gi}".into(),
        };
        let mut per_user = self
            .per_user
            .to_resources()
            .map_err(|e| map_err("perUser", e))?;
        if per_user.cpu_milli <= 0 && per_user.memory <= 0 {
            return invalid(
                at("perUser"),
                "requests neither cpu nor memory",
                "give the user pods' request, e.g. {cpu: 500m, memory: 2Gi}",
            );
        }
        per_user.pods = 1;
        let allocatable = self
            .fresh_node
            .allocatable
            .to_resources()
            .map_err(|e| map_err("freshNode.allocatable", e))?;
        if allocatable.pods <= 0 {
            return invalid(
                at("freshNode.allocatable.pods"),
                "is missing or 0",
                "give the node's pod capacity, e.g. pods: \"110\"",
            );
        }
        let mut daemonsets = self
            .fresh_node
            .daemon_sets
            .to_resources()
            .map_err(|e| map_err("freshNode.daemonSets", e))?;
        if prepuller {
            daemonsets = &daemonsets + &prepuller_request();
        }
        let misfit = |e: HeadroomError, f: &str, fix: &str| ConfigError::Invalid {
            field: at(f),
            problem: e.to_string(),
            fix: fix.into(),
        };
        let seats_each = match self.users_per_placeholder {
            UsersPerPlaceholder::Auto => {
                seats_per_placeholder(&allocatable, &daemonsets, &per_user).map_err(|e| {
                    misfit(
                        e,
                        "perUser",
                        "lower the per-user request or use a larger node type",
                    )
                })?
            }
            UsersPerPlaceholder::Fixed(n) => i64::from(n),
        };
        let placeholder_request = placeholder_request(&per_user, seats_each);
        validate_placeholder(&allocatable, &daemonsets, &placeholder_request).map_err(|e| {
            misfit(
                e,
                "usersPerPlaceholder",
                "use `auto` or a smaller number, so one placeholder fits a new node",
            )
        })?;
        // The seats of one fresh node (N with `auto`): what a node costs, in seats.
        let seats_per_node = seats_per_placeholder(&allocatable, &daemonsets, &per_user)
            .unwrap_or(seats_each)
            .max(seats_each);
        let max_seats = i64::from(self.max_nodes) * seats_per_node;
        let max_placeholders = usize::try_from(max_seats / seats_each.max(1)).unwrap_or(0);
        Ok(PoolSizes {
            per_user,
            allocatable,
            daemonsets,
            seats_each,
            placeholder_request,
            max_placeholders,
        })
    }

    /// The placement keys: one per zone when split, else the pool alone.
    pub fn zone_values(&self) -> Vec<Option<String>> {
        match &self.zones {
            Some(z) if !z.values.is_empty() => z.values.iter().cloned().map(Some).collect(),
            _ => vec![None],
        }
    }
}
