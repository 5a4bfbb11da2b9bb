//! Minimal Kubernetes memory quantity arithmetic (bytes), enough to raise a limit within a bound.

/// Parses `128Mi`, `1Gi`, `500M`, `1024` into bytes. `None` for anything else.
pub fn parse_bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    let idx = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (num, unit) = q.split_at(idx);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Formats bytes with the largest binary unit that divides evenly.
pub fn format_bytes(b: u64) -> String {
    for (unit, m) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if b >= m && b.is_multiple_of(m) {
            return format!("{}{unit}", b / m);
        }
    }
    b.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(parse_bytes("128Mi"), Some(128 << 20));
        assert_eq!(parse_bytes("1Gi"), Some(1 << 30));
        assert_eq!(parse_bytes("1.5Gi"), None);
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(format_bytes(256 << 20), "256Mi");
        assert_eq!(format_bytes(2 << 30), "2Gi");
    }
}
