//! What both binaries (hubpack-scheduler and hubpack-placeholder-ctl) do at their edge before
//! any work starts: set up logging, load their YAML config, connect to the API server, name the replica, and
//! turn SIGTERM or Ctrl-C into a cancellation their graceful shutdown follows.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Logs through `tracing` to `writer` (the scheduler: stdout; the controller: stderr, its
/// `plan` table owns stdout), as JSON lines when `json`, filtered by `RUST_LOG` (default
/// `info`). Every line names `program`: the shared crates log under their own targets
/// (`hubpack_kube::…`) in both binaries.
pub fn init_tracing<W>(program: &str, json: bool, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber(
        program, json, writer, filter,
    ));
}

/// The subscriber [`init_tracing`] installs.
fn subscriber<W>(
    program: &str,
    json: bool,
    writer: W,
    filter: tracing_subscriber::EnvFilter,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        let format = Named::new(program, true, tracing_subscriber::fmt::format().json());
        Box::new(builder.event_format(format).finish())
    } else {
        let format = Named::new(program, false, tracing_subscriber::fmt::format());
        Box::new(builder.event_format(format).finish())
    }
}

/// An event format that names the binary: a `"binary"` key first in a JSON line, the name
/// first in a text line.
struct Named<F> {
    program: String,
    json: bool,
    inner: F,
}

impl<F> Named<F> {
    fn new(program: &str, json: bool, inner: F) -> Self {
        Named {
            program: program.to_string(),
            json,
            inner,
        }
    }
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for Named<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        let inner = tracing_subscriber::fmt::format::Writer::new(&mut line);
        self.inner.format_event(ctx, inner, event)?;
        match line.strip_prefix('{') {
            Some(rest) if self.json => {
                let name = serde_json::Value::from(self.program.as_str());
                write!(writer, "{{\"binary\":{name},{rest}")
            }
            _ => write!(writer, "{} {line}", self.program),
        }
    }
}

/// Why a YAML config file could not become a value, before its own validation (whose errors
/// are the config's: they name the field and the fix).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
}

/// Reads, parses and validates the config file at `path` (see [`parse_yaml`]).
pub fn load_yaml<C, E>(path: &Path, validate: impl FnOnce(&C) -> Result<(), E>) -> Result<C, E>
where
    C: DeserializeOwned + Default,
    E: From<LoadError>,
{
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: origin.clone(),
        source,
    })?;
    parse_yaml(&text, &origin, validate)
}

/// Parses `text` (from `origin`, named in errors) with serde-saphyr and validates it. An
/// empty document is all defaults.
pub fn parse_yaml<C, E>(
    text: &str,
    origin: &str,
    validate: impl FnOnce(&C) -> Result<(), E>,
) -> Result<C, E>
where
    C: DeserializeOwned + Default,
    E: From<LoadError>,
{
    let config = if text.trim().is_empty() {
        C::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| LoadError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?
    };
    validate(&config)?;
    Ok(config)
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig given and none found in-cluster or in $KUBECONFIG: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("building the API client: {0}")]
    Client(#[from] kube::Error),
}

/// A client from `kubeconfig`, else the in-cluster configuration (or `$KUBECONFIG`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, ConnectError> {
    let config = match kubeconfig {
        Some(path) => {
            let err = |source| ConnectError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(err)?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// What a binary's long-running mode starts from: an API client, this replica's identity
/// (its Lease holder name) and a token cancelled on SIGTERM or Ctrl-C.
pub struct Started {
    pub client: kube::Client,
    pub identity: String,
    pub shutdown: CancellationToken,
}

/// Connects (see [`client`]) and sets up [`identity`] and [`cancel_on_signal`]; call it
/// inside the async runtime.
pub async fn start(kubeconfig: Option<&Path>, program: &str) -> Result<Started, ConnectError> {
    let client = client(kubeconfig).await?;
    Ok(Started {
        client,
        identity: identity(program),
        shutdown: cancel_on_signal(),
    })
}

/// The replica's identity (its Lease holder name): the pod name, else the host name, else
/// `<program>-<pid>`.
pub fn identity(program: &str) -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("{program}-{}", std::process::id()))
}

/// A token cancelled on SIGTERM (what the kubelet sends) or Ctrl-C.
pub fn cancel_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received");
        on_signal.cancel();
    });
    shutdown
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Doc {
        n: u32,
    }

    #[derive(Debug, thiserror::Error)]
    enum DocError {
        #[error(transparent)]
        Load(#[from] LoadError),
        #[error("n must be below 10")]
        TooBig,
    }

    fn below_ten(d: &Doc) -> Result<(), DocError> {
        if d.n < 10 {
            Ok(())
        } else {
            Err(DocError::TooBig)
        }
    }

    #[test]
    fn an_empty_document_is_the_defaults_and_is_validated() {
        assert_eq!(parse_yaml("  \n", "t", below_ten).unwrap(), Doc::default());
        let refuse = |_: &Doc| Err(DocError::TooBig);
        assert!(matches!(parse_yaml("", "t", refuse), Err(DocError::TooBig)));
    }

    #[test]
    fn a_bad_document_names_its_origin_and_the_key() {
        let e = parse_yaml::<Doc, _>("m: 1\n", "my.yaml", below_ten).unwrap_err();
        assert!(matches!(e, DocError::Load(LoadError::Parse { .. })), "{e}");
        let text = e.to_string();
        assert!(text.contains("my.yaml") && text.contains('m'), "{text}");
        let e = parse_yaml::<Doc, _>("n: 12\n", "t", below_ten).unwrap_err();
        assert!(matches!(e, DocError::TooBig), "{e}");
    }

    #[test]
    fn a_missing_file_is_named_and_a_file_is_parsed() {
        let e = load_yaml::<Doc, _>(Path::new("/nonexistent/c.yaml"), below_ten).unwrap_err();
        assert!(matches!(e, DocError::Load(LoadError::Read { .. })), "{e}");
        assert!(e.to_string().contains("/nonexistent/c.yaml"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "n: 3\n").unwrap();
        assert_eq!(load_yaml(&path, below_ten).unwrap(), Doc { n: 3 });
    }

    /// Captures what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn the_shared_crates_lines_name_the_binary_they_come_from() {
        for json in [false, true] {
            let out = Captured::default();
            let sub = subscriber(
                "hubpack-placeholder-ctl",
                json,
                out.clone(),
                tracing_subscriber::EnvFilter::new("info"),
            );
            tracing::subscriber::with_default(sub, || {
                // The controller's HTTP and leader election lines come from this crate.
                tracing::info!(target: "hubpack_kube::http", addr = "0.0.0.0:8080", "serving /metrics /healthz /readyz");
                tracing::info!(target: "hubpack_kube::leader", leading = true, "leadership changed");
            });
            let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{text}");
            for line in lines {
                assert!(!line.contains("hubpack_scheduler"), "{line}");
                if json {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert_eq!(v["binary"], "hubpack-placeholder-ctl", "{line}");
                    assert!(v["target"].as_str().unwrap().starts_with("hubpack_kube::"));
                } else {
                    assert!(line.starts_with("hubpack-placeholder-ctl "), "{line}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_is_named() {
        let Err(e) = client(Some(Path::new("/nonexistent/kubeconfig"))).await else {
            panic!("a client from a missing kubeconfig");
        };
        assert!(e.to_string().contains("/nonexistent/kubeconfig"), "{e}");
    }
}
