//! `plan` on hubs with several node pools (real configs in tests/z2jh/real/), its margin
//! (`--expect-error`), the capacity check before simulating, and what report.html says.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::plan::pools::{PoolArg, add_pools, split};
use hubpack_sim::plan::{Options, Target, capacity, output, plan_with};
use hubpack_sim::scenario::z2jh_values::{ProfileMix, apply_layers};
use hubpack_sim::scenario::{ArrivalSpec, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn burst_users(sc: &Scenario) -> usize {
    sc.arrivals
        .iter()
        .map(|a| match a {
            ArrivalSpec::Burst(b) => b.users,
            _ => 0,
        })
        .sum()
}

/// (pool, share %, [(profile, cpu, memory GiB, GPUs)]) per part.
type PoolSizes = Vec<(String, u32, Vec<(String, f64, f64, i64)>)>;

fn pool_sizes(sc: &Scenario) -> PoolSizes {
    split(sc)
        .iter()
        .map(|p| {
            (
                p.pool.clone(),
                (p.share * 100.0).round() as u32,
                p.scenario
                    .profiles
                    .iter()
                    .map(|pr| {
                        (
                            pr.name.clone(),
                            pr.request.cpu,
                            (pr.request.memory_gib * 100.0).round() / 100.0,
                            pr.request
                                .extended
                                .get("nvidia.com/gpu")
                                .copied()
                                .unwrap_or(0),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn cryo_profiles_run_on_their_pools_with_their_sizes() {
    // NASA Cryo: the CPU choices select r5.xlarge (the default profile's nodes) or
    // r5.4xlarge (the large choices), the GPU profile g4dn.xlarge with a T4.
    let mix: ProfileMix = "CPU Only=0.7,CPU Only/01-python/mem_60_gb=0.1,gpu=0.2"
        .parse()
        .unwrap();
    let mut sc = common::shipped("class-burst.yaml");
    let users = burst_users(&sc);
    let pools: Vec<PoolArg> = [
        "r5.4xlarge=cpu:15.89,memory:120Gi,boot:5m,max:20",
        "g4dn.xlarge=cpu:3.92,memory:15Gi,gpu:1,boot:6m,pull:8m,max:80",
    ]
    .iter()
    .map(|p| p.parse().unwrap())
    .collect();
    add_pools(&mut sc, &pools);
    let (a, _) = apply_layers(&layers("2i2c-nasa-cryo-prod"), None, Some(&mix), &mut sc).unwrap();
    assert!(a.undescribed.is_empty(), "{:?}", a.undescribed);
    assert_eq!(a.pools.len(), 3, "{:?}", a.pools);
    assert!(
        a.pools[0].starts_with("pool user: CPU Only/01-python/mem_4_gb")
            && a.pools[0].contains("node.kubernetes.io/instance-type=r5.xlarge"),
        "{}",
        a.pools[0]
    );
    assert_eq!(
        pool_sizes(&sc),
        vec![
            (
                "user".to_string(),
                70,
                vec![(
                    "CPU Only/01-python/mem_4_gb".to_string(),
                    0.4563125,
                    3.63,
                    0
                )]
            ),
            (
                "r5.4xlarge".to_string(),
                10,
                vec![(
                    "CPU Only/01-python/mem_60_gb".to_string(),
                    7.69055,
                    59.62,
                    0
                )]
            ),
            (
                "g4dn.xlarge".to_string(),
                20,
                vec![("gpu/pytorch".to_string(), 0.0, 14.0, 1)]
            ),
        ]
    );
    let parts = split(&sc);
    // Each pool alone, with its share of the users, its images and its own pulls.
    let gpu = &parts[2].scenario;
    assert_eq!(gpu.pools.len(), 1);
    assert_eq!(
        burst_users(gpu),
        (users as f64 * 0.2).round() as usize,
        "{users}"
    );
    assert_eq!(
        gpu.images
            .iter()
            .map(|i| (i.name.as_str(), i.pull.median_s))
            .collect::<Vec<_>>(),
        vec![("quay.io/pangeo/pytorch-notebook:2025.12.30", 480.0)]
    );
    // One GPU per node: a fresh g4dn.xlarge seats one GPU user.
    let cap = capacity::check(gpu).unwrap();
    assert_eq!(cap.seats_per_node, 1);
    assert!(cap.fits(), "{cap:?}");
}

#[test]
fn a_gpu_profile_on_undescribed_nodes_is_said_and_left_out() {
    // CIROH: every CPU profile selects n2-highmem-16 (the default profile's nodes: the
    // event's pool); the GPU profile n1-highmem-8 with a GPU limit.
    let mix: ProfileMix = "Small=0.8,NVIDIA Tesla T4, ~16 GB, ~4 CPUs=0.2"
        .parse()
        .unwrap();
    let mut sc = common::shipped("class-burst.yaml");
    let users = burst_users(&sc);
    let (a, _) = apply_layers(&layers("2i2c-awi-ciroh-prod"), None, Some(&mix), &mut sc).unwrap();
    assert_eq!(a.undescribed.len(), 1);
    let u = &a.undescribed[0];
    assert!(
        u.contains("NVIDIA Tesla T4, ~16 GB, ~4 CPUs/pytorch (20% of users)")
            && u.contains("node.kubernetes.io/instance-type=n1-highmem-8")
            && u.contains("--pool n1-highmem-8=cpu:…,memory:…Gi,gpu:1,boot:…m"),
        "{u}"
    );
    // Not simulated on the user pool: only Small is there, with 80% of the users.
    assert_eq!(
        pool_sizes(&sc),
        vec![(
            "user".to_string(),
            100,
            vec![("Small/new".to_string(), 0.938, 5.0, 0)]
        )]
    );
    assert_eq!(burst_users(&sc), (users as f64 * 0.8).round() as usize);

    // Described, it is a pool of its own; its limit-only GPU is its request.
    let mut sc = common::shipped("class-burst.yaml");
    add_pools(
        &mut sc,
        &["n1-highmem-8=cpu:7.9,memory:48Gi,gpu:1,boot:6m,max:3"
            .parse()
            .unwrap()],
    );
    apply_layers(&layers("2i2c-awi-ciroh-prod"), None, Some(&mix), &mut sc).unwrap();
    let sizes = pool_sizes(&sc);
    assert_eq!(sizes.len(), 2);
    assert_eq!(
        sizes[1],
        (
            "n1-highmem-8".to_string(),
            20,
            vec![(
                "NVIDIA Tesla T4, ~16 GB, ~4 CPUs/pytorch".to_string(),
                // No cpu guarantee there, nor in singleuser: none.
                0.0,
                14.0,
                1
            )]
        )
    );
    // Three GPU nodes cannot hold the GPU users: said before any run, naming the pool.
    let parts = split(&sc);
    let mut gpu = parts[1].scenario.clone();
    gpu.forecast.actual_factor *= 1.25;
    let cap = capacity::check(&gpu).unwrap();
    assert!(!cap.fits());
    let why = cap.refusal(&parts[1].scenario, 1.25);
    assert!(
        why.contains("pool n1-highmem-8: at most 3 nodes × 1 users")
            && why.contains("at least 75 nodes"),
        "{why}"
    );
}

#[test]
fn a_margin_the_pool_cannot_hold_shrinks_to_the_largest_it_holds() {
    let cap = |peak_users| capacity::Capacity {
        pool: "user".into(),
        max_nodes: 10,
        seats_per_node: 10,
        peak_users,
        users: peak_users,
    };
    // 100 seats; 80 on at the expected users, 120 at 1.25×: 100 is 1.125× (linear).
    assert_eq!(capacity::largest_margin(&cap(120), &cap(80), 1.25), 1.12);
    // The full margin fits: unchanged.
    assert_eq!(capacity::largest_margin(&cap(100), &cap(80), 1.25), 1.25);
    // Never below no margin at all.
    assert_eq!(capacity::largest_margin(&cap(120), &cap(100), 1.25), 1.0);
}

#[test]
fn the_recommendation_meets_the_target_at_the_margin_and_says_so() {
    let sc = common::small(
        2.0,
        120.0,
        60.0,
        "  - burst: {at_h: 0.5, users: 40, over_min: 5}",
        "",
    );
    let target = Target {
        p95_s: 120.0,
        seeds: 1,
    };
    let (baseline, description) = hubpack_sim::plan::z2jh_as_shipped();
    let opts = Options {
        expect_error: 1.25,
        progress: false,
    };
    let p = plan_with(&sc, baseline, description, &target, &opts).unwrap();
    assert_eq!((p.users_expected, p.users_searched), (40, 50));
    let r = p.recommended.as_ref().unwrap();
    // The search's numbers are at 50 users; the expected 40 are run again.
    assert!(r.p95() <= 120.0);
    let at = p.at_expected.as_ref().unwrap();
    assert_eq!(at.users, 40);
    assert!(at.recommended.wait_p95_s.mean <= 120.0);
    let text = output::render(&p);
    assert!(
        text.contains("1.25× the expected users (50 instead of 40; --expect-error 1.25)")
            && text.contains("At the expected 40 users"),
        "{text}"
    );
    assert!(output::headline(&p).contains("--expect-error"));
    // The scenario to save is the expected event, not the margin's.
    assert_eq!(burst_users(&p.scenario), 40);
    assert_eq!(p.scenario.forecast.actual_factor, 1.0);
}

/// Runs hubpack-sim; (exit code, stdout, stderr).
fn hubpack_sim(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hubpack-sim"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_hundred_thousand_users_finish_or_are_refused_with_the_reason() {
    // The default pool (20 nodes) cannot hold them: said before any run.
    let (code, stdout, stderr) =
        hubpack_sim(&["plan".as_ref(), "--users".as_ref(), "100000".as_ref()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("pool user: at most 20 nodes")
            && stderr.contains("125000 users are on at once")
            && stderr.contains("--max-nodes"),
        "{stderr}"
    );
    // With nodes enough, the event is too large to search: said, with how to plan it.
    let (code, stdout, stderr) = hubpack_sim(&[
        "plan".as_ref(),
        "--users".as_ref(),
        "100000".as_ref(),
        "--max-nodes".as_ref(),
        "5000".as_ref(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("125000 users") && stderr.contains("Plan a 1/13 slice"),
        "{stderr}"
    );
}

#[test]
fn report_html_shows_inputs_warnings_and_the_z2jh_changes() {
    let dir = tempfile::tempdir().unwrap();
    let files = layers("2i2c-awi-ciroh-prod");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "plan".as_ref(),
        "--users".as_ref(),
        "6".as_ref(),
        "--window".as_ref(),
        "2m".as_ref(),
        "--session".as_ref(),
        "10m".as_ref(),
        "--seeds".as_ref(),
        "1".as_ref(),
        "--node-cpu".as_ref(),
        "15.9".as_ref(),
        "--node-memory-gib".as_ref(),
        "120".as_ref(),
        "--profile-mix".as_ref(),
        "Small=0.5,NVIDIA Tesla T4, ~16 GB, ~4 CPUs=0.5".as_ref(),
        "--out".as_ref(),
        dir.path().as_os_str(),
    ];
    for f in &files {
        args.push("-f".as_ref());
        args.push(f.as_os_str());
    }
    let (code, stdout, stderr) = hubpack_sim(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("wrote "), "{stdout}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for needle in [
        // inputs: the files, the mix, the pool, the flags
        "1-common.values.yaml + ",
        "basehub.jupyterhub",
        "--profile-mix Small=0.5",
        "pool user: Small/new",
        "--expect-error",
        "--users 6",
        // the warning about the GPU profile's undescribed nodes
        "n1-highmem-8",
        "which no pool describes",
        // the z2jh side of adopting the recommendation
        "id=\"adoption\"",
        "extraPodConfig:",
        "schedulerName: hubpack-scheduler",
        "userPlaceholder:",
        "userScheduler:",
        "enabled: false",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
}

#[test]
fn plan_reports_each_pool_with_its_own_snippet_and_the_total() {
    let files = layers("2i2c-awi-ciroh-prod");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "plan".as_ref(),
        "--users".as_ref(),
        "8".as_ref(),
        "--window".as_ref(),
        "2m".as_ref(),
        "--session".as_ref(),
        "10m".as_ref(),
        "--seeds".as_ref(),
        "1".as_ref(),
        "--node-cpu".as_ref(),
        "15.9".as_ref(),
        "--node-memory-gib".as_ref(),
        "120".as_ref(),
        "--profile-mix".as_ref(),
        "Small=0.5,NVIDIA Tesla T4, ~16 GB, ~4 CPUs=0.5".as_ref(),
        "--pool".as_ref(),
        "n1-highmem-8=cpu:7.9,memory:48Gi,gpu:1,boot:6m,pull:5m,max:8".as_ref(),
    ];
    for f in &files {
        args.push("-f".as_ref());
        args.push(f.as_os_str());
    }
    let (code, stdout, stderr) = hubpack_sim(&args);
    assert_eq!(code, Some(0), "{stderr}");
    for needle in [
        "=== pool user (50% of the users) ===",
        "=== pool n1-highmem-8 (50% of the users) ===",
        // each pool knows its nodes as the profiles select them, and the chart values
        // name them
        "- node.kubernetes.io/instance-type=n2-highmem-16",
        "nodeSelector: {node.kubernetes.io/instance-type: n1-highmem-8}",
        // and the GPU a user and a node have
        "nvidia.com/gpu: \"1\"}",
        "Per pool and in total",
        "  total: z2jh as configured",
    ] {
        assert!(
            stdout.contains(needle),
            "stdout lacks {needle:?}:\n{stdout}"
        );
    }
    assert!(
        stderr.contains("pool n1-highmem-8: 50% of the users, simulated as its own cluster"),
        "{stderr}"
    );
}
