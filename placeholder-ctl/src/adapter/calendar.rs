//! Fetches calendar feeds (a local file, or an http(s) URL with a timeout), each on its own
//! refresh period. The last good text is kept: an unreachable feed keeps its previous
//! events and is reported (warning Event, metric), never stops the controller.

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
    pub text: Option<String>,
    pub fetched_at: Option<Millis>,
    pub last_error: Option<String>,
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
            refresh_seconds: 300.0,
        }
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
