//! report.html in a real browser: Debian's headless Chromium loads the page (no network,
//! fresh profile), and the test fails on any console message or error, on a chart that
//! did not draw, or on a missing headline. `cargo xtask test` installs `chromium`; run by
//! hand, install it (`apt-get install chromium`) or point HUBPACK_CHROMIUM at a binary.
//! Takes ~2-5 s.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_sim::report::write_all;
use hubpack_sim::runner::run_grid;
use hubpack_sim::scenario::{PlaceholderMode, PolicySpec, SchedulerKind};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("HUBPACK_CHROMIUM") {
        return PathBuf::from(p);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "this test needs Debian's chromium: `apt-get install chromium` (cargo xtask test \
         installs it), or set HUBPACK_CHROMIUM"
    );
}

/// Loads `page` headless; returns (DOM after load, console lines Chromium logged).
fn load(page: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both pipes are drained while Chromium runs: a DOM larger than a pipe's buffer would
    // otherwise block it before it exits.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&stderr)
    );
    let console = String::from_utf8_lossy(&stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&stdout).into_owned(), console)
}

#[test]
fn the_report_renders_in_chromium_without_errors_and_with_every_chart_drawn() {
    let sc = common::shipped("class-burst.yaml");
    let policies = vec![
        PolicySpec {
            scheduler: SchedulerKind::Z2jh,
            placeholders: PlaceholderMode::None,
            prepull: true,
        },
        PolicySpec {
            scheduler: SchedulerKind::Z2jh,
            placeholders: PlaceholderMode::PerUser { k: 150 },
            prepull: true,
        },
        PolicySpec {
            scheduler: SchedulerKind::Hubpack,
            placeholders: PlaceholderMode::Predictive,
            prepull: true,
        },
    ];
    let runs = run_grid(&sc, &policies, 2, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &sc, &runs).unwrap();

    // The check itself can fail: a page with a console error is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!doctype html><script>console.error('boom')</script><p>x</p>",
    )
    .unwrap();
    let (_, console) = load(&bad);
    assert!(console.iter().any(|l| l.contains("boom")), "{console:?}");

    let (dom, console) = load(&dir.path().join("report.html"));
    assert!(console.is_empty(), "console messages: {console:?}");
    // The headline names the best policy against z2jh as shipped.
    let headline = dom
        .split("id=\"headline\">")
        .nth(1)
        .unwrap()
        .split("</p>")
        .next()
        .unwrap();
    assert!(
        headline.contains("hubpack / predictive") && headline.contains("z2jh as shipped"),
        "{headline}"
    );
    // Every chart drew: CDFs for z2jh and hubpack, nodes and users over time, the scatter.
    let svgs: Vec<&str> = dom.split("<svg").skip(1).collect();
    assert_eq!(svgs.len(), 5, "charts in the page");
    assert!(!dom.contains("<p>chart"), "a chart failed to draw");
    for (i, svg) in svgs.iter().enumerate() {
        let svg = svg.split("</svg>").next().unwrap();
        let marks = svg.matches("<polyline").count() + svg.matches("<circle").count();
        assert!(marks >= 2, "chart {i} is empty");
        // Long enough lines: a drawn series, not just the legend.
        let longest = svg
            .split("points=\"")
            .skip(1)
            .map(|p| p.split('"').next().unwrap().split(' ').count())
            .max()
            .unwrap_or(0);
        assert!(
            longest >= 10 || svg.matches("<circle").count() >= 3,
            "chart {i}: no series drawn"
        );
        assert!(svg.contains("<text"), "chart {i} has no labels");
    }
}
