//! Leader election on a `coordination.k8s.io/v1` Lease. Only the leader runs the controllers;
//! standby replicas keep their caches warm. Takeover uses the Lease's resourceVersion
//! (optimistic concurrency), so two replicas can never both win the same round.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease: Duration,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaderElector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str, lease: Duration) -> Self {
        Self { api: Api::namespaced(client, namespace), name: name.into(), identity: identity.into(), lease }
    }

    fn spec(&self, now: Timestamp, transitions: i32, acquire: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease.as_secs().try_into().unwrap_or(i32::MAX)),
            renew_time: Some(MicroTime(now)),
            acquire_time: Some(acquire.unwrap_or(MicroTime(now))),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One round: acquire, renew or observe. Returns whether this replica leads now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaderError> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease =
                Lease { metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() }, spec: Some(self.spec(now, 0, None)) };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(15).into());
        let expired = spec.renew_time.as_ref().is_none_or(|t| t.0 + duration < now);
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if holder == self.identity {
            self.spec(now, transitions, spec.acquire_time.clone())
        } else if holder.is_empty() || expired {
            self.spec(now, transitions + 1, None)
        } else {
            return Ok(false);
        };
        lease.spec = Some(new_spec);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up on shutdown so a standby takes over at once instead of after expiry.
    pub async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.identity.as_str())
        {
            spec.holder_identity = None;
            spec.renew_time = None;
            let _ = self.api.replace(&self.name, &PostParams::default(), &lease).await;
        }
    }

    /// Runs election rounds until `shutdown`; publishes leadership on the returned channel.
    pub fn spawn(self, shutdown: CancellationToken) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let renew = self.lease / 3;
        tokio::spawn(async move {
            loop {
                let leading = match self.try_acquire_or_renew().await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "leader election round failed");
                        false
                    }
                };
                if *tx.borrow() != leading {
                    tracing::info!(identity = %self.identity, leading, "leadership changed");
                }
                tx.send_replace(leading);
                tokio::select! {
                    _ = tokio::time::sleep(renew) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            if *tx.borrow() {
                self.release().await;
            }
            tx.send_replace(false);
        });
        rx
    }
}
