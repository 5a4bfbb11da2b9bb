//! The Remediations this leader let start within the last hour, remembered the moment each
//! decision is made. The hourly limit is counted from the Remediation cache, which lags behind
//! the status writes that start a change; and up to `--max-concurrent-reconciles` decisions run
//! together. So decisions are taken one at a time, and each counts, besides the cache, the
//! starts recorded here that the cache does not show yet: the limit is exact however many
//! reconciles run at once. Only the leader decides, so one process's memory is enough.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use super::cache::{CachedRemediation, RemediationStore};
use crate::domain::phase::RemediationPhase;

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct Starts {
    turn: tokio::sync::Mutex<()>,
    recent: Mutex<HashMap<(String, String), Instant>>,
}

impl Starts {
    /// Waits for this decision's turn; the guard ends it.
    pub async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// A decision let `ns/name` start (approved, or applying).
    pub fn record(&self, ns: &str, name: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|_, at| at.elapsed() < HOUR);
        recent.entry((ns.to_string(), name.to_string())).or_insert_with(Instant::now);
    }

    /// Recorded starts (other than `ns/name`) the cache does not count yet: not in it, or in
    /// it still as Pending or AwaitingApproval (the status write that started it has not come
    /// back through the watch). One that ended without applying anything counts no more.
    pub fn unseen(&self, store: Option<&RemediationStore>, ns: &str, name: &str) -> u32 {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let lagging = |(rns, rname): &(String, String)| {
            let Some(cached) = store.and_then(|s| s.get(&ObjectRef::<CachedRemediation>::new(rname).within(rns))) else { return true };
            cached.summary().is_none_or(|s| matches!(s.phase, RemediationPhase::Pending | RemediationPhase::AwaitingApproval))
        };
        let n = recent.iter().filter(|(k, at)| at.elapsed() < HOUR && !(k.0 == ns && k.1 == name) && lagging(k)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_counts_until_the_cache_shows_it() {
        let starts = Starts::default();
        starts.record("shop", "a");
        starts.record("shop", "b");
        assert_eq!(starts.unseen(None, "shop", "c"), 2, "the cache has neither yet");
        assert_eq!(starts.unseen(None, "shop", "a"), 1, "not the one being decided");
    }
}
