//! Starting and stopping the control-plane processes: each runs detached in its own process
//! group (so a Ctrl-C on `cargo xtask` does not reach it), writes its output to
//! `<state dir>/logs/<name>.log`, and leaves its pid in `<state dir>/pids/<name>.pid` so another
//! process (`cargo xtask cluster down`) can stop exactly what was started, nothing else.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("starting {name} ({program}): {source}")]
    Spawn {
        name: String,
        program: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// A started process: its pid and, when this process started it, the child handle (kept so
/// the exit status is reaped and no zombie is mistaken for a live process).
#[derive(Debug)]
pub struct Managed {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Option<Child>,
}

pub fn log_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("logs").join(format!("{name}.log"))
}

fn pid_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("pids").join(format!("{name}.pid"))
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcessError {
    let what = what.into();
    move |source| ProcessError::Io { what, source }
}

/// Starts `program args…` detached, with env `envs`, logging to its log file (appended, so a
/// restarted apiserver keeps its earlier log).
pub fn start(
    state_dir: &Path,
    name: &str,
    program: &Path,
    args: &[String],
    envs: &[(&str, String)],
) -> Result<Managed, ProcessError> {
    for sub in ["logs", "pids"] {
        std::fs::create_dir_all(state_dir.join(sub))
            .map_err(io(format!("creating {}", state_dir.join(sub).display())))?;
    }
    let log = log_path(state_dir, name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io(format!("opening {}", log.display())))?;
    let err_file = file
        .try_clone()
        .map_err(io(format!("opening {}", log.display())))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file)
        .process_group(0);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        name: name.to_string(),
        program: program.display().to_string(),
        source,
    })?;
    let pid = child.id();
    let pid_file = pid_path(state_dir, name);
    // The program is kept next to the pid so a later `down` never signals a reused pid.
    std::fs::write(&pid_file, format!("{pid}\n{}\n", program.display()))
        .map_err(io(format!("writing {}", pid_file.display())))?;
    tracing::info!(name, pid, log = %log.display(), "started");
    Ok(Managed {
        name: name.to_string(),
        pid,
        log,
        child: Some(child),
    })
}

impl Managed {
    /// Whether the process still runs (a reaped child or a gone pid is not running).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => pid_alive(self.pid),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; removes the pid file.
    pub fn stop(&mut self, state_dir: &Path, grace: Duration) {
        terminate(self.pid, grace, self.child.as_mut());
        let _ = std::fs::remove_file(pid_path(state_dir, &self.name));
    }
}

/// Stops every process whose pid file is in `state_dir` (all at once). Returns their names, in
/// the reverse of `order` (names not in `order` first).
pub fn stop_all_recorded(state_dir: &Path, order: &[&str], grace: Duration) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state_dir.join("pids"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".pid")
                .map(str::to_string)
        })
        .collect();
    let rank = |n: &String| order.iter().position(|o| o == n).unwrap_or(usize::MAX);
    names.sort_by_key(|n| std::cmp::Reverse(rank(n)));
    let pids: Vec<(u32, Option<&mut Child>)> = names
        .iter()
        .filter_map(|name| recorded_pid(state_dir, name))
        .map(|pid| (pid, None))
        .collect();
    terminate_all(pids, grace);
    for name in &names {
        let _ = std::fs::remove_file(pid_path(state_dir, name));
    }
    names
}

/// Stops the one recorded process `name`, if it runs. Returns whether it did.
pub fn stop_recorded(state_dir: &Path, name: &str, grace: Duration) -> bool {
    let Some(pid) = recorded_pid(state_dir, name) else {
        return false;
    };
    terminate(pid, grace, None);
    let _ = std::fs::remove_file(pid_path(state_dir, name));
    true
}

/// The pid recorded for `name`, if that process still runs the recorded program.
fn recorded_pid(state_dir: &Path, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(pid_path(state_dir, name)).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse::<u32>().ok()?;
    let program = lines.next().unwrap_or_default();
    if runs_program(pid, program) {
        Some(pid)
    } else {
        tracing::warn!(
            name,
            pid,
            program,
            "recorded process is gone (pid not running that program); not signalled"
        );
        None
    }
}

/// Whether `pid` is a live process started from `program` (its argv[0]).
fn runs_program(pid: u32, program: &str) -> bool {
    // A process caught in the middle of exec has an empty cmdline for a moment: look again.
    for _ in 0..50 {
        if !pid_alive(pid) || program.is_empty() {
            return false;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        if !cmdline.is_empty() {
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            return argv0 == program.as_bytes();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid>; its state letter is Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn terminate(pid: u32, grace: Duration, child: Option<&mut Child>) {
    terminate_all(vec![(pid, child)], grace);
}

/// SIGTERM to every live process at once, then SIGKILL to those still alive after `grace`
/// (processes shut down in parallel: an apiserver draining its watches does not hold up the rest).
fn terminate_all(mut procs: Vec<(u32, Option<&mut Child>)>, grace: Duration) {
    fn alive(pid: u32, child: &mut Option<&mut Child>) -> bool {
        match child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => pid_alive(pid),
        }
    }
    procs.retain_mut(|(pid, child)| alive(*pid, child));
    for (pid, _) in &procs {
        signal(*pid, "-TERM");
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        procs.retain_mut(|(pid, child)| alive(*pid, child));
        if procs.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (pid, child) in procs {
        signal(pid, "-KILL");
        if let Some(c) = child {
            let _ = c.wait();
        }
    }
}

/// Stops several started processes together and removes their pid files.
pub fn stop_all(state_dir: &Path, procs: &mut [Managed], grace: Duration) {
    let list = procs
        .iter_mut()
        .map(|p| (p.pid, p.child.as_mut()))
        .collect();
    terminate_all(list, grace);
    for p in procs.iter() {
        let _ = std::fs::remove_file(pid_path(state_dir, &p.name));
    }
}

/// Starts a watchdog shell that, once `owner_pid` has exited, stops every process recorded in
/// `state_dir` (used by test binaries, whose statics are never dropped).
pub fn spawn_watchdog(state_dir: &Path, owner_pid: u32) -> Result<(), ProcessError> {
    let pids = state_dir.join("pids");
    // cluster-autoscaler goes first, alone, while the apiserver still answers: on SIGTERM its
    // kwok provider deletes its groups' nodes, which must not race the rest of the teardown.
    let script = format!(
        "while kill -0 {owner_pid} 2>/dev/null; do sleep 1; done; \
         ca='{dir}/cluster-autoscaler.pid'; if [ -f \"$ca\" ]; then p=$(head -n1 \"$ca\"); kill -TERM \"$p\" 2>/dev/null; \
         for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 \"$p\" 2>/dev/null || break; sleep 1; done; kill -KILL \"$p\" 2>/dev/null; rm -f \"$ca\"; fi; \
         for f in '{dir}'/*.pid; do [ -f \"$f\" ] && kill -TERM \"$(head -n1 \"$f\")\" 2>/dev/null; done; sleep 2; \
         for f in '{dir}'/*.pid; do [ -f \"$f\" ] && kill -KILL \"$(head -n1 \"$f\")\" 2>/dev/null; rm -f \"$f\"; done",
        dir = pids.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            name: "watchdog".into(),
            program: "sh".into(),
            source,
        })?;
    Ok(())
}

/// The last `lines` lines of a log file (for error messages).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A free TCP port on 127.0.0.1 (bound then released; a tiny race, fine on a test machine).
pub fn free_port() -> Result<u16, ProcessError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_records_and_stops_a_process() {
        let dir = std::env::temp_dir().join(format!("hubpack-proc-test-{}", std::process::id()));
        let mut p = start(
            &dir,
            "sleeper",
            Path::new("sleep"),
            &["30".to_string()],
            &[],
        )
        .unwrap();
        assert!(p.is_running());
        assert!(pid_path(&dir, "sleeper").exists());
        p.stop(&dir, Duration::from_secs(5));
        assert!(!p.is_running());
        assert!(!pid_path(&dir, "sleeper").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stop_all_recorded_leaves_a_pid_that_runs_another_program_alone() {
        let dir = std::env::temp_dir().join(format!("hubpack-proc-test3-{}", std::process::id()));
        let mut p = start(&dir, "b", Path::new("sleep"), &["30".to_string()], &[]).unwrap();
        // As if the pid had been reused by another program since `up`.
        std::fs::write(
            pid_path(&dir, "b"),
            format!("{}\n/usr/bin/not-sleep\n", p.pid),
        )
        .unwrap();
        stop_all_recorded(&dir, &["b"], Duration::from_secs(1));
        assert!(p.is_running());
        p.stop(&dir, Duration::from_secs(5));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stop_all_recorded_stops_processes_started_elsewhere() {
        let dir = std::env::temp_dir().join(format!("hubpack-proc-test2-{}", std::process::id()));
        let mut p = start(&dir, "a", Path::new("sleep"), &["30".to_string()], &[]).unwrap();
        let stopped = stop_all_recorded(&dir, &["a"], Duration::from_secs(5));
        assert_eq!(stopped, vec!["a".to_string()]);
        assert!(!p.is_running());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
