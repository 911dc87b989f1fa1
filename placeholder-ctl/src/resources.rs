//! Resource amounts as the config writes them (`{cpu: 500m, memory: 2Gi, pods: "110"}`,
//! numbers allowed), converted with the scheduler's exact quantity parser.

use hubpack_core::model::Resources;
use hubpack_kube::convert::quantity::{parse_milli, parse_units};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A quantity written as a string (`500m`, `2Gi`) or a plain number (`4`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum QuantityValue {
    Text(String),
    Number(f64),
}

impl QuantityValue {
    fn to_quantity(&self) -> Quantity {
        match self {
            QuantityValue::Text(s) => Quantity(s.clone()),
            QuantityValue::Number(n) => Quantity(n.to_string()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct ResourceMap(pub BTreeMap<String, QuantityValue>);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ResourceMapError(String);

impl ResourceMap {
    pub fn to_quantities(&self) -> BTreeMap<String, Quantity> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.to_quantity()))
            .collect()
    }

    pub fn to_resources(&self) -> Result<Resources, ResourceMapError> {
        let mut r = Resources::default();
        for (name, v) in self.to_quantities() {
            let bad = |e| ResourceMapError(format!("{name}: {e}"));
            match name.as_str() {
                "cpu" => r.cpu_milli = parse_milli(&v.0).map_err(bad)?,
                "memory" => r.memory = parse_units(&v.0).map_err(bad)?,
                "ephemeral-storage" => r.ephemeral_storage = parse_units(&v.0).map_err(bad)?,
                "pods" => r.pods = parse_units(&v.0).map_err(bad)?,
                _ => {
                    let amount = parse_units(&v.0).map_err(bad)?;
                    r.extended.insert(name, amount);
                }
            }
        }
        if [r.cpu_milli, r.memory, r.ephemeral_storage, r.pods]
            .iter()
            .chain(r.extended.values())
            .any(|v| *v < 0)
        {
            return Err(ResourceMapError("a quantity is negative".into()));
        }
        Ok(r)
    }
}

/// Resources back to Kubernetes quantities (cpu in millicores, the rest in units), for the
/// objects the controller writes. Zero amounts and pod slots are left out.
pub fn to_quantities(r: &Resources) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    if r.cpu_milli > 0 {
        out.insert("cpu".to_string(), Quantity(format!("{}m", r.cpu_milli)));
    }
    if r.memory > 0 {
        out.insert("memory".to_string(), Quantity(r.memory.to_string()));
    }
    if r.ephemeral_storage > 0 {
        out.insert(
            "ephemeral-storage".to_string(),
            Quantity(r.ephemeral_storage.to_string()),
        );
    }
    for (k, v) in &r.extended {
        if *v > 0 {
            out.insert(k.clone(), Quantity(v.to_string()));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_round_trip() {
        let m: ResourceMap =
            serde_saphyr::from_str("{cpu: 500m, memory: 2Gi, pods: 110, nvidia.com/gpu: 1}")
                .unwrap();
        let r = m.to_resources().unwrap();
        assert_eq!(r.cpu_milli, 500);
        assert_eq!(r.memory, 2 << 30);
        assert_eq!(r.pods, 110);
        assert_eq!(r.extended("nvidia.com/gpu"), 1);
        let q = to_quantities(&r);
        assert_eq!(q["cpu"].0, "500m");
        assert_eq!(q["memory"].0, (2i64 << 30).to_string());
        assert!(!q.contains_key("pods"));
    }

    #[test]
    fn a_bad_quantity_names_the_resource() {
        let m: ResourceMap = serde_saphyr::from_str("{cpu: lots}").unwrap();
        let e = m.to_resources().unwrap_err();
        assert!(e.to_string().contains("cpu"), "{e}");
    }
}
