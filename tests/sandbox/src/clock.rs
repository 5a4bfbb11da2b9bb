//! Simulated durations. The kubelet's and controllers' documented delays (10 s back-off doubling
//! to 5 min, the ConfigMap sync period, progress deadlines) are kept as documented and divided
//! by a time scale only when a test asks for it; the demo runs at scale 1.

use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct TimeScale(pub f64);

impl Default for TimeScale {
    fn default() -> Self {
        Self(1.0)
    }
}

impl TimeScale {
    /// The wall-clock time a documented duration takes in this sandbox.
    pub fn wall(&self, documented: Duration) -> Duration {
        if self.0 <= 1.0 { documented } else { documented.div_f64(self.0) }
    }
}
