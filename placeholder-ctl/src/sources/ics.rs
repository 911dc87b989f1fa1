//! iCalendar (.ics) feeds → event starts in a time range. Parsing is the `icalendar`
//! crate's; recurrence (RRULE, RDATE, EXDATE) is the `rrule` crate's, fed with a DTSTART
//! anchored in the event's own zone (TZID), UTC (`Z`), or, for floating times and all-day
//! events, the feed's configured zone. Expected users come from the event text
//! (`users: 40` in the summary or description), else the feed's default.

use hubpack_core::model::Millis;
use icalendar::{Calendar, CalendarDateTime, Component, DatePerhapsTime, Event};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// One occurrence of a calendar event.
#[derive(Debug, Clone, PartialEq)]
pub struct IcsOccurrence {
    pub start: Millis,
    pub summary: String,
    pub users: f64,
    pub all_day: bool,
}

/// The occurrences found, and what was wrong with individual events (those are skipped,
/// the rest of the feed is still used).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcsResult {
    pub occurrences: Vec<IcsOccurrence>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IcsError {
    #[error("not an iCalendar document: {0}")]
    Malformed(String),
    #[error("unknown time zone {0}")]
    TimeZone(String),
}

/// Whether a fetched body is an iCalendar document: it starts with `BEGIN:VCALENDAR`,
/// ends with `END:VCALENDAR` (a truncated download does not) and parses. A feed that
/// answers 200 with anything else (a login page, half a file) must not replace its last
/// good copy.
pub fn check_document(text: &str) -> Result<(), IcsError> {
    parse_document(text).map(|_| ())
}

/// [`check_document`], keeping the parsed document: a feed is parsed once per new body and
/// only expanded on each reconcile ([`occurrences_in`]).
pub fn parse_document(text: &str) -> Result<Calendar, IcsError> {
    let body = text.trim_start_matches('\u{feff}').trim();
    let first = body.lines().next().unwrap_or("").trim();
    if !first.eq_ignore_ascii_case("BEGIN:VCALENDAR") {
        let shown: String = first.chars().take(60).collect();
        return Err(IcsError::Malformed(format!(
            "does not start with BEGIN:VCALENDAR (starts with {shown:?})"
        )));
    }
    let last = body.lines().last().unwrap_or("").trim();
    if !last.eq_ignore_ascii_case("END:VCALENDAR") {
        return Err(IcsError::Malformed(
            "does not end with END:VCALENDAR (truncated?)".into(),
        ));
    }
    parse(body)
}

#[cfg(test)]
thread_local! {
    /// Documents parsed by this thread (tests count parses per feed change).
    pub static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn parse(text: &str) -> Result<Calendar, IcsError> {
    #[cfg(test)]
    PARSES.with(|p| p.set(p.get() + 1));
    Calendar::from_str(text).map_err(IcsError::Malformed)
}

/// At most this many occurrences per recurring event and query.
const MAX_PER_RULE: u16 = 2_000;

/// Occurrences starting in `[from, to)`, ascending by start, all-day events at local
/// `arrival` (hour, minute) of their day in `zone`: users of a day-long exam arrive in the
/// morning, not at midnight.
pub fn occurrences_arriving(
    text: &str,
    zone: &str,
    default_users: f64,
    arrival: (i8, i8),
    from: Millis,
    to: Millis,
) -> Result<IcsResult, IcsError> {
    occurrences_arriving_in(&parse_text(text)?, zone, default_users, arrival, from, to)
}

/// [`occurrences_arriving`] of a parsed document.
pub fn occurrences_arriving_in(
    calendar: &Calendar,
    zone: &str,
    default_users: f64,
    arrival: (i8, i8),
    from: Millis,
    to: Millis,
) -> Result<IcsResult, IcsError> {
    const DAY: Millis = 86_400_000;
    let tz = TimeZone::get(zone).map_err(|_| IcsError::TimeZone(zone.to_string()))?;
    let mut found = occurrences_in(calendar, zone, default_users, from - DAY, to)?;
    for o in found.occurrences.iter_mut().filter(|o| o.all_day) {
        let day = jiff::Timestamp::from_millisecond(o.start)
            .map(|t| t.to_zoned(tz.clone()).date())
            .map_err(|e| IcsError::Malformed(e.to_string()))?;
        if let Ok(at) = day.at(arrival.0, arrival.1, 0, 0).to_zoned(tz.clone()) {
            o.start = at.timestamp().as_millisecond();
        }
    }
    found.occurrences.retain(|o| (from..to).contains(&o.start));
    found.occurrences.sort_by_key(|o| o.start);
    Ok(found)
}

/// Occurrences starting in `[from, to)`, ascending by start. `zone` anchors floating times
/// and all-day events (at midnight).
pub fn occurrences(
    text: &str,
    zone: &str,
    default_users: f64,
    from: Millis,
    to: Millis,
) -> Result<IcsResult, IcsError> {
    occurrences_in(&parse_text(text)?, zone, default_users, from, to)
}

/// Parses a document that at least names `BEGIN:VCALENDAR` (the lenient reading of a local
/// file; fetched bodies go through [`parse_document`]).
pub fn parse_text(text: &str) -> Result<Calendar, IcsError> {
    if !text.contains("BEGIN:VCALENDAR") {
        return Err(IcsError::Malformed("no BEGIN:VCALENDAR".into()));
    }
    parse(text)
}

/// [`occurrences`] of a parsed document.
pub fn occurrences_in(
    calendar: &Calendar,
    zone: &str,
    default_users: f64,
    from: Millis,
    to: Millis,
) -> Result<IcsResult, IcsError> {
    let tz = TimeZone::get(zone).map_err(|_| IcsError::TimeZone(zone.to_string()))?;
    let mut out = IcsResult::default();
    // An instance of a series that was moved or cancelled is a VEVENT of its own, with the
    // series' UID and the instance's original start in RECURRENCE-ID: the series no longer
    // yields that start; the override yields its own DTSTART unless it is cancelled.
    let mut overridden: BTreeMap<&str, BTreeSet<Millis>> = BTreeMap::new();
    for event in calendar.events() {
        if let (Some(uid), Some(rid)) = (event.get_uid(), event.properties().get("RECURRENCE-ID")) {
            match instant(rid, zone, &tz) {
                Ok(t) => {
                    overridden.entry(uid).or_default().insert(t);
                }
                Err(e) => out
                    .problems
                    .push(format!("event {uid:?}: RECURRENCE-ID: {e}")),
            }
        }
    }
    for event in calendar.events() {
        let label = event
            .get_summary()
            .or_else(|| event.get_uid())
            .unwrap_or("(no summary)")
            .to_string();
        if event
            .property_value("STATUS")
            .is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED"))
        {
            continue;
        }
        let is_override = event.properties().contains_key("RECURRENCE-ID");
        let replaced = event
            .get_uid()
            .filter(|_| !is_override)
            .and_then(|uid| overridden.get(uid));
        match event_starts(event, zone, &tz, from, to) {
            Ok((mut starts, all_day)) => {
                if let Some(replaced) = replaced {
                    starts.retain(|t| !replaced.contains(t));
                }
                let users = users_in(event).unwrap_or(default_users);
                out.occurrences
                    .extend(starts.into_iter().map(|start| IcsOccurrence {
                        start,
                        summary: label.clone(),
                        users,
                        all_day,
                    }));
            }
            Err(e) => out.problems.push(format!("event {label:?}: {e}")),
        }
    }
    out.occurrences.sort_by_key(|o| o.start);
    Ok(out)
}

/// `users: 40`, `users=40` or `Users 40` in the summary or description.
fn users_in(event: &Event) -> Option<f64> {
    let texts = [event.get_summary(), event.get_description()];
    texts.into_iter().flatten().find_map(|t| {
        let lower = t.to_ascii_lowercase();
        let at = lower.find("users")?;
        let rest = lower[at + "users".len()..].trim_start_matches([':', '=', ' ', '\t']);
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        digits
            .parse::<f64>()
            .ok()
            .filter(|u| u.is_finite() && *u >= 0.0)
    })
}

/// DTSTART as (local wall time, IANA zone name, all-day).
fn anchor(start: DatePerhapsTime, zone: &str) -> (String, String, bool) {
    const FMT: &str = "%Y%m%dT%H%M%S";
    match start {
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => {
            (t.naive_utc().format(FMT).to_string(), "UTC".into(), false)
        }
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid }) => {
            (date_time.format(FMT).to_string(), tzid, false)
        }
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(t)) => {
            (t.format(FMT).to_string(), zone.to_string(), false)
        }
        DatePerhapsTime::Date(d) => (
            format!("{}T000000", d.format("%Y%m%d")),
            zone.to_string(),
            true,
        ),
    }
}

/// A date or date-time property (RECURRENCE-ID) as an instant: UTC (`Z`), its TZID, or
/// floating / a date in the feed's zone.
fn instant(p: &icalendar::Property, zone: &str, default_tz: &TimeZone) -> Result<Millis, String> {
    let value = p.value().trim();
    let tz = match p.params().get("TZID") {
        Some(tzid) => zone_named(tzid.value())?,
        None => default_tz.clone(),
    };
    let (local, tz) = if let Some(utc) = value.strip_suffix('Z') {
        (utc.to_string(), TimeZone::UTC)
    } else if value.len() == 8 {
        (format!("{value}T000000"), tz)
    } else {
        (value.to_string(), tz)
    };
    let civil = DateTime::strptime("%Y%m%dT%H%M%S", &local).map_err(|e| format!("{value}: {e}"))?;
    civil
        .to_zoned(tz)
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("{value} in {zone}: {e}"))
}

/// A TZID as feeds write it: an IANA name, a Mozilla-style path ending in one
/// (`/mozilla.org/20050126_1/Europe/Berlin`), or a Windows name as Outlook writes it
/// (`W. Europe Standard Time`, mapped by CLDR's windowsZones table, territory 001).
pub fn zone_named(tzid: &str) -> Result<TimeZone, String> {
    let tzid = tzid.trim().trim_matches('"');
    if let Ok(tz) = TimeZone::get(tzid) {
        return Ok(tz);
    }
    let parts: Vec<&str> = tzid.split('/').filter(|p| !p.is_empty()).collect();
    for i in 1..parts.len() {
        if let Ok(tz) = TimeZone::get(&parts[i..].join("/")) {
            return Ok(tz);
        }
    }
    WINDOWS_ZONES
        .iter()
        .find(|(windows, _)| windows.eq_ignore_ascii_case(tzid))
        .and_then(|(_, iana)| TimeZone::get(iana).ok())
        .ok_or_else(|| format!("unknown TZID {tzid}"))
}

/// Windows time zone names → IANA (CLDR `common/supplemental/windowsZones.xml`, the
/// territory-001 mapping), for the zones Outlook and Exchange feeds commonly carry.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("UTC", "Etc/UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("Romance Standard Time", "Europe/Paris"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("India Standard Time", "Asia/Calcutta"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("Eastern Standard Time", "America/New_York"),
    ("Central Standard Time", "America/Chicago"),
    ("Mountain Standard Time", "America/Denver"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Argentina Standard Time", "America/Buenos_Aires"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
];

fn event_starts(
    event: &Event,
    zone: &str,
    default_tz: &TimeZone,
    from: Millis,
    to: Millis,
) -> Result<(Vec<Millis>, bool), String> {
    let start = event.get_start().ok_or("no DTSTART")?;
    let (local, tzid, all_day) = anchor(start, zone);
    let tz = if tzid == zone {
        default_tz.clone()
    } else {
        zone_named(&tzid).map_err(|e| format!("DTSTART: {e}"))?
    };
    // The recurrence library knows IANA names only: a Windows or Mozilla TZID is given as
    // the zone it names.
    let tzid = tz.iana_name().map(String::from).unwrap_or(tzid);
    let recurring = ["RRULE", "RDATE"]
        .iter()
        .any(|p| event.properties().contains_key(*p));
    if !recurring {
        let civil = DateTime::strptime("%Y%m%dT%H%M%S", &local)
            .map_err(|e| format!("DTSTART {local}: {e}"))?;
        let t = civil
            .to_zoned(tz)
            .map_err(|e| format!("DTSTART {local} in {tzid}: {e}"))?
            .timestamp()
            .as_millisecond();
        let starts = if (from..to).contains(&t) {
            vec![t]
        } else {
            Vec::new()
        };
        return Ok((starts, all_day));
    }
    let mut lines = vec![format!("DTSTART;TZID={tzid}:{local}")];
    for name in ["RRULE", "RDATE", "EXDATE"] {
        let props = event
            .multi_properties()
            .get(name)
            .into_iter()
            .flatten()
            .chain(event.properties().get(name));
        for p in props {
            let line = property_line(name, p);
            lines.push(if all_day {
                all_day_line(name, p, &line, &tzid, &tz)?
            } else {
                line
            });
        }
    }
    let set = rrule_set(&lines.join("\n"))?;
    let utc = |ms: Millis| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&icalendar::Tz::UTC))
            .ok_or_else(|| format!("time {ms} out of range"))
    };
    // `after`/`before` are exclusive; widen by 1 ms so `from` itself is included.
    let result = set.after(utc(from - 1)?).before(utc(to)?).all(MAX_PER_RULE);
    let starts = result
        .dates
        .iter()
        .map(|d| d.timestamp_millis())
        .filter(|t| (from..to).contains(t))
        .collect();
    Ok((starts, all_day))
}

/// An all-day series' recurrence line in the form the recurrence library takes with a
/// zoned DTSTART: a date `UNTIL` is the end of that local day in UTC, and dates
/// (`EXDATE;VALUE=DATE`, `RDATE;VALUE=DATE`) are local midnights.
fn all_day_line(
    name: &str,
    p: &icalendar::Property,
    line: &str,
    tzid: &str,
    tz: &TimeZone,
) -> Result<String, String> {
    if name == "RRULE" {
        let parts: Vec<String> = p
            .value()
            .split(';')
            .map(|part| match part.strip_prefix("UNTIL=") {
                Some(date) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => {
                    let end = DateTime::strptime("%Y%m%dT%H%M%S", format!("{date}T235959"))
                        .map_err(|e| format!("UNTIL {date}: {e}"))?
                        .to_zoned(tz.clone())
                        .map_err(|e| format!("UNTIL {date}: {e}"))?
                        .timestamp();
                    Ok(format!("UNTIL={}", end.strftime("%Y%m%dT%H%M%SZ")))
                }
                _ => Ok(part.to_string()),
            })
            .collect::<Result<_, String>>()?;
        return Ok(format!("RRULE:{}", parts.join(";")));
    }
    let is_date = p
        .params()
        .get("VALUE")
        .is_some_and(|v| v.value().eq_ignore_ascii_case("DATE"));
    if !is_date {
        return Ok(line.to_string());
    }
    let dates: Vec<String> = p
        .value()
        .split(',')
        .map(|d| format!("{}T000000", d.trim()))
        .collect();
    Ok(format!("{name};TZID={tzid}:{}", dates.join(",")))
}

fn property_line(name: &str, p: &icalendar::Property) -> String {
    let params: String = p
        .params()
        .iter()
        .map(|(k, v)| {
            // As for DTSTART: the zone a Windows or Mozilla TZID names, by its IANA name.
            let value = match k.as_str() {
                "TZID" => zone_named(v.value())
                    .ok()
                    .and_then(|tz| tz.iana_name().map(String::from))
                    .unwrap_or_else(|| v.value().to_string()),
                _ => v.value().to_string(),
            };
            format!(";{k}={value}")
        })
        .collect();
    format!("{name}{params}:{}", p.value())
}

fn rrule_set(text: &str) -> Result<icalendar::RRuleSet, String> {
    icalendar::RRuleSet::from_str(text).map_err(|e| format!("recurrence: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn ms(s: &str) -> Millis {
        Timestamp::from_str(s).unwrap().as_millisecond()
    }

    fn cal(events: &str) -> String {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n")
    }

    const YEAR: (&str, &str) = ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");

    fn all(text: &str, zone: &str) -> IcsResult {
        occurrences(text, zone, 25.0, ms(YEAR.0), ms(YEAR.1)).unwrap()
    }

    #[test]
    fn utc_tzid_and_floating_times() {
        let text = cal(
            "BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Lecture (users: 120)\r\nDTSTART:20260302T090000Z\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:b\r\nSUMMARY:Lab\r\nDTSTART;TZID=America/New_York:20260302T090000\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:c\r\nSUMMARY:Floating\r\nDESCRIPTION:expected users=7\r\nDTSTART:20260302T090000\r\nEND:VEVENT\r\n",
        );
        let r = all(&text, "Europe/Berlin");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let got: Vec<(Millis, f64)> = r.occurrences.iter().map(|o| (o.start, o.users)).collect();
        assert_eq!(
            got,
            vec![
                (ms("2026-03-02T08:00:00Z"), 7.0),   // floating, Berlin (UTC+1)
                (ms("2026-03-02T09:00:00Z"), 120.0), // UTC
                (ms("2026-03-02T14:00:00Z"), 25.0),  // New York (UTC-5), default users
            ]
        );
    }

    #[test]
    fn weekly_recurrence_keeps_local_time_across_dst_and_honours_exdate() {
        let text = cal("BEGIN:VEVENT\r\nUID:r\r\nSUMMARY:Course\r\n\
             DTSTART;TZID=Europe/Berlin:20260316T100000\r\n\
             RRULE:FREQ=WEEKLY;COUNT=4\r\n\
             EXDATE;TZID=Europe/Berlin:20260323T100000\r\nEND:VEVENT\r\n");
        let r = all(&text, "UTC");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let starts: Vec<Millis> = r.occurrences.iter().map(|o| o.start).collect();
        // Berlin switches to summer time on 29 March 2026.
        assert_eq!(
            starts,
            vec![
                ms("2026-03-16T09:00:00Z"),
                ms("2026-03-30T08:00:00Z"),
                ms("2026-04-06T08:00:00Z"),
            ]
        );
    }

    #[test]
    fn all_day_events_start_at_midnight_in_the_feed_zone() {
        let text = cal(
            "BEGIN:VEVENT\r\nUID:d\r\nSUMMARY:Exam day\r\nDTSTART;VALUE=DATE:20260610\r\nEND:VEVENT\r\n",
        );
        let r = all(&text, "Asia/Tokyo");
        assert_eq!(r.occurrences.len(), 1);
        assert!(r.occurrences[0].all_day);
        assert_eq!(r.occurrences[0].start, ms("2026-06-09T15:00:00Z"));
    }

    #[test]
    fn all_day_users_arrive_at_the_configured_local_hour_and_date_exdates_still_apply() {
        // A daily all-day series until a date, one day excluded by a date EXDATE.
        let text = cal("BEGIN:VEVENT\r\nUID:e\r\nSUMMARY:Exam week\r\n\
             DTSTART;VALUE=DATE:20261214\r\nDTEND;VALUE=DATE:20261215\r\n\
             RRULE:FREQ=DAILY;UNTIL=20261217\r\nEXDATE;VALUE=DATE:20261216\r\nEND:VEVENT\r\n");
        let r = occurrences_arriving(&text, "Europe/Berlin", 5.0, (9, 0), ms(YEAR.0), ms(YEAR.1))
            .unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let starts: Vec<Millis> = r.occurrences.iter().map(|o| o.start).collect();
        assert_eq!(
            starts,
            vec![
                ms("2026-12-14T08:00:00Z"),
                ms("2026-12-15T08:00:00Z"),
                ms("2026-12-17T08:00:00Z"),
            ]
        );
        // The range applies to the arrival: 09:00 on the first day is outside [10:00, ...).
        let r = occurrences_arriving(
            &text,
            "Europe/Berlin",
            5.0,
            (9, 0),
            ms("2026-12-14T09:00:00Z"),
            ms(YEAR.1),
        )
        .unwrap();
        assert_eq!(r.occurrences.len(), 2);
    }

    #[test]
    fn the_range_is_half_open_and_cancelled_events_are_skipped() {
        let text = cal(
            "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260302T090000Z\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:y\r\nSTATUS:CANCELLED\r\nDTSTART:20260302T100000Z\r\nEND:VEVENT\r\n",
        );
        let t = ms("2026-03-02T09:00:00Z");
        assert_eq!(
            occurrences(&text, "UTC", 1.0, t, t + 1)
                .unwrap()
                .occurrences
                .len(),
            1
        );
        assert!(
            occurrences(&text, "UTC", 1.0, t - 10, t)
                .unwrap()
                .occurrences
                .is_empty()
        );
    }

    #[test]
    fn a_bad_event_is_reported_and_the_rest_used() {
        let text = cal(
            "BEGIN:VEVENT\r\nUID:bad\r\nSUMMARY:Broken\r\nDTSTART;TZID=Mars/Base:20260302T090000\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:ok\r\nDTSTART:20260302T090000Z\r\nEND:VEVENT\r\n",
        );
        let r = all(&text, "UTC");
        assert_eq!(r.occurrences.len(), 1);
        assert_eq!(r.problems.len(), 1);
        assert!(r.problems[0].contains("Broken"), "{:?}", r.problems);
    }

    /// (start, users) of every occurrence in 2026.
    fn starts_and_users(file: &str) -> Vec<(Millis, f64)> {
        let r = all(file, "UTC");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        r.occurrences.iter().map(|o| (o.start, o.users)).collect()
    }

    #[test]
    fn google_a_moved_instance_forecasts_only_its_new_time_and_a_cancelled_one_nothing() {
        let got = starts_and_users(include_str!(
            "../../tests/ics/google_moved_and_cancelled.ics"
        ));
        assert_eq!(
            got,
            vec![
                (ms("2026-11-02T09:00:00Z"), 60.0),
                // 9 November 10:00 moved to 10 November 14:00 (Berlin, UTC+1).
                (ms("2026-11-10T13:00:00Z"), 60.0),
                // 16 November cancelled.
                (ms("2026-11-23T09:00:00Z"), 60.0),
            ]
        );
    }

    #[test]
    fn outlook_windows_zone_names_cancelled_overrides_and_exdates() {
        let got = starts_and_users(include_str!("../../tests/ics/outlook_windows_zone.ics"));
        // Tuesdays 10:00 W. Europe (Berlin, UTC+1) until 24 November: 10 November cancelled
        // by an override, 17 November by EXDATE.
        assert_eq!(
            got,
            vec![
                (ms("2026-11-03T09:00:00Z"), 35.0),
                (ms("2026-11-24T09:00:00Z"), 35.0),
            ]
        );
    }

    #[test]
    fn thunderbird_mozilla_style_tzids_name_their_iana_zone() {
        let got = starts_and_users(include_str!("../../tests/ics/thunderbird_mozilla_tzid.ics"));
        assert_eq!(got, vec![(ms("2026-12-14T07:00:00Z"), 200.0)]);
    }

    #[test]
    fn tzids_as_feeds_write_them() {
        for (tzid, iana) in [
            ("Europe/Berlin", "Europe/Berlin"),
            ("/mozilla.org/20050126_1/Europe/Berlin", "Europe/Berlin"),
            ("W. Europe Standard Time", "Europe/Berlin"),
            ("Eastern Standard Time", "America/New_York"),
        ] {
            assert_eq!(zone_named(tzid).unwrap().iana_name(), Some(iana), "{tzid}");
        }
        assert!(zone_named("Mars Standard Time").is_err());
    }

    #[test]
    fn a_malformed_feed_is_an_error() {
        assert!(matches!(
            occurrences("<html>404</html>", "UTC", 1.0, 0, 1),
            Err(IcsError::Malformed(_))
        ));
    }
}
