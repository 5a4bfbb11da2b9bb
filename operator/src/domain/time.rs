//! The one time format of statuses, timelines and snapshots: RFC 3339 at second precision, via
//! jiff (the time library k8s-openapi uses, so no second one is needed).

use k8s_openapi::jiff::{Timestamp, Unit};

/// RFC 3339 "now", second precision.
pub fn now_rfc3339() -> String {
    rfc3339(Timestamp::now())
}

/// RFC 3339 at second precision.
pub fn rfc3339(t: Timestamp) -> String {
    t.round(Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

/// Parses an RFC 3339 time written by `now_rfc3339` (or any RFC 3339 time).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_times_parse_back() {
        let now = now_rfc3339();
        assert_eq!(parse_time(&now).map(rfc3339), Some(now));
        assert!(parse_time("yesterday").is_none());
    }
}
