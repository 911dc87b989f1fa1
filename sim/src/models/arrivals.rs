//! Users arriving: Poisson with a time-varying rate (thinning), class bursts of N users over
//! a window, weekly classes, and CSV trace replay. All sessions are drawn up front from
//! their own seeded stream, so every policy sees the same users for the same seed.

use crate::clock::{HOUR, MINUTE, secs};
use crate::models::dist;
use crate::scenario::{ArrivalSpec, PoissonSpec, Scenario};
use crate::session::Session;
use hubpack_core::headroom::ScheduledEvent;
use hubpack_core::model::Millis;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const DAY: Millis = 24 * HOUR;

#[derive(Debug, thiserror::Error)]
pub enum ArrivalError {
    #[error("cannot read trace {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("trace {path} line {line}: {message} (expected `arrival_s,duration_s,profile`)")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
}

/// Every session of the scenario for `seed`, sorted by arrival.
pub fn generate(s: &Scenario, seed: u64) -> Result<Vec<Session>, ArrivalError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xA11_1CE5);
    let end = secs(s.duration_h * 3600.0);
    let total_weight: f64 = s.profiles.iter().map(|p| p.weight.max(0.0)).sum();
    let mut out = Vec::new();
    let mut pick = |rng: &mut ChaCha8Rng, named: &Option<String>| -> usize {
        if let Some(i) = named.as_deref().and_then(|n| s.profile_index(n)) {
            return i;
        }
        let mut x = rng.random::<f64>() * total_weight;
        for (i, p) in s.profiles.iter().enumerate() {
            x -= p.weight.max(0.0);
            if x < 0.0 {
                return i;
            }
        }
        0
    };
    for spec in &s.arrivals {
        match spec {
            ArrivalSpec::Poisson(p) => {
                let mut t = 0.0f64;
                let max_rate = p.rate_per_h / 3.6e6
                    * (1.0 + p.diurnal_amplitude.abs())
                    * p.weekend_factor.max(1.0);
                if max_rate <= 0.0 {
                    continue;
                }
                loop {
                    t += -rng.random::<f64>().max(f64::MIN_POSITIVE).ln() / max_rate;
                    let at = t as Millis;
                    if at >= end {
                        break;
                    }
                    if rng.random::<f64>() * max_rate <= poisson_rate(p, at) {
                        let profile = pick(&mut rng, &p.profile);
                        let active = dist::sample(&s.hub.session, &mut rng);
                        out.push(Session {
                            arrival: at,
                            active,
                            profile,
                        });
                    }
                }
            }
            ArrivalSpec::Burst(b) => {
                let start = secs(b.at_h * 3600.0);
                burst(
                    &mut out,
                    &mut rng,
                    s,
                    start,
                    actual_users(s, b.users),
                    secs(b.over_min * 60.0),
                    &b.profile,
                    &mut pick,
                );
            }
            ArrivalSpec::Weekly(w) => {
                for day_start in (0..end).step_by(DAY as usize) {
                    let weekday = ((day_start / DAY) % 7) as u8;
                    if w.days.contains(&weekday) {
                        let start = day_start + secs(w.at_h * 3600.0);
                        if start < end {
                            burst(
                                &mut out,
                                &mut rng,
                                s,
                                start,
                                actual_users(s, w.users),
                                secs(w.over_min * 60.0),
                                &w.profile,
                                &mut pick,
                            );
                        }
                    }
                }
            }
            ArrivalSpec::Trace(t) => out.extend(read_trace(s, &t.csv)?),
        }
    }
    out.sort_by_key(|x| x.arrival);
    Ok(out)
}

/// The users who really come to an event the calendar announces with `planned`.
fn actual_users(s: &Scenario, planned: usize) -> usize {
    (planned as f64 * s.forecast.actual_factor.max(0.0)).round() as usize
}

/// Users per ms at `t` (hour 0 = Monday 00:00).
pub fn poisson_rate(p: &PoissonSpec, t: Millis) -> f64 {
    let hour = (t % DAY) as f64 / HOUR as f64;
    let shape =
        1.0 + p.diurnal_amplitude * (2.0 * std::f64::consts::PI * (hour - p.peak_h) / 24.0).cos();
    let weekend = if (t / DAY) % 7 >= 5 {
        p.weekend_factor
    } else {
        1.0
    };
    (p.rate_per_h / 3.6e6 * shape * weekend).max(0.0)
}

#[allow(clippy::too_many_arguments)]
fn burst(
    out: &mut Vec<Session>,
    rng: &mut ChaCha8Rng,
    s: &Scenario,
    start: Millis,
    users: usize,
    window: Millis,
    profile: &Option<String>,
    pick: &mut impl FnMut(&mut ChaCha8Rng, &Option<String>) -> usize,
) {
    for _ in 0..users {
        let at = start + (rng.random::<f64>() * window.max(1) as f64) as Millis;
        let p = pick(rng, profile);
        let active = dist::sample(&s.hub.session, rng);
        out.push(Session {
            arrival: at,
            active,
            profile: p,
        });
    }
}

fn read_trace(s: &Scenario, path: &std::path::Path) -> Result<Vec<Session>, ArrivalError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ArrivalError::Read {
        path: shown.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| ArrivalError::Line {
            path: shown.clone(),
            line: i + 1,
            message,
        };
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() != 3 {
            return Err(err(format!("{} columns", cols.len())));
        }
        let arrival: f64 = cols[0]
            .parse()
            .map_err(|e| err(format!("arrival_s: {e}")))?;
        let duration: f64 = cols[1]
            .parse()
            .map_err(|e| err(format!("duration_s: {e}")))?;
        let profile = s
            .profile_index(cols[2])
            .ok_or_else(|| err(format!("unknown profile {:?}", cols[2])))?;
        out.push(Session {
            arrival: secs(arrival),
            active: secs(duration),
            profile,
        });
    }
    Ok(out)
}

/// The scenario's scheduled events as the predictive controller knows them (a calendar);
/// Poisson background is learned, not told.
pub fn scheduled_events(s: &Scenario) -> Vec<ScheduledEvent> {
    if let Some(calendar) = &s.forecast.calendar {
        return calendar
            .iter()
            .map(|e| ScheduledEvent {
                start: secs(e.at_h * 3600.0),
                window: secs(e.over_min * 60.0).max(1),
                users: e.users,
                weekly: false,
            })
            .collect();
    }
    let mut out = Vec::new();
    for spec in &s.arrivals {
        match spec {
            ArrivalSpec::Burst(b) => out.push(ScheduledEvent {
                start: secs(b.at_h * 3600.0),
                window: secs(b.over_min * 60.0).max(MINUTE / 60),
                users: b.users as f64,
                weekly: false,
            }),
            ArrivalSpec::Weekly(w) => {
                for &d in &w.days {
                    out.push(ScheduledEvent {
                        start: i64::from(d) * DAY + secs(w.at_h * 3600.0),
                        window: secs(w.over_min * 60.0).max(1),
                        users: w.users as f64,
                        weekly: true,
                    });
                }
            }
            ArrivalSpec::Poisson(_) | ArrivalSpec::Trace(_) => {}
        }
    }
    out
}
