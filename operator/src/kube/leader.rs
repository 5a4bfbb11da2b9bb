//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics
//! (k8s.io/client-go/tools/leaderelection/leaderelection.go):
//!
//! - Expiry is judged by THIS replica's clock only: a lease is free when its record (holder,
//!   renewTime, transitions) has not changed for `leaseDurationSeconds` since this replica
//!   last saw it change (`observedTime`). The holder's `renewTime` is never compared with the
//!   local clock, so clock skew between nodes cannot make two leaders.
//! - The leader renews every `retry_period`; a failed round is retried, and it steps down only
//!   when no renewal succeeded for `renew_deadline` (< lease duration, so it stops before
//!   anyone else may take over).
//! - Takeover uses the Lease's resourceVersion (optimistic concurrency), so two replicas can
//!   never both win the same round.
//!
//! kube-lease-manager (the maintained crate for kube 5) was considered: it computes expiry as
//! the holder's `renewTime + duration` against the local clock (its `state.rs`), which is the
//! clock-skew problem client-go avoids, so this module keeps its own.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::write_gate::WriteGate;

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// Timing, as client-go names it. Defaults: 15 s lease, 10 s renew deadline, 2 s retry.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTiming {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseTiming {
    /// client-go's proportions for a given lease duration (15/10/2).
    pub fn for_lease(lease_duration: Duration) -> Self {
        Self {
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry_period: (lease_duration * 2 / 15).max(Duration::from_millis(100)),
        }
    }
}

/// The part of a Lease whose change proves its holder alive.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LeaseRecord {
    pub holder: String,
    pub renew_time: Option<String>,
    pub transitions: i32,
    pub duration_seconds: i32,
}

impl LeaseRecord {
    fn of(spec: &LeaseSpec) -> Self {
        Self {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0.to_string()),
            transitions: spec.lease_transitions.unwrap_or(0),
            duration_seconds: spec.lease_duration_seconds.unwrap_or(15),
        }
    }
}

/// What this replica has seen of the Lease, on its own clock. Pure: tested without a server.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    observed: Option<(LeaseRecord, Instant)>,
    last_renewal: Option<Instant>,
}

impl Observation {
    /// Notes the record read at `now`; the observed time moves only when the record changed.
    pub fn observe(&mut self, record: LeaseRecord, now: Instant) {
        if self.observed.as_ref().is_none_or(|(r, _)| *r != record) {
            self.observed = Some((record, now));
        }
    }

    /// May `me` write itself into the Lease now? Free, ours, or unchanged for a lease duration.
    pub fn may_acquire(&self, me: &str, now: Instant) -> bool {
        let Some((record, at)) = &self.observed else { return true };
        if record.holder.is_empty() || record.holder == me {
            return true;
        }
        let duration = Duration::from_secs(record.duration_seconds.max(0).unsigned_abs().into());
        now >= *at + duration
    }

    /// A write of ours succeeded at `now` (we hold the lease, renewed).
    pub fn renewed(&mut self, record: LeaseRecord, now: Instant) {
        self.observed = Some((record, now));
        self.last_renewal = Some(now);
    }

    /// Still leading: the last successful renewal is within the renew deadline.
    pub fn still_leading(&self, now: Instant, renew_deadline: Duration) -> bool {
        self.last_renewal.is_some_and(|t| now < t + renew_deadline)
    }

    pub fn lost(&mut self) {
        self.last_renewal = None;
    }
}

#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
    /// Opened by each successful renewal until its renew deadline, closed when leadership ends.
    gate: WriteGate,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaderElector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str, timing: LeaseTiming) -> Self {
        Self { api: Api::namespaced(client, namespace), name: name.into(), identity: identity.into(), timing, gate: WriteGate::open() }
    }

    /// Keeps `gate` open only while this replica's leadership is renewed.
    pub fn with_gate(mut self, gate: WriteGate) -> Self {
        self.gate = gate;
        self
    }

    fn spec(&self, now: Timestamp, transitions: i32, acquire: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.lease_duration.as_secs().try_into().unwrap_or(i32::MAX)),
            renew_time: Some(MicroTime(now)),
            acquire_time: Some(acquire.unwrap_or(MicroTime(now))),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One round: acquire or renew when allowed. `Ok(true)` when this replica wrote the Lease
    /// (it holds it), `Ok(false)` when another holder's lease is still valid or it lost a race.
    pub async fn try_acquire_or_renew(&self, seen: &mut Observation) -> Result<bool, LeaderError> {
        let now = Instant::now();
        let wall = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let spec = self.spec(wall, 0, None);
            let lease = Lease { metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() }, spec: Some(spec.clone()) };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    seen.renewed(LeaseRecord::of(&spec), Instant::now());
                    Ok(true)
                }
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        seen.observe(LeaseRecord::of(&current), now);
        if !seen.may_acquire(&self.identity, now) {
            return Ok(false);
        }
        let holder = current.holder_identity.clone().unwrap_or_default();
        let transitions = current.lease_transitions.unwrap_or(0);
        let spec = if holder == self.identity {
            self.spec(wall, transitions, current.acquire_time.clone())
        } else {
            self.spec(wall, transitions + 1, None)
        };
        lease.spec = Some(spec.clone());
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => {
                seen.renewed(LeaseRecord::of(&spec), Instant::now());
                Ok(true)
            }
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

    /// Runs election rounds every retry period until `shutdown`; publishes leadership on the
    /// returned channel. Leadership is lost only when the renew deadline passes without a
    /// successful renewal, never on one failed round.
    pub fn spawn(self, shutdown: CancellationToken) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut seen = Observation::default();
            loop {
                let leading_before = *tx.borrow();
                // Counted from before the request: the lease may have been renewed as early as this.
                let sent = Instant::now();
                let leading = match self.try_acquire_or_renew(&mut seen).await {
                    Ok(true) => {
                        self.gate.renewed_until((sent + self.timing.renew_deadline).into_std());
                        true
                    }
                    Ok(false) | Err(_) if leading_before => {
                        let still = seen.still_leading(Instant::now(), self.timing.renew_deadline);
                        if still {
                            tracing::warn!(identity = %self.identity, "lease renewal failed; retrying before the renew deadline");
                        } else {
                            seen.lost();
                        }
                        still
                    }
                    Ok(false) => false,
                    Err(e) => {
                        tracing::warn!(error = %e, "leader election round failed");
                        false
                    }
                };
                if !leading {
                    self.gate.close();
                }
                if leading_before != leading {
                    tracing::info!(identity = %self.identity, leading, "leadership changed");
                }
                tx.send_replace(leading);
                tokio::select! {
                    _ = tokio::time::sleep(self.timing.retry_period) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            self.gate.close();
            if *tx.borrow() {
                self.release().await;
            }
            tx.send_replace(false);
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renew: &str) -> LeaseRecord {
        LeaseRecord { holder: holder.into(), renew_time: Some(renew.into()), transitions: 1, duration_seconds: 15 }
    }

    #[test]
    fn a_skewed_renew_time_does_not_free_a_lease_that_is_still_being_renewed() {
        // The holder's clock is an hour behind ours: its renewTime looks long expired. client-go
        // ignores that and watches whether the record changes.
        let t0 = Instant::now();
        let mut seen = Observation::default();
        seen.observe(held_by("a", "2026-01-01T00:00:00Z"), t0);
        assert!(!seen.may_acquire("b", t0), "first sight: the holder gets a full lease duration");
        seen.observe(held_by("a", "2026-01-01T00:00:02Z"), t0 + Duration::from_secs(10));
        assert!(!seen.may_acquire("b", t0 + Duration::from_secs(20)), "renewed 10 s ago on our clock");
        assert!(seen.may_acquire("b", t0 + Duration::from_secs(25)), "unchanged for 15 s on our clock: free");
    }

    #[test]
    fn one_failed_renewal_does_not_end_leadership_but_the_renew_deadline_does() {
        let t0 = Instant::now();
        let deadline = Duration::from_secs(10);
        let mut seen = Observation::default();
        seen.renewed(held_by("me", "x"), t0);
        assert!(seen.still_leading(t0 + Duration::from_secs(2), deadline), "a failed round 2 s later keeps leading");
        assert!(seen.still_leading(t0 + Duration::from_secs(9), deadline));
        assert!(!seen.still_leading(t0 + Duration::from_secs(10), deadline), "no renewal for the renew deadline: step down");
        assert!(seen.may_acquire("me", t0), "our own lease is always ours to renew");
    }

    #[test]
    fn timing_keeps_client_gos_proportions() {
        let t = LeaseTiming::for_lease(Duration::from_secs(15));
        assert_eq!((t.renew_deadline, t.retry_period), (Duration::from_secs(10), Duration::from_secs(2)));
        assert!(t.renew_deadline < t.lease_duration);
    }
}
