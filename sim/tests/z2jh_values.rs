//! `--z2jh-values` on the fixtures written from z2jh's documentation (tests/z2jh/): the hub
//! as configured, the values the model cannot use in one list, and `plan` recommending a
//! setting for each.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::engine::run_one;
use hubpack_sim::plan::{self, Target};
use hubpack_sim::scenario::z2jh_values::{Applied, ProfileMix, apply_file, apply_layers};
use hubpack_sim::scenario::{PlaceholderMode, Scenario, SchedulerKind};
use std::path::Path;

fn fixture(name: &str) -> (Scenario, Applied) {
    let mut sc = common::shipped("class-burst.yaml");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/z2jh")
        .join(name);
    let applied = apply_file(&path, &mut sc).unwrap();
    (sc, applied)
}

#[test]
fn chart_defaults_are_z2jh_as_shipped() {
    let (sc, a) = fixture("chart-defaults.yaml");
    assert_eq!(a.policy.label(), "z2jh / none");
    assert!(a.policy.prepull);
    assert!(a.unused.is_empty(), "{:?}", a.unused);
    assert_eq!(sc.profiles.len(), 1);
    assert_eq!(
        (
            sc.profiles[0].request.cpu,
            sc.profiles[0].request.memory_gib
        ),
        (0.0, 1.0)
    );
    assert_eq!(sc.hub.concurrent_spawn_limit, 64);
    assert_eq!(
        (sc.hub.cull_timeout_min, sc.hub.cull_interval_min),
        (60.0, 10.0)
    );
}

#[test]
fn the_optimization_guide_config() {
    let (sc, a) = fixture("optimization.yaml");
    assert_eq!(a.policy.scheduler, SchedulerKind::Z2jh);
    assert_eq!(a.policy.placeholders, PlaceholderMode::PerUser { k: 4 });
    assert_eq!(sc.placeholder.priority, Some(-10));
    let r = sc.placeholder.request.as_ref().unwrap();
    assert_eq!((r.cpu, r.memory_gib), (0.5, 1.0));
    assert_eq!(sc.hub.cull_interval_min, 5.0);
    assert!(a.unused.is_empty(), "{:?}", a.unused);
}

#[test]
fn user_resources_and_the_spawn_limit() {
    let (sc, _) = fixture("user-resources.yaml");
    assert_eq!(
        (
            sc.profiles[0].request.cpu,
            sc.profiles[0].request.memory_gib
        ),
        (0.5, 1.0)
    );
    assert_eq!(sc.hub.concurrent_spawn_limit, 100);
}

#[test]
fn profiles_with_overrides_and_what_cannot_be_modelled() {
    // Every profile in the mix (by display name, slug, or profile/choice).
    let mix: ProfileMix = "Minimal environment=1,datascience=1,large=1,gpu=1,choose/scipy=1"
        .parse()
        .unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/z2jh/profiles.yaml");
    let mut sc = common::shipped("class-burst.yaml");
    let users = |sc: &hubpack_sim::scenario::Scenario| match &sc.arrivals[0] {
        hubpack_sim::scenario::ArrivalSpec::Burst(b) => b.users,
        _ => 0,
    };
    let all_users = users(&sc);
    let (a, _) = apply_layers(std::slice::from_ref(&path), None, Some(&mix), &mut sc).unwrap();
    // The GPU profile selects nodes no pool describes: left out, never put on the user pool.
    let names: Vec<&str> = sc.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Minimal environment",
            "datascience",
            "large",
            "choose/scipy"
        ]
    );
    assert!(sc.profiles.iter().all(|p| (p.weight - 0.25).abs() < 1e-9));
    assert!(sc.profiles.iter().all(|p| p.pool == "user"));
    // Its users are left out of the arrivals too.
    assert_eq!(users(&sc), (all_users as f64 * 0.8).round() as usize);
    assert_eq!(a.undescribed.len(), 1, "{:?}", a.undescribed);
    let u = &a.undescribed[0];
    assert!(
        u.contains("gpu (20% of users)")
            && u.contains("cloud.google.com/gke-accelerator=nvidia-tesla-t4")
            && u.contains("profileList[3].kubespawner_override.node_selector")
            && u.contains("--pool nvidia-tesla-t4=cpu:…,memory:…Gi,gpu:1,boot:…m"),
        "{u}"
    );
    let ds = &sc.profiles[1];
    assert_eq!((ds.request.cpu, ds.request.memory_gib), (1.0, 4.0));
    assert_eq!(ds.image, "quay.io/jupyter/datascience-notebook:2025-01-01");
    assert_eq!(sc.profiles[2].request.memory_gib, 16.0);
    // The choice's image is modelled.
    assert_eq!(
        sc.profiles[3].image,
        "quay.io/jupyter/scipy-notebook:2025-01-01"
    );
    // One list: the profiles that set no size (they use singleuser's).
    assert_eq!(a.unused.len(), 1, "{:?}", a.unused);
    assert!(
        a.unused[0].contains("Minimal environment, choose/scipy")
            && a.unused[0].contains("singleuser's size (0 CPU, 1 GiB)"),
        "{}",
        a.unused[0]
    );
    // The large profile's selector names the scenario's pool: no warning for it.
    assert!(!a.unused.iter().any(|u| u.contains("profileList[2]")));
    // With the GPU nodes described, the GPU profile runs there, with its GPU.
    let mut sc = common::shipped("class-burst.yaml");
    let gpu: hubpack_sim::plan::pools::PoolArg = "t4=cpu:4,memory:15Gi,gpu:1,boot:6m,\
        label:cloud.google.com/gke-accelerator=nvidia-tesla-t4"
        .parse()
        .unwrap();
    hubpack_sim::plan::pools::add_pools(&mut sc, &[gpu]);
    let (a, _) = apply_layers(&[path], None, Some(&mix), &mut sc).unwrap();
    assert!(a.undescribed.is_empty(), "{:?}", a.undescribed);
    let g = &sc.profiles[3];
    assert_eq!((g.name.as_str(), g.pool.as_str()), ("gpu", "t4"));
    assert_eq!(g.request.extended.get("nvidia.com/gpu"), Some(&1));
    assert!(
        sc.image_index("quay.io/jupyter/pytorch-notebook:cuda12-2025-01-01")
            .is_some()
    );
    assert!(
        a.pools.iter().any(|l| l.starts_with("pool t4: gpu")),
        "{:?}",
        a.pools
    );
    // Without a mix: the `default: true` profile only, and said so.
    let (sc, a) = fixture("profiles.yaml");
    assert_eq!(sc.profiles.len(), 1);
    assert_eq!(sc.profiles[0].name, "Minimal environment");
    assert!(a.mix.contains("the `default: true` profile"), "{}", a.mix);
}

#[test]
fn placeholders_without_pod_priority_cannot_be_preempted() {
    let (sc, a) = fixture("placeholders-without-priority.yaml");
    assert_eq!(a.policy.placeholders, PlaceholderMode::PerUser { k: 20 });
    assert!(
        a.description.contains("podPriority is off"),
        "{}",
        a.description
    );
    let r = run_one(&sc, a.policy.clone(), 0).unwrap();
    // They hold 20 seats on the warm node all along: no user ever took one.
    let on_warm = r
        .users
        .iter()
        .filter(|u| u.node.as_deref() == Some("user-0"))
        .count();
    assert!(on_warm <= 31 - 20, "{on_warm} users on the warm node");
}

#[test]
fn plan_recommends_a_setting_for_every_fixture() {
    // A small event (100 users in 5 min, 2 min boot, 1 min pull) keeps this quick in a
    // debug build; `hubpack-sim plan` on the shipped scenarios is in the closing note.
    for name in [
        "chart-defaults.yaml",
        "optimization.yaml",
        "user-resources.yaml",
        "profiles.yaml",
        "placeholders-without-priority.yaml",
    ] {
        let mut sc = common::small(
            2.0,
            120.0,
            60.0,
            "  - burst: {at_h: 0.75, users: 100, over_min: 5}",
            "hub:\n  session: {median_s: 1200, sigma: 0.3}",
        );
        sc.pools[0].max_nodes = 20;
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/z2jh")
            .join(name);
        let a = apply_file(&path, &mut sc).unwrap();
        let target = Target {
            p95_s: 60.0,
            seeds: 2,
        };
        let p = plan::plan(&sc, a.policy.clone(), a.description, &target, false).unwrap();
        let r = p
            .recommended
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no recommendation"));
        assert!(r.p95() <= 60.0 && r.placement_hol() == 0.0, "{name}");
        assert_eq!(r.policy.scheduler, SchedulerKind::Hubpack);
        assert!(
            p.baseline.p95() >= r.p95(),
            "{name}: z2jh as configured is faster"
        );
        let values = plan::output::values_yaml(&p);
        assert!(!values.is_empty());
        // The controller refuses a pool without a node selector (or `allNodes`).
        assert_eq!(
            values.contains("pools:"),
            values.contains("nodeSelector: {hub.jupyter.org/node-purpose: user}"),
            "{name}: {values}"
        );
        assert!(plan::output::scenario_yaml(&p).contains("name: test"));
    }
}

/// Applies `yaml` (one values file, z2jh block auto-detected) to the class burst.
fn applied_text(yaml: &str) -> (Scenario, Applied) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut sc = common::shipped("class-burst.yaml");
    let (a, _) = apply_layers(&[path], None, None, &mut sc).unwrap();
    (sc, a)
}

#[test]
fn user_placeholder_resources_are_taken_verbatim_as_z2jh_does() {
    // Only memory set: no cpu request, not singleuser's cpu topped up.
    let (sc, _) = applied_text(
        "singleuser:\n  cpu: {guarantee: 2}\n  memory: {guarantee: 4G}\n\
         scheduling:\n  userPlaceholder:\n    replicas: 2\n    resources:\n      requests: {memory: 57350076Ki}\n",
    );
    let r = sc.placeholder.request.unwrap();
    assert_eq!(r.cpu, 0.0);
    assert!((r.memory_gib - 57350076.0 / 1048576.0).abs() < 1e-9);
    // Limits alone are the requests, as Kubernetes defaults them.
    let (sc, _) = applied_text(
        "scheduling:\n  userPlaceholder:\n    resources:\n      limits: {cpu: 1, memory: 2Gi}\n",
    );
    let r = sc.placeholder.request.unwrap();
    assert_eq!((r.cpu, r.memory_gib), (1.0, 2.0));
    // Unset: singleuser's guarantees (its GPU included).
    let (sc, _) = applied_text(
        "singleuser:\n  cpu: {guarantee: 0.5}\n  extraResource:\n    guarantees: {nvidia.com/gpu: 1}\n",
    );
    let r = sc.placeholder.request.unwrap();
    assert_eq!((r.cpu, r.memory_gib), (0.5, 1.0));
    assert_eq!(r.extended.get("nvidia.com/gpu"), Some(&1));
}

#[test]
fn node_placeholders_cull_max_age_and_the_hook_are_modelled_or_said() {
    // 2i2c basehub's node placeholders beside the z2jh block: nodes kept up.
    let (sc, a) = applied_text(
        "basehub:\n  nodePlaceholder:\n    enabled: true\n    replicas: 3\n  jupyterhub:\n    \
         cull:\n      maxAge: 28800\n    prePuller:\n      hook: {enabled: true}\n",
    );
    assert_eq!((sc.pools[0].min_nodes, sc.pools[0].initial_nodes), (3, 3));
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("basehub.nodePlaceholder.replicas 3")),
        "{:?}",
        a.notes
    );
    assert!(
        a.notes.iter().any(|n| n.starts_with("prePuller.hook")),
        "{:?}",
        a.notes
    );
    assert!(
        a.unused.iter().any(|u| u.contains("cull.maxAge 28800 s")),
        "{:?}",
        a.unused
    );
    // Disabled, or without the culler: nothing of either.
    let (sc, a) = applied_text(
        "basehub:\n  nodePlaceholder: {enabled: false, replicas: 3}\n  jupyterhub:\n    \
         cull: {enabled: false, maxAge: 100}\n    prePuller: {hook: {enabled: false}}\n",
    );
    assert_eq!(sc.pools[0].min_nodes, 1);
    assert!(a.notes.is_empty(), "{:?}", a.notes);
    assert!(!a.unused.iter().any(|u| u.contains("maxAge")));
}

#[test]
fn a_profile_mix_names_display_names_with_commas() {
    let m: ProfileMix = "Small=0.8,NVIDIA Tesla T4, ~16 GB, ~4 CPUs=0.2"
        .parse()
        .unwrap();
    assert_eq!(
        m.0,
        vec![
            ("Small".to_string(), 0.8),
            ("NVIDIA Tesla T4, ~16 GB, ~4 CPUs".to_string(), 0.2)
        ]
    );
    let err = "Small=1,trailing".parse::<ProfileMix>().unwrap_err();
    assert!(err.contains("\"trailing\" has no share"), "{err}");
}
