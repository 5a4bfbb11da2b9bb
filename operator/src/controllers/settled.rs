//! Changes that need no reconcile never enter a controller's queue.
//!
//! kube-runtime's scheduler keeps every object it is handed in a map, a delay queue and a
//! pending set until it runs, and none of them gives its capacity back (kube-runtime 5.0.0,
//! `src/scheduler.rs`: `scheduled`, `queue`, `pending`). After a restart every object arrives at
//! once, and the runner holds them all until the store's first list is in, so a controller that
//! lets every change in keeps tables sized for every object for the rest of its life: about
//! 1.3 KiB per Incident with its Remediation (heaptrack, `salve-sandbox bench`), 13 MiB at
//! 10,000. Most of them are finished (terminal and in step), which the cached object alone
//! decides; such a change is counted here and dropped, so the queues only hold objects with
//! work left.

use super::context::Context;

/// Whether a change goes on to the controller: `false` when it is `settled`, which is counted
/// for `controller` (`salve_settled_total`).
pub fn keep(ctx: &Context, controller: &str, settled: bool) -> bool {
    if settled {
        ctx.metrics.settled.with_label_values(&[controller]).inc();
    }
    !settled
}
