//! `cargo xtask bench scheduler`: hubpack-scheduler against the stock kube-scheduler configured
//! as z2jh configures it (its user-scheduler profile: MostAllocated, the powers-of-11 plugin
//! weights), on the local control plane with 500 kwok user nodes, a few warm (the user image is
//! present) and the rest cold. Both schedulers get the same client write budget (QPS 200,
//! burst 400); kube-scheduler also runs at z2jh's default (no budget set: QPS 50, burst 100).
//!
//! Each scheduler runs as its own process (hubpack-scheduler built optimized) on a fresh
//! cluster, in two phases:
//! 1. class burst: 300 users arrive evenly over 2 minutes; the warm nodes each hold 15
//!    per-user placeholders (priority −10) and one free seat, the cold nodes are empty and
//!    their image pull takes 10 minutes. Reports creation→bound p99, eviction→bound p99 of
//!    preempting users, and head-of-line-blocked users (bound to a cold node while a warm seat,
//!    free or held by a placeholder, existed at their arrival);
//!    Then waits until every user is Ready (a cold node's pull takes `BENCH_PULL_S`, 60 s by
//!    default, so the bench can wait for it) and reports creation→Ready p50/p99: users wait
//!    for Ready, not for the bind;
//! 2. throughput: 5,000 users created at once; pods bound per second from the first create to
//!    the last bind seen;
//! 3. backlog (hubpack only): a burst of 200 schedulable users created at once on the idle
//!    scheduler, then the same burst with 10,000 unschedulable pods parked in its queue (their
//!    status writes queued too): creation→bound p99 of both (`BENCH_BACKLOG`,
//!    `BENCH_BACKLOG_BURST`; 0 skips the phase). The goal is at most 2× the idle p99;
//! 4. overflow: a user pool of 3 nodes, full, then a class of 40 users arriving over 40 s
//!    while three new nodes register NotReady (with the not-ready taint) and turn Ready 2 s
//!    apart from 32 s on (after a periodic retry of the first users), so users who failed on
//!    one new node and users who just came wait for the next one together. Reports
//!    creation→bound and order inversions: pairs of users of one priority bound in the
//!    opposite order of their creation (binds less than 250 ms apart count as simultaneous),
//!    goal 0 (`BENCH_OVERFLOW_USERS`, 0 skips the phase; `BENCH_OVERFLOW_FULL_NODES`,
//!    `BENCH_OVERFLOW_WINDOW_S`, `BENCH_OVERFLOW_FIRST_READY_S`, `BENCH_OVERFLOW_NODE_GAP_S`,
//!    `BENCH_OVERFLOW_SIMULTANEOUS_MS`).
//!
//! After each phase the bench checks that no node's pods request more than it has. Each phase
//! is bounded in time and says so when it runs out. Scheduler RSS is read from /proc after the
//! throughput phase. Knobs (environment, for quick runs): BENCH_NODES, BENCH_WARM_NODES,
//! BENCH_PODS, BENCH_USERS, BENCH_WINDOW_S, BENCH_QPS, BENCH_BURST; HUBPACK_SCHEDULER_BIN (absolute path of the
//! binary to run; default: built here in release), HUBPACK_SCHEDULER_BASELINE_BIN (an older
//! binary whose throughput is measured too, on the same cluster, for before/after ratios).
//! The JSON summary is the last line of stdout.

#![allow(clippy::unwrap_used)] // a benchmark may unwrap

#[path = "scheduler/observe.rs"]
mod observe;
#[path = "scheduler/overflow.rs"]
mod overflow;
#[path = "scheduler/rounds.rs"]
mod rounds;
#[path = "scheduler/setup.rs"]
mod setup;
#[path = "scheduler/workload.rs"]
mod workload;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(rounds::bench());
}
