//! `singleuser.profileList` as KubeSpawner reads it: each profile's `kubespawner_override`
//! over `singleuser`, then, for each of its `profile_options`, the chosen choice's
//! `kubespawner_override` over that (later wins). Every profile × choice combination is one
//! modelled profile (`small`, `small/new`, `gpu/pytorch`); arrivals pick among them by
//! `--profile-mix`, or take the `default: true` profile and choices.

use super::{DefaultUser, Invalid, Singleuser, byte_spec, cpu_cores, invalid_at, pool_for};
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
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, w)) = part.rsplit_once('=') else {
                return Err(format!(
                    "{part:?} has no share; write name=share, e.g. \"small=0.7,large=0.3\""
                ));
            };
            match w.trim().parse::<f64>() {
                Ok(w) if w >= 0.0 && w.is_finite() => out.push((name.trim().to_string(), w)),
                _ => return Err(format!("{w:?} (for {name:?}) is not a share ≥ 0, e.g. 0.3")),
            }
        }
        if out.iter().all(|(_, w)| *w <= 0.0) {
            return Err("give at least one profile a share > 0, e.g. \"small=1\"".into());
        }
        Ok(ProfileMix(out))
    }
}

/// The modelled profiles (only those users pick) and a sentence on the mix.
pub(super) struct Modelled {
    pub profiles: Vec<ProfileSpec>,
    pub mix: String,
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
}

pub(super) fn profiles(
    sc: &Scenario,
    su: &Singleuser,
    default_user: &DefaultUser,
    mix: Option<&ProfileMix>,
    unused: &mut Vec<String>,
) -> Result<Modelled, Invalid> {
    if su.profile_list.is_empty() {
        let spec = ProfileSpec {
            name: "default".into(),
            request: default_user.request.clone(),
            image: default_user.image.clone(),
            pool: default_user.pool.clone(),
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
        });
    }
    // KubeSpawner's default profile: the first with `default: true`, else the first.
    let default_profile = su.profile_list.iter().position(|p| p.default == Some(true));
    let mut combos = Vec::new();
    let mut defaults_said = Vec::new();
    for (i, p) in su.profile_list.iter().enumerate() {
        let is_default = default_profile.unwrap_or(0) == i;
        combos.extend(combos_of(
            sc,
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
    let mut out = Vec::new();
    let mut no_size_names = Vec::new();
    for (c, w) in combos.into_iter().zip(weights) {
        if w <= 0.0 {
            continue;
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
    Ok(Modelled {
        profiles: out,
        mix: said,
    })
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
    sc: &Scenario,
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
        let (spec, no_size) = spec_of(sc, &name, &layers, du, &mut notes)?;
        out.push(Combo {
            name,
            profile: profile.clone(),
            spec,
            default_choices: all_default,
            is_default: profile_is_default && all_default,
            no_size,
            unused: notes,
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

/// The modelled profile of one combination's override layers; `true` if no layer sizes it.
fn spec_of(
    sc: &Scenario,
    name: &str,
    layers: &[(String, &BTreeMap<String, Value>)],
    du: &DefaultUser,
    unused: &mut Vec<String>,
) -> Result<(ProfileSpec, bool), Invalid> {
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
    let pool = match last(layers, "node_selector") {
        Some((Value::Object(m), at)) => {
            let sel = m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            pool_for(sc, &sel, &at, unused)
        }
        _ => du.pool.clone(),
    };
    for k in [
        "extra_resource_guarantees",
        "extra_resource_limits",
        "tolerations",
        "node_affinity_required",
    ] {
        if let Some((_, at)) = last(layers, k) {
            unused.push(at);
        }
    }
    Ok((
        ProfileSpec {
            name: name.to_string(),
            request: ResourceSpec {
                cpu: cpu.request(),
                memory_gib: memory.request(),
                pods: 0,
            },
            image,
            pool,
            weight: 1.0,
        },
        no_size,
    ))
}
