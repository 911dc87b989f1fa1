//! What `plan` prints: the recommendation next to z2jh as configured, the cheapest setting
//! of each family, the forecast-error check, the values.yaml snippet for `charts/hubpack`
//! that applies it, and the scenario that was run (to save and rerun with `compare`).

use super::{Candidate, Plan};
use crate::scenario::{ArrivalSpec, PlaceholderMode, Scenario};
use std::fmt::Write as _;

fn row(name: &str, c: &Candidate) -> [String; COLUMNS] {
    let s = &c.summary;
    [
        name.to_string(),
        format!("{:.0} s", s.wait_p95_s.mean),
        format!("{:.1}", s.placement_hol.mean),
        format!("{:.1}", s.failed_spawns.mean),
        format!("{:.1}", s.node_hours.mean),
        format!("{:.1}", s.peak_nodes.mean),
        format!("{:.2}", s.cost.mean),
    ]
}

const COLUMNS: usize = 7;

fn table(rows: &[[String; COLUMNS]]) -> String {
    let head = [
        "".to_string(),
        "p95 wait".into(),
        "placement HOL".into(),
        "failed spawns".into(),
        "node-hours".into(),
        "peak nodes".into(),
        "cost".into(),
    ];
    let all: Vec<&[String; COLUMNS]> = std::iter::once(&head).chain(rows.iter()).collect();
    let mut width = [0usize; COLUMNS];
    for r in &all {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in all {
        for (i, (c, w)) in r.iter().zip(width).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            if i == 0 {
                let _ = write!(out, "{c}{pad}");
            } else {
                let _ = write!(out, "  {pad}{c}");
            }
        }
        out.push('\n');
    }
    out
}

/// The plan for people: everything but the scenario and values (see [`values_yaml`],
/// [`scenario_yaml`]).
pub fn render(plan: &Plan) -> String {
    let mut out = format!(
        "hubpack-sim plan: {}, {} seed(s); target: p95 wait <= {:.0} s with no placement \
         head-of-line blocking\nSearched {} settings ({} runs) in {:.1} s.\n\n",
        plan.scenario.name,
        plan.seeds,
        plan.target_p95_s,
        plan.evaluated.len(),
        plan.runs,
        plan.elapsed_s
    );
    let mut rows = vec![row(
        &format!("z2jh as configured: {}", plan.baseline.label),
        &plan.baseline,
    )];
    if let Some(r) = &plan.recommended {
        rows.push(row(&format!("recommended: {}", r.label), r));
    }
    out += &table(&rows);
    out.push('\n');
    out += &headline(plan);
    out += &at_expected(plan);
    out += &bound_lines(plan);
    let failed = plan.baseline.summary.failed_spawns.mean;
    if failed > 0.0 {
        let _ = writeln!(
            out,
            "z2jh as configured: {failed:.1} failed or abandoned spawns per run (start timeout)."
        );
    }
    let _ = writeln!(
        out,
        "\nz2jh as configured means: {}",
        plan.baseline_description
    );

    out += "\nBest setting tried per family (* meets the target; a setting stops after its \
            first seeds once it clearly misses or costs more than one that meets it):\n";
    let mut fams: Vec<&'static str> = Vec::new();
    for c in plan.evaluated.iter().skip(1) {
        if !fams.contains(&c.family) {
            fams.push(c.family);
        }
    }
    let mut frows = Vec::new();
    for f in fams {
        let of: Vec<&Candidate> = plan
            .evaluated
            .iter()
            .skip(1)
            .filter(|c| c.family == f)
            .collect();
        // The cheapest that meets the target, else the cheapest stopped as dearer, else
        // the one that came closest.
        let cheapest = |o: super::Verdict| {
            of.iter()
                .filter(|c| c.verdict == o)
                .min_by(|a, b| a.cost().total_cmp(&b.cost()))
        };
        let best = cheapest(super::Verdict::Meets)
            .or_else(|| cheapest(super::Verdict::Dearer))
            .or_else(|| of.iter().min_by(|a, b| a.p95().total_cmp(&b.p95())));
        if let Some(c) = best {
            let mark = if c.meets_target { "* " } else { "  " };
            let seeds = if c.seeds_run < plan.seeds {
                format!(" ({} seeds)", c.seeds_run)
            } else {
                String::new()
            };
            frows.push(row(&format!("{mark}{}{seeds}", c.label), c));
        }
    }
    out += &table(&frows);

    if !plan.sensitivity.is_empty() {
        out += "\nIf arrivals differ from the calendar (the predictive recommendation):\n";
        for s in &plan.sensitivity {
            let _ = writeln!(
                out,
                "  {:.2}x the expected users: p95 wait {:.0} s, placement HOL {:.1}, cost {:.2} \
                 ({} seeds)",
                s.factor, s.wait_p95_s, s.placement_hol, s.cost, s.seeds
            );
        }
    }
    out
}

/// With a margin: what the search ran at, and the two settings at the expected users.
fn at_expected(plan: &Plan) -> String {
    if (plan.expect_error - 1.0).abs() < 1e-9 {
        return String::new();
    }
    let mut out = format!(
        "Margin: every setting above ran with {}× the expected users ({} instead of {}; \
         --expect-error {}), so the recommendation still meets the target if that many come.\n",
        plan.expect_error, plan.users_searched, plan.users_expected, plan.expect_error
    );
    if let Some(a) = &plan.at_expected {
        let _ = writeln!(
            out,
            "At the expected {} users: recommended p95 wait {:.0} s, {:.1} node-hours, cost {:.2}; \
             z2jh as configured p95 wait {:.0} s, {:.1} node-hours, cost {:.2}.",
            a.users,
            a.recommended.wait_p95_s.mean,
            a.recommended.node_hours.mean,
            a.recommended.cost.mean,
            a.baseline.wait_p95_s.mean,
            a.baseline.node_hours.mean,
            a.baseline.cost.mean,
        );
    }
    out
}

/// The headline: the recommendation vs z2jh as configured, or why there is none.
pub fn headline(plan: &Plan) -> String {
    let margin = if (plan.expect_error - 1.0).abs() < 1e-9 {
        String::new()
    } else {
        format!(
            " (at {}× the expected users: --expect-error)",
            plan.expect_error
        )
    };
    headline_at(plan).replacen(".\n", &format!("{margin}.\n"), 1)
}

fn headline_at(plan: &Plan) -> String {
    let b = &plan.baseline;
    match &plan.recommended {
        Some(r) => {
            let dc = r.cost() - b.cost();
            let pct = if b.cost() > 0.0 {
                100.0 * dc / b.cost()
            } else {
                0.0
            };
            format!(
                "Recommended: {} — p95 wait {:.0} s instead of {:.0} s, {:.1} node-hours \
                 instead of {:.1}, cost {:.2} ({}{:.2}, {:+.0}%) vs z2jh as configured.\n",
                r.label,
                r.p95(),
                b.p95(),
                r.summary.node_hours.mean,
                b.summary.node_hours.mean,
                r.cost(),
                if dc >= 0.0 { "+" } else { "" },
                dc,
                pct
            )
        }
        None => {
            let best = plan
                .evaluated
                .iter()
                .skip(1)
                .min_by(|a, b| a.p95().total_cmp(&b.p95()));
            format!(
                "No setting met p95 <= {:.0} s with no placement HOL{}. Raise --target-p95, \
                 or give the pool more nodes or a faster boot/pull.\n",
                plan.target_p95_s,
                best.map(|c| format!("; the lowest p95 was {:.0} s ({})", c.p95(), c.label))
                    .unwrap_or_default()
            )
        }
    }
}

/// Node-hours of z2jh as configured and of the recommendation as ratios of the clairvoyant
/// bound ([`crate::oracle`]), each at its p95 wait.
pub fn bound_lines(plan: &Plan) -> String {
    let mut out = String::from(
        "Against the clairvoyant bound (nodes Ready exactly when needed, perfect packing, \
         given back once empty):\n",
    );
    let mut line = |name: &str, c: &Candidate| {
        out += &format!(
            "  {}\n",
            crate::report::vs_bound(&format!("{name} ({})", c.label), &c.summary)
        );
    };
    line("z2jh as configured", &plan.baseline);
    if let Some(r) = &plan.recommended {
        line("recommended", r);
    }
    out
}

/// One user's request (the pool's mean user, as the simulated placeholders use) in the
/// chart's integer units.
fn user_request(sc: &Scenario) -> (i64, i64) {
    let pool = sc.pool_index(&sc.profiles[0].pool).unwrap_or(0);
    let r = crate::models::placeholders::mean_user(sc, pool);
    (r.cpu_milli, (r.memory as f64 / 1048576.0).ceil() as i64)
}

/// The pool's mean user's extended resources (a GPU per user, say).
fn user_extended(sc: &Scenario) -> std::collections::BTreeMap<String, i64> {
    let pool = sc.pool_index(&sc.profiles[0].pool).unwrap_or(0);
    crate::models::placeholders::mean_user(sc, pool).extended
}

/// `, nvidia.com/gpu: "1"` for each extended resource.
fn extended_yaml(e: &std::collections::BTreeMap<String, i64>) -> String {
    e.iter().map(|(k, v)| format!(", {k}: \"{v}\"")).collect()
}

/// The node labels that pick the pool's nodes: a `node_labels` `key=value`; z2jh's
/// node-purpose label for the event's user pool; else the pool's name under a key to fill in.
fn pool_selector(pool: &crate::scenario::PoolSpec) -> String {
    if let Some((k, v)) = pool.node_labels.iter().find_map(|l| l.split_once('=')) {
        return format!("{k}: {v}");
    }
    if pool.name == "user" {
        return "hub.jupyter.org/node-purpose: user".into();
    }
    format!("LABEL-KEY-fill-in: {}", pool.name)
}

/// The values.yaml snippet for `charts/hubpack` that applies the recommendation.
pub fn values_yaml(plan: &Plan) -> String {
    let Some(r) = &plan.recommended else {
        return String::new();
    };
    let sc = &plan.scenario;
    let (cpu_m, mem_mi) = user_request(sc);
    let images: Vec<String> = sc.images.iter().map(|i| format!("{:?}", i.name)).collect();
    let images = format!("[{}]", images.join(", "));
    let mut out = String::from("scheduler:\n  enabled: true\n");
    match (&r.policy.placeholders, &r.predictive) {
        (mode @ (PlaceholderMode::Predictive | PlaceholderMode::PredictiveBuffer), Some(p)) => {
            let pool = &sc.pools[0];
            let backend = match mode {
                PlaceholderMode::PredictiveBuffer => {
                    "        # headroom as a CapacityBuffer (cluster-autoscaler 1.36 with \
                     --capacity-buffer-controller-enabled and --capacity-buffer-pod-injection-enabled)\n        \
                     backend: capacityBuffer\n"
                }
                _ => "",
            };
            let lead = match p.lead_min.minutes() {
                Some(m) => format!("{:.0}", m * 60.0),
                None => "auto".into(),
            };
            let n = sc
                .predictive
                .users_per_placeholder
                .map_or("auto".to_string(), |n| n.to_string());
            let _ = write!(
                out,
                "# hubpack-placeholder-ctl sizes the placeholders from the calendar below.\n\
                 controller:\n  enabled: true\n  config:\n    placeholders:\n      \
                 scaleDownAfterSeconds: {remove:.0}\n    pools:\n      - name: {pool_name}\n        \
                 # the labels of your user nodes (z2jh's node-purpose label); the controller counts\n        \
                 # warm seats only on nodes this pool's users can use\n        \
                 nodeSelector: {{{selector}}}\n{backend}        \
                 perUser: {{cpu: {cpu_m}m, memory: {mem_mi}Mi{user_ext}}}\n        \
                 usersPerPlaceholder: {n}\n        \
                 # the cost guard: placeholders hold at most this many fresh nodes\n        \
                 maxNodes: {max_nodes}\n        freshNode:\n          \
                 allocatable: {{cpu: \"{acpu}m\", memory: {amem}Mi, pods: \"{apods}\"{node_ext}}}\n          \
                 # every DaemonSet but the pre-puller (the controller adds its own)\n          \
                 daemonSets: {{cpu: {dcpu}m, memory: {dmem}Mi, pods: \"{dpods}\"}}\n        \
                 headroom: {{minUsers: {min:.0}, maxUsers: {max:.0}, z: {z}}}\n        \
                 lead: {lead}\n        images: {images}\n    events:\n",
                remove = p.remove_after_min * 60.0,
                pool_name = pool.name,
                max_nodes = pool.max_nodes.max(1),
                selector = pool_selector(pool),
                user_ext = extended_yaml(&user_extended(sc)),
                node_ext = extended_yaml(&pool.allocatable.extended),
                acpu = (pool.allocatable.cpu * 1000.0).round() as i64,
                amem = (pool.allocatable.memory_gib * 1024.0).round() as i64,
                apods = pool.allocatable.pods,
                dcpu = (pool.daemonset_overhead.cpu * 1000.0).round() as i64,
                dmem = (pool.daemonset_overhead.memory_gib * 1024.0).round() as i64,
                dpods = pool.daemonset_overhead.pods.max(0),
                min = p.min_seats,
                max = p.max_seats,
                z = p.z,
            );
            for (i, a) in sc.arrivals.iter().enumerate() {
                let clock = |at_h: f64| {
                    let m = (at_h * 60.0).round() as i64;
                    format!("{:02}:{:02}", (m / 60) % 24, m % 60)
                };
                match a {
                    ArrivalSpec::Burst(b) => {
                        let _ = write!(
                            out,
                            "      - name: event-{i}\n        pool: {}\n        \
                             start: \"YYYY-MM-DDT{}:00Z\"   # the event's date (the scenario's day {})\n        \
                             users: {}\n        arrivalWindowSeconds: {:.0}\n",
                            pool.name,
                            clock(b.at_h),
                            (b.at_h / 24.0).floor(),
                            b.users,
                            b.over_min * 60.0
                        );
                    }
                    ArrivalSpec::Weekly(w) => {
                        const DAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
                        let days: Vec<&str> = w
                            .days
                            .iter()
                            .filter_map(|d| DAYS.get(usize::from(*d)).copied())
                            .collect();
                        let hm = clock(w.at_h);
                        let (h, m) = hm.split_once(':').unwrap_or(("9", "0"));
                        let _ = write!(
                            out,
                            "      - name: class-{i}\n        pool: {}\n        \
                             schedule: \"{} {} * * {}\"\n        timeZone: UTC   # yours\n        \
                             users: {}\n        arrivalWindowSeconds: {:.0}\n",
                            pool.name,
                            m.trim_start_matches('0').parse::<u32>().unwrap_or(0),
                            h.trim_start_matches('0').parse::<u32>().unwrap_or(0),
                            days.join(","),
                            w.users,
                            w.over_min * 60.0
                        );
                    }
                    ArrivalSpec::Poisson(_) | ArrivalSpec::Trace(_) => {}
                }
            }
            out += "# The static fallback stays off while the controller runs.\nplaceholders:\n  enabled: false\n";
        }
        (mode, _) => {
            let (enabled, replicas, each) = match mode {
                PlaceholderMode::None => (false, 0, 1),
                PlaceholderMode::PerUser { k } => (true, *k, 1),
                PlaceholderMode::NUser { n, k } => (true, *k, n.unwrap_or(1)),
                PlaceholderMode::Predictive | PlaceholderMode::PredictiveBuffer => (false, 0, 1),
            };
            let _ = write!(
                out,
                "placeholders:\n  enabled: {enabled}\n  replicas: {replicas}\n  \
                 usersPerPlaceholder: {each}\n  userRequests:\n    cpuMillis: {cpu_m}\n    \
                 memoryMiB: {mem_mi}\n"
            );
        }
    }
    let _ = write!(out, "prePuller:\n  enabled: true\n  images: {images}\n");
    out
}

/// The scenario the plan ran, with the recommendation in its policy grid.
pub fn scenario_yaml(plan: &Plan) -> String {
    serde_saphyr::to_string(&plan.scenario).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
}

/// The z2jh values that adopt the recommendation: user pods to hubpack-scheduler (z2jh
/// 4.x has no `singleuser.schedulerName`; KubeSpawner's `extra_pod_config` sets
/// `spec.schedulerName`), z2jh's own user-scheduler and placeholders off. Empty without a
/// recommendation.
pub fn adoption(plan: &Plan, configured: crate::scenario::SchedulerKind) -> String {
    if plan.recommended.is_none() {
        return String::new();
    }
    let mut out = String::from(
        "# z2jh values (your hub's release; helm upgrade … -f this)\n\
         scheduling:\n  \
         userScheduler:\n    enabled: false     # hubpack-scheduler places user pods instead\n  \
         userPlaceholder:\n    enabled: false     # hubpack's placeholders replace z2jh's\n  \
         podPriority:\n    enabled: true      # users (0) above hubpack's pre-pullers (-5) and placeholders (-10)\n\
         singleuser:\n  \
         extraPodConfig:\n    schedulerName: hubpack-scheduler   # = charts/hubpack scheduler.config.schedulerName\n\
         # A profile whose kubespawner_override sets extra_pod_config replaces this one: add\n\
         # schedulerName: hubpack-scheduler there too.\n\
         # z2jh's continuous pre-puller may stay on, or give way to hubpack's (prePuller.continuous.enabled: false).\n",
    );
    if configured == crate::scenario::SchedulerKind::Spread {
        out += "# (userScheduler was already off: pods went to kube-scheduler's default spread.)\n";
    }
    if plan.scenario.autoscaler.kind == crate::scenario::AutoscalerKind::Karpenter {
        // Under the same `singleuser:` key (a second one would be a duplicate key).
        out = out.replacen(
            "singleuser:\n",
            "singleuser:\n  extraAnnotations:   # on Karpenter: consolidation never evicts a running server\n    \
             karpenter.sh/do-not-disrupt: \"true\"\n",
            1,
        );
    }
    out
}

/// Every pool's plan in one table, and their sum (the pools are disjoint clusters: their
/// node-hours and costs add up; the event's p95 is at most the worst pool's).
pub fn total(plans: &[&Plan]) -> String {
    let mut out = String::from("Per pool and in total (each pool simulated as its own cluster):\n");
    let (mut bn, mut bc, mut rn, mut rc) = (0.0, 0.0, 0.0, 0.0);
    let (mut bp, mut rp) = (0.0f64, 0.0f64);
    let mut all_recommended = true;
    for p in plans {
        let b = &p.baseline;
        bn += b.summary.node_hours.mean;
        bc += b.cost();
        bp = bp.max(b.p95());
        let rec = match &p.recommended {
            Some(r) => {
                rn += r.summary.node_hours.mean;
                rc += r.cost();
                rp = rp.max(r.p95());
                format!(
                    "{}: p95 {:.0} s, {:.1} node-hours, cost {:.2}",
                    r.label,
                    r.p95(),
                    r.summary.node_hours.mean,
                    r.cost()
                )
            }
            None => {
                all_recommended = false;
                "no setting met the target".to_string()
            }
        };
        let _ = writeln!(
            out,
            "  {}: z2jh as configured p95 {:.0} s, {:.1} node-hours, cost {:.2}; recommended {}",
            p.scenario.pools[0].name,
            b.p95(),
            b.summary.node_hours.mean,
            b.cost(),
            rec
        );
    }
    let _ = writeln!(
        out,
        "  total: z2jh as configured {bn:.1} node-hours, cost {bc:.2}, worst pool p95 {bp:.0} s{}",
        if all_recommended {
            format!("; recommended {rn:.1} node-hours, cost {rc:.2}, worst pool p95 {rp:.0} s")
        } else {
            "; some pool has no recommendation".to_string()
        }
    );
    out
}
