//! The binary refuses a bad config before touching the cluster (exit 2, the field and the
//! fix), and `plan` prints a table offline without writing anything.

#![allow(clippy::unwrap_used)] // a test binary

use std::process::Command;

fn run(args: &[&str], yaml: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hubpack-placeholder-ctl"))
        .args(args)
        .arg("--config")
        .arg(&path)
        // Never reach a real cluster from this test.
        .env("KUBECONFIG", dir.path().join("absent"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const POOL: &str = "pools:\n- name: default\n  allNodes: true\n  perUser: {cpu: \"1\", memory: 2Gi}\n  freshNode: {allocatable: {cpu: \"4\", memory: 16Gi, pods: \"110\"}}\n";

#[test]
fn a_placeholder_that_cannot_fit_a_fresh_node_exits_2_naming_the_pool() {
    let (code, _, stderr) = run(&["run"], &format!("{POOL}  usersPerPlaceholder: 4\n"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("pools[0] (default).usersPerPlaceholder"),
        "{stderr}"
    );
    assert!(stderr.contains("fix:"), "{stderr}");
}

#[test]
fn an_unknown_key_exits_2_naming_it() {
    let (code, _, stderr) = run(&[], "schedulerNmae: x\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("schedulerNmae"), "{stderr}");
}

#[test]
fn plan_prints_the_forecast_per_pool_without_a_cluster() {
    let yaml = format!(
        "{POOL}  lead: 600\nevents:\n- {{name: hourly, pool: default, schedule: \"0 * * * *\", users: 30, arrivalWindowSeconds: 600}}\n"
    );
    let (code, stdout, stderr) = run(&["plan", "--hours", "2", "--step-minutes", "5"], &yaml);
    assert_eq!(code, Some(0), "{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 25, "{stdout}");
    // Some row falls within 10 minutes before an hourly event: 30 users → 3 × 3 users.
    assert!(rows.iter().any(|r| r.contains("config=")), "{stdout}");
    assert!(rows.iter().all(|r| r.contains(" default ")), "{stdout}");
}
