//! Whether this replica may still write as the leader. A reconcile that started while this
//! replica led can outlive its lease (a 30 s model call against a 15 s lease): before it writes
//! a phase or changes a workload, it asks the gate. The gate closes at the end of the renew
//! deadline counted from the moment the last successful renewal was *sent* — before the lease
//! can expire for the other replicas (client-go's leader election gives the same guarantee only
//! to code that checks it; see `k8s.io/client-go/tools/leaderelection`, `renewDeadline`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct WriteGate {
    /// `None`: no election (one replica, a test, a tool): always open.
    until: Option<Arc<Mutex<Option<Instant>>>>,
}

impl WriteGate {
    /// A gate for a process without leader election: always open.
    pub fn open() -> Self {
        Self { until: None }
    }

    /// A gate that opens only while leadership is renewed (closed until the first renewal).
    pub fn elected() -> Self {
        Self { until: Some(Arc::new(Mutex::new(None))) }
    }

    /// The lease was renewed by a request sent at some moment; writes are allowed until `until`.
    pub fn renewed_until(&self, until: Instant) {
        if let Some(u) = &self.until {
            *u.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
        }
    }

    /// Leadership is over (lost, released): no more writes.
    pub fn close(&self) {
        if let Some(u) = &self.until {
            *u.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    pub fn may_write(&self) -> bool {
        match &self.until {
            None => true,
            Some(u) => u.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|t| Instant::now() < t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_elected_gate_is_open_only_until_the_renew_deadline() {
        let gate = WriteGate::elected();
        assert!(!gate.may_write(), "closed before the first renewal");
        gate.renewed_until(Instant::now() + Duration::from_secs(60));
        assert!(gate.may_write());
        gate.renewed_until(Instant::now() - Duration::from_millis(1));
        assert!(!gate.may_write(), "the deadline passed without a renewal");
        gate.renewed_until(Instant::now() + Duration::from_secs(60));
        gate.close();
        assert!(!gate.may_write());
        assert!(WriteGate::open().may_write());
    }
}
