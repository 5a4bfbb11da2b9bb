//! Verification verdicts: has the signal cleared, is there still time, or must we undo?
//!
//! Judged the way a real kubelet lets one judge it. A crash-looping container restarts IN
//! PLACE, so its restart count keeps growing while it recovers: "no restarts beyond the
//! baseline" can never hold after a fix. Instead the workload must have SETTLED: every desired
//! replica ready, nothing crash-looping, and no container (re)started during a stability
//! period after the change. And health only proves a fix when health was what was broken: a
//! workload that was healthy before the change (errors, latency) is verified by its alarm
//! returning to OK.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// What the operator observed about the workload after a change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadHealth {
    pub desired: i32,
    pub ready: i32,
    /// Pods waiting in CrashLoopBackOff or otherwise not ready after restarting.
    pub crash_looping: usize,
    /// Sum of container restarts over the workload's pods.
    pub restarts: i32,
    /// The latest moment a container of the workload started or terminated.
    pub last_container_change: Option<Timestamp>,
}

impl WorkloadHealth {
    /// Every desired replica ready and nothing crash-looping (a snapshot, not yet "settled").
    pub fn looks_healthy(&self) -> bool {
        self.desired > 0 && self.ready >= self.desired && self.crash_looping == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    Passed(String),
    Pending,
    Failed(String),
}

/// Everything a verdict depends on.
#[derive(Clone, Debug)]
pub struct VerifyInput {
    /// The alarm (or a person) reports OK.
    pub alarm_ok: bool,
    pub health: WorkloadHealth,
    /// Health at snapshot time; `None` for snapshots taken before this was recorded.
    pub healthy_before: Option<bool>,
    pub applied_at: Option<Timestamp>,
    pub now: Timestamp,
    /// How long the workload must stay settled after the change.
    pub stability: Duration,
    pub window_over: bool,
}

pub fn verify(i: &VerifyInput) -> VerifyOutcome {
    if i.alarm_ok {
        return VerifyOutcome::Passed("the alarm returned to OK".into());
    }
    let h = &i.health;
    let stable_for = |since: Option<Timestamp>| since.map(|t| i.now.duration_since(t).unsigned_abs());
    let since_change = stable_for(i.applied_at).unwrap_or(Duration::MAX);
    let since_container_change = stable_for(h.last_container_change).unwrap_or(Duration::MAX);
    let settled = h.looks_healthy() && since_change >= i.stability && since_container_change >= i.stability;
    if settled && i.healthy_before != Some(true) {
        return VerifyOutcome::Passed(format!(
            "{}/{} replicas ready, nothing crash-looping, no container restarted for {}s after the change",
            h.ready,
            h.desired,
            i.stability.as_secs()
        ));
    }
    if !i.window_over {
        return VerifyOutcome::Pending;
    }
    if i.healthy_before == Some(true) && h.looks_healthy() {
        return VerifyOutcome::Failed(
            "the alarm did not return to OK within the window (the workload looked healthy before the change too, so its health proves nothing)"
                .into(),
        );
    }
    VerifyOutcome::Failed(format!(
        "the workload did not settle within the window: {}/{} ready, {} crash-looping, {} restarts",
        h.ready, h.desired, h.crash_looping, h.restarts
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("time")
    }

    fn input(ready: i32, crash: usize, restarts: i32, last_change: i64, now: i64) -> VerifyInput {
        VerifyInput {
            alarm_ok: false,
            health: WorkloadHealth { desired: 2, ready, crash_looping: crash, restarts, last_container_change: Some(t(last_change)) },
            healthy_before: Some(false),
            applied_at: Some(t(0)),
            now: t(now),
            stability: Duration::from_secs(30),
            window_over: false,
        }
    }

    #[test]
    fn alarm_ok_passes() {
        assert!(matches!(verify(&VerifyInput { alarm_ok: true, ..input(0, 2, 9, 0, 1) }), VerifyOutcome::Passed(_)));
    }

    #[test]
    fn a_container_that_restarted_in_place_passes_once_it_has_settled() {
        // The kubelet restarted the container in place 5 more times while it recovered: the
        // restart count grew, and that must not fail the verification.
        assert_eq!(verify(&input(2, 0, 14, 20, 40)), VerifyOutcome::Pending, "started 20 s ago: not settled yet");
        assert!(matches!(verify(&input(2, 0, 14, 20, 51)), VerifyOutcome::Passed(_)), "settled for 31 s");
    }

    #[test]
    fn crash_loops_fail_after_the_window() {
        assert_eq!(verify(&input(0, 2, 3, 10, 20)), VerifyOutcome::Pending);
        assert!(matches!(verify(&VerifyInput { window_over: true, ..input(0, 2, 3, 10, 300) }), VerifyOutcome::Failed(_)));
    }

    #[test]
    fn a_workload_that_was_healthy_before_needs_its_alarm() {
        let healthy = VerifyInput { healthy_before: Some(true), ..input(2, 0, 0, -100, 100) };
        assert_eq!(verify(&healthy), VerifyOutcome::Pending, "health proves nothing here");
        let over = VerifyInput { window_over: true, ..healthy.clone() };
        assert!(matches!(verify(&over), VerifyOutcome::Failed(m) if m.contains("alarm")));
        assert!(matches!(verify(&VerifyInput { alarm_ok: true, ..healthy }), VerifyOutcome::Passed(_)));
    }
}
