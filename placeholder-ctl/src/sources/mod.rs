//! Arrival sources, all pure: configured events (one-off and cron), iCalendar feeds, and
//! event ConfigMaps, each turned into hubpack-core [`ScheduledEvent`]s tagged with where
//! they came from, so the forecast can be reported per source. Fetching a feed or watching
//! ConfigMaps is the adapter's job; this module only reads text.

pub mod configmap;
pub mod ics;
pub mod schedule;

pub use schedule::{EventSchedule, ScheduleError};

use crate::config::{CalendarConfig, EventConfig};
use hubpack_core::headroom::ScheduledEvent;
use hubpack_core::model::Millis;

/// Where an expected arrival comes from (the `source` label of the forecast metric).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// `events` in the config file.
    Config,
    /// A calendar feed, by its configured name.
    Calendar(String),
    /// An event ConfigMap, by `namespace/name`.
    ConfigMap(String),
    /// The learned background (EWMA, weekly profile, live rate).
    Background,
}

impl Source {
    /// The metric label: `config`, `calendar/<name>`, `configmap/<ns>/<name>`, `background`.
    pub fn label(&self) -> String {
        match self {
            Source::Config => "config".into(),
            Source::Calendar(n) => format!("calendar/{n}"),
            Source::ConfigMap(n) => format!("configmap/{n}"),
            Source::Background => "background".into(),
        }
    }
}

/// One expected event occurrence for one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedEvent {
    pub source: Source,
    pub pool: String,
    pub name: String,
    pub event: ScheduledEvent,
}

/// Occurrences of configured events (config file or ConfigMap) whose arrival window
/// overlaps `[from, to)`. Events whose time fields do not parse were refused earlier
/// (config) or reported (ConfigMap); here they are skipped.
pub fn expand_events(
    events: &[EventConfig],
    source: &Source,
    from: Millis,
    to: Millis,
) -> Vec<SourcedEvent> {
    let mut out = Vec::new();
    for e in events {
        let Ok(schedule) =
            EventSchedule::parse(e.start.as_deref(), e.schedule.as_deref(), &e.time_zone)
        else {
            continue;
        };
        let window = secs(e.arrival_window_seconds).max(1);
        for start in schedule.starts_between(from - window, to) {
            out.push(SourcedEvent {
                source: source.clone(),
                pool: e.pool.clone(),
                name: e.name.clone(),
                event: ScheduledEvent {
                    start,
                    window,
                    users: e.users,
                    weekly: false,
                },
            });
        }
    }
    out
}

/// Occurrences of a calendar feed's events overlapping `[from, to)`.
pub fn expand_calendar(
    cal: &CalendarConfig,
    text: &str,
    from: Millis,
    to: Millis,
) -> Result<(Vec<SourcedEvent>, Vec<String>), ics::IcsError> {
    expand_parsed(cal, &ics::parse_text(text)?, from, to)
}

/// [`expand_calendar`] of a document parsed when it was fetched.
pub fn expand_parsed(
    cal: &CalendarConfig,
    document: &icalendar::Calendar,
    from: Millis,
    to: Millis,
) -> Result<(Vec<SourcedEvent>, Vec<String>), ics::IcsError> {
    let window = secs(cal.arrival_window_seconds).max(1);
    let arrival = crate::config::parse_hh_mm(&cal.all_day_arrival).unwrap_or((9, 0));
    let found = ics::occurrences_arriving_in(
        document,
        &cal.time_zone,
        cal.default_users,
        arrival,
        from - window,
        to,
    )?;
    let events = found
        .occurrences
        .into_iter()
        .map(|o| SourcedEvent {
            source: Source::Calendar(cal.name.clone()),
            pool: cal.pool.clone(),
            name: o.summary,
            event: ScheduledEvent {
                start: o.start,
                window,
                users: o.users,
                weekly: false,
            },
        })
        .collect();
    Ok((events, found.problems))
}

/// Seconds (config) to milliseconds (core), rounded.
pub fn secs(s: f64) -> Millis {
    (s * 1000.0).round() as Millis
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn an_event_just_started_still_counts_its_remaining_window() {
        let e = EventConfig {
            name: "w".into(),
            pool: "default".into(),
            start: Some("1970-01-01T00:10:00Z".into()),
            schedule: None,
            time_zone: "UTC".into(),
            users: 100.0,
            arrival_window_seconds: 600.0,
            duration_seconds: None,
        };
        // Queried from minute 15: the event started at 10 and arrives until 20.
        let got = expand_events(&[e], &Source::Config, 15 * 60_000, 25 * 60_000);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].event.start, 10 * 60_000);
        let mu = got[0].event.expected_in(15 * 60_000, 25 * 60_000);
        assert!((mu - 50.0).abs() < 1e-9, "{mu}");
    }
}
