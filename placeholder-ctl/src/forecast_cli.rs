//! `hubpack-placeholder-ctl plan`: the forecast and placeholder target per pool for the
//! coming hours, from the config's events, its calendar feeds and (with a cluster) the
//! event ConfigMaps. Writes nothing. The learned background is not known offline, so the
//! table shows scheduled arrivals only, with no free warm seats (an empty pool), and the
//! configured lead time (`leadTime.initialSeconds` for `lead: auto`).

use crate::adapter::calendar;
use crate::config::{Config, Lead};
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

/// The table for `hours` from `now`, one row per pool every `step` ms.
pub fn table(
    cfg: &Config,
    events: &[SourcedEvent],
    now: Millis,
    hours: f64,
    step: Millis,
) -> String {
    let sizes = match cfg.pool_sizes() {
        Ok(s) => s,
        Err(e) => return format!("{e}\n"),
    };
    let end = now + (hours * 3_600_000.0) as Millis;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<12} {:>8} {:>9} {:>9} {:>12}  sources",
        "time (UTC)", "pool", "lead s", "expected", "headroom", "placeholders"
    );
    let mut t = now;
    while t <= end {
        for (pool, size) in cfg.pools.iter().zip(&sizes) {
            let lead = match pool.lead {
                Lead::Seconds(s) => secs(s),
                Lead::Auto => secs(cfg.lead_time.initial_seconds),
            };
            let f = forecast_pool(
                t,
                lead,
                pool,
                size,
                events,
                LearnedArrivals::default(),
                &BTreeMap::new(),
            );
            let sources: Vec<String> = f
                .per_source
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| format!("{k}={v:.1}"))
                .collect();
            let time = jiff::Timestamp::from_millisecond(t)
                .map(|ts| ts.strftime("%Y-%m-%d %H:%M").to_string())
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
}
