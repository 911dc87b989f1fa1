//! `singleuser.profileList` as KubeSpawner reads it: each profile's `kubespawner_override`
//! over `singleuser`, then, for each of its `profile_options`, the chosen choice's
//! `kubespawner_override` over that (later wins). Every profile × choice combination is one
//! modelled profile (`small`, `small/new`, `gpu/pytorch`); arrivals pick among them by
//! `--profile-mix`, or take the `default: true` profile and choices.

use super::{
    DefaultUser, Invalid, Singleuser, byte_spec, cpu_cores, extended_of, invalid_at, pool_for,
};
use crate::scenario::{ProfileSpec, ResourceSpec, Scenario};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

const GIB: f64 = (1u64 << 30) as f64;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Profile {
    display_name: Option<String>,
    slug: Option<String>,
    default: Option<bool>,
    kubespawner_override: BTreeMap<String, Value>,
    profile_options: BTreeMap<String, ProfileOption>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProfileOption {
    choices: BTreeMap<String, Choice>,
    unlisted_choice: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Choice {
    default: Option<bool>,
    kubespawner_override: BTreeMap<String, Value>,
}

/// A KubeSpawner guarantee/limit pair as set (cores, or GiB).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Quantity {
    pub guarantee: Option<f64>,
    pub limit: Option<f64>,
}

impl Quantity {
    /// What the pod requests: the guarantee; without one, Kubernetes takes the limit.
    pub fn request(&self) -> f64 {
        self.guarantee.or(self.limit).unwrap_or(0.0)
    }

    /// A limit below its guarantee is a config KubeSpawner's pods cannot have.
    pub fn check(&self, at: &str) -> Result<(), Invalid> {
        match (self.guarantee, self.limit) {
            (Some(g), Some(l)) if l < g => Err(invalid_at(at)(format!(
                "the limit ({l}) is below the guarantee ({g}); raise the limit or lower the \
                 guarantee"
            ))),
            _ => Ok(()),
        }
    }
}

/// `--profile-mix "small=0.7,large=0.3"`: the share of users per profile or
/// `profile/choice`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileMix(pub Vec<(String, f64)>);

impl std::str::FromStr for ProfileMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        // Display names may hold commas ("NVIDIA Tesla T4, ~16 GB"): a piece without `=`
        // belongs to the next one.
        let mut pending = String::new();
        for piece in s.split(',') {
            if !piece.contains('=') {
                pending.push_str(piece);
                pending.push(',');
                continue;
            }
            let whole = std::mem::take(&mut pending) + piece;
            let part = whole.trim();
            let Some((name, w)) = part.rsplit_once('=') else {
                continue;
            };
            match w.trim().parse::<f64>() {
                Ok(w) if w >= 0.0 && w.is_finite() => out.push((name.trim().to_string(), w)),
                _ => return Err(format!("{w:?} (for {name:?}) is not a share ≥ 0, e.g. 0.3")),
            }
        }
        let rest = pending.trim_end_matches(',').trim();
        if !rest.is_empty() {
            return Err(format!(
                "{rest:?} has no share; write name=share, e.g. \"small=0.7,large=0.3\""
            ));
        }
        if out.iter().all(|(_, w)| *w <= 0.0) {
            return Err("give at least one profile a share > 0, e.g. \"small=1\"".into());
        }
        Ok(ProfileMix(out))
    }
}

/// The modelled profiles (only those users pick, on pools the scenario describes), a
/// sentence on the mix, where each runs, and those on nodes no pool describes.
pub(super) struct Modelled {
    pub profiles: Vec<ProfileSpec>,
    pub mix: String,
    pub pools: Vec<String>,
    pub undescribed: Vec<String>,
    /// Per pool, the node labels its profiles select (`key=value`).
    pub labels: Vec<(String, Vec<String>)>,
}

/// One profile × choices combination, before weighting.
struct Combo {
    name: String,
    /// The profile's own name (slug or display name).
    profile: String,
    spec: ProfileSpec,
    /// Each of its choices is its option's default.
    default_choices: bool,
    /// The default profile with its default choices.
    is_default: bool,
    /// No cpu or memory guarantee or limit anywhere in the profile or choices.
    no_size: bool,
    /// What the model cannot use in it (warned only if users pick it).
    unused: Vec<String>,
    /// Its node selector and required node affinity as `key=value`, and where set.
    selection: Vec<(String, String)>,
    selection_at: String,
}

pub(super) fn profiles(
    sc: &Scenario,
    su: &Singleuser,
    default_user: &DefaultUser,
    mix: Option<&ProfileMix>,
    unused: &mut Vec<String>,
) -> Result<Modelled, Invalid> {
    if su.profile_list.is_empty() {
        let pool = pool_for(sc, &default_user.selection, &default_user.selection)
            .unwrap_or_else(|()| sc.pools[0].name.clone());
        let spec = ProfileSpec {
            name: "default".into(),
            request: default_user.request.clone(),
            image: default_user.image.clone(),
            pool: pool.clone(),
            weight: 1.0,
        };
        if mix.is_some() {
            return Err(invalid_at("--profile-mix")(
                "singleuser.profileList is empty: every user gets singleuser's size; drop \
                 --profile-mix"
                    .into(),
            ));
        }
        return Ok(Modelled {
            profiles: vec![spec],
            mix: "no singleuser.profileList: every user gets singleuser's size".into(),
            pools: vec![pool_line(
                &pool,
                &["default".into()],
                &default_user.selection,
                "singleuser.nodeSelector",
            )],
            undescribed: Vec::new(),
            labels: vec![(pool, labels_of(&default_user.selection))],
        });
    }
    // KubeSpawner's default profile: the first with `default: true`, else the first.
    let default_profile = su.profile_list.iter().position(|p| p.default == Some(true));
    let mut combos = Vec::new();
    let mut defaults_said = Vec::new();
    for (i, p) in su.profile_list.iter().enumerate() {
        let is_default = default_profile.unwrap_or(0) == i;
        combos.extend(combos_of(
            i,
            p,
            default_user,
            is_default,
            &mut defaults_said,
            unused,
        )?);
    }
    let (weights, mut said) = match mix {
        Some(m) => (
            weights_of(m, &combos)?,
            format!("--profile-mix {}", show(m)),
        ),
        None => {
            let w: Vec<f64> = combos
                .iter()
                .map(|c| if c.is_default { 1.0 } else { 0.0 })
                .collect();
            let which = combos
                .iter()
                .find(|c| c.is_default)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let how = match default_profile {
                Some(_) => "the `default: true` profile".to_string(),
                None => "no profile says `default: true`: the first profile".to_string(),
            };
            let s = format!(
                "every user takes `{which}` ({how}{}); give --profile-mix to spread them",
                if defaults_said.is_empty() {
                    String::new()
                } else {
                    format!(", {}", defaults_said.join(", "))
                }
            );
            (w, s)
        }
    };
    let total: f64 = weights.iter().sum();
    // The hub's default nodes: what the default profile with its default choices selects.
    let default_selection = combos
        .iter()
        .find(|c| c.is_default)
        .map(|c| c.selection.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut no_size_names = Vec::new();
    // Pool → its profiles, and selection → the profiles no pool describes (with share).
    let mut on_pool: Vec<Placed> = Vec::new();
    let mut missing: Vec<Placed> = Vec::new();
    for (c, w) in combos.into_iter().zip(weights) {
        if w <= 0.0 {
            continue;
        }
        let pool = match pool_for(sc, &c.selection, &default_selection) {
            Ok(pool) => pool,
            Err(()) => {
                match missing.iter_mut().find(|m| m.selection == c.selection) {
                    Some(m) => {
                        m.names.push(c.name.clone());
                        m.share += w / total;
                    }
                    None => missing.push(Placed {
                        pool: String::new(),
                        names: vec![c.name.clone()],
                        selection: c.selection.clone(),
                        at: c.selection_at.clone(),
                        share: w / total,
                        extended: c.spec.request.extended.clone(),
                    }),
                }
                continue;
            }
        };
        match on_pool.iter_mut().find(|p| p.pool == pool) {
            Some(p) => p.names.push(c.name.clone()),
            None => on_pool.push(Placed {
                pool: pool.clone(),
                names: vec![c.name.clone()],
                selection: c.selection.clone(),
                at: c.selection_at.clone(),
                share: w / total,
                extended: BTreeMap::new(),
            }),
        }
        if c.no_size {
            no_size_names.push(c.name.clone());
        }
        for note in c.unused {
            if !unused.contains(&note) {
                unused.push(note);
            }
        }
        let mut spec = c.spec;
        spec.weight = w / total;
        spec.pool = pool;
        out.push(spec);
    }
    if !no_size_names.is_empty() {
        unused.push(format!(
            "profiles {} set no cpu_guarantee/mem_guarantee (nor limits) in their \
             kubespawner_override or choices: they use singleuser's size ({} CPU, {} GiB)",
            no_size_names.join(", "),
            default_user.request.cpu,
            default_user.request.memory_gib
        ));
    }
    let shares: Vec<String> = out
        .iter()
        .map(|p| format!("{} {:.0}%", p.name, p.weight * 100.0))
        .collect();
    said.push_str(&format!(" → {}", shares.join(", ")));
    let pools = on_pool
        .iter()
        .map(|p| pool_line(&p.pool, &p.names, &p.selection, &p.at))
        .collect();
    let undescribed = missing.iter().map(undescribed_line).collect();
    let labels = on_pool
        .iter()
        .map(|p| (p.pool.clone(), labels_of(&p.selection)))
        .collect();
    Ok(Modelled {
        profiles: out,
        mix: said,
        pools,
        undescribed,
        labels,
    })
}

fn labels_of(sel: &[(String, String)]) -> Vec<String> {
    sel.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn labels(sel: &[(String, String)]) -> String {
    sel.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "pool gpu: gpu/pytorch (node.kubernetes.io/instance-type=g4dn.xlarge, at …)".
fn pool_line(pool: &str, names: &[String], sel: &[(String, String)], at: &str) -> String {
    if sel.is_empty() {
        format!("pool {pool}: {} (no node selector)", names.join(", "))
    } else {
        format!(
            "pool {pool}: {} (selects {} at {at})",
            names.join(", "),
            labels(sel)
        )
    }
}

/// Profiles that select the same nodes: the pool they run on (empty if none), their
/// selection and where it is set, their share of users, and their extended resources.
struct Placed {
    pool: String,
    names: Vec<String>,
    selection: Vec<(String, String)>,
    at: String,
    share: f64,
    extended: BTreeMap<String, i64>,
}

/// What to say about profiles whose nodes no pool describes, and how to describe them.
fn undescribed_line(m: &Placed) -> String {
    let (sel, at, names, share, extended) = (&m.selection, &m.at, &m.names, m.share, &m.extended);
    let name = sel.last().map(|(_, v)| v.as_str()).unwrap_or("pool");
    let gpu = extended
        .get("nvidia.com/gpu")
        .map(|g| format!(",gpu:{g}"))
        .unwrap_or_default();
    format!(
        "profiles {} ({:.0}% of users) select {} ({at}), which no pool describes: they are \
         not simulated (their users are left out). Describe those nodes with --pool \
         {name}=cpu:…,memory:…Gi{gpu},boot:…m (a pool named after the label's value), or a \
         scenario pool with node_labels: [\"{}\"]",
        names.join(", "),
        share * 100.0,
        labels(sel),
        sel.last()
            .map(|(k, v)| format!("{k}={v}"))
            .unwrap_or_default()
    )
}

fn show(m: &ProfileMix) -> String {
    m.0.iter()
        .map(|(n, w)| format!("{n}={w}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Each combination's weight from the mix: a `profile/choice` name takes its share; a
/// profile name gives its share to that profile's default choices.
fn weights_of(m: &ProfileMix, combos: &[Combo]) -> Result<Vec<f64>, Invalid> {
    let mut w = vec![0.0; combos.len()];
    for (name, share) in &m.0 {
        let eq = |a: &str| a.eq_ignore_ascii_case(name);
        if let Some(i) = combos.iter().position(|c| eq(&c.name)) {
            w[i] += share;
            continue;
        }
        let of_profile: Vec<usize> = (0..combos.len())
            .filter(|&i| eq(&combos[i].profile))
            .collect();
        // The profile's default choices.
        let pick = of_profile
            .iter()
            .copied()
            .find(|&i| combos[i].default_choices)
            .or(of_profile.first().copied());
        match pick {
            Some(i) => w[i] += share,
            None => {
                let names: Vec<&str> = combos.iter().map(|c| c.name.as_str()).collect();
                return Err(invalid_at("--profile-mix")(format!(
                    "no profile or choice named {name:?}; the config has: {}",
                    names.join(", ")
                )));
            }
        }
    }
    Ok(w)
}

/// An option's key, its choices (key order) and the index of its default.
type OptionChoices<'a> = (String, Vec<(&'a String, &'a Choice)>, usize);

/// Profile `i` and its choices as combinations.
fn combos_of(
    i: usize,
    p: &Profile,
    du: &DefaultUser,
    profile_is_default: bool,
    defaults_said: &mut Vec<String>,
    unused: &mut Vec<String>,
) -> Result<Vec<Combo>, Invalid> {
    let profile = p
        .slug
        .clone()
        .or_else(|| p.display_name.clone())
        .unwrap_or_else(|| format!("profile-{i}"));
    let base = format!("singleuser.profileList[{i}]");
    // Each option's choices, and which is the default (`default: true`, else the first).
    let mut options: Vec<OptionChoices<'_>> = Vec::new();
    for (key, opt) in &p.profile_options {
        if opt.unlisted_choice.is_some() {
            unused.push(format!(
                "{base}.profile_options.{key}.unlisted_choice (free-form input; not modelled)"
            ));
        }
        let choices: Vec<(&String, &Choice)> = opt.choices.iter().collect();
        if choices.is_empty() {
            continue;
        }
        let marked = choices.iter().position(|(_, c)| c.default == Some(true));
        let d = marked.unwrap_or(0);
        if profile_is_default {
            defaults_said.push(match marked {
                Some(_) => format!("its {key} choice `{}` (`default: true`)", choices[d].0),
                None => format!(
                    "its {key} choice `{}` (no `default: true`: the first by name)",
                    choices[d].0
                ),
            });
        }
        options.push((key.clone(), choices, d));
    }
    // The cross product of choices.
    let mut picks: Vec<Vec<usize>> = vec![Vec::new()];
    for (_, choices, _) in &options {
        picks = picks
            .into_iter()
            .flat_map(|pre| {
                (0..choices.len()).map(move |c| {
                    let mut v = pre.clone();
                    v.push(c);
                    v
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    for pick in picks {
        // Later wins: the profile's override, then each option's chosen override.
        let mut layers: Vec<(String, &BTreeMap<String, Value>)> = vec![(
            format!("{base}.kubespawner_override"),
            &p.kubespawner_override,
        )];
        let mut name = profile.clone();
        let mut all_default = true;
        for ((key, choices, d), &c) in options.iter().zip(&pick) {
            let (ck, choice) = choices[c];
            layers.push((
                format!("{base}.profile_options.{key}.choices.{ck}.kubespawner_override"),
                &choice.kubespawner_override,
            ));
            name.push('/');
            name.push_str(ck);
            all_default &= c == *d;
        }
        let mut notes = Vec::new();
        let (spec, no_size, (selection, selection_at)) = spec_of(&name, &layers, du, &mut notes)?;
        out.push(Combo {
            name,
            profile: profile.clone(),
            spec,
            default_choices: all_default,
            is_default: profile_is_default && all_default,
            no_size,
            unused: notes,
            selection,
            selection_at,
        });
    }
    Ok(out)
}

/// The value of `key` in the last layer that sets it (non-null), and where.
fn last<'a>(
    layers: &'a [(String, &BTreeMap<String, Value>)],
    key: &str,
) -> Option<(&'a Value, String)> {
    layers.iter().rev().find_map(|(at, o)| {
        o.get(key)
            .filter(|v| !v.is_null())
            .map(|v| (v, format!("{at}.{key}")))
    })
}

/// The modelled profile of one combination's override layers (its pool left to the
/// caller); `true` if no layer sizes it; its node selection and where that is set.
type Selection = (Vec<(String, String)>, String);

fn spec_of(
    name: &str,
    layers: &[(String, &BTreeMap<String, Value>)],
    du: &DefaultUser,
    unused: &mut Vec<String>,
) -> Result<(ProfileSpec, bool, Selection), Invalid> {
    let num = |key: &str, f: fn(&Value) -> Result<f64, String>, scale: f64| {
        last(layers, key)
            .map(|(v, at)| f(v).map(|x| x / scale).map_err(invalid_at(at)))
            .transpose()
    };
    let cpu = Quantity {
        guarantee: num("cpu_guarantee", cpu_cores, 1.0)?.or(du.cpu.guarantee),
        limit: num("cpu_limit", cpu_cores, 1.0)?.or(du.cpu.limit),
    };
    let memory = Quantity {
        guarantee: num("mem_guarantee", byte_spec, GIB)?.or(du.memory.guarantee),
        limit: num("mem_limit", byte_spec, GIB)?.or(du.memory.limit),
    };
    let where_set = |k: &str| last(layers, k).map(|(_, at)| at);
    if let Some(at) = where_set("cpu_limit").or(where_set("cpu_guarantee")) {
        cpu.check(&at)?;
    }
    if let Some(at) = where_set("mem_limit").or(where_set("mem_guarantee")) {
        memory.check(&at)?;
    }
    let no_size = ["cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit"]
        .iter()
        .all(|k| last(layers, k).is_none());
    let image = match last(layers, "image") {
        Some((Value::String(s), _)) => s.clone(),
        Some((_, at)) => {
            return Err(invalid_at(at)("must be a string like name:tag".into()));
        }
        None => du.image.clone(),
    };
    // KubeSpawner's node_selector trait: the last layer's replaces singleuser's.
    let mut selection: Vec<(String, String)> = du.selection.clone();
    let mut selection_at = "singleuser.nodeSelector".to_string();
    if let Some((v, at)) = last(layers, "node_selector") {
        let Value::Object(m) = v else {
            return Err(invalid_at(at)("must be a map of node labels".into()));
        };
        selection = m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        selection_at = at;
    }
    // Required node affinity: every `In` value is a label the nodes may have.
    if let Some((v, at)) = last(layers, "node_affinity_required") {
        let mut any = false;
        for term in v.as_array().into_iter().flatten() {
            let exprs = term
                .get("matchExpressions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_else(|| vec![term.clone()]);
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str);
                let op = e.get("operator").and_then(Value::as_str);
                if let (Some(key), Some("In")) = (key, op) {
                    for val in e
                        .get("values")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(val) = val.as_str() {
                            selection.push((key.to_string(), val.to_string()));
                            any = true;
                        }
                    }
                }
            }
        }
        if any {
            selection_at = at;
        } else {
            unused.push(format!("{at} (no `In` expression: not modelled)"));
        }
    }
    // Extended resources: the limit layers first, so a guarantee set too wins.
    let mut extended = du.request.extended.clone();
    let maps: Vec<(String, BTreeMap<String, Value>)> =
        ["extra_resource_limits", "extra_resource_guarantees"]
            .iter()
            .filter_map(|k| last(layers, k))
            .map(|(v, at)| {
                let m: BTreeMap<String, Value> = v
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                (at, m)
            })
            .collect();
    extended.extend(extended_of(maps.iter().map(|(at, m)| (at.as_str(), m)))?);
    Ok((
        ProfileSpec {
            name: name.to_string(),
            request: ResourceSpec {
                cpu: cpu.request(),
                memory_gib: memory.request(),
                pods: 0,
                extended,
            },
            image,
            pool: String::new(),
            weight: 1.0,
        },
        no_size,
        (selection, selection_at),
    ))
}
