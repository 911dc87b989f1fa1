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

/// A kubeconfig for an API server that is not there: the scheduler runs (watches retry in
/// the background) without any cluster.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster: {server: \"http://127.0.0.1:9\"}\n\
         users:\n- name: none\n  user: {token: x}\ncontexts:\n- name: none\n  context: {cluster: none, user: none}\n\
         current-context: none\n",
    )
    .unwrap();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn serves_health_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!("leaderElection: {{enabled: false}}\nmetricsAddress: 127.0.0.1:{port}\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubpack-scheduler"))
        .arg("--config")
        .arg(&config)
        .arg("--kubeconfig")
        .arg(unreachable_kubeconfig(dir.path()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let mut health = None;
    for _ in 0..100 {
        health = http_get(port, "/healthz");
        if health.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let health = health.expect("/healthz answers");
    assert!(
        health.starts_with("HTTP/1.0 200") || health.starts_with("HTTP/1.1 200"),
        "{health}"
    );
    let ready = http_get(port, "/readyz").unwrap();
    assert!(
        ready.contains(" 503 "),
        "caches cannot sync without an API server: {ready}"
    );
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(metrics.contains("hubpack_scheduler_is_leader"), "{metrics}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("did not exit within 10 s of SIGTERM");
}
