//! `--z2jh-values FILE…`: a hub's z2jh values applied to a scenario, so the simulator
//! models that hub as configured: `singleuser` cpu/memory guarantees (a limit alone is the
//! request, as Kubernetes takes it) and image, `singleuser.profileList` with its
//! `profile_options` choices (each profile × choice a profile, weighted by
//! `--profile-mix`; each on the pool its node selector or required node affinity names,
//! with its extended resources such as `nvidia.com/gpu`), `scheduling.userScheduler.enabled`,
//! `scheduling.userPlaceholder` (enabled, replicas, resources taken verbatim),
//! `scheduling.podPriority`, `prePuller.continuous.enabled`, `prePuller.hook` (noted),
//! `cull` (enabled, timeout, every; `maxAge` warned), 2i2c's `nodePlaceholder` beside the
//! z2jh block, `hub.concurrentSpawnLimit` and `singleuser.startTimeout`. Profiles on nodes
//! no pool describes are left out with their users, and said. Several files are merged and
//! the z2jh block found as [`super::values_layers`] says. Unknown keys are ignored (a
//! values file has hundreds); values the model cannot use are collected into one warning.
//! Defaults are z2jh's own.

use super::values_layers::Found;
use crate::scenario::{
    ImageSpec, PlaceholderMode, PolicySpec, ProfileSpec, ResourceSpec, Scenario, SchedulerKind,
};
pub use profiles::ProfileMix;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod profiles;

const GIB: f64 = (1u64 << 30) as f64;

/// The tag of an image whose tag the values do not say (a placeholder to fill in).
pub const UNKNOWN_TAG: &str = "TAG-UNKNOWN-fill-in";

#[derive(Debug, thiserror::Error)]
pub enum Z2jhError {
    #[error("cannot read z2jh values {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("z2jh values {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("z2jh values {path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// The parts of a z2jh config.yaml the model reads; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Values {
    hub: Hub,
    singleuser: Singleuser,
    scheduling: Scheduling,
    pre_puller: PrePuller,
    cull: Cull,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Hub {
    concurrent_spawn_limit: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Singleuser {
    image: Image,
    cpu: Guarantee,
    memory: Guarantee,
    start_timeout: Option<f64>,
    node_selector: BTreeMap<String, String>,
    extra_resource: ExtraResource,
    profile_list: Vec<profiles::Profile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Image {
    name: Option<String>,
    tag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Guarantee {
    guarantee: Option<Value>,
    limit: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExtraResource {
    guarantees: BTreeMap<String, Value>,
    limits: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Scheduling {
    user_scheduler: Enabled,
    pod_priority: PodPriority,
    user_placeholder: UserPlaceholder,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct Enabled {
    enabled: bool,
}

impl Default for Enabled {
    fn default() -> Self {
        Enabled { enabled: true }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodPriority {
    enabled: bool,
    user_placeholder_priority: i32,
}

impl Default for PodPriority {
    fn default() -> Self {
        PodPriority {
            enabled: false,
            user_placeholder_priority: -10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct UserPlaceholder {
    enabled: bool,
    replicas: usize,
    resources: Resources,
}

impl Default for UserPlaceholder {
    fn default() -> Self {
        UserPlaceholder {
            enabled: true,
            replicas: 0,
            resources: Resources::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Resources {
    requests: BTreeMap<String, Value>,
    limits: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PrePuller {
    continuous: Enabled,
    hook: Enabled,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
#[serde(rename_all = "camelCase")]
struct Cull {
    enabled: bool,
    timeout: f64,
    every: f64,
    max_age: f64,
}

impl Default for Cull {
    fn default() -> Self {
        Cull {
            enabled: true,
            timeout: 3600.0,
            every: 600.0,
            max_age: 0.0,
        }
    }
}

/// The hub as configured: the scenario changed to match, the policy z2jh runs, and the
/// values the model could not use (for one warning).
#[derive(Debug, Clone)]
pub struct Applied {
    pub policy: PolicySpec,
    /// "z2jh / per-user 4" etc., with what it means.
    pub description: String,
    pub unused: Vec<String>,
    /// Which profiles (and choices) arrivals pick, by what weight, and why.
    pub mix: String,
    /// Which pool each modelled profile runs on, and why (one line per pool).
    pub pools: Vec<String>,
    /// Profiles users pick whose nodes no pool describes: not simulated (their users are
    /// left out of the arrivals), each line saying how to describe those nodes.
    pub undescribed: Vec<String>,
    /// How values the model reads indirectly were modelled (the hook pre-puller, 2i2c's
    /// node placeholders).
    pub notes: Vec<String>,
}

/// Reads `path` and applies it to `sc` (the z2jh block at the file's top level).
pub fn apply_file(path: &Path, sc: &mut Scenario) -> Result<Applied, Z2jhError> {
    let text = std::fs::read_to_string(path).map_err(|source| Z2jhError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    apply(&text, path, sc)
}

/// Applies a z2jh config.yaml (as text, the z2jh block at its top level) to `sc`.
pub fn apply(text: &str, path: &Path, sc: &mut Scenario) -> Result<Applied, Z2jhError> {
    let values: Value = super::values_layers::parse_yaml(text, path)?;
    apply_value(values, path, "", None, sc)
}

/// Reads the values files `paths` (helm order), merges them as helm does, finds the z2jh
/// block (at `key`, dotted, or auto-detected) and applies it to `sc`.
pub fn apply_layers(
    paths: &[PathBuf],
    key: Option<&str>,
    mix: Option<&ProfileMix>,
    sc: &mut Scenario,
) -> Result<(Applied, Found), Z2jhError> {
    let merged = super::values_layers::read_merged(paths)?;
    let files = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let (block, found) = super::values_layers::find_block(&merged, key, &files)?;
    let mut applied = apply_value(block, Path::new(&files), &found.at, mix, sc)?;
    node_placeholders(&merged, &found.at, sc, &mut applied);
    Ok((applied, found))
}

/// 2i2c basehub's `nodePlaceholder` (beside the z2jh block): pause pods without requests,
/// one per node by anti-affinity, that keep that many user nodes up. Modelled as the
/// default pool's minimum (and initial) nodes, in every setting.
fn node_placeholders(merged: &Value, at: &str, sc: &mut Scenario, applied: &mut Applied) {
    let mut parent = merged;
    let mut path = Vec::new();
    let keys: Vec<&str> = at.split('.').filter(|k| !k.is_empty()).collect();
    for k in keys.iter().take(keys.len().saturating_sub(1)) {
        match parent.get(*k) {
            Some(v) => {
                parent = v;
                path.push(*k);
            }
            None => return,
        }
    }
    let Some(np) = parent.get("nodePlaceholder") else {
        return;
    };
    path.push("nodePlaceholder");
    let at = path.join(".");
    let enabled = np.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let replicas = np.get("replicas").map(|v| v.as_u64());
    match replicas {
        _ if !enabled => {}
        Some(Some(0)) | None => {}
        Some(Some(n)) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let pool = &mut sc.pools[0];
            pool.min_nodes = pool.min_nodes.max(n);
            pool.initial_nodes = pool.initial_nodes.max(n);
            pool.max_nodes = pool.max_nodes.max(n);
            applied.notes.push(format!(
                "{at}.replicas {n}: node placeholders keep {n} nodes of pool {} up and warm, \
                 in every setting (hubpack's placeholders can replace them: drop them to save \
                 those node-hours)",
                pool.name
            ));
        }
        Some(None) => applied
            .unused
            .push(format!("{at}.replicas (not a whole number)")),
    }
}

/// Applies the z2jh block `values` (found at `at` in `source`, "" for the top level).
pub fn apply_value(
    values: Value,
    source: &Path,
    at: &str,
    mix: Option<&ProfileMix>,
    sc: &mut Scenario,
) -> Result<Applied, Z2jhError> {
    let prefix = |field: String| {
        if at.is_empty() {
            field
        } else {
            format!("{at}.{field}")
        }
    };
    let values: Values = serde_path_to_error::deserialize(values.clone()).map_err(|e| {
        let field = e.path().to_string();
        Z2jhError::Invalid {
            path: source.to_path_buf(),
            field: prefix(field),
            message: e.into_inner().to_string(),
        }
    })?;
    let invalid = |e: Invalid| Z2jhError::Invalid {
        path: source.to_path_buf(),
        field: prefix(e.field),
        message: e.message,
    };
    let mut unused = Vec::new();
    let su = &values.singleuser;
    let default_user = default_user(su).map_err(invalid)?;
    let modelled = profiles::profiles(sc, su, &default_user, mix, &mut unused).map_err(invalid)?;
    let kept: f64 = modelled.profiles.iter().map(|p| p.weight).sum();
    if modelled.profiles.is_empty() {
        return Err(Z2jhError::Invalid {
            path: source.to_path_buf(),
            field: "--pool".into(),
            message: format!(
                "no profile users pick runs on a pool the simulation knows: {}",
                modelled.undescribed.join("; ")
            ),
        });
    }
    use_profiles(sc, modelled.profiles);
    // The labels the pool's profiles select are how the chart finds its nodes too.
    for (pool, labels) in &modelled.labels {
        if let Some(p) = sc.pools.iter_mut().find(|p| p.name == *pool) {
            for l in labels {
                if !p.node_labels.contains(l) {
                    p.node_labels.push(l.clone());
                }
            }
        }
    }
    if kept < 1.0 - 1e-9 {
        // The users of undescribed pools are left out, not moved to another pool.
        for p in &mut sc.profiles {
            p.weight /= kept;
        }
        super::scale_users(sc, kept);
    }
    apply_hub(sc, &values.hub, su);
    apply_cull(sc, &values.cull);
    if values.cull.enabled && values.cull.max_age > 0.0 {
        unused.push(format!(
            "cull.maxAge {:.0} s (servers culled at that age even when active; here a server \
             ends only when idle)",
            values.cull.max_age
        ));
    }
    let mut notes = Vec::new();
    if values.pre_puller.hook.enabled {
        notes.push(
            "prePuller.hook: the nodes up before the event start with every image (the hook \
             pulls at helm upgrade onto the nodes that exist then); nodes added later pull \
             at first use, or by the continuous puller"
                .to_string(),
        );
    }
    apply_user_placeholder(sc, &values.scheduling, &default_user.request).map_err(invalid)?;
    let (policy, description) = policy_of(&values);
    Ok(Applied {
        policy,
        description,
        unused,
        mix: modelled.mix,
        pools: modelled.pools,
        undescribed: modelled.undescribed,
        notes,
    })
}

/// A value the model cannot read, and where it is.
struct Invalid {
    field: String,
    message: String,
}

fn invalid_at(field: impl Into<String>) -> impl FnOnce(String) -> Invalid {
    let field = field.into();
    move |message| Invalid { field, message }
}

/// What `singleuser` gives every user a profile does not override.
struct DefaultUser {
    request: ResourceSpec,
    /// KubeSpawner's cpu/mem guarantee and limit traits as set (memory in GiB).
    cpu: profiles::Quantity,
    memory: profiles::Quantity,
    image: String,
    /// `singleuser.nodeSelector` as `key=value` pairs.
    pub selection: Vec<(String, String)>,
}

/// `singleuser`: its guarantees and limits (z2jh: memory guarantee 1G, no cpu guarantee),
/// image and node selector.
fn default_user(su: &Singleuser) -> Result<DefaultUser, Invalid> {
    let opt = |v: &Option<Value>, f: fn(&Value) -> Result<f64, String>, at: &str| {
        v.as_ref()
            .filter(|v| !v.is_null())
            .map(|v| f(v).map_err(invalid_at(at)))
            .transpose()
    };
    let cpu = profiles::Quantity {
        guarantee: opt(&su.cpu.guarantee, cpu_cores, "singleuser.cpu.guarantee")?,
        limit: opt(&su.cpu.limit, cpu_cores, "singleuser.cpu.limit")?,
    };
    let gib = |x: Option<f64>| x.map(|b| b / GIB);
    let memory = profiles::Quantity {
        guarantee: gib(opt(
            &su.memory.guarantee,
            byte_spec,
            "singleuser.memory.guarantee",
        )?)
        .or(Some(1.0)),
        limit: gib(opt(&su.memory.limit, byte_spec, "singleuser.memory.limit")?),
    };
    cpu.check("singleuser.cpu.limit")?;
    memory.check("singleuser.memory.limit")?;
    let extended = extended_of(
        [
            ("singleuser.extraResource.limits", &su.extra_resource.limits),
            (
                "singleuser.extraResource.guarantees",
                &su.extra_resource.guarantees,
            ),
        ]
        .into_iter(),
    )?;
    // The chart's own tag is written at release (`set-by-chartpress`) and deploy tools
    // often set the hub's at deploy time: never guess one.
    let tag = su
        .image
        .tag
        .as_deref()
        .filter(|t| !t.is_empty() && *t != "set-by-chartpress");
    let image = format!(
        "{}:{}",
        su.image
            .name
            .as_deref()
            .unwrap_or("quay.io/jupyterhub/k8s-singleuser-sample"),
        tag.unwrap_or(UNKNOWN_TAG)
    );
    Ok(DefaultUser {
        request: ResourceSpec {
            cpu: cpu.request(),
            memory_gib: memory.request(),
            pods: 0,
            extended,
        },
        cpu,
        memory,
        image,
        selection: su
            .node_selector
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

/// Makes `profiles` the scenario's profiles, with their images and nothing else.
fn use_profiles(sc: &mut Scenario, profiles: Vec<ProfileSpec>) {
    // The configured images only (the pre-puller pulls each on every node); one the
    // scenario does not know pulls like its first image.
    let mut images: Vec<ImageSpec> = Vec::new();
    for pr in &profiles {
        if images.iter().any(|i| i.name == pr.image) {
            continue;
        }
        let mut img: ImageSpec = match sc.image_index(&pr.image) {
            Some(i) => sc.images[i].clone(),
            None => sc.images[0].clone(),
        };
        img.name = pr.image.clone();
        images.push(img);
    }
    sc.images = images;
    sc.profiles = profiles;
    // A profile the scenario names may not exist in the values file: arrivals pick among
    // the configured profiles by weight instead.
    for a in &mut sc.arrivals {
        match a {
            crate::scenario::ArrivalSpec::Poisson(p) => p.profile = None,
            crate::scenario::ArrivalSpec::Burst(b) => b.profile = None,
            crate::scenario::ArrivalSpec::Weekly(w) => w.profile = None,
            crate::scenario::ArrivalSpec::Trace(_) => {}
        }
    }
}

/// `hub.concurrentSpawnLimit` and `singleuser.startTimeout`.
fn apply_hub(sc: &mut Scenario, hub: &Hub, su: &Singleuser) {
    if let Some(n) = hub.concurrent_spawn_limit {
        sc.hub.concurrent_spawn_limit = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(t) = su.start_timeout {
        sc.hub.start_timeout_s = t;
    }
}

/// `cull`: the idle culler's timeout and interval.
fn apply_cull(sc: &mut Scenario, cull: &Cull) {
    if cull.enabled {
        sc.hub.cull_timeout_min = cull.timeout / 60.0;
        sc.hub.cull_interval_min = cull.every / 60.0;
    } else {
        // Never culled within any scenario.
        sc.hub.cull_timeout_min = 1e9;
    }
}

/// `scheduling.userPlaceholder` and `scheduling.podPriority`: z2jh's user-placeholder
/// StatefulSet takes singleuser's request unless resources are set; without podPriority it
/// has the users' priority and cannot be preempted.
fn apply_user_placeholder(
    sc: &mut Scenario,
    sched: &Scheduling,
    default_request: &ResourceSpec,
) -> Result<(), Invalid> {
    let ph = &sched.user_placeholder;
    let res = &ph.resources;
    // z2jh takes userPlaceholder.resources verbatim when set (a request it does not name is
    // none, or its limit as Kubernetes defaults it), singleuser's otherwise.
    let request = if res.requests.is_empty() && res.limits.is_empty() {
        default_request.clone()
    } else {
        let get = |k: &str| {
            res.requests
                .get(k)
                .map(|v| {
                    (
                        v,
                        format!("scheduling.userPlaceholder.resources.requests.{k}"),
                    )
                })
                .or_else(|| {
                    res.limits.get(k).map(|v| {
                        (
                            v,
                            format!("scheduling.userPlaceholder.resources.limits.{k}"),
                        )
                    })
                })
                .filter(|(v, _)| !v.is_null())
        };
        let mut r = ResourceSpec::default();
        if let Some((v, at)) = get("cpu") {
            r.cpu = cpu_cores(v).map_err(invalid_at(at))?;
        }
        if let Some((v, at)) = get("memory") {
            r.memory_gib = k8s_bytes(v).map_err(invalid_at(at))? / GIB;
        }
        for k in res.requests.keys().chain(res.limits.keys()) {
            if k.contains('/')
                && let Some((v, at)) = get(k)
            {
                let n = extended_of(std::iter::once((
                    "scheduling.userPlaceholder.resources",
                    &BTreeMap::from([(k.clone(), v.clone())]),
                )))
                .map_err(|e| Invalid {
                    field: at,
                    message: e.message,
                })?;
                r.extended.extend(n);
            }
        }
        r
    };
    sc.placeholder.request = Some(request);
    sc.placeholder.priority = Some(if sched.pod_priority.enabled {
        sched.pod_priority.user_placeholder_priority
    } else {
        0
    });
    Ok(())
}

/// The policy the values run (`scheduling.userScheduler`, `scheduling.userPlaceholder`,
/// `prePuller.continuous`) and its description.
fn policy_of(values: &Values) -> (PolicySpec, String) {
    let sched = &values.scheduling;
    let ph = &sched.user_placeholder;
    let scheduler = if sched.user_scheduler.enabled {
        SchedulerKind::Z2jh
    } else {
        SchedulerKind::Spread
    };
    let placeholders = if ph.enabled && ph.replicas > 0 {
        PlaceholderMode::PerUser { k: ph.replicas }
    } else {
        PlaceholderMode::None
    };
    let policy = PolicySpec {
        scheduler,
        placeholders,
        prepull: values.pre_puller.continuous.enabled,
    };
    let mut description = format!(
        "{}{}",
        policy.label(),
        if sched.pod_priority.enabled || ph.replicas == 0 || !ph.enabled {
            ""
        } else {
            " (placeholders at the users' priority: podPriority is off, users cannot preempt them)"
        }
    );
    if !sched.user_scheduler.enabled {
        description.push_str(" (userScheduler off: kube-scheduler's default spread)");
    }
    (policy, description)
}

/// Extended resources (`nvidia.com/gpu`) from KubeSpawner's `extra_resource_limits` and
/// `extra_resource_guarantees` (or z2jh's `singleuser.extraResource`), first layer first:
/// Kubernetes requires an extended resource's request to equal its limit, and takes the
/// limit as the request when only the limit is set.
fn extended_of<'a>(
    layers: impl Iterator<Item = (&'a str, &'a BTreeMap<String, Value>)>,
) -> Result<BTreeMap<String, i64>, Invalid> {
    let mut out = BTreeMap::new();
    for (at, map) in layers {
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|x| *x >= 0.0 && x.fract() == 0.0)
            .ok_or_else(|| Invalid {
                field: format!("{at}.{k}"),
                message: format!("{v} is not a whole number of {k}, e.g. 1"),
            })?;
            out.insert(k.clone(), n as i64);
        }
    }
    Ok(out)
}

/// Where a profile's node selection (`key=value` pairs of its node selector and required
/// node affinity) runs: a pool whose name or `node_labels` names one of its labels; else,
/// if it selects nothing or what the hub's default profile selects, the first pool (the
/// nodes the event flags or the scenario's first pool describe); else no pool (`Err`).
fn pool_for(
    sc: &Scenario,
    selection: &[(String, String)],
    default_selection: &[(String, String)],
) -> Result<String, ()> {
    let names = |p: &crate::scenario::PoolSpec, k: &str, v: &str| {
        p.name == v
            || p.node_labels
                .iter()
                .any(|l| l == v || *l == format!("{k}={v}"))
    };
    if let Some(p) = sc
        .pools
        .iter()
        .find(|p| selection.iter().any(|(k, v)| names(p, k, v)))
    {
        return Ok(p.name.clone());
    }
    if selection.is_empty() || selection == default_selection {
        return Ok(sc.pools[0].name.clone());
    }
    Err(())
}

/// CPU as Kubernetes and KubeSpawner write it: a number of cores or a quantity (`500m`).
pub fn cpu_cores(v: &Value) -> Result<f64, String> {
    let bad = || format!("{v} is not a CPU amount; write cores (0.5) or millicores (\"500m\")");
    match v {
        Value::Number(n) => n.as_f64().filter(|x| *x >= 0.0).ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            let x = match s.strip_suffix('m') {
                Some(m) => m.parse::<f64>().map(|x| x / 1000.0),
                None => s.parse::<f64>(),
            };
            x.ok().filter(|x| *x >= 0.0).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// Memory as KubeSpawner's ByteSpecification reads `mem_guarantee`: bytes, or a number
/// with K, M, G or T (powers of 1024).
pub fn byte_spec(v: &Value) -> Result<f64, String> {
    let bad = || format!("{v} is not a memory amount; write e.g. \"1G\", \"512M\" or bytes");
    match v {
        Value::Number(n) => n.as_f64().filter(|x| *x >= 0.0).ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            let (num, mult) = match s.chars().last() {
                Some('K') => (&s[..s.len() - 1], 1024f64),
                Some('M') => (&s[..s.len() - 1], 1024f64.powi(2)),
                Some('G') => (&s[..s.len() - 1], 1024f64.powi(3)),
                Some('T') => (&s[..s.len() - 1], 1024f64.powi(4)),
                _ => (s, 1.0),
            };
            num.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| *x >= 0.0)
                .map(|x| x * mult)
                .ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// Memory as a Kubernetes quantity: `Ki`/`Mi`/`Gi`/`Ti` (1024) or `k`/`M`/`G`/`T` (1000).
pub fn k8s_bytes(v: &Value) -> Result<f64, String> {
    let bad =
        || format!("{v} is not a Kubernetes memory quantity; write e.g. \"1Gi\" or \"512Mi\"");
    match v {
        Value::Number(n) => n.as_f64().filter(|x| *x >= 0.0).ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            const UNITS: [(&str, f64); 8] = [
                ("Ki", 1024.0),
                ("Mi", 1048576.0),
                ("Gi", 1073741824.0),
                ("Ti", 1099511627776.0),
                ("k", 1e3),
                ("M", 1e6),
                ("G", 1e9),
                ("T", 1e12),
            ];
            let (num, mult) = UNITS
                .iter()
                .find_map(|(u, m)| s.strip_suffix(u).map(|n| (n, *m)))
                .unwrap_or((s, 1.0));
            num.parse::<f64>()
                .ok()
                .filter(|x| *x >= 0.0)
                .map(|x| x * mult)
                .ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_in_the_units_people_write() {
        assert_eq!(cpu_cores(&json!(0.5)), Ok(0.5));
        assert_eq!(cpu_cores(&json!("250m")), Ok(0.25));
        assert_eq!(byte_spec(&json!("1G")), Ok(GIB));
        assert_eq!(byte_spec(&json!("512M")), Ok(GIB / 2.0));
        assert_eq!(k8s_bytes(&json!("1Gi")), Ok(GIB));
        assert_eq!(k8s_bytes(&json!("1G")), Ok(1e9));
        let err = byte_spec(&json!("lots")).unwrap_err();
        assert!(err.contains("\"1G\""), "{err}");
    }
}
