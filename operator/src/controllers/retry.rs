//! How long a controller waits before retrying a reconcile that failed transiently: the base
//! delay plus up to as much again at random, so that many objects failing together (the API
//! server was briefly away) do not all come back in the same instant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn jittered(base: Duration) -> Duration {
    // The clock's sub-second part is random enough to spread retries; no generator needed.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_stays_between_once_and_twice_the_base() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(2));
            assert!(d >= Duration::from_secs(2) && d < Duration::from_secs(4), "{d:?}");
        }
    }
}
