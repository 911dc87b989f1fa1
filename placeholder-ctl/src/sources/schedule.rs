//! Configured events in time: a one-off start (RFC 3339) or a cron schedule evaluated in an
//! IANA time zone (croner on jiff, so daylight-saving changes move the UTC time, not the
//! local one).

use croner::Cron;
use hubpack_core::model::Millis;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use std::str::FromStr;

/// At most this many occurrences of one cron schedule are expanded per query (a
/// `* * * * *` schedule over a day is 1,440).
const MAX_OCCURRENCES: usize = 20_000;

#[derive(Debug, Clone)]
pub enum EventSchedule {
    OneOff(Millis),
    Cron { cron: Box<Cron>, tz: TimeZone },
}

/// What is wrong with an event's time fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleError {
    pub field: &'static str,
    pub message: String,
    pub fix: &'static str,
}

impl EventSchedule {
    /// An event's time fields (`start`, `schedule`, `timeZone`) parsed; exactly one of
    /// `start` and `schedule` is expected (the config checks that), `start` wins.
    pub fn parse(
        start: Option<&str>,
        schedule: Option<&str>,
        time_zone: &str,
    ) -> Result<EventSchedule, ScheduleError> {
        if let Some(start) = start {
            let t = Timestamp::from_str(start).map_err(|err| ScheduleError {
                field: "start",
                message: format!("({start}) is not an RFC 3339 time: {err}"),
                fix: "write it with an offset, e.g. 2026-12-01T09:00:00+01:00 or 2026-12-01T08:00:00Z",
            })?;
            return Ok(EventSchedule::OneOff(t.as_millisecond()));
        }
        let pattern = schedule.unwrap_or_default();
        // croner reads a sixth leading field as seconds: `* * * * * *` would be an event
        // every second, never what a course schedule means.
        let fields = pattern.split_whitespace().count();
        if fields != 5 {
            return Err(ScheduleError {
                field: "schedule",
                message: format!("({pattern}) has {fields} fields, not 5"),
                fix: "use 5 fields (minute hour day-of-month month day-of-week), e.g. \"0 9 * * MON-FRI\"",
            });
        }
        let cron = Cron::from_str(pattern).map_err(|err| ScheduleError {
            field: "schedule",
            message: format!("({pattern}) is not a cron expression: {err}"),
            fix: "use 5 fields (minute hour day-of-month month day-of-week), e.g. \"0 9 * * MON-FRI\"",
        })?;
        let tz = TimeZone::get(time_zone).map_err(|err| ScheduleError {
            field: "timeZone",
            message: format!("({time_zone}) is not a known IANA time zone: {err}"),
            fix: "use e.g. UTC or Europe/Berlin",
        })?;
        Ok(EventSchedule::Cron {
            cron: Box::new(cron),
            tz,
        })
    }

    /// Starts in `[from, to)`, ascending.
    pub fn starts_between(&self, from: Millis, to: Millis) -> Vec<Millis> {
        match self {
            EventSchedule::OneOff(t) => {
                if (from..to).contains(t) {
                    vec![*t]
                } else {
                    Vec::new()
                }
            }
            EventSchedule::Cron { cron, tz } => {
                let Ok(start) = Timestamp::from_millisecond(from) else {
                    return Vec::new();
                };
                // Inclusive of `from`: an occurrence exactly at it counts.
                let zoned = Zoned::new(start, tz.clone());
                cron.iter_from(zoned, croner::Direction::Forward)
                    .map(|z| z.timestamp().as_millisecond())
                    .take_while(|&t| t < to)
                    .take(MAX_OCCURRENCES)
                    .collect()
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn ev(
        start: Option<&str>,
        schedule: Option<&str>,
        tz: &str,
    ) -> Result<EventSchedule, ScheduleError> {
        EventSchedule::parse(start, schedule, tz)
    }

    fn ms(s: &str) -> Millis {
        Timestamp::from_str(s).unwrap().as_millisecond()
    }

    #[test]
    fn a_one_off_event_has_one_start() {
        let s = ev(Some("2026-12-01T09:00:00+01:00"), None, "UTC").unwrap();
        let t = ms("2026-12-01T08:00:00Z");
        assert_eq!(s.starts_between(t - 1, t + 1), vec![t]);
        assert!(s.starts_between(t + 1, t + 10).is_empty());
    }

    #[test]
    fn cron_follows_its_time_zone_across_daylight_saving() {
        // 09:00 Berlin on weekdays: 08:00 UTC in winter, 07:00 UTC in summer.
        let s = ev(None, Some("0 9 * * MON-FRI"), "Europe/Berlin").unwrap();
        let winter = s.starts_between(ms("2026-01-05T00:00:00Z"), ms("2026-01-10T00:00:00Z"));
        assert_eq!(winter.len(), 5);
        assert_eq!(winter[0], ms("2026-01-05T08:00:00Z"));
        let summer = s.starts_between(ms("2026-07-06T00:00:00Z"), ms("2026-07-13T00:00:00Z"));
        assert_eq!(summer.len(), 5, "weekends skipped");
        assert_eq!(summer[0], ms("2026-07-06T07:00:00Z"));
    }

    #[test]
    fn cron_start_is_inclusive() {
        let s = ev(None, Some("30 14 * * *"), "UTC").unwrap();
        let t = ms("2026-03-01T14:30:00Z");
        assert_eq!(s.starts_between(t, t + 1), vec![t]);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = ev(Some("tomorrow"), None, "UTC").unwrap_err();
        assert_eq!(e.field, "start");
        let e = ev(None, Some("0 25 * * *"), "UTC").unwrap_err();
        assert_eq!(e.field, "schedule");
        let e = ev(None, Some("0 9 * * *"), "Nowhere/City").unwrap_err();
        assert_eq!(e.field, "timeZone");
    }

    #[test]
    fn a_six_field_cron_is_refused() {
        for pattern in ["* * * * * *", "0 0 9 * * MON", "0 9 * *"] {
            let e = ev(None, Some(pattern), "UTC").unwrap_err();
            assert_eq!(e.field, "schedule", "{pattern}");
            assert!(e.message.contains("not 5"), "{pattern}: {}", e.message);
        }
        ev(None, Some("0 9 * * MON-FRI"), "UTC").unwrap();
    }
}
