//! What a static seat budget costs on a scenario: hubpack-sim, with the fitted parameters,
//! sweeps the budget of hubpack's static N-user placeholders, of node-sized ones under
//! hubpack-scheduler, and of z2jh's per-user placeholders from none to twice z2jh's, and
//! places z2jh as shipped and as 2i2c tunes it, and the predictive controller, on the same
//! p95-start / node-hours plane. Budgets meeting the goal against the simulated z2jh
//! stacks are listed: a static budget buys start time with seats held for the whole run, so
//! cheap and fast together takes timing, which is what the predictive controller adds.

use crate::metrics::{finite_sorted, median};
use crate::plan::{Plan, Stack};
use crate::simulate::{self, SimParams};
use hubpack_sim::scenario::{PlaceholderMode, PolicySpec, Scenario, SchedulerKind};
use hubpack_sim::stats::quantile;

/// One policy's medians over the seeds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Point {
    /// `hubpack_static`, `hubpack_node_sized`, `z2jh_per_user`, or a stack's key.
    pub family: String,
    /// Seats the placeholders hold (None: sized by the controller).
    pub seats: Option<usize>,
    pub p95_start_s: f64,
    pub node_hours: f64,
    pub placement_hol_users: f64,
}

/// The goal's bounds, from the simulated z2jh stacks: p95 at most half of z2jh's and at
/// most nuser's, node-hours at most either's, no head-of-line-blocked user.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Goal {
    pub max_p95_start_s: f64,
    pub max_node_hours: f64,
}

impl Goal {
    pub fn met_by(&self, p: &Point) -> bool {
        p.p95_start_s <= self.max_p95_start_s
            && p.node_hours <= self.max_node_hours
            && p.placement_hol_users == 0.0
    }
}

/// A family of static budgets: one scheduler, placeholders of one size.
struct Family {
    name: &'static str,
    scheduler: SchedulerKind,
    /// Users per placeholder.
    each: usize,
}

impl Family {
    fn policy(&self, pods: usize) -> PolicySpec {
        let placeholders = match (pods, self.scheduler) {
            (0, _) => PlaceholderMode::None,
            (k, SchedulerKind::Z2jh) if self.each == 1 => PlaceholderMode::PerUser { k },
            (k, _) => PlaceholderMode::NUser {
                n: Some(self.each as i64),
                k,
            },
        };
        PolicySpec {
            scheduler: self.scheduler,
            placeholders,
            prepull: true,
        }
    }
}

/// hubpack's static placeholders as the bench runs them (N users each), hubpack-scheduler
/// with node-sized ones (the 2i2c shape), and z2jh's per-user ones.
fn families(plan: &Plan) -> [Family; 3] {
    let (_, each) = plan.static_n_user();
    [
        Family {
            name: "hubpack_static",
            scheduler: SchedulerKind::Hubpack,
            each,
        },
        Family {
            name: "hubpack_node_sized",
            scheduler: SchedulerKind::Hubpack,
            each: plan.seats_per_node,
        },
        Family {
            name: "z2jh_per_user",
            scheduler: SchedulerKind::Z2jh,
            each: 1,
        },
    ]
}

fn point(
    sc: &Scenario,
    family: &str,
    seats: Option<usize>,
    policy: PolicySpec,
    seeds: u64,
    params: &SimParams,
) -> Result<Point, String> {
    let runs = simulate::runs_of_policy(sc, policy, seeds, params)?;
    let med = |f: &dyn Fn(&hubpack_sim::outcome::RunResult) -> f64| {
        median(&runs.iter().map(f).collect::<Vec<_>>())
    };
    Ok(Point {
        family: family.into(),
        seats,
        p95_start_s: med(&|r| quantile(&finite_sorted(&simulate::waits(r)), 0.95)),
        node_hours: med(&|r| r.node_hours),
        placement_hol_users: med(&|r| simulate::placement_hol(r) as f64),
    })
}

/// The sweep (every family, budgets from none to twice z2jh's, in steps of one placeholder
/// or a thirtieth of z2jh's budget, whichever is more) and the stacks' points, and the goal
/// they are judged by.
pub fn sweep(
    sc: &Scenario,
    plan: &Plan,
    seeds: u64,
    params: &SimParams,
) -> Result<(Vec<Point>, Goal), String> {
    let mut points = Vec::new();
    for family in families(plan) {
        let step = family.each.max(plan.per_user_seats / 30).max(1);
        for seats in (0..=2 * plan.per_user_seats).step_by(step) {
            let pods = seats.div_ceil(family.each);
            points.push(point(
                sc,
                family.name,
                Some(pods * family.each),
                family.policy(pods),
                seeds,
                params,
            )?);
        }
    }
    let stack = |s: Stack, seats| {
        point(
            sc,
            s.key(),
            seats,
            simulate::policy(sc, plan, s),
            seeds,
            &params.for_stack(s),
        )
    };
    let z2jh = stack(Stack::Z2jh, Some(plan.per_user_seats))?;
    let nuser = stack(Stack::Z2jhNuser, Some(plan.seats_per_node))?;
    let goal = Goal {
        max_p95_start_s: (z2jh.p95_start_s / 2.0).min(nuser.p95_start_s),
        max_node_hours: z2jh.node_hours.min(nuser.node_hours),
    };
    points.push(z2jh);
    points.push(nuser);
    points.push(stack(Stack::HubpackPredictive, None)?);
    Ok((points, goal))
}

/// `frontier.csv`, one row a point.
pub fn csv(points: &[Point], goal: &Goal) -> String {
    let mut out =
        String::from("family,seats,p95_start_s,node_hours,placement_hol_users,meets_goal\n");
    for p in points {
        out.push_str(&format!(
            "{},{},{:.1},{:.3},{},{}\n",
            p.family,
            p.seats.map(|s| s.to_string()).unwrap_or_default(),
            p.p95_start_s,
            p.node_hours,
            p.placement_hol_users,
            goal.met_by(p)
        ));
    }
    out
}

/// What the sweep says, in a sentence for the bench's log.
pub fn verdict(points: &[Point], goal: &Goal) -> String {
    let meeting: Vec<String> = points
        .iter()
        .filter(|p| goal.met_by(p))
        .map(|p| match p.seats {
            Some(s) => format!("{} {s} seats", p.family),
            None => p.family.clone(),
        })
        .collect();
    format!(
        "goal in the simulator (p95 ≤ {:.0} s, node-hours ≤ {:.2}, no HOL): met by {}",
        goal.max_p95_start_s,
        goal.max_node_hours,
        if meeting.is_empty() {
            "none".to_string()
        } else {
            meeting.join(", ")
        }
    )
}
