//! A 6 MB calendar feed stays within the controller pod's memory (the chart's limit is
//! 256 MiB, shared with the watch caches): taking the body (checked and parsed once) and
//! expanding it on every reconcile peak well below it. Measured as the process's peak
//! resident memory (Linux), so this test binary holds this test alone.

#![allow(clippy::unwrap_used)] // a test binary
#![cfg(target_os = "linux")]

use hubpack_placeholder_ctl::adapter::calendar::{Feed, Outcome};
use hubpack_placeholder_ctl::config::CalendarConfig;
use hubpack_placeholder_ctl::sources::expand_parsed;
/// This process's peak resident memory (MiB) since the last [`reset_peak`] (Linux).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

fn reset_peak() {
    // Writing 5 to clear_refs resets the peak resident set size to the current one.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A feed of `n` lab sessions (a university's whole term), about 185 bytes each.
fn big_feed(n: usize) -> String {
    let mut text =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hubpack//test//EN\r\n");
    for i in 0..n {
        let day = 1 + i % 28;
        let hour = 8 + i % 10;
        text.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:lab-{i}@university.example\r\nDTSTAMP:20261101T080000Z\r\n\
             DTSTART:202612{day:02}T{hour:02}0000Z\r\nDURATION:PT2H\r\n\
             SUMMARY:Lab session {i} (users: 25)\r\nLOCATION:Room {i}\r\nEND:VEVENT\r\n"
        ));
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

#[test]
fn a_six_megabyte_feed_stays_within_the_pods_memory() {
    let text = big_feed(33_000);
    assert!(text.len() >= 6_000_000, "{} bytes", text.len());
    let cal = CalendarConfig {
        name: "term".into(),
        pool: "default".into(),
        url: Some("https://calendar.example/term.ics".into()),
        url_file: None,
        file: None,
        default_users: 10.0,
        arrival_window_seconds: 600.0,
        time_zone: "UTC".into(),
        all_day_arrival: "09:00".into(),
        refresh_seconds: 300.0,
    };
    reset_peak();
    let mut feed = Feed::default();
    let t0 = std::time::Instant::now();
    assert_eq!(feed.take(Ok(text), 0), Outcome::Accepted);
    let took = t0.elapsed();
    let document = feed.parsed().unwrap();
    // Three reconciles over the next hours of 1 December 2026.
    let from = 1_796_112_000_000; // 2026-12-01T09:00:00Z
    let mut expand = std::time::Duration::ZERO;
    for i in 0..3 {
        let t = std::time::Instant::now();
        let (events, problems) =
            expand_parsed(&cal, &document, from + i * 10_000, from + 2 * 3_600_000).unwrap();
        expand = expand.max(t.elapsed());
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!events.is_empty());
        assert!(events.iter().all(|e| e.event.users == 25.0));
    }
    let peak_mib = peak_rss_mib();
    println!("6 MB feed: peak resident {peak_mib:.0} MiB, take {took:?}, expand {expand:?}");
    assert!(
        peak_mib < 160.0,
        "a 6 MB feed peaks at {peak_mib:.0} MiB (the pod's limit is 256 MiB)"
    );
}
