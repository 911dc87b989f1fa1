//! Which of the objects the controller owns no configured pool wants (pure): a pool that
//! was removed or renamed leaves its placeholder Deployment (whose placeholders at −10 keep
//! nodes from scaling down), its PDB and its pre-pull DaemonSet behind unless they are
//! deleted; so does a pool's other backend (placeholders or a CapacityBuffer) when it
//! switches. An object is ours when it carries the managed-by label and this controller's
//! instance label (see [`crate::objects::owner_labels`]).

use crate::config::{Backend, Config};
use crate::objects::{INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER, placeholder_name, prepuller_name};
use std::collections::{BTreeMap, BTreeSet};

/// The kinds the controller creates per pool (PriorityClasses are cluster-scoped and named
/// by the config, not by pools).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OwnedKind {
    Deployment,
    PodDisruptionBudget,
    DaemonSet,
    PodTemplate,
    CapacityBuffer,
}

impl OwnedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnedKind::Deployment => "Deployment",
            OwnedKind::PodDisruptionBudget => "PodDisruptionBudget",
            OwnedKind::DaemonSet => "DaemonSet",
            OwnedKind::PodTemplate => "PodTemplate",
            OwnedKind::CapacityBuffer => "CapacityBuffer",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            OwnedKind::Deployment | OwnedKind::DaemonSet => "apps/v1",
            OwnedKind::PodDisruptionBudget => "policy/v1",
            OwnedKind::PodTemplate => "v1",
            OwnedKind::CapacityBuffer => crate::buffer::BUFFER_API_VERSION,
        }
    }
}

/// An object found in the cluster: its kind, name and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: OwnedKind,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Whether labels say this controller (of this instance) created the object.
pub fn is_owned(labels: &BTreeMap<String, String>, instance: Option<&str>) -> bool {
    labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGER)
        && labels.get(INSTANCE_LABEL).map(String::as_str) == instance
}

/// Every (kind, name) the configured pools want.
pub fn wanted(cfg: &Config) -> BTreeSet<(OwnedKind, String)> {
    let mut out = BTreeSet::new();
    for pool in &cfg.pools {
        // A pool holds its headroom one way: switching backend deletes the other's objects.
        let kinds = match pool.backend {
            Backend::Placeholders => [OwnedKind::Deployment, OwnedKind::PodDisruptionBudget],
            Backend::CapacityBuffer => [OwnedKind::PodTemplate, OwnedKind::CapacityBuffer],
        };
        for zone in pool.zone_values() {
            let name = placeholder_name(&pool.name, zone.as_deref());
            for kind in kinds {
                out.insert((kind, name.clone()));
            }
        }
        if cfg.pre_puller.enabled {
            out.insert((OwnedKind::DaemonSet, prepuller_name(&pool.name)));
        }
    }
    out
}

/// The owned objects no configured pool wants, in a stable order: these are deleted.
/// Objects of another manager or another instance are never returned.
pub fn unwanted(cfg: &Config, found: &[Found]) -> Vec<Found> {
    let want = wanted(cfg);
    let instance = cfg.instance.as_deref();
    let mut out: Vec<Found> = found
        .iter()
        .filter(|f| is_owned(&f.labels, instance))
        .filter(|f| !want.contains(&(f.kind, f.name.clone())))
        .cloned()
        .collect();
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out.dedup();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::objects;

    fn cfg(instance: Option<&str>) -> Config {
        let mut c = Config::parse(include_str!("../config.example.yaml"), "t").unwrap();
        c.instance = instance.map(String::from);
        c
    }

    fn found(kind: OwnedKind, name: &str, labels: BTreeMap<String, String>) -> Found {
        Found {
            kind,
            name: name.into(),
            labels,
        }
    }

    #[test]
    fn a_renamed_pools_objects_are_unwanted_and_the_configured_ones_kept() {
        let c = cfg(Some("hub"));
        let mine = |pool: &str| objects::owner_labels(&c, "user-placeholder", pool, None);
        let found = vec![
            found(
                OwnedKind::Deployment,
                "hubpack-placeholder-default",
                mine("default"),
            ),
            found(
                OwnedKind::PodDisruptionBudget,
                "hubpack-placeholder-default",
                mine("default"),
            ),
            found(
                OwnedKind::DaemonSet,
                "hubpack-prepuller-default",
                mine("default"),
            ),
            // The pool's old name.
            found(
                OwnedKind::Deployment,
                "hubpack-placeholder-user",
                mine("user"),
            ),
            found(
                OwnedKind::PodDisruptionBudget,
                "hubpack-placeholder-user",
                mine("user"),
            ),
            found(OwnedKind::DaemonSet, "hubpack-prepuller-user", mine("user")),
        ];
        let gone: Vec<(OwnedKind, String)> = unwanted(&c, &found)
            .into_iter()
            .map(|f| (f.kind, f.name))
            .collect();
        assert_eq!(
            gone,
            vec![
                (
                    OwnedKind::Deployment,
                    "hubpack-placeholder-user".to_string()
                ),
                (
                    OwnedKind::PodDisruptionBudget,
                    "hubpack-placeholder-user".into()
                ),
                (OwnedKind::DaemonSet, "hubpack-prepuller-user".into()),
            ]
        );
    }

    #[test]
    fn objects_of_another_manager_or_instance_are_never_unwanted() {
        let c = cfg(Some("hub"));
        let other_instance =
            objects::owner_labels(&cfg(Some("other")), "user-placeholder", "x", None);
        let not_ours: BTreeMap<String, String> =
            [(MANAGED_BY_LABEL.to_string(), "Helm".to_string())].into();
        let found = vec![
            found(
                OwnedKind::Deployment,
                "hubpack-placeholder-x",
                other_instance,
            ),
            found(OwnedKind::Deployment, "hub-hubpack-scheduler", not_ours),
            found(OwnedKind::DaemonSet, "kube-proxy", BTreeMap::new()),
        ];
        assert!(unwanted(&c, &found).is_empty());
    }

    #[test]
    fn switching_backend_makes_the_other_backends_objects_unwanted() {
        let mut c = cfg(Some("hub"));
        let mine = |c: &Config| objects::owner_labels(c, "user-placeholder", "default", None);
        let name = "hubpack-placeholder-default";
        let all = |c: &Config| {
            [
                OwnedKind::Deployment,
                OwnedKind::PodDisruptionBudget,
                OwnedKind::PodTemplate,
                OwnedKind::CapacityBuffer,
            ]
            .map(|k| found(k, name, mine(c)))
            .to_vec()
        };
        let gone = |c: &Config| -> Vec<OwnedKind> {
            unwanted(c, &all(c)).into_iter().map(|f| f.kind).collect()
        };
        assert_eq!(
            gone(&c),
            vec![OwnedKind::PodTemplate, OwnedKind::CapacityBuffer]
        );
        c.pools[0].backend = Backend::CapacityBuffer;
        assert_eq!(
            gone(&c),
            vec![OwnedKind::Deployment, OwnedKind::PodDisruptionBudget]
        );
    }

    #[test]
    fn zones_and_a_disabled_prepuller_change_what_is_wanted() {
        let mut c = cfg(None);
        c.pools[0].zones = Some(crate::config::ZoneSplit {
            key: "topology.kubernetes.io/zone".into(),
            values: vec!["a".into(), "b".into()],
        });
        c.pre_puller.enabled = false;
        let mine =
            |zone: Option<&str>| objects::owner_labels(&c, "user-placeholder", "default", zone);
        let found = vec![
            found(
                OwnedKind::Deployment,
                "hubpack-placeholder-default-a",
                mine(Some("a")),
            ),
            found(
                OwnedKind::Deployment,
                "hubpack-placeholder-default-b",
                mine(Some("b")),
            ),
            // Before the split, and a zone dropped from the list.
            found(
                OwnedKind::Deployment,
                "hubpack-placeholder-default",
                mine(None),
            ),
            found(
                OwnedKind::Deployment,
                "hubpack-placeholder-default-c",
                mine(Some("c")),
            ),
            found(
                OwnedKind::DaemonSet,
                "hubpack-prepuller-default",
                mine(None),
            ),
        ];
        let gone: Vec<String> = unwanted(&c, &found).into_iter().map(|f| f.name).collect();
        assert_eq!(
            gone,
            vec![
                "hubpack-placeholder-default",
                "hubpack-placeholder-default-c",
                "hubpack-prepuller-default"
            ]
        );
    }
}
