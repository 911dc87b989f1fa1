//! The files a comparison writes: summary.json with every policy's figures, one pods.csv
//! row per user and run, timeseries.csv, and a self-contained report.html.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::report::write_all;
use hubpack_sim::runner::run_grid;
use hubpack_sim::scenario::{PlaceholderMode, PolicySpec, SchedulerKind};

#[test]
fn compare_writes_every_output() {
    let sc = common::shipped("class-burst.yaml");
    let policies = vec![
        PolicySpec {
            scheduler: SchedulerKind::Z2jh,
            placeholders: PlaceholderMode::PerUser { k: 150 },
            prepull: true,
        },
        PolicySpec {
            scheduler: SchedulerKind::Hubpack,
            placeholders: PlaceholderMode::Predictive,
            prepull: false,
        },
    ];
    let runs = run_grid(&sc, &policies, 3, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = write_all(dir.path(), &sc, &runs).unwrap();
    assert_eq!(summary.policies.len(), 2);

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    let p = &json["policies"][1];
    assert_eq!(p["label"], "hubpack / predictive / no pre-pull");
    for key in [
        "wait_p50_s",
        "wait_p90_s",
        "wait_p95_s",
        "wait_p99_s",
        "wait_max_s",
        "share_wait_over_30s",
        "share_wait_over_60s",
        "share_wait_over_5min",
        "failed_spawns",
        "head_of_line_blocked",
        "placement_hol",
        "hub_queue_hol",
        "node_hours",
        "node_hours_vs_bound",
        "cost",
        "peak_nodes",
        "scale_ups",
        "scale_downs",
    ] {
        assert!(p[key]["mean"].is_number(), "{key}");
        assert!(p[key]["ci95"].is_number(), "{key}");
    }

    // The clairvoyant bound's rows, below every policy's node-hours.
    let bounds = json["bounds"].as_array().unwrap();
    assert_eq!(bounds.len(), 2);
    assert_eq!(bounds[0]["label"], "oracle");
    assert_eq!(bounds[1]["label"], "oracle+ca-unneeded");
    let oracle = bounds[0]["node_hours"]["mean"].as_f64().unwrap();
    assert!(oracle > 0.0);
    assert!(bounds[1]["node_hours"]["mean"].as_f64().unwrap() >= oracle);
    for p in json["policies"].as_array().unwrap() {
        assert!(p["node_hours"]["mean"].as_f64().unwrap() >= oracle);
        assert!(p["node_hours_vs_bound"]["mean"].as_f64().unwrap() >= 1.0);
    }

    let pods = std::fs::read_to_string(dir.path().join("pods.csv")).unwrap();
    let users: usize = runs.iter().flatten().map(|r| r.users.len()).sum();
    assert_eq!(pods.lines().count(), users + 1);
    assert!(
        pods.lines()
            .next()
            .unwrap()
            .ends_with(",head_of_line_blocked,placement_hol,hub_queue_hol,cause,culled_s")
    );

    let ts = std::fs::read_to_string(dir.path().join("timeseries.csv")).unwrap();
    let samples: usize = runs.iter().map(|seeds| seeds[0].samples.len()).sum();
    // Every policy's samples, then the oracle's at the same times.
    let oracle_rows = runs[0][0].samples.len();
    assert_eq!(ts.lines().count(), samples + oracle_rows + 1);
    assert_eq!(
        ts.lines().filter(|l| l.starts_with("oracle,")).count(),
        oracle_rows
    );

    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    // CDFs for z2jh and hubpack, nodes and users over time, cost vs p95.
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.contains("<table>") && html.contains("hubpack / predictive / no pre-pull"));
    assert!(html.contains("<tr class=\"bound\"><td>oracle</td>"));
    assert!(html.contains("<tr class=\"bound\"><td>oracle+ca-unneeded</td>"));
    assert!(
        html.contains("hubpack / predictive / no pre-pull: ")
            && html.contains("× the bound at p95 wait")
    );
    // Self-contained: no scripts, no external assets.
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
}
