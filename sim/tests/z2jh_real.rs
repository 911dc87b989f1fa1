//! `--z2jh-values` on real hubs' configs (tests/z2jh/real/, see its ORIGIN files): layered
//! files merged as helm does, the z2jh block found under the parent chart's key, and the
//! hub modelled as configured.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::scenario::Scenario;
use hubpack_sim::scenario::values_layers::{Found, find_block, read_merged};
use hubpack_sim::scenario::z2jh_values::{Applied, ProfileMix, apply_layers};
use std::path::{Path, PathBuf};

/// A hub's values files, in the order it deploys them.
fn layers(hub: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/z2jh/real")
        .join(hub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn applied(hub: &str) -> (Scenario, Applied, Found) {
    let mut sc = common::shipped("class-burst.yaml");
    let (a, found) = apply_layers(&layers(hub), None, None, &mut sc).unwrap();
    (sc, a, found)
}

/// (name, cpu, memory GiB, image, weight) per modelled profile.
fn sizes(sc: &Scenario) -> Vec<(String, f64, f64, String, f64)> {
    sc.profiles
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.request.cpu,
                (p.request.memory_gib * 1000.0).round() / 1000.0,
                p.image.clone(),
                (p.weight * 1000.0).round() / 1000.0,
            )
        })
        .collect()
}

const HUBS: [&str; 6] = [
    "2i2c-awi-ciroh-prod",
    "2i2c-nasa-cryo-prod",
    "2i2c-mtu",
    "berkeley-datahub-prod",
    "pangeo-gcp-uscentral1b-prod",
    "z2jh-chart-defaults",
];

#[test]
fn every_hub_has_its_origin_and_is_found_where_it_deploys_z2jh() {
    let expect = [
        "basehub.jupyterhub",
        "basehub.jupyterhub",
        "jupyterhub",
        "jupyterhub",
        "daskhub.jupyterhub",
        "",
    ];
    for (hub, at) in HUBS.iter().zip(expect) {
        let dir = layers(hub)[0].parent().unwrap().to_path_buf();
        let origin = std::fs::read_to_string(dir.join("ORIGIN")).unwrap();
        assert!(
            origin.contains("commit: ") && origin.contains("repository: "),
            "{hub}"
        );
        let (_, _, found) = applied(hub);
        assert_eq!(found.at, at, "{hub}");
        assert!(!found.given);
    }
}

#[test]
fn per_user_sizes_as_the_hubs_configure_them() {
    let (sc, a, _) = applied("2i2c-mtu");
    assert_eq!(
        sizes(&sc),
        vec![(
            "default".into(),
            0.0,
            1.0,
            "quay.io/2i2c/cloudbank-data8-image:6286b77ae45c".into(),
            1.0
        )]
    );
    assert_eq!(a.policy.label(), "z2jh / none");
    // DataHub: its chart's 0.05 CPU / 512M guarantees, userScheduler off, limit 200.
    let (sc, a, _) = applied("berkeley-datahub-prod");
    let s = sizes(&sc);
    assert_eq!((s.len(), s[0].1, s[0].2), (1, 0.05, 0.5));
    assert_eq!(a.policy.label(), "spread / none");
    assert_eq!(sc.hub.concurrent_spawn_limit, 200);
    // Pangeo: the pangeo-deploy chart's 1 CPU / 2G, no continuous pre-puller.
    let (sc, a, _) = applied("pangeo-gcp-uscentral1b-prod");
    let s = sizes(&sc);
    assert_eq!((s.len(), s[0].1, s[0].2), (1, 1.0, 2.0));
    assert_eq!(a.policy.label(), "z2jh / none / no pre-pull");
    // The chart's own values.yaml: memory 1G, no cpu guarantee.
    let (sc, a, _) = applied("z2jh-chart-defaults");
    let s = sizes(&sc);
    assert_eq!((s.len(), s[0].1, s[0].2), (1, 0.0, 1.0));
    assert_eq!(a.policy.label(), "z2jh / none");
}

/// The merged values' z2jh block written alone, at the top level of one file.
fn extracted(hub: &str) -> PathBuf {
    let merged = read_merged(&layers(hub)).unwrap();
    let (block, _) = find_block(&merged, None, hub).unwrap();
    let dir = std::env::temp_dir().join(format!("hubpack-z2jh-real-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{hub}.yaml"));
    // JSON is YAML.
    std::fs::write(&path, serde_json::to_string_pretty(&block).unwrap()).unwrap();
    path
}

#[test]
fn the_raw_layered_files_model_the_same_hub_as_the_extracted_block() {
    for hub in HUBS {
        let (raw, a, _) = applied(hub);
        let mut sc = common::shipped("class-burst.yaml");
        let (b, found) = apply_layers(&[extracted(hub)], None, None, &mut sc).unwrap();
        assert_eq!(found.at, "", "{hub}");
        assert_eq!(a.policy, b.policy, "{hub}");
        assert_eq!(a.description, b.description, "{hub}");
        assert_eq!(a.unused, b.unused, "{hub}");
        assert_eq!(
            serde_json::to_value(&raw).unwrap(),
            serde_json::to_value(&sc).unwrap(),
            "{hub}"
        );
    }
}

#[test]
fn plan_on_the_raw_files_equals_plan_on_the_extracted_block() {
    use hubpack_sim::plan::{Target, plan};
    let hub = "2i2c-mtu";
    let target = Target {
        p95_s: 30.0,
        seeds: 1,
    };
    let run = |paths: &[PathBuf]| {
        let mut sc = common::shipped("class-burst.yaml");
        let (a, _) = apply_layers(paths, None, None, &mut sc).unwrap();
        let mut p = plan(&sc, a.policy, a.description, &target, false).unwrap();
        p.elapsed_s = 0.0;
        serde_json::to_value(&p).unwrap()
    };
    assert_eq!(run(&layers(hub)), run(&[extracted(hub)]));
}

#[test]
fn values_with_no_z2jh_block_are_an_error_not_chart_defaults() {
    let dir = std::env::temp_dir().join(format!("hubpack-no-z2jh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("support.values.yaml");
    std::fs::write(&path, "prometheus:\n  server:\n    enabled: true\n").unwrap();
    let mut sc = common::shipped("class-burst.yaml");
    let err = apply_layers(std::slice::from_ref(&path), None, None, &mut sc)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no z2jh values found"), "{err}");
    assert!(err.contains("--values-key"), "{err}");
    // Given the key, the later file's value wins and `null` deletes.
    let over = dir.join("over.yaml");
    std::fs::write(
        &over,
        "hub:\n  jupyterhub:\n    singleuser:\n      cpu: {guarantee: 2}\n      memory: {guarantee: 3G}\n",
    )
    .unwrap();
    let last = dir.join("last.yaml");
    std::fs::write(
        &last,
        "hub:\n  jupyterhub:\n    singleuser:\n      memory: null\n",
    )
    .unwrap();
    let (_, found) = apply_layers(
        &[path.clone(), over.clone()],
        Some("hub.jupyterhub"),
        None,
        &mut sc,
    )
    .unwrap();
    assert!(found.given);
    assert_eq!(
        (
            sc.profiles[0].request.cpu,
            sc.profiles[0].request.memory_gib
        ),
        (2.0, 3.0)
    );
    apply_layers(&[path, over, last], Some("hub.jupyterhub"), None, &mut sc).unwrap();
    assert_eq!(
        (
            sc.profiles[0].request.cpu,
            sc.profiles[0].request.memory_gib
        ),
        (2.0, 1.0)
    );
}

fn with_mix(hub: &str, mix: &str) -> Result<(Scenario, Applied), String> {
    let mut sc = common::shipped("class-burst.yaml");
    let mix: ProfileMix = mix.parse()?;
    apply_layers(&layers(hub), None, Some(&mix), &mut sc)
        .map(|(a, _)| (sc, a))
        .map_err(|e| e.to_string())
}

#[test]
fn profile_options_choices_are_modelled_and_the_default_is_said() {
    // CIROH: the `default: true` profile (Small) with its `default: true` image choice.
    let (sc, a, _) = applied("2i2c-awi-ciroh-prod");
    assert_eq!(
        sizes(&sc),
        vec![(
            "Small/new".into(),
            0.938,
            5.0,
            "quay.io/2i2c/awi-ciroh-image:d86a62ae0b85".into(),
            1.0
        )]
    );
    assert!(a.mix.contains("`default: true` profile"), "{}", a.mix);
    assert!(a.mix.contains("image choice `new`"), "{}", a.mix);
    // Cryo: two options (image × resource allocation); sizes live only in the choices.
    let (sc, a, _) = applied("2i2c-nasa-cryo-prod");
    assert_eq!(
        sizes(&sc),
        vec![(
            "CPU Only/01-python/mem_4_gb".into(),
            0.4563125,
            3.635,
            "quay.io/cryointhecloud/cryo-hub-image:b39d8d901d7b".into(),
            1.0
        )]
    );
    assert!(
        a.mix.contains("resource_allocation choice `mem_4_gb`"),
        "{}",
        a.mix
    );
}

#[test]
fn a_profile_mix_weights_profiles_and_choices() {
    // A profile name takes its default choices; the shares are normalised.
    let (sc, _) = with_mix("2i2c-awi-ciroh-prod", "Small=0.7,Large=0.3").unwrap();
    assert_eq!(
        sizes(&sc),
        vec![
            (
                "Small/new".into(),
                0.938,
                5.0,
                "quay.io/2i2c/awi-ciroh-image:d86a62ae0b85".into(),
                0.7
            ),
            (
                "Large/new".into(),
                3.75,
                24.0,
                "quay.io/2i2c/awi-ciroh-image:d86a62ae0b85".into(),
                0.3
            ),
        ]
    );
    // A profile/choice name picks that combination: the choice's guarantee, not the
    // profile's.
    let (sc, _) = with_mix(
        "2i2c-nasa-cryo-prod",
        "CPU Only/01-python/mem_15_gb=3,CPU Only=1",
    )
    .unwrap();
    let s = sizes(&sc);
    assert_eq!(s.len(), 2);
    // Choices in key order (mem_15_gb before mem_4_gb).
    assert_eq!(
        (s[1].0.as_str(), s[1].4),
        ("CPU Only/01-python/mem_4_gb", 0.25)
    );
    assert_eq!(
        (s[0].0.as_str(), s[0].1, s[0].2, s[0].4),
        ("CPU Only/01-python/mem_15_gb", 1.82525, 14.539, 0.75)
    );
    // An unknown name says which names exist.
    let err = with_mix("2i2c-awi-ciroh-prod", "tiny=1").unwrap_err();
    assert!(
        err.contains("--profile-mix") && err.contains("Small/new"),
        "{err}"
    );
    let err = with_mix("2i2c-mtu", "small=1").unwrap_err();
    assert!(err.contains("profileList is empty"), "{err}");
    assert!(
        "small"
            .parse::<ProfileMix>()
            .unwrap_err()
            .contains("name=share")
    );
}

#[test]
fn a_limit_below_its_guarantee_is_an_error_naming_the_value() {
    let dir = std::env::temp_dir().join(format!("hubpack-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v.yaml");
    std::fs::write(
        &path,
        "singleuser:\n  profileList:\n    - display_name: s\n      kubespawner_override: {mem_guarantee: 4G, mem_limit: 2G}\n",
    )
    .unwrap();
    let mut sc = common::shipped("class-burst.yaml");
    let err = apply_layers(&[path], None, None, &mut sc)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("singleuser.profileList[0].kubespawner_override.mem_limit")
            && err.contains("below the guarantee"),
        "{err}"
    );
}

#[test]
fn a_setting_with_failed_spawns_never_meets_the_target() {
    use hubpack_sim::plan::{Target, output, plan};
    // Servers time out after 60 s while a fresh node takes 4 min: cold starts fail.
    let mut sc = common::small(
        2.0,
        240.0,
        60.0,
        "  - burst: {at_h: 0.75, users: 80, over_min: 5}",
        "",
    );
    sc.hub.start_timeout_s = 60.0;
    let target = Target {
        p95_s: 600.0,
        seeds: 1,
    };
    let (baseline, description) = hubpack_sim::plan::z2jh_as_shipped();
    let p = plan(&sc, baseline, description, &target, false).unwrap();
    assert!(p.baseline.summary.failed_spawns.mean > 0.0);
    for c in &p.evaluated {
        if c.summary.failed_spawns.mean > 0.0 {
            assert!(!c.meets_target, "{} meets with failed spawns", c.label);
        }
    }
    // Static placeholders say what they are: how many, of what size.
    let statics: Vec<&str> = p
        .evaluated
        .iter()
        .filter(|c| c.family == "per-user" || c.family == "n-user")
        .map(|c| c.label.as_str())
        .collect();
    assert!(!statics.is_empty());
    for l in &statics {
        assert!(
            l.contains(" × ") && l.contains("CPU") && l.contains("GiB"),
            "{l}"
        );
    }
    let text = output::render(&p);
    assert!(text.contains("failed spawns"), "{text}");
    assert!(
        text.contains("failed or abandoned spawns per run"),
        "{text}"
    );
}

#[test]
fn an_image_tag_the_values_do_not_say_is_unknown_not_invented() {
    use hubpack_sim::scenario::z2jh_values::UNKNOWN_TAG;
    // The chart's tag is written at release; DataHub's is set by hubploy at deploy time.
    for hub in ["z2jh-chart-defaults", "berkeley-datahub-prod"] {
        let (sc, _, _) = applied(hub);
        let image = &sc.profiles[0].image;
        assert!(image.ends_with(UNKNOWN_TAG), "{hub}: {image}");
        assert!(!image.contains("set-by-chartpress") && !image.ends_with(":latest"));
    }
}
