//! Values files as helm reads them: several `-f` files merged in order (maps deep-merged,
//! lists and scalars replaced, later wins, `null` deletes the key), and the z2jh block
//! found inside the result (`jupyterhub:`, `basehub: jupyterhub:`, `daskhub: jupyterhub:`
//! …) when the hub deploys z2jh as a subchart of its own chart.

use super::z2jh_values::Z2jhError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Top-level keys of the z2jh chart: a map with one of them is a z2jh block.
const Z2JH_KEYS: [&str; 6] = [
    "singleuser",
    "scheduling",
    "prePuller",
    "cull",
    "hub",
    "proxy",
];
/// Keys a parent chart's values hold z2jh under, most likely first.
const SUBCHART_KEY: &str = "jupyterhub";
/// How deep under parent charts to look (`a.b.jupyterhub`).
const MAX_DEPTH: usize = 4;

/// Parses one values file (YAML anchors and aliases resolved) into a tree.
pub fn parse_yaml(text: &str, path: &Path) -> Result<Value, Z2jhError> {
    let v: Value = super::from_yaml(text).map_err(|message| Z2jhError::Parse {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(match v {
        // An empty file: nothing set.
        Value::Null => Value::Object(Map::new()),
        v => v,
    })
}

/// Merges `over` into `base` as helm merges a later `-f` file into an earlier one.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match v {
                    Value::Null => {
                        b.remove(&k);
                    }
                    Value::Object(_) if b.get(&k).is_some_and(Value::is_object) => {
                        if let Some(slot) = b.get_mut(&k) {
                            merge(slot, v);
                        }
                    }
                    v => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Reads and merges `paths` in order.
pub fn read_merged(paths: &[PathBuf]) -> Result<Value, Z2jhError> {
    let mut merged = Value::Object(Map::new());
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| Z2jhError::Read {
            path: path.clone(),
            source,
        })?;
        merge(&mut merged, parse_yaml(&text, path)?);
    }
    Ok(merged)
}

/// Where the z2jh block was found, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Dotted key path; empty for the top level.
    pub at: String,
    /// `true`: given by `--values-key`; `false`: auto-detected.
    pub given: bool,
}

impl Found {
    /// "the z2jh block at `basehub.jupyterhub` (auto-detected; --values-key to choose)".
    pub fn describe(&self) -> String {
        let at = if self.at.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{}`", self.at)
        };
        if self.given {
            format!("the z2jh block at {at} (--values-key)")
        } else {
            format!("the z2jh block at {at} (auto-detected; --values-key a.b to choose another)")
        }
    }
}

/// The z2jh block of the merged values: at `key` (dotted) if given, else found. `files`
/// names the files in errors.
pub fn find_block(
    merged: &Value,
    key: Option<&str>,
    files: &str,
) -> Result<(Value, Found), Z2jhError> {
    let path = PathBuf::from(files);
    if let Some(key) = key {
        let key = key.trim_matches('.');
        let mut at = merged;
        for part in key.split('.').filter(|p| !p.is_empty()) {
            at = at.get(part).ok_or_else(|| Z2jhError::Invalid {
                path: path.clone(),
                field: format!("--values-key {key}"),
                message: format!(
                    "no key {part:?} there; keys present: {}",
                    keys_of(at).join(", ")
                ),
            })?;
        }
        if !at.is_object() {
            return Err(Z2jhError::Invalid {
                path,
                field: format!("--values-key {key}"),
                message: "is not a map of z2jh values".into(),
            });
        }
        let found = Found {
            at: key.to_string(),
            given: true,
        };
        return Ok((at.clone(), found));
    }
    let Some(top) = merged.as_object() else {
        return Err(Z2jhError::Parse {
            path,
            message: "the values are not a map of keys".into(),
        });
    };
    // Nothing set at all (`{}`): z2jh's defaults, explicitly.
    if top.is_empty() || is_z2jh(merged) {
        return Ok((
            merged.clone(),
            Found {
                at: String::new(),
                given: false,
            },
        ));
    }
    let mut blocks = Vec::new();
    find_nested(merged, &mut Vec::new(), &mut blocks);
    // A subchart key is what hubs use; prefer it over any other map that looks like z2jh.
    let named: Vec<&String> = blocks
        .iter()
        .filter(|p| p.ends_with(SUBCHART_KEY))
        .collect();
    let chosen = match (named.as_slice(), blocks.as_slice()) {
        ([one], _) => (*one).clone(),
        (_, [one]) => one.clone(),
        ([], []) => {
            return Err(Z2jhError::Parse {
                path,
                message: format!(
                    "no z2jh values found: none of {} at the top level, and no `jupyterhub:` \
                     block under the keys {} (up to {MAX_DEPTH} levels). If the z2jh values sit \
                     under another key, give it: --values-key a.b",
                    Z2JH_KEYS.join(", "),
                    keys_of(merged).join(", ")
                ),
            });
        }
        _ => {
            return Err(Z2jhError::Parse {
                path,
                message: format!(
                    "several blocks look like z2jh values: {}; choose one with --values-key",
                    blocks.join(", ")
                ),
            });
        }
    };
    let mut at = merged;
    for part in chosen.split('.') {
        at = &at[part];
    }
    Ok((
        at.clone(),
        Found {
            at: chosen,
            given: false,
        },
    ))
}

fn is_z2jh(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| Z2JH_KEYS.iter().any(|k| m.contains_key(*k)))
}

fn keys_of(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Dotted paths of nested maps that are z2jh blocks (the outermost along each branch).
fn find_nested(v: &Value, at: &mut Vec<String>, out: &mut Vec<String>) {
    let Some(m) = v.as_object() else { return };
    if at.len() >= MAX_DEPTH {
        return;
    }
    for (k, child) in m {
        at.push(k.clone());
        let named = k == SUBCHART_KEY && child.is_object();
        if named || (!at.is_empty() && is_z2jh(child) && has_singleuser(child)) {
            out.push(at.join("."));
        } else {
            find_nested(child, at, out);
        }
        at.pop();
    }
}

/// A nested map is taken for z2jh (without the subchart name) only if it configures users.
fn has_singleuser(v: &Value) -> bool {
    v.get("singleuser").is_some_and(Value::is_object)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helm_merge_deep_merges_maps_replaces_lists_and_null_deletes() {
        let mut base = json!({
            "a": {"x": 1, "y": [1, 2], "z": {"k": 1}},
            "b": 2,
            "c": {"gone": true}
        });
        merge(
            &mut base,
            json!({"a": {"y": [3], "z": {"j": 2}, "w": 4}, "b": {"now": "map"}, "c": null}),
        );
        assert_eq!(
            base,
            json!({"a": {"x": 1, "y": [3], "z": {"k": 1, "j": 2}, "w": 4}, "b": {"now": "map"}})
        );
    }

    #[test]
    fn the_block_is_found_under_a_parent_chart_and_said_where() {
        let v = json!({"basehub": {"nfs": {}, "jupyterhub": {"singleuser": {}}}});
        let (block, found) = find_block(&v, None, "x.yaml").unwrap();
        assert_eq!(block, json!({"singleuser": {}}));
        assert_eq!(found.at, "basehub.jupyterhub");
        assert!(found.describe().contains("auto-detected"));
        let (_, found) = find_block(&v, Some("basehub.jupyterhub"), "x.yaml").unwrap();
        assert!(found.given);
        let top = json!({"singleuser": {"cpu": {"guarantee": 1}}});
        assert_eq!(find_block(&top, None, "x.yaml").unwrap().1.at, "");
    }

    #[test]
    fn values_without_z2jh_are_an_error_that_says_what_to_do() {
        let v = json!({"nfs": {"enabled": true}, "dask-gateway": {"gateway": {}}});
        let err = find_block(&v, None, "x.yaml").unwrap_err().to_string();
        assert!(err.contains("no z2jh values found"), "{err}");
        assert!(err.contains("--values-key"), "{err}");
        let err = find_block(&v, Some("daskhub.jupyterhub"), "x.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("daskhub") && err.contains("nfs"), "{err}");
    }
}
