//! The leader's checkpoint, state ⇄ text, pure: what the controller has learned (per pool:
//! the lead-time samples, the background rate and its weekly shape, the live window, the
//! hysteresis timers, the learned pre-pull images) and the calendars' last good copies, as
//! one versioned JSON document kept in a ConfigMap of its own (the adapter reads and writes
//! it: [`crate::adapter::checkpoint`]). A new leader starts from it, so a rolling upgrade
//! does not fall back to the configured lead time and an empty background.
//!
//! Bounded: a ConfigMap holds at most 1 MiB, so the document is kept under [`MAX_BYTES`].
//! The learned state is small (a window of samples, 168 hourly counts, a few timers); the
//! calendars' copies take what is left, the most recently fetched first, and those that do
//! not fit are named in `droppedCalendars` (the feed is fetched again; only its last good
//! copy is missing while it is unreachable). A document of another `version`, or one that
//! does not parse, is an error value the caller reports and then ignores: it never stops
//! the controller.

use hubpack_core::headroom::ReconcilerState;
use hubpack_core::model::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// The format this build writes and reads.
pub const VERSION: u64 = 1;
/// The ConfigMap key that holds the document.
pub const DATA_KEY: &str = "checkpoint.json";
/// Well below a ConfigMap's 1 MiB, with room for its metadata (managed fields included).
pub const MAX_BYTES: usize = 512 * 1024;
/// Kept free for the list of dropped calendars.
const DROPPED_LIST_ROOM: usize = 4 * 1024;

/// Everything kept across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub version: u64,
    /// Wall-clock ms when it was written.
    pub written_at: Millis,
    /// Who wrote it (the leader's identity).
    #[serde(default)]
    pub writer: String,
    /// By pool name.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolCheckpoint>,
    /// By calendar name: its last good copy.
    #[serde(default)]
    pub calendars: BTreeMap<String, CalendarCopy>,
    /// Calendars whose copy did not fit within [`MAX_BYTES`].
    #[serde(default)]
    pub dropped_calendars: Vec<String>,
}

/// One pool's learned state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PoolCheckpoint {
    pub reconciler: ReconcilerState,
    pub learned_images: Vec<String>,
    pub images_changed_at: Option<Millis>,
}

/// A calendar's last good copy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarCopy {
    pub text: String,
    #[serde(default)]
    pub fetched_at: Option<Millis>,
}

#[derive(Debug, Error, PartialEq)]
pub enum CheckpointError {
    #[error(
        "checkpoint format version {found} is not this build's ({VERSION}): ignored, learning starts afresh"
    )]
    Version { found: u64 },
    #[error("checkpoint unreadable (ignored, learning starts afresh): {0}")]
    Corrupt(String),
    #[error(
        "the learned state alone takes {bytes} bytes, above the {MAX_BYTES}-byte bound: not written"
    )]
    TooLarge { bytes: usize },
}

/// The document as written, and what did not fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub text: String,
    pub dropped_calendars: Vec<String>,
}

/// `checkpoint` as text within [`MAX_BYTES`]: its `version` set to [`VERSION`], its
/// calendars kept most recently fetched first while they fit (ties by name).
pub fn encode(checkpoint: &Checkpoint) -> Result<Encoded, CheckpointError> {
    let mut doc = Checkpoint {
        version: VERSION,
        calendars: BTreeMap::new(),
        dropped_calendars: Vec::new(),
        ..checkpoint.clone()
    };
    let size = |d: &Checkpoint| {
        serde_json::to_string(d)
            .map(|t| t.len())
            .map_err(|e| CheckpointError::Corrupt(e.to_string()))
    };
    let budget = MAX_BYTES - DROPPED_LIST_ROOM;
    let base = size(&doc)?;
    if base > budget {
        return Err(CheckpointError::TooLarge { bytes: base });
    }
    let mut order: Vec<(&String, &CalendarCopy)> = checkpoint.calendars.iter().collect();
    order.sort_by(|a, b| b.1.fetched_at.cmp(&a.1.fetched_at).then(a.0.cmp(b.0)));
    let mut used = base;
    let mut dropped = Vec::new();
    for (name, copy) in order {
        // An entry adds its key, its value, a colon and a comma.
        let entry = serde_json::to_string(name)
            .and_then(|k| Ok(k.len() + serde_json::to_string(copy)?.len() + 2))
            .map_err(|e| CheckpointError::Corrupt(e.to_string()))?;
        if used + entry <= budget {
            used += entry;
            doc.calendars.insert(name.clone(), copy.clone());
        } else {
            dropped.push(name.clone());
        }
    }
    dropped.sort();
    doc.dropped_calendars = dropped.clone();
    let text = serde_json::to_string(&doc).map_err(|e| CheckpointError::Corrupt(e.to_string()))?;
    if text.len() > MAX_BYTES {
        return Err(CheckpointError::TooLarge { bytes: text.len() });
    }
    Ok(Encoded {
        text,
        dropped_calendars: dropped,
    })
}

/// Reads a document [`encode`] wrote. Another version, or anything that does not parse as
/// this version, is an error (the caller reports it and starts afresh).
pub fn decode(text: &str) -> Result<Checkpoint, CheckpointError> {
    #[derive(Deserialize)]
    struct Header {
        version: Option<serde_json::Value>,
    }
    let header: Header =
        serde_json::from_str(text).map_err(|e| CheckpointError::Corrupt(e.to_string()))?;
    let Some(version) = header.version else {
        return Err(CheckpointError::Corrupt("no `version` field".into()));
    };
    match version.as_u64() {
        Some(VERSION) => {}
        Some(found) => return Err(CheckpointError::Version { found }),
        None => {
            return Err(CheckpointError::Corrupt(format!(
                "`version` is {version}, not a number"
            )));
        }
    }
    serde_json::from_str(text).map_err(|e| CheckpointError::Corrupt(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use hubpack_core::headroom::{LandedPlaceholder, LearnerState};

    fn learned() -> Checkpoint {
        let reconciler = ReconcilerState {
            learner: LearnerState {
                background_arrivals: 12.5,
                background_observed_ms: 3_600_000.0,
                weekly_hourly: Some(vec![0.5; 168]),
                weekly_last: Some(1_000),
                recent: vec![900, 950],
                started: Some(0),
                last: Some(1_000),
            },
            lead_samples: vec![250_000, 310_000, 420_000],
            lower_since: vec![(None, 800), (Some("a".into()), 700)],
            waiting: [("uid-1".to_string(), 600)].into(),
            landed: [(
                "uid-2".to_string(),
                LandedPlaceholder {
                    node: "n1".into(),
                    since: 500,
                },
            )]
            .into(),
            judged: ["uid-3".to_string()].into(),
            first_seen_warm: [("n0".to_string(), 400)].into(),
        };
        Checkpoint {
            version: 0,
            written_at: 1_000,
            writer: "ctl-0".into(),
            pools: [(
                "default".to_string(),
                PoolCheckpoint {
                    reconciler,
                    learned_images: vec!["docker.io/jupyter/base-notebook:2024".into()],
                    images_changed_at: Some(100),
                },
            )]
            .into(),
            calendars: BTreeMap::new(),
            dropped_calendars: Vec::new(),
        }
    }

    fn calendar(bytes: usize, fetched_at: Millis) -> CalendarCopy {
        CalendarCopy {
            text: "x".repeat(bytes),
            fetched_at: Some(fetched_at),
        }
    }

    #[test]
    fn state_survives_the_round_trip() {
        let mut c = learned();
        c.calendars.insert("course".into(), calendar(1_000, 900));
        let encoded = encode(&c).unwrap();
        assert!(encoded.dropped_calendars.is_empty());
        let back = decode(&encoded.text).unwrap();
        assert_eq!(
            back,
            Checkpoint {
                version: VERSION,
                ..c
            }
        );
    }

    #[test]
    fn the_format_is_stable() {
        // A document written by this version is read by it: a field renamed by accident
        // fails here (bump VERSION instead).
        let text = r#"{"version":1,"writtenAt":5,"writer":"w","pools":{"default":{
            "reconciler":{"learner":{"backgroundArrivals":2.0,"backgroundObservedMs":60000.0,
            "weeklyHourly":null,"weeklyLast":null,"recent":[1,2],"started":0,"last":4},
            "leadSamples":[300000],"lowerSince":[[null,3]],"waiting":{},"landed":{},
            "firstSeenWarm":{}},"learnedImages":[],"imagesChangedAt":null}},
            "calendars":{"c":{"text":"BEGIN:VCALENDAR","fetchedAt":4}},"droppedCalendars":[]}"#;
        let c = decode(text).unwrap();
        let pool = &c.pools["default"].reconciler;
        assert_eq!(pool.lead_samples, vec![300_000]);
        assert_eq!(pool.lower_since, vec![(None, 3)]);
        assert_eq!(pool.learner.last, Some(4));
        assert_eq!(c.calendars["c"].fetched_at, Some(4));
    }

    #[test]
    fn another_version_or_a_corrupt_body_is_an_error_not_a_crash() {
        let mut text = encode(&learned()).unwrap().text;
        text = text.replacen("\"version\":1", "\"version\":2", 1);
        assert_eq!(decode(&text), Err(CheckpointError::Version { found: 2 }));
        for corrupt in [
            "",
            "not json",
            "{}",
            r#"{"version":"one"}"#,
            r#"{"version":1,"writtenAt":"yesterday"}"#,
            r#"{"version":1,"writtenAt":1,"pools":{"default":{"reconciler":{"leadSamples":"x"}}}}"#,
            &encode(&learned()).unwrap().text[..100],
        ] {
            assert!(
                matches!(decode(corrupt), Err(CheckpointError::Corrupt(_))),
                "{corrupt:?}: {:?}",
                decode(corrupt)
            );
        }
        // A document of this version with fields it does not know (a newer build's
        // additions, same version) still reads.
        let text = encode(&learned())
            .unwrap()
            .text
            .replacen('{', r#"{"extra":true,"#, 1);
        assert!(decode(&text).is_ok());
    }

    #[test]
    fn calendars_fill_what_is_left_newest_first_and_the_rest_are_named() {
        let mut c = learned();
        // Three of 200 KiB: two fit under 512 KiB, the oldest does not.
        c.calendars.insert("old".into(), calendar(200 << 10, 1));
        c.calendars.insert("new".into(), calendar(200 << 10, 3));
        c.calendars.insert("mid".into(), calendar(200 << 10, 2));
        // A small one still fits after the big one that did not.
        c.calendars.insert("tiny".into(), calendar(100, 0));
        let encoded = encode(&c).unwrap();
        assert!(encoded.text.len() <= MAX_BYTES, "{}", encoded.text.len());
        assert_eq!(encoded.dropped_calendars, vec!["old".to_string()]);
        let back = decode(&encoded.text).unwrap();
        let kept: Vec<&str> = back.calendars.keys().map(String::as_str).collect();
        assert_eq!(kept, vec!["mid", "new", "tiny"]);
        assert_eq!(back.dropped_calendars, vec!["old".to_string()]);
        // One feed larger than the bound by itself is dropped, the state still written.
        let mut c = learned();
        c.calendars.insert("huge".into(), calendar(6 << 20, 9));
        let encoded = encode(&c).unwrap();
        assert!(encoded.text.len() <= MAX_BYTES);
        assert_eq!(encoded.dropped_calendars, vec!["huge".to_string()]);
    }

    #[test]
    fn escaping_counts_toward_the_bound() {
        // iCalendar lines end in CRLF, which JSON escapes to four bytes.
        let mut c = learned();
        for i in 0..4 {
            c.calendars.insert(
                format!("c{i}"),
                CalendarCopy {
                    text: "\r\n".repeat(40 << 10),
                    fetched_at: Some(i),
                },
            );
        }
        let encoded = encode(&c).unwrap();
        assert!(encoded.text.len() <= MAX_BYTES, "{}", encoded.text.len());
        assert_eq!(encoded.dropped_calendars, vec!["c0".to_string()]);
    }

    #[test]
    fn learned_state_too_large_for_the_bound_is_refused() {
        let mut c = learned();
        if let Some(p) = c.pools.get_mut("default") {
            p.reconciler.lead_samples = vec![i64::MAX; 100_000];
        }
        assert!(matches!(encode(&c), Err(CheckpointError::TooLarge { .. })));
    }
}
