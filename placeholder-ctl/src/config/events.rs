//! Where arrivals come from, as configured: one-off and cron `events`, iCalendar
//! `calendars`, event ConfigMaps; and their validation.

use super::checks::{known_pool, non_negative, nonempty, positive};
use super::{ConfigError, invalid};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// One scheduled event: `start` (one-off, RFC 3339) or `schedule` (cron, in `timeZone`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventConfig {
    pub name: String,
    /// The pool whose users arrive.
    pub pool: String,
    /// One-off: an RFC 3339 time with offset, e.g. `2026-12-01T09:00:00+01:00`.
    #[serde(default)]
    pub start: Option<String>,
    /// Recurring: a cron expression of 5 fields, e.g. `0 9 * * MON-FRI`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule`, e.g. `Europe/Berlin`.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// Users expected to arrive.
    pub users: f64,
    /// They arrive uniformly over this long from the start.
    #[serde(default = "default_arrival_window")]
    pub arrival_window_seconds: f64,
    /// How long the event lasts (informational for `plan`; arrivals use the window).
    #[serde(default)]
    pub duration_seconds: Option<f64>,
}

fn utc() -> String {
    "UTC".into()
}

fn default_arrival_window() -> f64 {
    600.0
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarConfig {
    pub name: String,
    pub pool: String,
    /// An `http(s)://` URL of an .ics feed (one without a token in it: see `url_file`).
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the feed's `http(s)://` URL, read again on every refresh: a Secret key
    /// mounted into the pod (the chart's `urlSecret`), so a URL that carries a token is never
    /// in the config, the logs or the controller's RBAC.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// A local .ics file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Users per calendar event unless its summary or description says `users: N`.
    pub default_users: f64,
    #[serde(default = "default_arrival_window")]
    pub arrival_window_seconds: f64,
    /// Time zone of floating times (no TZID, no Z) and all-day events.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// When users of an all-day event arrive, local time (`HH:MM` in `timeZone`): a day-long
    /// exam does not fill the hub at midnight.
    #[serde(default = "default_all_day_arrival")]
    pub all_day_arrival: String,
    #[serde(default = "default_refresh")]
    pub refresh_seconds: f64,
}

fn default_all_day_arrival() -> String {
    "09:00".into()
}

/// `HH:MM` (24 h) as (hour, minute).
pub fn parse_hh_mm(text: &str) -> Option<(i8, i8)> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m) && text.trim().len() == 5).then_some((h, m))
}

fn default_refresh() -> f64 {
    300.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EventConfigMapsConfig {
    /// Watch ConfigMaps labelled `hubpack.io/events` in the controller's namespace: each
    /// `data` value is a YAML list of events (the `events` format), picked up live.
    pub enabled: bool,
}

impl Default for EventConfigMapsConfig {
    fn default() -> Self {
        EventConfigMapsConfig { enabled: true }
    }
}

impl EventConfig {
    /// The first problem (the config file stops at it).
    pub fn validate(&self, at: &str, pools: &BTreeSet<&str>) -> Result<(), ConfigError> {
        match self.problems(at, pools).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every problem, one per field: an event ConfigMap's author sees them all at once.
    pub fn problems(&self, at: &str, pools: &BTreeSet<&str>) -> Vec<ConfigError> {
        let f = |x: &str| format!("{at}.{x}");
        let mut out: Vec<ConfigError> = Vec::new();
        out.extend(nonempty(&f("name"), &self.name).err());
        out.extend(known_pool(&f("pool"), &self.pool, pools).err());
        match (&self.start, &self.schedule) {
            (Some(_), Some(_)) | (None, None) => out.extend(
                invalid::<()>(
                    f("start"),
                    "and `schedule`: exactly one must be set",
                    "use start: 2026-12-01T09:00:00+01:00 for a one-off event, or schedule: \"0 9 * * MON\" for a recurring one",
                )
                .err(),
            ),
            _ => {
                if let Err(e) = crate::sources::schedule::EventSchedule::parse(
                    self.start.as_deref(),
                    self.schedule.as_deref(),
                    &self.time_zone,
                ) {
                    out.extend(invalid::<()>(f(e.field), e.message, e.fix).err());
                }
            }
        }
        if !(self.users >= 0.0 && self.users.is_finite()) {
            out.extend(
                invalid::<()>(
                    f("users"),
                    format!("({}) must be ≥ 0", self.users),
                    "use e.g. 30",
                )
                .err(),
            );
        }
        out.extend(positive(&f("arrivalWindowSeconds"), self.arrival_window_seconds).err());
        if let Some(d) = self.duration_seconds {
            out.extend(non_negative(&f("durationSeconds"), d).err());
        }
        out
    }
}

impl CalendarConfig {
    pub fn validate(&self, at: &str, pools: &BTreeSet<&str>) -> Result<(), ConfigError> {
        let f = |x: &str| format!("{at}.{x}");
        nonempty(&f("name"), &self.name)?;
        known_pool(&f("pool"), &self.pool, pools)?;
        match (&self.url, &self.url_file, &self.file) {
            (Some(u), None, None) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return invalid(
                        f("url"),
                        format!("({u}) is not an http(s) URL"),
                        "use https://…/calendar.ics, or `file:` for a local file",
                    );
                }
            }
            (None, Some(_), None) | (None, None, Some(_)) => {}
            _ => {
                return invalid(
                    f("url"),
                    ", `urlFile` and `file`: exactly one must be set",
                    "give the feed's URL, a file holding it (a mounted Secret key), or a local .ics path",
                );
            }
        }
        if !(self.default_users >= 0.0 && self.default_users.is_finite()) {
            return invalid(
                f("defaultUsers"),
                format!("({}) must be ≥ 0", self.default_users),
                "use e.g. 30",
            );
        }
        positive(&f("arrivalWindowSeconds"), self.arrival_window_seconds)?;
        positive(&f("refreshSeconds"), self.refresh_seconds)?;
        if parse_hh_mm(&self.all_day_arrival).is_none() {
            return invalid(
                f("allDayArrival"),
                format!("({:?}) is not a local time HH:MM", self.all_day_arrival),
                "use e.g. \"09:00\"",
            );
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return invalid(
                f("timeZone"),
                format!("({}) is not a known IANA time zone", self.time_zone),
                "use e.g. UTC or Europe/Berlin",
            );
        }
        Ok(())
    }
}
