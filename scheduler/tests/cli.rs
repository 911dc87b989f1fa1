//! The binary refuses a bad config before touching the cluster: exit code 2, and a message
//! naming the field and the fix.

#![allow(clippy::unwrap_used)] // a test binary

use std::process::Command;

fn run_with_config(yaml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hubpack-scheduler"))
        .arg("--config")
        .arg(&path)
        // Never reach a real cluster from this test.
        .env("KUBECONFIG", dir.path().join("absent"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_invalid_value_exits_2_naming_the_field_and_the_fix() {
    let (code, stderr) =
        run_with_config("leaderElection:\n  leaseDurationSeconds: 5\n  renewGraceSeconds: 10\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("leaderElection.renewGraceSeconds"),
        "{stderr}"
    );
    assert!(stderr.contains("fix:"), "{stderr}");
}

#[test]
fn an_unknown_key_exits_2_naming_it() {
    let (code, stderr) = run_with_config("schedulerNmae: x\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("schedulerNmae"), "{stderr}");
}

#[test]
fn a_missing_file_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_hubpack-scheduler"))
        .args(["--config", "/nonexistent/hubpack.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/hubpack.yaml"));
}
