//! Verification verdicts: has the signal cleared, is there still time, or must we undo?

/// What the operator observed about the workload after a change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadHealth {
    pub desired: i32,
    pub ready: i32,
    /// Pods waiting in CrashLoopBackOff or otherwise not ready after restarting.
    pub crash_looping: usize,
    /// Sum of container restarts over the workload's pods.
    pub restarts: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    Passed(String),
    Pending,
    Failed(String),
}

/// The signal clears when the alarm reports OK, or when every desired replica is ready with no
/// crash loops and no restarts beyond the baseline taken before the change.
pub fn verify(alarm_ok: bool, health: &WorkloadHealth, baseline_restarts: i32, window_over: bool) -> VerifyOutcome {
    if alarm_ok {
        return VerifyOutcome::Passed("the alarm returned to OK".into());
    }
    let healthy = health.desired > 0 && health.ready >= health.desired && health.crash_looping == 0 && health.restarts <= baseline_restarts;
    if healthy {
        return VerifyOutcome::Passed(format!(
            "{}/{} replicas ready, no crash loops, restarts {} <= {} before the change",
            health.ready, health.desired, health.restarts, baseline_restarts
        ));
    }
    if window_over {
        return VerifyOutcome::Failed(format!(
            "signal did not clear within the window: {}/{} ready, {} crash-looping, {} restarts (baseline {})",
            health.ready, health.desired, health.crash_looping, health.restarts, baseline_restarts
        ));
    }
    VerifyOutcome::Pending
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(ready: i32, crash: usize, restarts: i32) -> WorkloadHealth {
        WorkloadHealth { desired: 2, ready, crash_looping: crash, restarts }
    }

    #[test]
    fn alarm_ok_passes() {
        assert!(matches!(verify(true, &h(0, 2, 9), 0, true), VerifyOutcome::Passed(_)));
    }

    #[test]
    fn healthy_workload_passes_before_the_deadline() {
        assert!(matches!(verify(false, &h(2, 0, 3), 3, false), VerifyOutcome::Passed(_)));
    }

    #[test]
    fn new_restarts_are_not_healthy() {
        assert_eq!(verify(false, &h(2, 0, 4), 3, false), VerifyOutcome::Pending);
        assert!(matches!(verify(false, &h(2, 0, 4), 3, true), VerifyOutcome::Failed(_)));
    }

    #[test]
    fn crash_loops_fail_after_the_window() {
        assert_eq!(verify(false, &h(0, 2, 0), 0, false), VerifyOutcome::Pending);
        assert!(matches!(verify(false, &h(0, 2, 0), 0, true), VerifyOutcome::Failed(_)));
    }
}
