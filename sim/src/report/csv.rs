//! pods.csv (one row per user session, every policy and seed) and timeseries.csv (the
//! cluster sampled over time, every policy, first seed, then the oracle's nodes and users).

use crate::clock::secs;
use crate::oracle;
use crate::outcome::RunResult;
use crate::scenario::Scenario;
use std::fmt::Write as _;
use std::path::Path;

fn opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.3}")).unwrap_or_default()
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn pods_csv(runs: &[Vec<RunResult>]) -> String {
    let mut out = String::from(
        "policy,seed,user,profile,arrival_s,bound_s,ready_s,wait_s,gave_up_after_s,node,node_was_new,attempts,failed_spawns,warm_seat_at_arrival,head_of_line_blocked,placement_hol,hub_queue_hol,cause,culled_s\n",
    );
    for run in runs.iter().flatten() {
        let label = quote(&run.policy.label());
        for u in &run.users {
            let cause = serde_json::to_value(u.cause)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{label},{},{},{},{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{cause},{}",
                run.seed,
                u.user,
                u.profile,
                u.arrival_s,
                opt(u.bound_s),
                opt(u.ready_s),
                opt(u.wait_s),
                opt(u.gave_up_after_s),
                u.node.as_deref().unwrap_or(""),
                u.node_was_new,
                u.attempts,
                u.failed_spawns,
                u.warm_seat_at_arrival,
                u.head_of_line_blocked,
                u.placement_hol,
                u.hub_queue_hol,
                opt(u.culled_s),
            );
        }
    }
    out
}

pub fn timeseries_csv(runs: &[Vec<RunResult>]) -> String {
    let mut out = String::from(
        "policy,seed,t_s,nodes_ready,nodes_booting,users_running,users_pending,placeholders_running,placeholders_pending,cpu_alloc_users,cpu_alloc_placeholders\n",
    );
    for run in runs.iter().filter_map(|seeds| seeds.first()) {
        let label = quote(&run.policy.label());
        for x in &run.samples {
            let _ = writeln!(
                out,
                "{label},{},{:.0},{},{},{},{},{},{},{:.4},{:.4}",
                run.seed,
                x.t_s,
                x.nodes_ready,
                x.nodes_booting,
                x.users_running,
                x.users_pending,
                x.placeholders_running,
                x.placeholders_pending,
                x.cpu_alloc_users,
                x.cpu_alloc_placeholders,
            );
        }
    }
    out
}

/// timeseries.csv rows of the clairvoyant bound for the first seed: its Ready nodes and
/// running users (nothing boots, pends or holds a seat), every `sample_s`.
pub fn bound_timeseries_csv(sc: &Scenario, runs: &[Vec<RunResult>]) -> String {
    let Some(b) = runs
        .iter()
        .find_map(|r| r.first())
        .and_then(|r| oracle::bound(sc, r.seed).ok())
    else {
        return String::new();
    };
    let every = secs(sc.sample_s).max(1000);
    let end = secs(sc.duration_h * 3600.0);
    let mut out = String::new();
    let mut t = 0;
    // At the policies' sample times: 0, every, … up to the end.
    while t <= end {
        let _ = writeln!(
            out,
            "{},{},{:.0},{},0,{},0,0,0,,",
            oracle::ORACLE,
            b.seed,
            t as f64 / 1000.0,
            b.nodes.at(t),
            b.users_running.at(t),
        );
        t += every;
    }
    out
}

pub fn write_pods(path: &Path, runs: &[Vec<RunResult>]) -> std::io::Result<()> {
    std::fs::write(path, pods_csv(runs))
}

pub fn write_timeseries(path: &Path, runs: &[Vec<RunResult>]) -> std::io::Result<()> {
    std::fs::write(path, timeseries_csv(runs))
}

/// timeseries.csv with the bound's rows after the policies'.
pub fn write_timeseries_with_bound(
    path: &Path,
    sc: &Scenario,
    runs: &[Vec<RunResult>],
) -> std::io::Result<()> {
    std::fs::write(path, timeseries_csv(runs) + &bound_timeseries_csv(sc, runs))
}
