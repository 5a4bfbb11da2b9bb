//! Evidence leaves the cluster (to a model, to S3, into status), so it is redacted and bounded
//! here, in one place, before it is stored or used. Secrets are never collected at all; this
//! catches secret-looking values that live in ConfigMaps, env and logs.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::cloud_evidence::CloudEvidence;
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
    /// CloudWatch Logs Insights lines kept (the newest).
    pub max_cloud_log_lines: usize,
    pub max_traces: usize,
    pub max_annotations: usize,
    pub max_notes: usize,
    /// ConfigMaps whose current values are kept, and keys per ConfigMap.
    pub max_config_maps: usize,
    pub max_config_keys: usize,
    /// Serialized size of the whole bundle; log lines go first (oldest first) when it is exceeded.
    pub max_total_bytes: usize,
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
            max_cloud_log_lines: 40,
            max_traces: 10,
            max_annotations: 10,
            max_notes: 10,
            max_config_maps: 5,
            max_config_keys: 20,
            max_total_bytes: 64 * 1024,
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

/// Masks secrets in a free-text line: `word=value` / `word: value` / `"word": "value"` for
/// secret-looking words, bearer tokens and JWTs, AWS access key ids and secret-key-like strings,
/// email addresses, Luhn-valid card numbers and private key blocks.
pub fn redact_line(line: &str) -> String {
    // Key blocks first: they span many words, and a `key:` before them must not hide them.
    let without_keys = PRIVATE_KEY.replace_all(line, REDACTED);
    redact_patterns(&redact_secret_words(&without_keys))
}

/// Masks the value after a secret-looking word, token by token (space separated).
fn redact_secret_words(line: &str) -> String {
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

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid built-in regex")
}

static PRIVATE_KEY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)"));
static JWT: LazyLock<Regex> = LazyLock::new(|| regex(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"));
static BEARER: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}"));
static AWS_ACCESS_KEY_ID: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b"));
/// `key=value`, `key: value`, `"key": "value"`; the key decides (see `is_secret_key`).
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| regex(r#"([A-Za-z][A-Za-z0-9_.-]*)(["']?[ \t]*[=:][ \t]*["']?)([^\s"',;&}\]]+)"#));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| regex(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"));
/// 13-19 digits, spaces or dashes between them; only Luhn-valid ones with a card-network first
/// digit are masked, so epoch-millisecond timestamps (which start with 1) and ids survive.
/// ASCII digits only (as the Luhn check reads them): Unicode's `\d` under a counted repetition
/// compiled to about 480 KB, held for the life of the process.
static CARD_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?-u:\b)[2-6][0-9](?:[ -]?[0-9]){11,17}(?-u:\b)"));
/// Runs of base64-ish characters; exactly 40 of them with mixed case and a digit look like an
/// AWS secret access key (a lowercase hex SHA-1 does not).
static BASE64_RUN: LazyLock<Regex> = LazyLock::new(|| regex(r"[A-Za-z0-9/+]+=*"));

fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 =
        digits.iter().rev().enumerate().map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }).sum();
    sum.is_multiple_of(10)
}

/// The card-number-like prefix of a candidate: the whole run, or the run minus trailing
/// space/dash-separated groups (e.g. `4111 1111 1111 1111 200` -> the first four groups).
fn card_prefix_len(candidate: &str) -> Option<usize> {
    let mut end = candidate.len();
    loop {
        let digits: Vec<u32> = candidate[..end].chars().filter_map(|c| c.to_digit(10)).collect();
        if digits.len() < 13 {
            return None;
        }
        if digits.len() <= 19 && luhn_valid(&digits) {
            return Some(end);
        }
        end = candidate[..end].rfind([' ', '-'])?;
    }
}

fn looks_like_secret_access_key(s: &str) -> bool {
    let core = s.trim_end_matches('=');
    core.len() == 40
        && core.chars().any(|c| c.is_ascii_uppercase())
        && core.chars().any(|c| c.is_ascii_lowercase())
        && core.chars().any(|c| c.is_ascii_digit())
}

/// The pattern-based pass of `redact_line`.
fn redact_patterns(line: &str) -> String {
    let s = JWT.replace_all(line, REDACTED);
    let s = BEARER.replace_all(&s, |c: &Captures| format!("{}{}{REDACTED}", &c[1], &c[2]));
    let s = AWS_ACCESS_KEY_ID.replace_all(&s, REDACTED);
    let s = KEY_VALUE.replace_all(&s, |c: &Captures| {
        // `[` = already masked by the word pass.
        if is_secret_key(&c[1]) && !c[3].starts_with('[') { format!("{}{}{REDACTED}", &c[1], &c[2]) } else { c[0].to_string() }
    });
    let s = EMAIL.replace_all(&s, REDACTED);
    let s = CARD_CANDIDATE.replace_all(&s, |c: &Captures| {
        let m = &c[0];
        match card_prefix_len(m) {
            Some(end) => format!("{REDACTED}{}", &m[end..]),
            None => m.to_string(),
        }
    });
    let s = BASE64_RUN
        .replace_all(&s, |c: &Captures| if looks_like_secret_access_key(&c[0]) { REDACTED.to_string() } else { c[0].to_string() });
    s.into_owned()
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

/// Words that start the decisive clause of a long error line (a Java/AWS SDK line puts the
/// exception and its message after a long prefix of timestamps, thread and logger names).
const ERROR_CLAUSE_MARKERS: [&str; 14] = [
    "exception",
    "error",
    "caused by",
    "is not authorized",
    "denied",
    "refused",
    "timeout",
    "timed out",
    "no such host",
    "x509",
    "throttl",
    "exceeded",
    "panic",
    "fatal",
];

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Bounds a log or event line to about `max` bytes, keeping the error clause: the start of the
/// line (a third of the budget) and, when the error clause begins after that, the text from the
/// clause on, so `... AccessDeniedException: User: arn:... is not authorized to perform ...`
/// survives a long prefix.
pub fn bound_line(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_string(), false);
    }
    let head_len = floor_boundary(s, max / 3);
    let lower = s.to_ascii_lowercase();
    let clause = ERROR_CLAUSE_MARKERS.iter().filter_map(|m| lower[head_len..].find(m).map(|i| i + head_len)).min();
    let Some(start) = clause else { return truncate(s, max) };
    // Back up to the start of the word (the exception's class name precedes "Exception").
    let word_start = s[..start].rfind([' ', '(', '[', ':', '"']).map_or(start, |i| i + 1).max(head_len);
    let budget = max.saturating_sub(head_len);
    let end = floor_boundary(s, (word_start + budget).min(s.len()));
    let more = if end < s.len() { "…" } else { "" };
    (format!("{} … {}{more}", &s[..head_len], &s[word_start..end]), true)
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
        let (m, t) = bound_line(&redact_line(&e.message), b.max_line_len);
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
            let (m, t) = bound_line(&redact_line(line), b.max_line_len);
            *line = m;
            cut |= t;
        }
    }
    let (s, t) = truncate(&redact_line(&ev.signal), b.max_line_len);
    ev.signal = s;
    cut |= t;
    cut |= redact_and_bound_workload(&mut ev, b);
    if let Some(cloud) = &mut ev.cloud {
        cut |= redact_and_bound_cloud(cloud, b);
    }
    cut |= bound_total_size(&mut ev, b.max_total_bytes);
    ev.truncated = cut;
    ev
}

/// Free text the kubelet, controllers and people wrote into statuses, and ConfigMap values:
/// redacted and bounded like log lines. Secret-looking ConfigMap keys keep their name only.
fn redact_and_bound_workload(ev: &mut Evidence, b: &Bounds) -> bool {
    let mut cut = false;
    let mut line = |s: &mut String| {
        let (m, t) = bound_line(&redact_line(s), b.max_line_len);
        *s = m;
        cut |= t;
    };
    for p in &mut ev.pods {
        for s in [&mut p.message].into_iter().flatten() {
            line(s);
        }
        for c in &mut p.conditions {
            if let Some(m) = &mut c.message {
                line(m);
            }
        }
        for c in &mut p.containers {
            if let Some(m) = &mut c.message {
                line(m);
            }
            if let Some(m) = c.last_termination.as_mut().and_then(|t| t.message.as_mut()) {
                line(m);
            }
        }
    }
    for r in &mut ev.rollouts {
        for c in &mut r.changes {
            line(&mut c.detail);
        }
    }
    if let Some(h) = &mut ev.hpa {
        for c in &mut h.conditions {
            line(c);
        }
    }
    for n in &mut ev.notes {
        line(n);
    }
    let mut cut2 = keep_head(&mut ev.config_maps, b.max_config_maps);
    for cm in &mut ev.config_maps {
        if cm.data.len() > b.max_config_keys {
            cm.data = std::mem::take(&mut cm.data).into_iter().take(b.max_config_keys).collect();
            cut2 = true;
        }
        for (k, v) in cm.data.iter_mut() {
            if is_secret_key(k) {
                *v = REDACTED.to_string();
            } else {
                let (m, t) = truncate(&redact_line(v), b.max_value_len);
                *v = m;
                cut2 |= t;
            }
        }
    }
    cut2 |= keep_head(&mut ev.missing_refs, b.max_pods);
    cut2 |= keep_head(&mut ev.notes, b.max_notes);
    cut || cut2
}

/// Redacts and bounds the cloud section; true when something was dropped or cut.
fn redact_and_bound_cloud(cloud: &mut CloudEvidence, b: &Bounds) -> bool {
    let mut cut = false;
    let line = |s: &mut String| {
        let (m, t) = bound_line(&redact_line(s), b.max_line_len);
        *s = m;
        t
    };
    if let Some(logs) = &mut cloud.logs {
        cut |= keep_tail(&mut logs.lines, b.max_cloud_log_lines);
        for l in &mut logs.lines {
            cut |= line(l);
        }
        cut |= line(&mut logs.query);
    }
    if let Some(metric) = &mut cloud.metric {
        for v in metric.dimensions.values_mut() {
            cut |= line(v);
        }
    }
    cut |= keep_head(&mut cloud.trace_ids, b.max_traces);
    cut |= keep_head(&mut cloud.traces, b.max_traces);
    for trace in &mut cloud.traces {
        if trace.annotations.len() > b.max_annotations {
            trace.annotations = std::mem::take(&mut trace.annotations).into_iter().take(b.max_annotations).collect();
            cut = true;
        }
        for (k, v) in trace.annotations.iter_mut() {
            if is_secret_key(k) {
                *v = REDACTED.to_string();
            } else {
                cut |= line(v);
            }
        }
    }
    cut |= keep_head(&mut cloud.notes, b.max_notes);
    for n in &mut cloud.notes {
        cut |= line(n);
    }
    cut
}

/// Keep the first `max` entries.
fn keep_head<T>(v: &mut Vec<T>, max: usize) -> bool {
    let cut = v.len() > max;
    v.truncate(max);
    cut
}

fn serialized_len(ev: &Evidence) -> usize {
    serde_json::to_vec(ev).map(|v| v.len()).unwrap_or(usize::MAX)
}

/// Drops the oldest log lines (cloud first, then container logs, then events) until the bundle
/// fits `max_bytes`; true when something was dropped.
fn bound_total_size(ev: &mut Evidence, max_bytes: usize) -> bool {
    let mut cut = false;
    while serialized_len(ev) > max_bytes {
        let cloud_lines = ev.cloud.as_mut().and_then(|c| c.logs.as_mut()).map(|l| &mut l.lines).filter(|l| !l.is_empty());
        if let Some(lines) = cloud_lines {
            lines.remove(0);
        } else if let Some(tail) = ev.logs.iter_mut().find(|t| !t.lines.is_empty()) {
            tail.lines.remove(0);
        } else if !ev.events.is_empty() {
            ev.events.remove(0);
        } else {
            break;
        }
        cut = true;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::evidence::{ConfigChange, LogTail};

    #[test]
    fn config_map_values_and_status_messages_are_redacted_and_bounded() {
        use crate::domain::evidence::{ConfigMapEvidence, ContainerStatusEvidence, PodEvidence};
        let ev = Evidence {
            config_maps: vec![ConfigMapEvidence {
                name: "cfg".into(),
                data: [("DB_PASSWORD".to_string(), "hunter2".to_string()), ("POOL".to_string(), "x".repeat(5000))].into(),
                used_as: vec!["env".into()],
            }],
            pods: vec![PodEvidence {
                name: "p".into(),
                containers: vec![ContainerStatusEvidence {
                    name: "c".into(),
                    message: Some("auth failed token=abc123 for user".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = redact_and_bound(ev, &Bounds::default());
        assert_eq!(out.config_maps[0].data["DB_PASSWORD"], REDACTED);
        assert!(out.config_maps[0].data["POOL"].len() <= 1024 + 4);
        assert_eq!(out.pods[0].containers[0].message.as_deref(), Some("auth failed token=[REDACTED] for user"));
        assert!(out.truncated);
    }

    #[test]
    fn a_long_line_keeps_its_error_clause() {
        let prefix = "2026-01-01T00:00:00.000Z [http-nio-8080-exec-7] com.example.orders.OrderRepository ".repeat(4);
        let line = format!(
            "{prefix}software.amazon.awssdk.services.dynamodb.model.DynamoDbException: User: arn:aws:sts::123:assumed-role/oms/x is not authorized to perform: dynamodb:PutItem on resource: table/orders"
        );
        let (b, cut) = bound_line(&line, 300);
        assert!(cut);
        assert!(b.contains("DynamoDbException: User:") && b.contains("is not authorized to perform"), "{b}");
        assert!(b.len() <= 300 + 8, "{}", b.len());
        assert_eq!(bound_line("short", 300), ("short".to_string(), false));
    }

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
        let ev =
            Evidence { logs: vec![LogTail { pod: "p".into(), container: "c".into(), lines, ..Default::default() }], ..Default::default() };
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

    fn masked(line: &str) -> String {
        let out = redact_line(line);
        assert!(out.contains(REDACTED), "nothing masked in {line:?}: {out:?}");
        out
    }

    #[test]
    fn bearer_tokens_and_jwts_are_masked() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        let out = masked(&format!("call failed authorization=Bearer {jwt} status=401"));
        assert!(!out.contains("eyJ"), "{out}");
        assert!(out.contains("status=401"), "{out}");
        let out = masked(&format!(r#"{{"jwt":"{jwt}"}}"#));
        assert!(!out.contains("eyJhbGci"), "{out}");
        let out = masked("curl -H 'authorization: bearer sk_live_abcdef123456'");
        assert!(!out.contains("sk_live"), "{out}");
    }

    #[test]
    fn secret_words_in_key_value_and_json_form_are_masked() {
        for line in [
            r#"{"user":"bob","password":"hunter2"}"#,
            "api_key=abc123def client_secret: s3cr3t",
            "X-Api-Key: 0123abcd",
            "connecting with DB_CREDENTIALS=admin:pw",
            "session token:'tok-998877'",
        ] {
            let out = masked(line);
            for secret in ["hunter2", "abc123def", "s3cr3t", "0123abcd", "admin:pw", "tok-998877"] {
                assert!(!out.contains(secret), "{secret} left in {out}");
            }
        }
        assert_eq!(redact_line("password=[REDACTED]"), "password=[REDACTED]", "masking twice changes nothing");
    }

    #[test]
    fn aws_keys_are_masked() {
        let out = masked("using AKIAIOSFODNN7EXAMPLE and ASIAY34FZKBOKMUTVV7A");
        assert!(!out.contains("AKIA") && !out.contains("ASIA"), "{out}");
        let out = masked("aws secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in env");
        assert!(!out.contains("wJalrXUtnFEMI"), "{out}");
    }

    #[test]
    fn emails_are_masked() {
        let out = masked("order 42 for jane.doe+shop@example.co.uk failed");
        assert_eq!(out, format!("order 42 for {REDACTED} failed"));
    }

    #[test]
    fn luhn_valid_card_numbers_are_masked_in_any_grouping() {
        for card in ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"] {
            let out = masked(&format!("charge card {card} declined"));
            assert_eq!(out, format!("charge card {REDACTED} declined"));
        }
        // A trailing number after the card survives.
        assert_eq!(redact_line("card 4111 1111 1111 1111 200"), format!("card {REDACTED} 200"));
    }

    #[test]
    fn private_key_blocks_are_masked() {
        let line = "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- loaded";
        let out = redact_line(line);
        assert!(!out.contains("MIIEow"), "{out}");
        assert!(out.ends_with(" loaded"), "{out}");
        let cut = masked("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA");
        assert!(!cut.contains("b3Bl"), "{cut}");
    }

    #[test]
    fn ordinary_numbers_and_ids_are_left_alone() {
        for line in [
            "timeout=30 retries=3 status=500 latency_ms=1234",
            "at 1732212345678 processed 4111111111111112 items", // epoch millis; a Luhn-invalid number
            "trace_id=1-5759e988-bd862e3fe1be46a994272793 traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "commit 3f2a9c1d4e5b6a7980112233445566778899aabb deployed",
            "request 550e8400-e29b-41d4-a716-446655440000 from 10.0.12.7:8080",
            "GET /orders/12345 HTTP/1.1 200 user=bob",
        ] {
            assert_eq!(redact_line(line), line);
        }
    }

    #[test]
    fn cloud_evidence_is_redacted_and_bounded() {
        use crate::domain::cloud_evidence::{CloudLogs, TraceSummary};
        let lines: Vec<String> = (0..50).map(|i| format!("{i} ERROR mail bob@example.com")).collect();
        let annotations =
            (0..20).map(|i| (format!("a{i:02}"), "x".to_string())).chain([("auth_token".to_string(), "t".to_string())]).collect();
        let ev = Evidence {
            cloud: Some(CloudEvidence {
                logs: Some(CloudLogs { lines, ..Default::default() }),
                traces: vec![TraceSummary { id: "1-a".into(), annotations, ..Default::default() }],
                notes: vec!["query failed for user jane@example.com".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let b = Bounds { max_cloud_log_lines: 5, max_annotations: 3, ..Default::default() };
        let out = redact_and_bound(ev, &b);
        let cloud = out.cloud.as_ref().expect("cloud kept");
        let lines = &cloud.logs.as_ref().expect("logs").lines;
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[4], format!("49 ERROR mail {REDACTED}"));
        assert_eq!(cloud.traces[0].annotations.len(), 3);
        assert!(!cloud.notes[0].contains("jane"));
        assert!(out.truncated);
    }

    #[test]
    fn the_whole_bundle_respects_the_byte_bound() {
        let lines: Vec<String> = (0..40).map(|i| format!("line {i} {}", "x".repeat(200))).collect();
        let ev =
            Evidence { logs: vec![LogTail { pod: "p".into(), container: "c".into(), lines, ..Default::default() }], ..Default::default() };
        let out = redact_and_bound(ev, &Bounds { max_total_bytes: 2000, ..Default::default() });
        assert!(serde_json::to_vec(&out).expect("json").len() <= 2000);
        assert!(out.logs[0].lines.last().is_some_and(|l| l.starts_with("line 39 ")), "the newest lines are kept");
        assert!(out.truncated);
    }
}
