//! Clock and id-source ports, so domain code and tests can pin time and ids.

use chrono::{DateTime, SecondsFormat, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

pub trait IdSource: Send + Sync + 'static {
    fn new_id(&self) -> String;
}

/// UUID v7: unique, and sortable by creation time, which keeps index inserts local.
pub struct UuidV7;

impl IdSource for UuidV7 {
    fn new_id(&self) -> String {
        uuid::Uuid::now_v7().to_string()
    }
}

/// Fixed-width RFC 3339 (microseconds, `Z`), so stored timestamps sort as text.
pub fn to_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn from_text(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}
