//! `cargo xtask bench core`: decision latency of the indexed `decide` against the full
//! scan on a 5,000-node, 50,000-pod synthetic hub filled past 90%, with churn (deletes
//! and arrivals) between decisions and every decision applied to the snapshot. Prints
//! per-path percentiles, then one JSON summary as the last line.

mod cluster;
mod stats;

use cluster::{Rng, fill, other, placeholder, user};
use hubpack_core::model::{Pod, PodKey};
use hubpack_core::policy::{Decision, PolicyConfig, decide, decide_full_scan};
use hubpack_core::snapshot::Snapshot;
use stats::Samples;
use std::time::Instant;

const NODES: usize = 5_000;
const PODS: usize = 50_000;
const STEPS: usize = 20_000;
/// Every this many decisions, the full scan runs on the same input for comparison.
const FULL_SCAN_EVERY: usize = 40;
/// Timed runs of each decision (the minimum is reported).
const REPEATS: usize = 3;

#[derive(Default)]
struct Timings {
    all: Samples,
    fit: Samples,
    preempt: Samples,
    unschedulable: Samples,
    update: Samples,
    sampled_indexed: Samples,
    sampled_full: Samples,
    single_shot: Samples,
}

struct Bench {
    snap: Snapshot,
    placed: Vec<PodKey>,
    rng: Rng,
    cfg: PolicyConfig,
    now: i64,
    next_id: usize,
    t: Timings,
    decisions: usize,
    /// 0 turns the full-scan comparison off (HUBPACK_BENCH_FULL_SCAN_EVERY=0, for profiling).
    full_scan_every: usize,
}

impl Bench {
    fn update(&mut self, f: impl FnOnce(&mut Snapshot)) {
        let t0 = Instant::now();
        f(&mut self.snap);
        self.t.update.push(t0.elapsed().as_nanos() as u64);
    }

    /// Times `decide`; each decision is repeated `REPEATS` times on the same input and the
    /// fastest kept, so that the shared machine's scheduling noise (other builds on two
    /// cores) does not masquerade as decision latency. The single-shot time is kept too.
    fn timed_decide(&mut self, pod: &Pod) -> Decision {
        let mut best = u64::MAX;
        let mut d = None;
        for i in 0..REPEATS {
            let t0 = Instant::now();
            let out = decide(&self.snap, pod, self.now, &self.cfg);
            let ns = t0.elapsed().as_nanos() as u64;
            if i == 0 {
                self.t.single_shot.push(ns);
            }
            best = best.min(ns);
            d = Some(out);
        }
        let Some(d) = d else {
            unreachable!("REPEATS > 0")
        };
        let ns = best;
        self.decisions += 1;
        self.t.all.push(ns);
        match &d {
            Decision::Bind { .. } => self.t.fit.push(ns),
            Decision::Preempt { .. } => self.t.preempt.push(ns),
            Decision::Unschedulable(_) => self.t.unschedulable.push(ns),
            Decision::Skip(_) => {}
        }
        if self.full_scan_every > 0 && self.decisions.is_multiple_of(self.full_scan_every) {
            let mut full_best = u64::MAX;
            let mut full = None;
            for _ in 0..REPEATS {
                let t0 = Instant::now();
                full = Some(decide_full_scan(&self.snap, pod, self.now, &self.cfg));
                full_best = full_best.min(t0.elapsed().as_nanos() as u64);
            }
            self.t.sampled_full.push(full_best);
            let full = full.unwrap_or_else(|| unreachable!("REPEATS > 0"));
            assert_eq!(d, full, "indexed decide disagrees with the full scan");
            self.t.sampled_indexed.push(ns);
        }
        d
    }

    /// Deletes a random placed pod (keys of evicted victims are dropped on the way).
    fn delete_random(&mut self) {
        while !self.placed.is_empty() {
            let i = self.rng.below(self.placed.len());
            let key = self.placed.swap_remove(i);
            if self.snap.pod(&key).is_some() {
                self.update(|s| {
                    s.remove_pod(&key);
                });
                return;
            }
        }
    }

    fn arrival(&mut self) -> Pod {
        self.next_id += 1;
        let id = self.next_id;
        let r = self.rng.below(100);
        match r {
            0..75 => user(id, [1000, 1500, 2000][self.rng.below(3)], self.now),
            75..83 => user(id, 4000, self.now), // rarely a free seat: preemption
            83..95 => placeholder(id, self.now),
            95..98 => other(id, self.now),
            _ => user(id, 20_000, self.now), // larger than any node
        }
    }

    fn step(&mut self) {
        self.now += 100;
        self.delete_random();
        let pod = self.arrival();
        let key = pod.key.clone();
        self.update(|s| s.upsert_pod(pod.clone()));
        match self.timed_decide(&pod) {
            Decision::Bind { node } => self.bind(&key, &node),
            Decision::Preempt { node, victims } => {
                for v in &victims {
                    self.update(|s| {
                        s.remove_pod(v);
                    });
                }
                self.update(|s| s.nominate(&key, &node));
                let pending = self.snap.pod(&key).cloned().unwrap_or(pod);
                match self.timed_decide(&pending) {
                    Decision::Bind { node } => self.bind(&key, &node),
                    other => panic!("preemptor not bound after preemption: {other:?}"),
                }
            }
            _ => self.update(|s| {
                s.remove_pod(&key);
            }),
        }
    }

    fn bind(&mut self, key: &PodKey, node: &str) {
        self.update(|s| s.assume(key, node));
        // The watch confirms the binding.
        if let Some(mut p) = self.snap.pod(key).cloned() {
            p.node_name = Some(node.to_string());
            self.update(|s| s.upsert_pod(p));
        }
        self.placed.push(key.clone());
    }
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let mut rng = Rng::new(42);
    let t0 = Instant::now();
    let (snap, pods) = cluster::build(NODES, PODS, &mut rng);
    let start_fill = fill(&snap);
    eprintln!(
        "built {} nodes, {} pods, fill {:.3} in {:.1?}",
        snap.node_count(),
        pods.len(),
        start_fill,
        t0.elapsed()
    );
    let mut b = Bench {
        snap,
        placed: pods.into_iter().map(|p| p.key).collect(),
        rng,
        cfg: PolicyConfig::default(),
        now: cluster::NOW,
        next_id: 10_000_000,
        t: Timings::default(),
        decisions: 0,
        full_scan_every: std::env::var("HUBPACK_BENCH_FULL_SCAN_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(FULL_SCAN_EVERY),
    };
    for _ in 0..STEPS {
        b.step();
    }
    let end_fill = fill(&b.snap);
    let t = &mut b.t;
    for (name, s) in [
        ("fit", &mut t.fit),
        ("preempt", &mut t.preempt),
        ("unschedulable", &mut t.unschedulable),
        ("all", &mut t.all),
        ("update", &mut t.update),
        ("full scan (sampled)", &mut t.sampled_full),
        ("all, single shot", &mut t.single_shot),
    ] {
        let n = s.len();
        eprintln!(
            "{name:>20}: n={n:>6} p50={:>9} ns p99={:>9} ns max={:>9} ns",
            s.pct(50.0),
            s.pct(99.0),
            s.pct(100.0)
        );
    }
    let speedup = t.sampled_full.pct(50.0) as f64 / t.sampled_indexed.pct(50.0).max(1) as f64;
    eprintln!("fill at end {end_fill:.3}");
    println!(
        "{{\"bench\":\"core\",\"nodes\":{NODES},\"pods\":{PODS},\"fill\":{:.3},\"decide_p50_ns\":{},\"decide_p99_ns\":{},\"fit_p99_ns\":{},\"preempt_p99_ns\":{},\"unschedulable_p99_ns\":{},\"update_p99_ns\":{},\"full_scan_p50_ns\":{},\"speedup_vs_full_scan\":{:.1},\"rss_mb\":{:.1}}}",
        start_fill,
        t.all.pct(50.0),
        t.all.pct(99.0),
        t.fit.pct(99.0),
        t.preempt.pct(99.0),
        t.unschedulable.pct(99.0),
        t.update.pct(99.0),
        t.sampled_full.pct(50.0),
        speedup,
        rss_mb()
    );
}
