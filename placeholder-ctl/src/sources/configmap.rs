//! Event ConfigMaps (label `hubpack.io/events`): every `data` value is a YAML list of events
//! in the config file's `events` format. A bad entry is reported naming the ConfigMap, the
//! key and the field; the other entries (and every other source) are still used.

use crate::config::{ConfigError, EventConfig};
use std::collections::{BTreeMap, BTreeSet};

/// The label that marks an event ConfigMap.
pub const EVENTS_LABEL: &str = "hubpack.io/events";

/// One problem in one ConfigMap entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryProblem {
    /// `data.<key>` or `data.<key>[i].<field>`.
    pub field: String,
    pub message: String,
}

/// The valid events of one ConfigMap's `data`, and the problems of the rest: every field
/// of every entry (one problem does not hide the next), each entry parsed on its own (a
/// misspelt key drops that entry only).
pub fn parse_events(
    data: &BTreeMap<String, String>,
    pools: &BTreeSet<&str>,
) -> (Vec<EventConfig>, Vec<EntryProblem>) {
    let mut events = Vec::new();
    let mut problems = Vec::new();
    for (key, text) in data {
        let list: Vec<serde_json::Value> = match serde_saphyr::from_str(text) {
            Ok(l) => l,
            Err(e) => {
                problems.push(EntryProblem {
                    field: format!("data.{key}"),
                    message: format!("not a YAML list of events: {e}"),
                });
                continue;
            }
        };
        for (i, entry) in list.into_iter().enumerate() {
            let at = format!("data.{key}[{i}]");
            let e: EventConfig = match serde_json::from_value(entry) {
                Ok(e) => e,
                Err(err) => {
                    problems.push(EntryProblem {
                        field: at,
                        message: format!("not an event: {err}"),
                    });
                    continue;
                }
            };
            let found = e.problems(&at, pools);
            if found.is_empty() {
                events.push(e);
            }
            problems.extend(found.into_iter().map(|p| match p {
                ConfigError::Invalid {
                    field,
                    problem,
                    fix,
                } => EntryProblem {
                    field,
                    message: format!("{problem}; fix: {fix}"),
                },
                other => EntryProblem {
                    field: at.clone(),
                    message: other.to_string(),
                },
            }));
        }
    }
    (events, problems)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn good_entries_are_used_and_bad_ones_named() {
        let pools: BTreeSet<&str> = ["default"].into();
        let data: BTreeMap<String, String> = [
            (
                "class.yaml".to_string(),
                "- {name: a, pool: default, users: 30, start: \"2026-12-01T09:00:00Z\"}\n\
                 - {name: b, pool: default, users: -1, start: \"2026-12-01T09:00:00Z\"}\n\
                 - {name: c, pool: gpu, users: 3, start: \"2026-12-01T09:00:00Z\"}\n"
                    .to_string(),
            ),
            ("junk".to_string(), "{not: a list}".to_string()),
        ]
        .into();
        let (events, problems) = parse_events(&data, &pools);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "a");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "data.class.yaml[1].users",
                "data.class.yaml[2].pool",
                "data.junk"
            ]
        );
    }

    #[test]
    fn every_bad_field_of_every_entry_is_its_own_problem_and_a_misspelt_entry_drops_alone() {
        let pools: BTreeSet<&str> = ["default"].into();
        let data: BTreeMap<String, String> = [(
            "lab.yaml".to_string(),
            "- {name: ok, pool: default, users: 5, start: \"2026-12-01T09:00:00Z\"}\n\
             - {name: two, pool: gpu, users: -3, start: \"2026-12-01T09:00:00Z\", arrivalWindowSeconds: 0}\n\
             - {name: typo, pool: default, userz: 5, start: \"2026-12-01T09:00:00Z\"}\n\
             - {name: also-ok, pool: default, users: 1, schedule: \"0 9 * * MON\"}\n"
                .to_string(),
        )]
        .into();
        let (events, problems) = parse_events(&data, &pools);
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["ok", "also-ok"]);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "data.lab.yaml[1].pool",
                "data.lab.yaml[1].users",
                "data.lab.yaml[1].arrivalWindowSeconds",
                "data.lab.yaml[2]",
            ]
        );
        assert!(
            problems[3].message.contains("userz"),
            "{}",
            problems[3].message
        );
    }
}
