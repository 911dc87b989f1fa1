//! `--autoscaler karpenter` end to end through the binary, and the Karpenter model against
//! the cluster-autoscaler one on the shipped class burst.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::scenario::{AutoscalerKind, PlaceholderMode, SchedulerKind};
use std::process::Command;

fn sim_bin(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hubpack-sim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn compare_runs_the_buffer_beside_placeholders_on_ca_and_leaves_it_out_on_karpenter() {
    let (ok, text) = sim_bin(&["compare", "scenarios/class-burst.yaml", "--seeds", "2"]);
    assert!(ok, "{text}");
    assert!(text.contains("hubpack / predictive-buffer"), "{text}");
    assert!(!text.contains("z2jh / predictive-buffer"), "{text}");
    let (ok, text) = sim_bin(&[
        "compare",
        "scenarios/class-burst.yaml",
        "--seeds",
        "2",
        "--autoscaler",
        "karpenter",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("hubpack / predictive "), "{text}");
    assert!(!text.contains("predictive-buffer"), "{text}");
    let (ok, text) = sim_bin(&[
        "compare",
        "scenarios/class-burst.yaml",
        "--autoscaler",
        "kapenter",
    ]);
    assert!(!ok && text.contains("karpenter"), "{text}");
}

#[test]
fn a_buffer_on_karpenter_is_refused_naming_the_fix() {
    let (ok, text) = sim_bin(&[
        "run",
        "scenarios/class-burst.yaml",
        "--seeds",
        "1",
        "--placeholders",
        "predictive-buffer",
        "--autoscaler",
        "karpenter",
    ]);
    assert!(!ok);
    assert!(
        text.contains("cluster-autoscaler") && text.contains("feature gate"),
        "{text}"
    );
}

#[test]
fn plan_on_karpenter_asks_the_hub_to_protect_its_servers() {
    let out = std::env::temp_dir().join(format!("hubpack-plan-karpenter-{}", std::process::id()));
    let (ok, text) = sim_bin(&[
        "plan",
        "scenarios/class-burst.yaml",
        "--seeds",
        "2",
        "--autoscaler",
        "karpenter",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("--autoscaler: karpenter"), "{text}");
    assert!(text.contains("Recommended: hubpack / predictive"), "{text}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        html.contains("karpenter.sh/do-not-disrupt"),
        "the adoption values"
    );
}

#[test]
fn on_the_class_burst_karpenter_gives_empty_nodes_back_sooner() {
    let mut sc = common::shipped("class-burst.yaml");
    let ca = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::Predictive, 0);
    sc.autoscaler.kind = AutoscalerKind::Karpenter;
    let k = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::Predictive, 0);
    // consolidateAfter 0 s against CA's 10 unneeded minutes.
    assert!(
        k.node_hours < ca.node_hours,
        "{} vs {}",
        k.node_hours,
        ca.node_hours
    );
    // The predictive controller keeps users warm on both.
    let slow = |r: &hubpack_sim::outcome::RunResult| {
        r.users
            .iter()
            .filter(|u| u.wait_s.is_none_or(|w| w > 30.0))
            .count()
    };
    assert_eq!((slow(&ca), slow(&k)), (0, 0));
    // The initial warm node is not Karpenter's: it stays, so with no placeholders the
    // first users still start warm on it.
    let none = common::run(&sc, SchedulerKind::Hubpack, PlaceholderMode::None, 0);
    let first = none
        .users
        .iter()
        .filter_map(|u| u.wait_s)
        .fold(f64::MAX, f64::min);
    assert!(first < 30.0, "{first}");
}

#[test]
fn unprotected_servers_lost_to_consolidation_are_reported() {
    let dir = std::env::temp_dir().join(format!("hubpack-unprotected-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("burst.yaml");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/class-burst.yaml"),
    )
    .unwrap();
    let text = text.replace(
        "arrivals:",
        "autoscaler: {kind: karpenter, karpenter: {user_pods_do_not_disrupt: false}}\narrivals:",
    );
    assert!(
        !text.contains("\nautoscaler:\n"),
        "the shipped scenario sets no autoscaler"
    );
    std::fs::write(&path, text).unwrap();
    let (ok, out) = sim_bin(&[
        "run",
        &path.display().to_string(),
        "--seeds",
        "1",
        "--placeholders",
        "none",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{out}");
    assert!(
        out.contains("evicted") && out.contains("do-not-disrupt"),
        "{out}"
    );
}
