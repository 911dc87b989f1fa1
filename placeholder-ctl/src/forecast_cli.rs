//! `hubpack-placeholder-ctl plan`: the forecast and placeholder target per pool for the
//! coming hours, or for hours from any moment (`--from "2026-12-14T08:00"` in
//! `--time-zone`: what it will do on exam day), from the config's events, its calendar feeds
//! and (with a cluster) the event ConfigMaps and the controller's checkpoint: its learned
//! lead time and background. Writes nothing. Offline (or without a checkpoint) the table
//! shows scheduled arrivals plus each pool's `background.initialUsersPerHour` and the
//! configured lead time (`leadTime.initialSeconds` for `lead: auto`); always with no free
//! warm seats (an empty pool).

use crate::adapter::calendar;
use crate::checkpoint::Checkpoint;
use crate::config::{Config, Lead};
use crate::decide::Controller;
use crate::forecast::forecast_pool;
use crate::sources::{Source, SourcedEvent, configmap, expand_calendar, expand_events, secs};
use hubpack_core::headroom::LearnedArrivals;
use hubpack_core::model::Millis;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Gathers events from every source over `[from, to)`; problems are returned as lines.
pub async fn gather(
    cfg: &Config,
    client: Option<kube::Client>,
    from: Millis,
    to: Millis,
) -> (Vec<SourcedEvent>, Vec<String>) {
    let mut events = expand_events(&cfg.events, &Source::Config, from, to);
    let mut problems = Vec::new();
    for cal in &cfg.calendars {
        match calendar::fetch(cal).await {
            Ok(text) => match expand_calendar(cal, &text, from, to) {
                Ok((found, bad)) => {
                    events.extend(found);
                    problems.extend(
                        bad.into_iter()
                            .map(|b| format!("calendar {}: {b}", cal.name)),
                    );
                }
                Err(e) => problems.push(format!("calendar {}: {e}", cal.name)),
            },
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(client) = client.filter(|_| cfg.event_config_maps.enabled) {
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, &cfg.namespace());
        let lp = kube::api::ListParams::default().labels(configmap::EVENTS_LABEL);
        match api.list(&lp).await {
            Ok(list) => {
                let pools: BTreeSet<&str> = cfg.pools.iter().map(|p| p.name.as_str()).collect();
                for cm in list.items {
                    let name = format!(
                        "{}/{}",
                        cm.metadata.namespace.clone().unwrap_or_default(),
                        cm.metadata.name.clone().unwrap_or_default()
                    );
                    let (ok, bad) = configmap::parse_events(&cm.data.unwrap_or_default(), &pools);
                    events.extend(expand_events(
                        &ok,
                        &Source::ConfigMap(name.clone()),
                        from,
                        to,
                    ));
                    problems.extend(
                        bad.into_iter()
                            .map(|b| format!("configmap {name} {}: {}", b.field, b.message)),
                    );
                }
            }
            Err(e) => problems.push(format!("cannot list event ConfigMaps: {e}")),
        }
    }
    (events, problems)
}

/// What the cluster's controller has learned, as `plan` uses it: per pool, the lead time and
/// the background (its rate and weekly shape; the live rate says nothing about another day).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Learned {
    pub pools: BTreeMap<String, (Millis, LearnedArrivals)>,
}

impl Learned {
    /// From the controller's checkpoint, read under `cfg` (pools it does not name keep
    /// their configured values).
    pub fn from_checkpoint(cfg: &Config, saved: &Checkpoint) -> Learned {
        let mut controller = Controller::new(cfg);
        let restored = controller.restore(&saved.pools);
        let pools = restored
            .into_iter()
            .filter_map(|name| {
                let background = controller.background_of(&name)?;
                Some((name.clone(), (controller.lead_of(cfg, &name), background)))
            })
            .collect();
        Learned { pools }
    }
}

/// When the table starts: `from` as a local time without offset in `time_zone`
/// (`2026-12-14T08:00`, seconds optional; the zone's rules on that day, daylight saving
/// included), or an RFC 3339 time with its own offset; `now` when absent.
pub fn plan_start(from: Option<&str>, time_zone: &str, now: Millis) -> Result<Millis, String> {
    let tz = zone(time_zone)?;
    let Some(text) = from.map(str::trim) else {
        return Ok(now);
    };
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let civil: jiff::civil::DateTime = text.parse().map_err(|e| {
        format!("--from {text:?} is neither a local time like 2026-12-14T08:00 nor an RFC 3339 time: {e}")
    })?;
    civil
        .to_zoned(tz)
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("--from {text:?} in {time_zone}: {e}"))
}

/// An IANA time zone by name (`UTC` included).
pub fn zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name).map_err(|e| {
        format!("--time-zone {name:?} is not an IANA time zone (e.g. Europe/Berlin): {e}")
    })
}

/// The table for `hours` from `now`, one row per pool every `step` ms, times in UTC.
pub fn table(
    cfg: &Config,
    events: &[SourcedEvent],
    now: Millis,
    hours: f64,
    step: Millis,
) -> String {
    table_in(
        cfg,
        events,
        now,
        hours,
        step,
        &jiff::tz::TimeZone::UTC,
        &Learned::default(),
    )
}

/// The table for `hours` from `now`, one row per pool every `step` ms, times shown in `tz`,
/// with what was `learned` where known.
pub fn table_in(
    cfg: &Config,
    events: &[SourcedEvent],
    now: Millis,
    hours: f64,
    step: Millis,
    tz: &jiff::tz::TimeZone,
    learned: &Learned,
) -> String {
    let sizes = match cfg.pool_sizes() {
        Ok(s) => s,
        Err(e) => return format!("{e}\n"),
    };
    let end = now + (hours * 3_600_000.0) as Millis;
    let mut out = String::new();
    let zone_name = tz.iana_name().unwrap_or("UTC");
    let _ = writeln!(
        out,
        "{:<20} {:<12} {:>8} {:>9} {:>9} {:>12}  sources",
        format!("time ({zone_name})"),
        "pool",
        "lead s",
        "expected",
        "headroom",
        "placeholders"
    );
    let mut t = now;
    while t <= end {
        for (pool, size) in cfg.pools.iter().zip(&sizes) {
            let configured = match pool.lead {
                Lead::Seconds(s) => secs(s),
                Lead::Auto => secs(cfg.lead_time.initial_seconds),
            };
            let (lead, background) = learned.pools.get(&pool.name).cloned().unwrap_or((
                configured,
                LearnedArrivals {
                    rate: pool.background.initial_rate_per_ms(),
                    ..LearnedArrivals::default()
                },
            ));
            let f = forecast_pool(t, lead, pool, size, events, background, &BTreeMap::new());
            let sources: Vec<String> = f
                .per_source
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| format!("{k}={v:.1}"))
                .collect();
            let time = jiff::Timestamp::from_millisecond(t)
                .map(|ts| {
                    ts.to_zoned(tz.clone())
                        .strftime("%Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<20} {:<12} {:>8.0} {:>9.1} {:>9.1} {:>5} × {:<4}  {}",
                time,
                pool.name,
                lead as f64 / 1000.0,
                f.expected,
                f.headroom,
                f.total_target(),
                size.seats_each,
                sources.join(" ")
            );
        }
        t += step.max(60_000);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_placeholders_a_lead_time_before_an_event() {
        let cfg = Config::parse(
            "pools:\n\
             - name: default\n\
             \x20 allNodes: true\n\
             \x20 perUser: {cpu: \"1\", memory: 1Gi}\n\
             \x20 usersPerPlaceholder: 10\n\
             \x20 lead: 600\n\
             \x20 freshNode: {allocatable: {cpu: \"16\", memory: 64Gi, pods: \"110\"}}\n\
             events:\n\
             - {name: class, pool: default, users: 50, start: \"2026-12-01T09:00:00Z\", arrivalWindowSeconds: 300}\n",
            "t",
        )
        .unwrap();
        let now = jiff::Timestamp::from_millisecond(0).unwrap();
        let start = "2026-12-01T08:30:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let _ = now;
        let events = expand_events(
            &cfg.events,
            &Source::Config,
            start - 300_000,
            start + 7_200_000,
        );
        let t = table(&cfg, &events, start, 1.0, 15 * 60_000);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 1 + 5, "{t}");
        // 08:30: nothing within 10 min; 08:45 also not (the class starts at 09:00);
        // 09:00: 50 users + 1.64·√50 = 61.6 → 7 placeholders of 10.
        assert!(lines[1].contains("    0 × 10"), "{t}");
        assert!(
            lines[3].starts_with("2026-12-01 09:00") && lines[3].contains("    7 × 10"),
            "{t}"
        );
        assert!(lines[3].contains("config=50.0"), "{t}");
    }

    fn exam_day() -> Config {
        Config::parse(
            "pools:\n\
             - name: default\n\
             \x20 allNodes: true\n\
             \x20 perUser: {cpu: \"1\", memory: 1Gi}\n\
             \x20 usersPerPlaceholder: 10\n\
             \x20 lead: 600\n\
             \x20 headroom: {z: 0}\n\
             \x20 background: {initialUsersPerHour: 60}\n\
             \x20 freshNode: {allocatable: {cpu: \"16\", memory: 64Gi, pods: \"110\"}}\n\
             events:\n\
             - {name: exam, pool: default, users: 200, start: \"2026-12-14T09:00:00+01:00\", arrivalWindowSeconds: 600}\n",
            "t",
        )
        .unwrap()
    }

    #[test]
    fn from_is_a_local_time_in_the_zone_or_an_rfc3339_time() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        assert_eq!(
            plan_start(Some("2026-12-14T08:00"), "Europe/Berlin", 0),
            Ok(at("2026-12-14T07:00:00Z"))
        );
        // Summer time: +2.
        assert_eq!(
            plan_start(Some("2026-07-01T08:00:30"), "Europe/Berlin", 0),
            Ok(at("2026-07-01T06:00:30Z"))
        );
        assert_eq!(
            plan_start(Some("2026-12-14T08:00"), "UTC", 0),
            Ok(at("2026-12-14T08:00:00Z"))
        );
        assert_eq!(
            plan_start(Some("2026-12-14T08:00:00-05:00"), "Europe/Berlin", 0),
            Ok(at("2026-12-14T13:00:00Z"))
        );
        assert_eq!(plan_start(None, "UTC", 42), Ok(42));
        let e = plan_start(Some("exam day"), "UTC", 0).unwrap_err();
        assert!(e.contains("2026-12-14T08:00"), "{e}");
        let e = plan_start(Some("2026-12-14T08:00"), "Mars/Olympus", 0).unwrap_err();
        assert!(e.contains("--time-zone"), "{e}");
    }

    #[test]
    fn plan_from_exam_day_shows_the_targets_around_the_exam_in_its_zone() {
        let cfg = exam_day();
        let tz = zone("Europe/Berlin").unwrap();
        let from = plan_start(Some("2026-12-14T08:00"), "Europe/Berlin", 0).unwrap();
        let events = expand_events(
            &cfg.events,
            &Source::Config,
            from - 3_600_000,
            from + 4 * 3_600_000,
        );
        let t = table_in(
            &cfg,
            &events,
            from,
            1.5,
            15 * 60_000,
            &tz,
            &Learned::default(),
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("time (Europe/Berlin)"), "{t}");
        assert_eq!(lines.len(), 1 + 7, "{t}");
        // 08:00 local: only the assumed background, 60 an hour = 10 over the 10-min lead.
        assert!(lines[1].starts_with("2026-12-14 08:00"), "{t}");
        assert!(lines[1].contains("background=10.0"), "{t}");
        assert!(lines[1].contains("    1 × 10"), "{t}");
        // 08:45: the lead (10 min) ends before the exam.
        assert!(lines[4].starts_with("2026-12-14 08:45"), "{t}");
        assert!(!lines[4].contains("config="), "{t}");
        // 09:00: the whole exam: 200 + 10 → 21 placeholders of 10.
        assert!(lines[5].starts_with("2026-12-14 09:00"), "{t}");
        assert!(lines[5].contains("config=200.0"), "{t}");
        assert!(lines[5].contains("   21 × 10"), "{t}");
        // 09:15: over.
        assert!(lines[6].contains("    1 × 10"), "{t}");
    }

    #[test]
    fn with_the_checkpoint_plan_uses_the_learned_lead_and_background() {
        let cfg = Config::parse(
            "leadTime: {reactionSeconds: 15}\n\
             pools:\n\
             - name: default\n\
             \x20 allNodes: true\n\
             \x20 perUser: {cpu: \"1\", memory: 1Gi}\n\
             \x20 usersPerPlaceholder: 10\n\
             \x20 headroom: {z: 0}\n\
             \x20 background: {initialUsersPerHour: 600}\n\
             \x20 freshNode: {allocatable: {cpu: \"16\", memory: 64Gi, pods: \"110\"}}\n",
            "t",
        )
        .unwrap();
        let mut saved = Checkpoint::default();
        let pool = saved.pools.entry("default".into()).or_default();
        // Five scale-ups of 285 s: 300 s with the reaction; 36 users an hour observed.
        pool.reconciler.lead_samples = vec![285_000; 5];
        pool.reconciler.learner.background_arrivals = 36.0;
        pool.reconciler.learner.background_observed_ms = 3_600_000.0;
        pool.reconciler.learner.last = Some(0);
        let learned = Learned::from_checkpoint(&cfg, &saved);
        let t = table_in(
            &cfg,
            &[],
            0,
            0.0,
            60_000,
            &jiff::tz::TimeZone::UTC,
            &learned,
        );
        let row = t.lines().nth(1).unwrap();
        // 36 an hour over 300 s: 3 users (not the initial 600 an hour over 600 s: 100).
        assert!(row.contains(" 300 "), "{t}");
        assert!(row.contains("background=3.0"), "{t}");
        let t = table(&cfg, &[], 0, 0.0, 60_000);
        assert!(
            t.lines().nth(1).unwrap().contains("background=100.0"),
            "{t}"
        );
    }
}
