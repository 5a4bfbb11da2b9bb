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

/// CPU in millicores: `500m`, `1`, `1.5`, `2000m`. `None` for anything else.
pub fn parse_millicores(q: &str) -> Option<u64> {
    let q = q.trim();
    if let Some(m) = q.strip_suffix('m') {
        return m.parse().ok();
    }
    let v: f64 = q.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * 1000.0).round() as u64)
}

/// Millicores as Kubernetes writes them: whole cores when even, else `m`.
pub fn format_millicores(m: u64) -> String {
    if m.is_multiple_of(1000) { (m / 1000).to_string() } else { format!("{m}m") }
}

/// Any quantity as a number (bytes, cores or a count), for comparing used with hard.
pub fn parse_any(q: &str) -> Option<f64> {
    if let Some(b) = parse_bytes(q) {
        return Some(b as f64);
    }
    if q.trim().ends_with('m') {
        return parse_millicores(q).map(|m| m as f64 / 1000.0);
    }
    q.trim().parse().ok()
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
        assert_eq!(parse_millicores("500m"), Some(500));
        assert_eq!(parse_millicores("1.5"), Some(1500));
        assert_eq!(format_millicores(2000), "2");
        assert_eq!(format_millicores(750), "750m");
        assert_eq!(parse_any("4Gi"), Some((4u64 << 30) as f64));
        assert_eq!(parse_any("10"), Some(10.0));
    }
}
