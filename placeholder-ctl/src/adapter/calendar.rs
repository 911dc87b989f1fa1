//! Fetches calendar feeds (a local file, or an http(s) URL with a timeout), each on its own
//! refresh period. The last good text is kept: an unreachable feed, or one that answers
//! with something that is not iCalendar (a login page, a truncated file), keeps its
//! previous events and is reported (warning Event, metric), never stops the controller.

use crate::config::CalendarConfig;
use crate::error::{Error, Result};
use http_body_util::{BodyExt, Empty, Limited};
use hubpack_core::model::Millis;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Larger feeds are refused (a course calendar is kilobytes).
const MAX_BYTES: usize = 8 << 20;
const TIMEOUT: Duration = Duration::from_secs(20);

/// One feed's cached text.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    /// The last body that was an iCalendar document.
    pub text: Option<String>,
    pub fetched_at: Option<Millis>,
    /// Why the last fetch failed, or why its body was refused.
    pub last_error: Option<String>,
    /// The last fetch answered, but not with iCalendar (`last_error` says why).
    pub rejected: bool,
}

/// What one fetch did to a feed's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new good copy.
    Accepted,
    /// An answer that is not iCalendar: the last good copy is kept.
    Rejected,
    /// No answer: the last good copy is kept.
    Failed,
}

impl Feed {
    /// Takes one fetch's result: only a body that is an iCalendar document replaces the
    /// last good copy.
    pub fn take(&mut self, result: Result<String>, now: Millis) -> Outcome {
        match result {
            Ok(text) => match crate::sources::ics::check_document(&text) {
                Ok(()) => {
                    self.text = Some(text.trim_start_matches('\u{feff}').to_string());
                    self.fetched_at = Some(now);
                    self.last_error = None;
                    self.rejected = false;
                    Outcome::Accepted
                }
                Err(e) => {
                    self.last_error =
                        Some(format!("the feed answered, but not with iCalendar: {e}"));
                    self.rejected = true;
                    Outcome::Rejected
                }
            },
            Err(e) => {
                self.last_error = Some(e.to_string());
                self.rejected = false;
                Outcome::Failed
            }
        }
    }
}

/// The feed's URL, and how errors show it: a URL read from `urlFile` (a mounted Secret) may
/// carry a token, so errors name the file, never the URL.
async fn feed_url(cal: &CalendarConfig) -> std::result::Result<(String, String), String> {
    match (&cal.url, &cal.url_file) {
        (Some(url), _) => Ok((url.clone(), url.clone())),
        (None, Some(path)) => {
            let shown = format!("(the URL in {})", path.display());
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let url = text.trim().to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "{} does not hold an http(s) URL: put https://…/calendar.ics in the Secret key",
                    path.display()
                ));
            }
            Ok((url, shown))
        }
        (None, None) => Err("neither url, urlFile nor file is set".into()),
    }
}

/// Reads a feed once.
pub async fn fetch(cal: &CalendarConfig) -> Result<String> {
    let err = |message: String| Error::Calendar {
        name: cal.name.clone(),
        message,
    };
    if let Some(path) = &cal.file {
        return tokio::fs::read_to_string(path)
            .await
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())));
    }
    let (url, shown) = feed_url(cal).await.map_err(err)?;
    let uri: http::Uri = url
        .parse()
        .map_err(|e| err(format!("bad URL {shown}: {e}")))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| err(format!("no TLS root certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let request = http::Request::get(uri)
        .header("user-agent", "hubpack-placeholder-ctl")
        .body(Empty::new())
        .map_err(|e| err(e.to_string()))?;
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| {
            err(format!(
                "GET {shown}: no answer within {} s",
                TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| err(format!("GET {shown}: {e}")))?;
    if !response.status().is_success() {
        return Err(err(format!("GET {shown}: HTTP {}", response.status())));
    }
    let body = tokio::time::timeout(
        TIMEOUT,
        Limited::new(response.into_body(), MAX_BYTES).collect(),
    )
    .await
    .map_err(|_| {
        err(format!(
            "GET {shown}: body not received within {} s",
            TIMEOUT.as_secs()
        ))
    })?
    .map_err(|e| err(format!("GET {shown}: {e}")))?
    .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| err(format!("GET {shown}: not UTF-8 text")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn cal(file: Option<std::path::PathBuf>, url: Option<&str>) -> CalendarConfig {
        CalendarConfig {
            name: "course".into(),
            pool: "default".into(),
            url: url.map(String::from),
            url_file: None,
            file,
            default_users: 10.0,
            arrival_window_seconds: 600.0,
            time_zone: "UTC".into(),
            all_day_arrival: "09:00".into(),
            refresh_seconds: 300.0,
        }
    }

    const GOOD: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20261201T080000Z\r\nDTSTART:20261201T090000Z\r\nSUMMARY:Lab\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn a_login_page_or_a_truncated_file_keeps_the_last_good_copy() {
        let mut feed = Feed::default();
        assert_eq!(feed.take(Ok(GOOD.into()), 1), Outcome::Accepted);
        let login = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Sign in</body></html>\n";
        let truncated = &GOOD[..GOOD.find("END:VEVENT").unwrap()];
        for garbage in [
            login,
            truncated,
            "",
            "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\ntrailing junk\r\n",
        ] {
            assert_eq!(
                feed.take(Ok(garbage.into()), 2),
                Outcome::Rejected,
                "{garbage:?}"
            );
            assert_eq!(feed.text.as_deref(), Some(GOOD), "{garbage:?}");
            assert_eq!(feed.fetched_at, Some(1));
            assert!(feed.rejected);
            let why = feed.last_error.as_deref().unwrap();
            assert!(why.contains("not with iCalendar"), "{why}");
        }
        // An unreachable feed keeps it too; the next good answer clears the problem.
        let unreachable = Err(Error::Calendar {
            name: "course".into(),
            message: "HTTP 502".into(),
        });
        assert_eq!(feed.take(unreachable, 3), Outcome::Failed);
        assert_eq!(feed.text.as_deref(), Some(GOOD));
        let newer = GOOD.replace("SUMMARY:Lab", "SUMMARY:Exam");
        assert_eq!(feed.take(Ok(newer.clone()), 4), Outcome::Accepted);
        assert_eq!(feed.text, Some(newer));
        assert_eq!(feed.last_error, None);
        assert!(!feed.rejected);
    }

    #[test]
    fn a_byte_order_mark_is_still_icalendar_and_is_dropped() {
        let mut feed = Feed::default();
        assert_eq!(
            feed.take(Ok(format!("\u{feff}{GOOD}")), 1),
            Outcome::Accepted
        );
        assert_eq!(feed.text.as_deref(), Some(GOOD));
    }

    #[tokio::test]
    async fn a_file_feed_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ics");
        std::fs::write(&path, "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n").unwrap();
        assert!(
            fetch(&cal(Some(path), None))
                .await
                .unwrap()
                .contains("VCALENDAR")
        );
    }

    #[tokio::test]
    async fn a_url_from_a_file_is_used_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("url");
        std::fs::write(&path, "http://127.0.0.1:9/c.ics?token=s3cret\n").unwrap();
        let mut c = cal(None, None);
        c.url_file = Some(path.clone());
        let text = fetch(&c).await.unwrap_err().to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(!text.contains("s3cret"), "the token leaked: {text}");
        std::fs::write(&path, "not a url").unwrap();
        let text = fetch(&c).await.unwrap_err().to_string();
        assert!(text.contains("does not hold an http(s) URL"), "{text}");
    }

    #[tokio::test]
    async fn an_unreachable_feed_is_an_error_naming_it() {
        let e = fetch(&cal(None, Some("http://127.0.0.1:9/c.ics")))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("course") && text.contains("127.0.0.1:9"),
            "{text}"
        );
        let e = fetch(&cal(Some("/nonexistent/c.ics".into()), None))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/c.ics"));
    }
}
