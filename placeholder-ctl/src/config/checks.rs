//! Small field checks shared by the config's sections.

use super::{ConfigError, invalid};
use std::collections::BTreeSet;

pub(super) fn known_pool(
    field: &str,
    pool: &str,
    pools: &BTreeSet<&str>,
) -> Result<(), ConfigError> {
    if pools.contains(pool) {
        return Ok(());
    }
    invalid(
        field,
        format!("({pool}) names no configured pool"),
        format!(
            "use one of: {}",
            pools.iter().copied().collect::<Vec<_>>().join(", ")
        ),
    )
}

pub(super) fn positive(field: &str, v: f64) -> Result<(), ConfigError> {
    if v > 0.0 && v.is_finite() {
        return Ok(());
    }
    invalid(
        field,
        format!("({v}) must be a positive number"),
        "use e.g. 10",
    )
}

pub(super) fn non_negative(field: &str, v: f64) -> Result<(), ConfigError> {
    if v >= 0.0 && v.is_finite() {
        return Ok(());
    }
    invalid(field, format!("({v}) must be ≥ 0"), "use e.g. 600")
}

pub(super) fn nonempty(field: &str, v: &str) -> Result<(), ConfigError> {
    if !v.trim().is_empty() {
        return Ok(());
    }
    invalid(field, "is empty", "give a value (see config.example.yaml)")
}

pub(super) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(super) fn is_label_value(s: &str) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && edge(s.as_bytes().first())
        && edge(s.as_bytes().last())
}

pub(super) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}
