//! The bench's rounds (one fresh cluster per scheduler) and its report.

use crate::overflow::{self, Overflow, OverflowKnobs};
use crate::setup::{self, Scheduler};
use crate::workload::{self, Backlog, Burst, Throughput};
use std::path::PathBuf;
use std::time::Duration;

struct Knobs {
    nodes: usize,
    warm: usize,
    pods: usize,
    users: usize,
    window: Duration,
    qps: u32,
    burst: u32,
    backlog: usize,
    backlog_burst: usize,
    overflow: OverflowKnobs,
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            nodes: knob("BENCH_NODES", 500),
            warm: knob("BENCH_WARM_NODES", 20),
            pods: knob("BENCH_PODS", 5000),
            users: knob("BENCH_USERS", 300),
            window: Duration::from_secs(knob("BENCH_WINDOW_S", 120) as u64),
            qps: knob("BENCH_QPS", 200) as u32,
            burst: knob("BENCH_BURST", 400) as u32,
            backlog: knob("BENCH_BACKLOG", 10_000),
            backlog_burst: knob("BENCH_BACKLOG_BURST", 200),
            overflow: OverflowKnobs {
                users: knob("BENCH_OVERFLOW_USERS", 40),
                full_nodes: knob("BENCH_OVERFLOW_FULL_NODES", 3),
                window: Duration::from_secs(knob("BENCH_OVERFLOW_WINDOW_S", 40) as u64),
                first_ready: Duration::from_secs(knob("BENCH_OVERFLOW_FIRST_READY_S", 32) as u64),
                node_gap: Duration::from_secs(knob("BENCH_OVERFLOW_NODE_GAP_S", 2) as u64),
                simultaneous: Duration::from_millis(
                    knob("BENCH_OVERFLOW_SIMULTANEOUS_MS", 250) as u64
                ),
            },
        }
    }
}

const THROUGHPUT_LIMIT: Duration = Duration::from_secs(600);
/// How long after the last arrival the burst may take to place everyone.
const BURST_LIMIT: Duration = Duration::from_secs(180);

struct Full {
    burst: Burst,
    backlog: Option<Backlog>,
    overflow: Option<Overflow>,
    throughput: Throughput,
    rss_mib: (f64, f64),
    overcommitted: usize,
}

/// The hubpack-scheduler binary: `$HUBPACK_SCHEDULER_BIN`, else built here in release.
fn hubpack_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HUBPACK_SCHEDULER_BIN") {
        return PathBuf::from(p);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "hubpack-scheduler",
            "--bin",
            "hubpack-scheduler",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "building hubpack-scheduler failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/hubpack-scheduler")
}

/// Burst, then throughput, with one scheduler on a fresh cluster; then `extra` schedulers'
/// throughput alone on the same cluster.
async fn round(
    tag: &str,
    k: &Knobs,
    which: &Scheduler,
    extra: &[(&str, Scheduler)],
) -> (Full, Vec<(String, Throughput, (f64, f64))>) {
    let (cluster, client) = setup::cluster(tag, k.warm, k.nodes - k.warm).await;
    let running = setup::start(&cluster, which, tag).await;
    let burst = workload::burst(&client, tag, k.warm, k.users, k.window, BURST_LIMIT).await;
    eprintln!(
        "[{tag}] burst: {}/{} bound{}, bind p50 {:.0} ms p99 {:.0} ms, {} preemptors: eviction→bound p50 {:.0} ms p99 {:.0} ms, {} on cold nodes, {} HOL-blocked, overcommitted {:?}",
        burst.bound,
        burst.users,
        if burst.timed_out { " (TIMED OUT)" } else { "" },
        burst.bind_p50_ms,
        burst.bind_p99_ms,
        burst.preemptors,
        burst.preempt_bind_p50_ms,
        burst.preempt_bind_p99_ms,
        burst.on_cold,
        burst.hol_users,
        burst.overcommitted,
    );
    eprintln!(
        "[{tag}] burst: {}/{} Ready{}, creation→Ready p50 {:.0} ms p99 {:.0} ms",
        burst.ready,
        burst.users,
        if burst.ready_timed_out {
            " (TIMED OUT)"
        } else {
            ""
        },
        burst.ready_p50_ms,
        burst.ready_p99_ms,
    );
    let throughput = workload::throughput(&client, tag, k.pods, THROUGHPUT_LIMIT).await;
    report_throughput(tag, &throughput);
    // hubpack only (it needs the scheduler's queue depth): the backlog phase.
    let backlog = match running.metrics_port {
        Some(port) if k.backlog > 0 => {
            let b = workload::backlog(
                &client,
                tag,
                port,
                k.backlog,
                k.backlog_burst,
                THROUGHPUT_LIMIT,
            )
            .await;
            eprintln!(
                "[{tag}] backlog: burst of {} creation→bound p99 {:.0} ms with {} pending ({} parked){} vs {:.0} ms idle{}",
                b.burst,
                b.backlog_p99_ms,
                b.pending,
                b.parked,
                if b.backlog_timed_out {
                    " (TIMED OUT)"
                } else {
                    ""
                },
                b.idle_p99_ms,
                if b.idle_timed_out { " (TIMED OUT)" } else { "" },
            );
            Some(b)
        }
        _ => None,
    };
    // The pods are gone by now; VmHWM keeps the peak.
    let rss_mib = running.rss_mib();
    let decide_us = match running.metrics_port {
        Some(port) => {
            let text = setup::metrics_text(port).await;
            setup::histogram_mean(&text, "hubpack_scheduler_decision_duration_seconds") * 1e6
        }
        None => f64::NAN,
    };
    eprintln!(
        "[{tag}] scheduler RSS now {:.0} MiB, peak {:.0} MiB; mean decision {decide_us:.0} µs",
        rss_mib.0, rss_mib.1
    );
    let overflow = if k.overflow.users > 0 {
        let o = overflow::overflow(&client, tag, &k.overflow, BURST_LIMIT).await;
        eprintln!(
            "[{tag}] overflow: {}/{} bound{}, creation→bound p50 {:.0} ms p99 {:.0} ms, {} order inversions ({} counting concurrent binds), overcommitted {:?}",
            o.bound,
            o.users,
            if o.timed_out { " (TIMED OUT)" } else { "" },
            o.bind_p50_ms,
            o.bind_p99_ms,
            o.inversions,
            o.strict_inversions,
            o.overcommitted,
        );
        Some(o)
    } else {
        None
    };
    running.stop(&cluster.state_dir);
    let mut overcommitted = burst.overcommitted.len()
        + throughput.overcommitted.len()
        + overflow.as_ref().map_or(0, |o| o.overcommitted.len());
    let mut extras = vec![];
    for (name, sched) in extra {
        let tag2 = format!("{tag}-{name}");
        let r = setup::start(&cluster, sched, &tag2).await;
        let t = workload::throughput(&client, &tag2, k.pods, THROUGHPUT_LIMIT).await;
        report_throughput(&tag2, &t);
        overcommitted += t.overcommitted.len();
        let rss = r.rss_mib();
        r.stop(&cluster.state_dir);
        extras.push((tag2, t, rss));
    }
    cluster.stop();
    (
        Full {
            burst,
            backlog,
            overflow,
            throughput,
            rss_mib,
            overcommitted,
        },
        extras,
    )
}

fn report_throughput(tag: &str, t: &Throughput) {
    eprintln!(
        "[{tag}] throughput: {}/{} bound{} ({:.1} s to create), {:.1} pods/s, creation→bound p50 {:.0} ms p99 {:.0} ms, {} nodes used, overcommitted {:?}",
        t.bound,
        t.created,
        if t.timed_out { " (TIMED OUT)" } else { "" },
        t.create_s,
        t.pods_per_s,
        t.p50_ms,
        t.p99_ms,
        t.nodes_used,
        t.overcommitted,
    );
}

pub async fn bench() {
    let k = Knobs::from_env();
    let bin = hubpack_bin();
    eprintln!(
        "bench scheduler: {} nodes ({} warm), {} pods at once, {} users over {:?}, QPS {}/burst {}; hubpack-scheduler = {}",
        k.nodes,
        k.warm,
        k.pods,
        k.users,
        k.window,
        k.qps,
        k.burst,
        bin.display()
    );
    let hubpack = Scheduler::Hubpack {
        bin,
        qps: k.qps,
        burst: k.burst,
    };
    let baseline: Vec<(&str, Scheduler)> = std::env::var("HUBPACK_SCHEDULER_BASELINE_BIN")
        .ok()
        .map(|b| {
            vec![(
                "baseline",
                Scheduler::Hubpack {
                    bin: b.into(),
                    qps: k.qps,
                    burst: k.burst,
                },
            )]
        })
        .unwrap_or_default();
    let (ours, ours_extra) = round("hubpack", &k, &hubpack, &baseline).await;
    let kube = Scheduler::Kube {
        qps: Some((k.qps, k.burst)),
    };
    let default_qps = [("default-qps", Scheduler::Kube { qps: None })];
    let (theirs, theirs_extra) = round("kube-scheduler", &k, &kube, &default_qps).await;

    for (tag, t, _) in &ours_extra {
        eprintln!(
            "before/after ({tag} → current): throughput {:.1} → {:.1} pods/s (×{:.2}), p99 {:.0} → {:.0} ms",
            t.pods_per_s,
            ours.throughput.pods_per_s,
            ours.throughput.pods_per_s / t.pods_per_s,
            t.p99_ms,
            ours.throughput.p99_ms
        );
    }
    let kube_default = theirs_extra
        .first()
        .map_or(f64::NAN, |(_, t, _)| t.pods_per_s);
    eprintln!(
        "RSS peak: hubpack-scheduler {:.0} MiB, kube-scheduler {:.0} MiB",
        ours.rss_mib.1, theirs.rss_mib.1
    );
    let (backlog_pending, backlog_p99, idle_p99) =
        ours.backlog.as_ref().map_or((0, f64::NAN, f64::NAN), |b| {
            (b.pending, b.backlog_p99_ms, b.idle_p99_ms)
        });
    let summary = serde_json::json!({
        "bench": "scheduler",
        "nodes": k.nodes,
        "pods": k.pods,
        "qps": k.qps,
        "hubpack_pods_per_s": round1(ours.throughput.pods_per_s),
        "kube_scheduler_pods_per_s": round1(theirs.throughput.pods_per_s),
        "kube_scheduler_default_qps_pods_per_s": round1(kube_default),
        "hubpack_burst_bind_p99_ms": round0(ours.burst.bind_p99_ms),
        "kube_scheduler_burst_bind_p99_ms": round0(theirs.burst.bind_p99_ms),
        "hubpack_burst_ready_p50_ms": round0(ours.burst.ready_p50_ms),
        "hubpack_burst_ready_p99_ms": round0(ours.burst.ready_p99_ms),
        "kube_scheduler_burst_ready_p50_ms": round0(theirs.burst.ready_p50_ms),
        "kube_scheduler_burst_ready_p99_ms": round0(theirs.burst.ready_p99_ms),
        "hubpack_preempt_bind_p99_ms": round0(ours.burst.preempt_bind_p99_ms),
        "hubpack_hol_users": ours.burst.hol_users,
        "kube_scheduler_hol_users": theirs.burst.hol_users,
        "backlog_pending_pods": backlog_pending,
        "backlog_burst_bind_p99_ms": round0(backlog_p99),
        "idle_burst_bind_p99_ms": round0(idle_p99),
        "hubpack_overflow_order_inversions": ours.overflow.as_ref().map(|o| o.inversions),
        "kube_scheduler_overflow_order_inversions": theirs.overflow.as_ref().map(|o| o.inversions),
        "overcommitted_nodes": ours.overcommitted + theirs.overcommitted,
    });
    println!("{summary}");
}

/// A figure for the JSON summary: NaN (nothing measured) becomes null.
fn round0(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v.round() as i64)
    } else {
        serde_json::Value::Null
    }
}

fn round1(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!((v * 10.0).round() / 10.0)
    } else {
        serde_json::Value::Null
    }
}
