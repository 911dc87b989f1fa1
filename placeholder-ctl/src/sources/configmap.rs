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

/// The valid events of one ConfigMap's `data`, and the problems of the rest.
pub fn parse_events(
    data: &BTreeMap<String, String>,
    pools: &BTreeSet<&str>,
) -> (Vec<EventConfig>, Vec<EntryProblem>) {
    let mut events = Vec::new();
    let mut problems = Vec::new();
    for (key, text) in data {
        let list: Vec<EventConfig> = match serde_saphyr::from_str(text) {
            Ok(l) => l,
            Err(e) => {
                problems.push(EntryProblem {
                    field: format!("data.{key}"),
                    message: format!("not a YAML list of events: {e}"),
                });
                continue;
            }
        };
        for (i, e) in list.into_iter().enumerate() {
            match e.validate(&format!("data.{key}[{i}]"), pools) {
                Ok(()) => events.push(e),
                Err(ConfigError::Invalid {
                    field,
                    problem,
                    fix,
                }) => problems.push(EntryProblem {
                    field,
                    message: format!("{problem}; fix: {fix}"),
                }),
                Err(other) => problems.push(EntryProblem {
                    field: format!("data.{key}[{i}]"),
                    message: other.to_string(),
                }),
            }
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
}
