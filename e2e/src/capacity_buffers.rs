//! CapacityBuffers (`autoscaling.x-k8s.io/v1beta1`) for the e2e cluster: the CRD as
//! cluster-autoscaler 1.36.1 ships it (`e2e/crds/`, a copy of
//! `../shared/upstream/autoscaling.x-k8s.io_capacitybuffers-1.36.1.yaml`), installed before
//! the autoscaler starts, and the autoscaler flags that run its buffer controller (spec →
//! status: chunks, pod template generation, conditions) and its pod injection (each loop,
//! `status.replicas` virtual pods of the buffer's PodTemplate join the unschedulable pods).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::time::Duration;

/// The CRD, unmodified.
pub const CRD_YAML: &str = include_str!("../crds/autoscaling.x-k8s.io_capacitybuffers-1.36.1.yaml");
pub const CRD_NAME: &str = "capacitybuffers.autoscaling.x-k8s.io";

/// cluster-autoscaler's flags for buffers (pod dry run stays at its default, on: the
/// autoscaler may create pods, as the harness's admin kubeconfig allows).
pub fn autoscaler_args() -> Vec<String> {
    vec![
        "--capacity-buffer-controller-enabled=true".into(),
        "--capacity-buffer-pod-injection-enabled=true".into(),
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("the CapacityBuffer CRD does not parse: {0}")]
    Parse(String),
    #[error("applying the CapacityBuffer CRD: {0}")]
    Kube(#[from] kube::Error),
    #[error("the CapacityBuffer CRD was not Established within {0:?}")]
    NotEstablished(Duration),
}

/// The CRD as an object.
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    serde_saphyr::from_str(CRD_YAML).map_err(|e| CrdError::Parse(e.to_string()))
}

/// Applies the CRD and waits until the API server serves it.
pub async fn install_crd(client: &kube::Client, timeout: Duration) -> Result<(), CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("hubpack-e2e").force();
    api.patch(CRD_NAME, &params, &Patch::Apply(crd()?)).await?;
    let established = crate::wait::until("CRD Established", timeout, || async {
        let crd = api.get_opt(CRD_NAME).await.ok().flatten()?;
        crd.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
    established.map_err(|_| CrdError::NotEstablished(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crd_parses_and_serves_v1beta1() {
        let crd = crd().expect("parses");
        assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
        assert!(
            crd.spec
                .versions
                .iter()
                .any(|v| v.name == "v1beta1" && v.served)
        );
    }
}
