//! `hubpack-sim plan|run|compare`: a thin CLI over the library. Bad input (a scenario or
//! z2jh values file that does not parse, a size that cannot fit) is reported once, naming
//! the field, and exits with 2.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use hubpack_sim::engine::RunError;
use hubpack_sim::plan::event::{EventArgs, EventError, parse_duration_s};
use hubpack_sim::plan::pools::{self as plan_pools, PoolArg};
use hubpack_sim::plan::{self, Target, output};
use hubpack_sim::report;
use hubpack_sim::runner::{grid, resolve_n, run_grid};
use hubpack_sim::scenario::z2jh_values::{self, Z2jhError};
use hubpack_sim::scenario::{
    AutoscalerKind, PlaceholderMode, PolicySpec, Scenario, ScenarioError, SchedulerKind,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "hubpack-sim",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("HUBPACK_BUILD_COMMIT"), ")"),
    about = "Simulate a JupyterHub + cluster-autoscaler or Karpenter: plan an event, compare policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Common {
    /// The scenario file (see sim/scenarios/).
    scenario: PathBuf,
    /// Seeds per policy (default: the scenario's `seeds`).
    #[arg(long)]
    seeds: Option<u64>,
    /// Write summary.json, pods.csv, timeseries.csv and report.html here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the machine-readable summary (JSON) instead of the table.
    #[arg(long)]
    json: bool,
    /// The autoscaler: cluster-autoscaler or karpenter (default: the scenario's
    /// `autoscaler.kind`).
    #[arg(long)]
    autoscaler: Option<AutoscalerKind>,
}

#[derive(Subcommand)]
enum Command {
    /// Before an event: the cheapest placeholder setting whose p95 wait meets the target
    /// with no placement head-of-line blocking, next to z2jh as configured.
    Plan {
        /// A scenario file; or describe one event with --users and the flags below.
        scenario: Option<PathBuf>,
        #[command(flatten)]
        event: EventArgs,
        /// Your z2jh values file(s): model the hub as you configured it. Repeat it in helm's
        /// order (`-f common.yaml -f hub.yaml`): merged as helm does, later wins.
        #[arg(long, short = 'f')]
        z2jh_values: Vec<PathBuf>,
        /// The dotted key the z2jh values sit under in those files (e.g. basehub.jupyterhub);
        /// default: found automatically (top level, or a `jupyterhub:` block).
        #[arg(long, requires = "z2jh_values")]
        values_key: Option<String>,
        /// Share of users per profile or profile/choice of singleuser.profileList, e.g.
        /// "small=0.7,large=0.3" (default: the `default: true` profile and choices).
        #[arg(long, requires = "z2jh_values")]
        profile_mix: Option<z2jh_values::ProfileMix>,
        /// Another node pool (repeatable):
        /// NAME=cpu:8,memory:52Gi,boot:6m[,gpu:1][,pull:5m][,max:10][,pods:110][,label:K=V].
        /// A profile whose node selector (or required node affinity) names the pool (its
        /// name, or a label:) runs there; each pool is simulated as its own cluster with
        /// its share of the users. The --node-* flags describe the default profile's nodes.
        #[arg(long = "pool", value_name = "NAME=cpu:…,memory:…,boot:…")]
        pools: Vec<PoolArg>,
        /// The recommendation must still meet the target with this many times the expected
        /// users (a margin for a short forecast; 1 = none).
        #[arg(long, default_value_t = 1.25, value_parser = parse_expect_error)]
        expect_error: f64,
        /// The p95 wait (arrival → running server) to meet, e.g. 30s or 2m.
        #[arg(long, default_value = "30s", value_parser = parse_duration_s)]
        target_p95: f64,
        /// Seeds per setting (default: the scenario's `seeds`).
        #[arg(long)]
        seeds: Option<u64>,
        /// Also write report.html etc. comparing z2jh as configured with the recommendation.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// The autoscaler: cluster-autoscaler or karpenter (default: the scenario's
        /// `autoscaler.kind`).
        #[arg(long)]
        autoscaler: Option<AutoscalerKind>,
    },
    /// One policy × seeds.
    Run {
        #[command(flatten)]
        common: Common,
        /// The scheduler placing user pods.
        #[arg(long, value_enum, default_value = "hubpack")]
        scheduler: SchedulerArg,
        /// none | per-user:K | n-user:K | n-user:NxK | predictive | predictive-buffer
        #[arg(long, default_value = "predictive")]
        placeholders: PlaceholderMode,
        /// No pre-puller: a fresh node pulls the image when its first user needs it.
        #[arg(long)]
        no_prepull: bool,
    },
    /// The scenario's policy grid (schedulers × placeholder modes) × seeds.
    Compare {
        #[command(flatten)]
        common: Common,
        /// Your z2jh values file(s), in helm's order: model the hub as configured and add it
        /// to the grid.
        #[arg(long, short = 'f')]
        z2jh_values: Vec<PathBuf>,
        /// The dotted key the z2jh values sit under (default: found automatically).
        #[arg(long, requires = "z2jh_values")]
        values_key: Option<String>,
        /// Share of users per profile or profile/choice of singleuser.profileList, e.g.
        /// "small=0.7,large=0.3" (default: the `default: true` profile and choices).
        #[arg(long, requires = "z2jh_values")]
        profile_mix: Option<z2jh_values::ProfileMix>,
    },
}

fn parse_expect_error(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x >= 1.0 && x.is_finite() => Ok(x),
        _ => Err(format!(
            "{s:?}: a factor ≥ 1 of the expected users, e.g. 1.25 (1 = no margin)"
        )),
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchedulerArg {
    /// kube-scheduler's default (least allocated: spread).
    Spread,
    /// z2jh's user-scheduler (most allocated: packing).
    Z2jh,
    /// hubpack-scheduler (warm-first packing).
    Hubpack,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Which event flags were typed (not defaults): those win over the values files.
    let typed = |id: &str| {
        matches
            .subcommand_matches("plan")
            .is_some_and(|m| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
    };
    let flags = Typed {
        user_cpu: typed("user_cpu"),
        user_memory_gib: typed("user_memory_gib"),
    };
    match run(cli, &flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: our errors carry the whole story in their message.
            eprintln!("error: {e}");
            let mut shown = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !shown.contains(&c) {
                    eprintln!("  because: {c}");
                    shown.push_str(&c);
                }
            }
            if is_bad_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Input the user can fix: exit 2, as for invalid config elsewhere in hubpack.
/// The scenario with the command line's overrides.
fn load_with(common: &Common) -> anyhow::Result<Scenario> {
    let mut sc = load(&common.scenario)?;
    if let Some(kind) = common.autoscaler {
        sc.autoscaler.kind = kind;
    }
    Ok(sc)
}

fn is_bad_input(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<ScenarioError>()
            || c.is::<Z2jhError>()
            || c.is::<EventError>()
            || matches!(
                c.downcast_ref::<RunError>(),
                Some(RunError::Placeholders(_) | RunError::Arrivals(_))
            )
    })
}

fn load(path: &Path) -> anyhow::Result<Scenario> {
    Ok(Scenario::load(path)?)
}

/// What the values files were taken as, said on stderr and in report.html.
#[derive(Default)]
struct Said {
    /// Inputs: where the z2jh block was, the profile mix, the pools.
    inputs: Vec<(String, String)>,
    /// Notes and warnings, one line each.
    warnings: Vec<String>,
}

impl Said {
    fn input(&mut self, name: &str, value: String) {
        eprintln!("{name}: {value}");
        self.inputs.push((name.to_string(), value));
    }
    fn warn(&mut self, line: String) {
        eprintln!("{line}");
        self.warnings.push(line);
    }
}

/// Applies the values files to `sc` (none: `None`), saying on stderr where the z2jh block
/// was found and what the model could not use.
fn apply_values(
    paths: &[PathBuf],
    key: Option<&str>,
    mix: Option<&z2jh_values::ProfileMix>,
    sc: &mut Scenario,
    said: &mut Said,
) -> anyhow::Result<Option<z2jh_values::Applied>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let (applied, found) = z2jh_values::apply_layers(paths, key, mix, sc)?;
    let files = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    said.input(
        "z2jh values",
        format!("{files}: using {}", found.describe()),
    );
    said.input("profiles", applied.mix.clone());
    for line in &applied.pools {
        said.input("pools", line.clone());
    }
    let unknown: Vec<&str> = sc
        .images
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| n.ends_with(z2jh_values::UNKNOWN_TAG))
        .collect();
    if !unknown.is_empty() {
        said.warn(format!(
            "note: these files do not say the tag of {} (singleuser.image.tag unset, or set at \
             deploy time): it is modelled as an unknown image; fill the tag in where the \
             output says {}",
            unknown.join(", "),
            z2jh_values::UNKNOWN_TAG
        ));
    }
    for n in &applied.notes {
        said.warn(format!("note: {n}"));
    }
    for u in &applied.undescribed {
        said.warn(format!("warning: {u}"));
    }
    if !applied.unused.is_empty() {
        said.warn(format!(
            "warning: {files}: not modelled, ignored: {}",
            applied.unused.join("; ")
        ));
    }
    Ok(Some(applied))
}

/// Event flags given on the command line.
struct Typed {
    user_cpu: bool,
    user_memory_gib: bool,
}

/// A typed `--user-cpu`/`--user-memory-gib` wins over the sizes from the values files;
/// each conflict is said on stderr.
fn flags_win(sc: &mut Scenario, event: &EventArgs, typed: &Typed, said: &mut Said) {
    for p in &mut sc.profiles {
        if typed.user_cpu && p.request.cpu != event.user_cpu {
            said.warn(format!(
                "conflict: --user-cpu {} (flag) wins over profile {}'s cpu {} (values files)",
                event.user_cpu, p.name, p.request.cpu
            ));
            p.request.cpu = event.user_cpu;
        }
        if typed.user_memory_gib && p.request.memory_gib != event.user_memory_gib {
            said.warn(format!(
                "conflict: --user-memory-gib {} (flag) wins over profile {}'s memory {} GiB \
                 (values files)",
                event.user_memory_gib, p.name, p.request.memory_gib
            ));
            p.request.memory_gib = event.user_memory_gib;
        }
    }
}

fn run(cli: Cli, typed: &Typed) -> anyhow::Result<()> {
    match cli.command {
        Command::Plan {
            scenario,
            event,
            z2jh_values,
            values_key,
            profile_mix,
            pools,
            expect_error,
            target_p95,
            seeds,
            out,
            json,
            autoscaler,
        } => {
            let mut said = Said::default();
            let mut sc = match (&scenario, event.users) {
                (Some(path), None) => {
                    said.input("scenario", path.display().to_string());
                    load(path)?
                }
                (None, Some(users)) => {
                    event.check(users)?;
                    said.input("event", event.describe(users));
                    event.scenario(users)
                }
                (Some(_), Some(_)) => anyhow::bail!(
                    "give either a scenario file or --users (with the event flags), not both"
                ),
                (None, None) => anyhow::bail!(
                    "give a scenario file (e.g. sim/scenarios/class-burst.yaml) or describe the \
                     event: --users 300 --window 8m --user-cpu 0.5 --user-memory-gib 1.8 …"
                ),
            };
            if let Some(kind) = autoscaler {
                sc.autoscaler.kind = kind;
                said.input("--autoscaler", kind.name().to_string());
            }
            plan_pools::add_pools(&mut sc, &pools);
            let applied = apply_values(
                &z2jh_values,
                values_key.as_deref(),
                profile_mix.as_ref(),
                &mut sc,
                &mut said,
            )?;
            let (baseline, description) = match applied {
                Some(applied) => {
                    if event.users.is_some() {
                        flags_win(&mut sc, &event, typed, &mut said);
                    }
                    (applied.policy, applied.description)
                }
                None => plan::z2jh_as_shipped(),
            };
            for idle in plan_pools::idle_pools(&sc) {
                said.warn(format!(
                    "warning: pool {idle} is described, but no profile users pick runs on it \
                     (a profile's node selector must name the pool or one of its label: values)"
                ));
            }
            let parts = plan_pools::split(&sc);
            if parts.len() > 1 {
                for p in &parts {
                    said.input(
                        "pools",
                        format!(
                            "pool {}: {:.0}% of the users, simulated as its own cluster",
                            p.pool,
                            p.share * 100.0
                        ),
                    );
                }
            }
            let target = Target {
                p95_s: target_p95,
                seeds: seeds.unwrap_or(sc.seeds).max(1),
            };
            // Every pool's capacity first: a refusal before any run. A pool that holds the
            // expected users but not the margin's is planned at the largest margin it holds.
            let mut refusals = Vec::new();
            let mut margins = Vec::new();
            for part in &parts {
                let mut at_margin = part.scenario.clone();
                at_margin.forecast.actual_factor *= expect_error;
                let cap = plan::capacity::check(&at_margin)?;
                let mut margin = expect_error;
                if !cap.fits() {
                    let expected = plan::capacity::check(&part.scenario)?;
                    if expected.fits() && expected.peak_users > 0 {
                        margin = plan::capacity::largest_margin(&cap, &expected, expect_error);
                        said.warn(format!(
                            "pool {}: {} nodes hold the expected users ({} on at once at the \
                             peak) but not {expect_error}× them ({}): planned at {margin:.2}× \
                             instead, the most the pool holds. Raise the pool's max nodes for \
                             the full margin",
                            cap.pool, cap.max_nodes, expected.peak_users, cap.peak_users
                        ));
                    } else {
                        refusals.push(cap.refusal(&part.scenario, expect_error));
                    }
                } else if !cap.searchable() {
                    refusals.push(cap.too_large(expect_error));
                }
                margins.push(margin);
            }
            if !refusals.is_empty() {
                return Err(EventError(refusals.join("\n")).into());
            }
            let mut plans = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                let opts = plan::Options {
                    expect_error: margins[i],
                    progress: !json,
                };
                // z2jh's user placeholders follow singleuser's nodes: the first pool.
                let mut base = baseline.clone();
                if i > 0 || part.pool != sc.pools[0].name {
                    base.placeholders = PlaceholderMode::None;
                }
                let base = PolicySpec {
                    placeholders: resolve_n(&part.scenario, &base.placeholders, base.scheduler),
                    ..base
                };
                let p = plan::plan_with(&part.scenario, base, description.clone(), &target, &opts)?;
                plans.push((part, p));
            }
            let several = plans.len() > 1;
            let mut wrote = Vec::new();
            if let Some(dir) = &out {
                for (part, p) in &plans {
                    let dir = if several {
                        dir.join(&part.pool)
                    } else {
                        dir.clone()
                    };
                    let policies: Vec<PolicySpec> = std::iter::once(p.baseline.policy.clone())
                        .chain(p.recommended.iter().map(|r| r.policy.clone()))
                        .collect();
                    let runs = run_grid(&p.scenario, &policies, target.seeds, false)?;
                    let mut inputs = said.inputs.clone();
                    inputs.extend(flag_inputs(&pools, expect_error, &target));
                    let extra = report::html::Extra {
                        headline: Some(output::headline(p)),
                        plan_text: Some(output::render(p)),
                        values_yaml: Some(output::values_yaml(p)),
                        inputs,
                        warnings: said.warnings.clone(),
                        adoption: Some(output::adoption(p, baseline.scheduler)),
                    };
                    report::write_all_with(&dir, &p.scenario, &runs, &extra)
                        .with_context(|| format!("writing {}", dir.display()))?;
                    wrote.push(dir.join("report.html"));
                }
            }
            let text = if json {
                if several {
                    let v: Vec<serde_json::Value> = plans
                        .iter()
                        .map(|(part, p)| {
                            serde_json::json!({"pool": part.pool, "share": part.share, "plan": p})
                        })
                        .collect();
                    format!("{}\n", serde_json::json!({ "pools": v }))
                } else {
                    format!("{}\n", serde_json::to_string(&plans[0].1)?)
                }
            } else {
                let mut t = String::new();
                for (part, p) in &plans {
                    if several {
                        t += &format!(
                            "=== pool {} ({:.0}% of the users) ===\n",
                            part.pool,
                            part.share * 100.0
                        );
                    }
                    t += &output::render(p);
                    if p.recommended.is_some() {
                        t += "\nvalues.yaml for charts/hubpack (helm upgrade … -f this):\n---\n";
                        t += &output::values_yaml(p);
                        t += "\nz2jh values to adopt it (helm upgrade your hub … -f this):\n---\n";
                        t += &output::adoption(p, baseline.scheduler);
                    }
                    t += "\nThe scenario this plan ran (save it, e.g. as event.yaml; rerun: \
                          hubpack-sim compare event.yaml):\n---\n";
                    t += &output::scenario_yaml(p);
                    t.push('\n');
                }
                if several {
                    let ps: Vec<&plan::Plan> = plans.iter().map(|(_, p)| p).collect();
                    t += &output::total(&ps);
                }
                for w in &wrote {
                    t += &format!("wrote {}\n", w.display());
                }
                t
            };
            emit(&text)
        }
        Command::Run {
            common,
            scheduler,
            placeholders,
            no_prepull,
        } => {
            let scheduler = match scheduler {
                SchedulerArg::Spread => SchedulerKind::Spread,
                SchedulerArg::Z2jh => SchedulerKind::Z2jh,
                SchedulerArg::Hubpack => SchedulerKind::Hubpack,
            };
            let sc = load_with(&common)?;
            let policy = PolicySpec {
                scheduler,
                placeholders: resolve_n(&sc, &placeholders, scheduler),
                prepull: !no_prepull,
            };
            simulate(&sc, vec![policy], &common)
        }
        Command::Compare {
            common,
            z2jh_values,
            values_key,
            profile_mix,
        } => {
            let mut sc = load_with(&common)?;
            let mut policies = Vec::new();
            if let Some(applied) = apply_values(
                &z2jh_values,
                values_key.as_deref(),
                profile_mix.as_ref(),
                &mut sc,
                &mut Said::default(),
            )? {
                policies.push(applied.policy);
            }
            for p in grid(&sc) {
                if !policies.contains(&p) {
                    policies.push(p);
                }
            }
            simulate(&sc, policies, &common)
        }
    }
}

/// The plan's own flags, for report.html.
fn flag_inputs(pools: &[PoolArg], expect_error: f64, target: &Target) -> Vec<(String, String)> {
    let mut v = vec![
        ("--target-p95".to_string(), format!("{:.0} s", target.p95_s)),
        ("--seeds".to_string(), target.seeds.to_string()),
        ("--expect-error".to_string(), expect_error.to_string()),
    ];
    for p in pools {
        v.push((
            "--pool".to_string(),
            format!(
                "{}: {} CPU, {} GiB{}, boot {:.0} s, max {} nodes",
                p.name,
                p.cpu,
                p.memory_gib,
                p.extended
                    .iter()
                    .map(|(k, n)| format!(", {n} {k}"))
                    .collect::<String>(),
                p.boot_s,
                p.max_nodes
            ),
        ));
    }
    v
}

fn simulate(sc: &Scenario, policies: Vec<PolicySpec>, common: &Common) -> anyhow::Result<()> {
    let seeds = common.seeds.unwrap_or(sc.seeds).max(1);
    let started = Instant::now();
    let runs = run_grid(
        sc,
        &policies,
        seeds,
        !common.json && policies.len() as u64 * seeds > 20,
    )?;
    let elapsed = started.elapsed();
    let summary = match &common.out {
        Some(dir) => report::write_all(dir, sc, &runs)
            .with_context(|| format!("writing {}", dir.display()))?,
        None => report::summary::Summary::of(sc, &runs),
    };
    let text = if common.json {
        format!("{}\n", serde_json::to_string(&summary)?)
    } else {
        let events: u64 = runs.iter().flatten().map(|r| r.events).sum();
        format!(
            "{}\n{}{}{}{} runs, {} events in {:.2} s{}\n",
            report::headline(&summary),
            report::bound_lines(&summary),
            report::eviction_lines(&summary),
            report::table::render(&summary),
            runs.iter().map(Vec::len).sum::<usize>(),
            events,
            elapsed.as_secs_f64(),
            common
                .out
                .as_ref()
                .map(|d| format!("; wrote {}", d.display()))
                .unwrap_or_default()
        )
    };
    emit(&text)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
