//! Evidence leaves the cluster (to a model, to S3, into status), so it is redacted and bounded
//! here, in one place, before it is stored or used. Secrets are never collected at all; this
//! catches secret-looking values that live in ConfigMaps, env and logs.

use super::evidence::Evidence;

/// Limits that keep an Incident object far below etcd's object size limit.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_pods: usize,
    pub max_events: usize,
    pub max_rollouts: usize,
    pub max_config_changes: usize,
    pub max_log_tails: usize,
    pub max_log_lines: usize,
    pub max_line_len: usize,
    pub max_value_len: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_pods: 20,
            max_events: 30,
            max_rollouts: 5,
            max_config_changes: 20,
            max_log_tails: 5,
            max_log_lines: 40,
            max_line_len: 300,
            max_value_len: 1024,
        }
    }
}

pub const REDACTED: &str = "[REDACTED]";

const SECRET_WORDS: [&str; 7] = ["password", "passwd", "secret", "token", "apikey", "api_key", "credential"];

/// A key name that suggests its value is a credential.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|w| k.contains(w)) || k.ends_with("_key") || k == "key"
}

/// Masks `word=value` / `word: value` / `Bearer xyz` fragments in a free-text line.
pub fn redact_line(line: &str) -> String {
    let mut out = Vec::new();
    let mut mask_next = false;
    for token in line.split(' ') {
        if mask_next {
            out.push(REDACTED.to_string());
            mask_next = false;
            continue;
        }
        let lower = token.to_ascii_lowercase();
        if lower == "bearer" {
            out.push(token.to_string());
            mask_next = true;
            continue;
        }
        if let Some((k, _)) = token.split_once('=').or_else(|| token.split_once(':'))
            && is_secret_key(k.trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != '-'))
        {
            let sep = if token.contains('=') { '=' } else { ':' };
            if token.ends_with(sep) {
                out.push(token.to_string());
                mask_next = true;
            } else {
                out.push(format!("{k}{sep}{REDACTED}"));
            }
            continue;
        }
        out.push(token.to_string());
    }
    out.join(" ")
}

fn truncate(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_string(), false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}…", &s[..end]), true)
}

/// Keep the newest `max` entries (the tail), recording whether anything was dropped.
fn keep_tail<T>(v: &mut Vec<T>, max: usize) -> bool {
    if v.len() > max {
        v.drain(..v.len() - max);
        true
    } else {
        false
    }
}

/// Redacts and bounds the bundle in place.
pub fn redact_and_bound(mut ev: Evidence, b: &Bounds) -> Evidence {
    let mut cut = ev.truncated;
    cut |= keep_tail(&mut ev.pods, b.max_pods);
    cut |= keep_tail(&mut ev.events, b.max_events);
    cut |= keep_tail(&mut ev.rollouts, b.max_rollouts);
    cut |= keep_tail(&mut ev.config_changes, b.max_config_changes);
    cut |= keep_tail(&mut ev.logs, b.max_log_tails);
    for e in &mut ev.events {
        let (m, t) = truncate(&redact_line(&e.message), b.max_line_len);
        e.message = m;
        cut |= t;
    }
    for c in &mut ev.config_changes {
        if is_secret_key(&c.key) {
            c.redacted = true;
            c.previous = c.previous.as_ref().map(|_| REDACTED.to_string());
            c.current = c.current.as_ref().map(|_| REDACTED.to_string());
        } else {
            for v in [&mut c.previous, &mut c.current].into_iter().flatten() {
                let (m, t) = truncate(v, b.max_value_len);
                *v = m;
                cut |= t;
            }
        }
    }
    for tail in &mut ev.logs {
        cut |= keep_tail(&mut tail.lines, b.max_log_lines);
        for line in &mut tail.lines {
            let (m, t) = truncate(&redact_line(line), b.max_line_len);
            *line = m;
            cut |= t;
        }
    }
    let (s, t) = truncate(&redact_line(&ev.signal), b.max_line_len);
    ev.signal = s;
    ev.truncated = cut || t;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::evidence::{ConfigChange, LogTail};

    #[test]
    fn secret_looking_values_are_masked() {
        assert_eq!(redact_line("login password=hunter2 ok"), format!("login password={REDACTED} ok"));
        assert_eq!(redact_line("Authorization: Bearer abc.def"), format!("Authorization: Bearer {REDACTED}"));
        assert_eq!(redact_line("db_token: xyz"), format!("db_token: {REDACTED}"));
        assert_eq!(redact_line("timeout=30"), "timeout=30");
    }

    #[test]
    fn config_values_of_secret_keys_are_withheld() {
        let ev = Evidence {
            config_changes: vec![ConfigChange {
                config_map: "c".into(),
                key: "DB_PASSWORD".into(),
                previous: Some("a".into()),
                current: Some("b".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = redact_and_bound(ev, &Bounds::default());
        assert!(out.config_changes[0].redacted);
        assert_eq!(out.config_changes[0].previous.as_deref(), Some(REDACTED));
    }

    #[test]
    fn logs_are_bounded_to_the_newest_lines() {
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let ev = Evidence { logs: vec![LogTail { pod: "p".into(), container: "c".into(), lines }], ..Default::default() };
        let b = Bounds { max_log_lines: 3, ..Default::default() };
        let out = redact_and_bound(ev, &b);
        assert_eq!(out.logs[0].lines, vec!["line 97", "line 98", "line 99"]);
        assert!(out.truncated);
    }

    #[test]
    fn long_lines_are_cut_on_char_boundaries() {
        let (s, cut) = truncate("ééééé", 3);
        assert!(cut);
        assert_eq!(s, "é…");
    }
}
