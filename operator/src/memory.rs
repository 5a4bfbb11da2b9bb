//! Giving the heap a burst of work freed back to the operating system once the burst is over.
//!
//! Becoming leader (a restart, a failover) means listing every Incident and Remediation and
//! reconciling each of them, all at once. glibc's malloc keeps what that burst freed mapped, in
//! every thread's arena, so the process would stay at the burst's peak RSS although it now holds
//! a fraction of it. `malloc_trim(0)` hands back every whole free page ("since glibc 2.8 this
//! function frees memory in all arenas and in all chunks with whole free pages", malloc_trim(3)).
//! It runs when the reconcile counters stop moving after they moved, so never during the work,
//! and at most once per burst.
//!
//! What it cannot hand back is the free space inside pages still partly in use, and glibc
//! keeps that per arena: by default every thread that meets a busy arena gets one of its own,
//! up to eight per core (mallopt(3), `M_ARENA_MAX`), each holding the holes its thread left.
//! The operator waits on the network on a handful of threads, so two arenas cost no contention
//! worth measuring and hold far fewer holes (`salve-sandbox bench`: 53.7 -> 44.6 MiB at 3,000
//! Incidents).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the counters are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Looks without a reconcile before a burst counts as over.
const QUIET_LOOKS: u32 = 2;

/// Trims after each burst of reconciles until `shutdown`.
pub async fn release_after_bursts(metrics: Metrics, shutdown: CancellationToken) {
    let mut burst = BurstEnd::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        let total: u64 = ["incident", "remediation"].iter().map(|c| metrics.reconciles.with_label_values(&[*c]).get()).sum();
        if burst.look(total) {
            release_free_heap();
        }
    }
}

/// Tells, from successive counter readings, when a burst of work has just ended.
#[derive(Default)]
struct BurstEnd {
    last: u64,
    moved: bool,
    quiet: u32,
}

impl BurstEnd {
    /// `true` once per burst: on the `QUIET_LOOKS`th look without change after a change.
    fn look(&mut self, total: u64) -> bool {
        if total != self.last {
            (self.last, self.moved, self.quiet) = (total, true, 0);
            return false;
        }
        self.quiet += 1;
        if self.moved && self.quiet >= QUIET_LOOKS {
            self.moved = false;
            return true;
        }
        false
    }
}

/// Arenas malloc may create.
const ARENAS: i32 = 2;

/// Caps glibc's arenas (see above). Call first thing in `main`, before any thread exists:
/// a thread keeps the arena it was given.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator; called before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_heap() {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it takes no pointer
    // and is safe to call from any thread at any time.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(released = released == 1, "free heap returned to the operating system");
}

/// Other allocators (musl, macOS) return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_heap() {}

#[cfg(test)]
mod tests {
    use super::BurstEnd;

    #[test]
    fn a_burst_ends_once_the_counters_stay_still() {
        let mut b = BurstEnd::default();
        // Idle from the start: nothing to give back.
        assert!(!b.look(0) && !b.look(0) && !b.look(0));
        // Work, then quiet: one release, on the second quiet look.
        assert!(!b.look(10) && !b.look(500));
        assert!(!b.look(500));
        assert!(b.look(500));
        assert!(!b.look(500) && !b.look(500), "once per burst");
        // The next burst ends in a release of its own.
        assert!(!b.look(501) && !b.look(501));
        assert!(b.look(501));
    }
}
