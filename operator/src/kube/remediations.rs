//! Reads an Incident's Remediations.

use kube::{Api, Client};

use crate::crd::{IncidentStatus, Remediation};

/// The Incident's Remediations, in the order they were created (deleted ones skipped).
pub async fn owned_remediations(client: &Client, ns: &str, st: &IncidentStatus) -> Result<Vec<Remediation>, kube::Error> {
    let api: Api<Remediation> = Api::namespaced(client.clone(), ns);
    let mut out = Vec::new();
    for name in &st.remediations {
        if let Some(r) = api.get_opt(name).await? {
            out.push(r);
        }
    }
    Ok(out)
}
