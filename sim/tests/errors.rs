//! Errors a person can act on: every scenario and z2jh-values mistake names the field (its
//! path), says it in the units people write, once, and the binary exits with 2.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::scenario::Scenario;
use std::path::Path;
use std::process::Command;

const BASE: &str = include_str!("../scenarios/class-burst.yaml");

fn parse_err(yaml: &str) -> String {
    Scenario::parse(yaml, Path::new("x.yaml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_negative_user_count_names_its_field_and_line() {
    let err = parse_err(&BASE.replace("users: 300", "users: -5"));
    assert!(err.contains("arrivals[0].burst.users"), "{err}");
    assert!(err.contains("line 33"), "{err}");
    assert!(err.contains("whole number"), "{err}");
}

#[test]
fn a_wrong_type_deep_in_a_pool_names_its_path() {
    let err = parse_err(&BASE.replace("max_nodes: 20", "max_nodes: twenty"));
    assert!(err.contains("pools[0].max_nodes"), "{err}");
    let err = parse_err(&BASE.replace("boot: {median_s: 240", "boot: {median_s: soon"));
    assert!(err.contains("pools[0].boot.median_s"), "{err}");
}

#[test]
fn a_user_too_large_for_the_node_is_said_in_cpu_and_gib() {
    let err = parse_err(&BASE.replace("memory_gib: 1.8}", "memory_gib: 100}"));
    assert!(
        err.contains("profiles[student].request: one user (0.5 CPU, 100 GiB) does not fit"),
        "{err}"
    );
    assert!(err.contains("15.5 CPU, 57 GiB after DaemonSets"), "{err}");
    assert!(!err.contains("Resources {"), "{err}");
}

#[test]
fn a_bad_lead_time_says_what_to_write() {
    let err = parse_err(&BASE.replace("lead_min: 10", "lead_min: soon"));
    assert!(
        err.contains("predictive.lead_min") && err.contains("auto"),
        "{err}"
    );
}

#[test]
fn a_zero_autoscaler_loop_names_the_field_and_an_example() {
    let err = parse_err(&format!("{BASE}autoscaler:\n  loop_s: 0\n"));
    assert!(
        err.contains("autoscaler.loop_s") && err.contains("e.g. 1"),
        "{err}"
    );
}

#[test]
fn z2jh_values_errors_name_the_value_path() {
    let mut sc = common::shipped("class-burst.yaml");
    let err = hubpack_sim::scenario::z2jh_values::apply(
        "singleuser:\n  memory:\n    guarantee: lots\n",
        Path::new("config.yaml"),
        &mut sc,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("singleuser.memory.guarantee"), "{err}");
    assert!(err.contains("\"1G\""), "{err}");
    let err = hubpack_sim::scenario::z2jh_values::apply(
        "scheduling:\n  userPlaceholder:\n    replicas: four\n",
        Path::new("config.yaml"),
        &mut sc,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("scheduling.userPlaceholder.replicas"), "{err}");
}

/// Runs hubpack-sim without backtraces; (exit code, stderr).
fn hubpack_sim(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hubpack-sim"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_says_it_once_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, BASE.replace("memory_gib: 1.8}", "memory_gib: 100}")).unwrap();
    let (code, stderr) = hubpack_sim(&["compare".as_ref(), path.as_os_str()]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.matches("does not fit").count(), 1, "{stderr}");
    assert!(
        !stderr.contains("Caused by") && !stderr.contains("Resources {"),
        "{stderr}"
    );

    // An oversized N-user placeholder, from the command line.
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/class-burst.yaml");
    let (code, stderr) = hubpack_sim(&[
        "run".as_ref(),
        "--placeholders".as_ref(),
        "n-user:40x1".as_ref(),
        scenario.as_os_str(),
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.matches("does not fit").count(), 1, "{stderr}");
    assert!(
        stderr.contains("a placeholder for 40 users (20 CPU, 72 GiB)")
            && stderr.contains("15.5 CPU, 57 GiB after DaemonSets")
            && stderr.contains("at most 31 users per placeholder"),
        "{stderr}"
    );
}

#[test]
fn plan_event_flags_are_checked_naming_the_flag() {
    let run = |args: &[&str]| {
        let args: Vec<&std::ffi::OsStr> = std::iter::once("plan")
            .chain(args.iter().copied())
            .map(std::ffi::OsStr::new)
            .collect();
        hubpack_sim(&args)
    };
    let (code, stderr) = run(&["--users", "0"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--users: must be at least 1"), "{stderr}");
    let (code, stderr) = run(&["--users", "10", "--user-cpu", "0"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--user-cpu: must be > 0"), "{stderr}");
    let (code, stderr) = run(&["--users", "10", "--window", "10"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("no unit") && stderr.contains("10m"),
        "{stderr}"
    );
}

#[test]
fn a_typed_size_flag_wins_over_the_values_files_and_the_conflict_is_said() {
    let values = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/z2jh/real/2i2c-mtu");
    let (a, b) = (
        values.join("1-common.values.yaml"),
        values.join("2-mtu.values.yaml"),
    );
    let args: Vec<&std::ffi::OsStr> = vec![
        "plan".as_ref(),
        "--users".as_ref(),
        "5".as_ref(),
        "--window".as_ref(),
        "1m".as_ref(),
        "--seeds".as_ref(),
        "1".as_ref(),
        "--user-memory-gib".as_ref(),
        "2".as_ref(),
        "-f".as_ref(),
        a.as_os_str(),
        "-f".as_ref(),
        b.as_os_str(),
    ];
    let (code, stderr) = hubpack_sim(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "conflict: --user-memory-gib 2 (flag) wins over profile default's memory 1 GiB"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("--user-cpu"), "{stderr}");
}
