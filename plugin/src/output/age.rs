//! Ages the way kubectl prints them (`45s`, `3m20s`, `42m`, `5h10m`, `3d4h`, `120d`).

use chrono::{DateTime, Utc};

pub fn since(timestamp: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(t) = timestamp.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else { return "<unknown>".to_string() };
    human((now - t.with_timezone(&Utc)).num_seconds().max(0))
}

pub fn human(seconds: i64) -> String {
    let (m, h, d) = (seconds / 60, seconds / 3600, seconds / 86_400);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 48 * 3600 => format!("{h}h"),
        s if s < 8 * 86_400 => format!("{d}d{}h", h % 24),
        s if s < 2 * 365 * 86_400 => format!("{d}d"),
        _ => format!("{}y{}d", d / 365, d % 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectls() {
        assert_eq!(human(45), "45s");
        assert_eq!(human(200), "3m20s");
        assert_eq!(human(42 * 60), "42m");
        assert_eq!(human(5 * 3600 + 600), "5h10m");
        assert_eq!(human(30 * 3600), "30h");
        assert_eq!(human(3 * 86_400 + 4 * 3600), "3d4h");
        assert_eq!(human(120 * 86_400), "120d");
        assert_eq!(since(Some("not a time"), Utc::now()), "<unknown>");
    }
}
