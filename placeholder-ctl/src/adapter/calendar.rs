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
use std::sync::Arc;
use std::time::Duration;

/// Redirects followed per fetch (a calendar service moving its feeds, http → https).
const MAX_REDIRECTS: usize = 5;

/// Where a redirect's `Location` points, from `current`: absolute, or relative to its
/// host (`/path`) or its directory. Never from https to http (the URL may carry a token).
fn redirect_target(current: &http::Uri, location: &str) -> std::result::Result<http::Uri, String> {
    let scheme = current.scheme_str().unwrap_or("https");
    let authority = current.authority().map(|a| a.as_str()).unwrap_or_default();
    let target = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = current.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    };
    let uri: http::Uri = target
        .parse()
        .map_err(|e| format!("redirect to an unusable Location: {e}"))?;
    if scheme == "https" && uri.scheme_str() != Some("https") {
        return Err("redirect from https to plain http refused".into());
    }
    Ok(uri)
}

/// Larger feeds are refused (a course calendar is kilobytes).
const MAX_BYTES: usize = 8 << 20;
const TIMEOUT: Duration = Duration::from_secs(20);

/// One feed's cached text.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    /// The last body that was an iCalendar document.
    pub text: Option<String>,
    /// `text`, parsed: once per new body, shared by every reconcile's expansion.
    pub document: Option<Arc<icalendar::Calendar>>,
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
    /// The parsed last good copy: parsed here when only its text is known (a copy restored
    /// from elsewhere), once.
    pub fn parsed(&mut self) -> Option<Arc<icalendar::Calendar>> {
        if self.document.is_none()
            && let Some(text) = &self.text
        {
            self.document = crate::sources::ics::parse_text(text).ok().map(Arc::new);
        }
        self.document.clone()
    }

    /// Takes one fetch's result: only a body that is an iCalendar document replaces the
    /// last good copy.
    pub fn take(&mut self, result: Result<String>, now: Millis) -> Outcome {
        match result {
            Ok(text) => match crate::sources::ics::parse_document(&text) {
                Ok(document) => {
                    self.text = Some(text.trim_start_matches('\u{feff}').to_string());
                    self.document = Some(Arc::new(document));
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
    let mut uri: http::Uri = url
        .parse()
        .map_err(|e| err(format!("bad URL {shown}: {e}")))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| err(format!("no TLS root certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let mut redirects = 0;
    let response = loop {
        let request = http::Request::get(uri.clone())
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
        if !response.status().is_redirection() {
            break response;
        }
        redirects += 1;
        if redirects > MAX_REDIRECTS {
            return Err(err(format!(
                "GET {shown}: more than {MAX_REDIRECTS} redirects"
            )));
        }
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| {
                err(format!(
                    "GET {shown}: HTTP {} without a Location",
                    response.status()
                ))
            })?;
        uri = redirect_target(&uri, location).map_err(|e| err(format!("GET {shown}: {e}")))?;
    };
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

    /// A one-route-table HTTP/1.0 server on loopback: path → (status, Location, body).
    async fn serve(routes: Vec<(&'static str, u16, &'static str, String)>) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, location, body) = routes
                    .iter()
                    .find(|r| r.0 == path)
                    .map(|r| (r.1, r.2, r.3.clone()))
                    .unwrap_or((404, "", String::new()));
                let location = if location.is_empty() {
                    String::new()
                } else {
                    format!("Location: {location}\r\n")
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn redirects_are_followed_and_bounded() {
        let port = serve(vec![
            ("/old.ics", 301, "/moved/feed.ics", String::new()),
            ("/moved/feed.ics", 302, "final.ics", String::new()),
            ("/moved/final.ics", 200, "", GOOD.to_string()),
            ("/loop.ics", 302, "/loop.ics", String::new()),
            ("/nowhere.ics", 302, "", String::new()),
        ])
        .await;
        let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
        let body = fetch(&cal(None, Some(&url("/old.ics")))).await.unwrap();
        assert_eq!(body, GOOD);
        let e = fetch(&cal(None, Some(&url("/loop.ics"))))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 5 redirects"), "{e}");
        let e = fetch(&cal(None, Some(&url("/nowhere.ics"))))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("without a Location"), "{e}");
    }

    #[test]
    fn a_redirect_target_resolves_relative_locations_and_never_downgrades() {
        let from: http::Uri = "https://cal.example/feeds/a/course.ics?t=1"
            .parse()
            .unwrap();
        let to = |l: &str| redirect_target(&from, l).map(|u| u.to_string());
        assert_eq!(to("/x.ics").unwrap(), "https://cal.example/x.ics");
        assert_eq!(to("b.ics").unwrap(), "https://cal.example/feeds/a/b.ics");
        assert_eq!(
            to("//other.example/c.ics").unwrap(),
            "https://other.example/c.ics"
        );
        assert_eq!(
            to("https://other.example/d.ics").unwrap(),
            "https://other.example/d.ics"
        );
        assert!(
            to("http://cal.example/x.ics")
                .unwrap_err()
                .contains("https to plain http")
        );
        let plain: http::Uri = "http://cal.example/a.ics".parse().unwrap();
        assert_eq!(
            redirect_target(&plain, "https://cal.example/a.ics")
                .unwrap()
                .to_string(),
            "https://cal.example/a.ics"
        );
    }
}
