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

/// The prefix every redaction marker starts with; a value starting with it is already masked.
pub const REDACTED: &str = "[REDACTED";

/// What was removed. The marker names the kind, so a reader knows what stood there
/// (`[REDACTED:url-password]`) without seeing any of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The value of a key whose name looks secret (`password=`, `"api_key":`, `DB_PASSWORD`).
    SecretValue,
    /// The password of a URL's userinfo (`postgres://user:…@host`).
    UrlPassword,
    /// The credentials of an `Authorization`-like header, or a `Bearer`/`Basic` token.
    Authorization,
    AwsAccessKey,
    AwsSecretKey,
    /// `sk_live_…`, `rk_test_…` (Stripe and the many services that copied its format).
    ApiKey,
    GithubToken,
    SlackToken,
    SlackWebhook,
    Jwt,
    PrivateKey,
    Email,
    CardNumber,
}

impl Kind {
    pub fn marker(self) -> &'static str {
        match self {
            Kind::SecretValue => "[REDACTED:secret-value]",
            Kind::UrlPassword => "[REDACTED:url-password]",
            Kind::Authorization => "[REDACTED:authorization]",
            Kind::AwsAccessKey => "[REDACTED:aws-access-key]",
            Kind::AwsSecretKey => "[REDACTED:aws-secret-key]",
            Kind::ApiKey => "[REDACTED:api-key]",
            Kind::GithubToken => "[REDACTED:github-token]",
            Kind::SlackToken => "[REDACTED:slack-token]",
            Kind::SlackWebhook => "[REDACTED:slack-webhook]",
            Kind::Jwt => "[REDACTED:jwt]",
            Kind::PrivateKey => "[REDACTED:private-key]",
            Kind::Email => "[REDACTED:email]",
            Kind::CardNumber => "[REDACTED:card-number]",
        }
    }
}

/// Words that make a key secret wherever they occur in it (`dbPassword`, `CLIENT_SECRET`).
const SECRET_WORDS: [&str; 8] = ["password", "passwd", "passphrase", "secret", "credential", "apikey", "privatekey", "accesskey"];

/// Words that make a key secret when they end it: `DB_DSN`, `SESSION`, `basic_auth`, but not
/// `session_timeout`, `auth_mode` or `MAX_TOKENS`.
const SECRET_LAST_WORDS: [&str; 13] = [
    "key",
    "token",
    "auth",
    "authorization",
    "session",
    "sessionid",
    "cookie",
    "dsn",
    "pass",
    "pwd",
    "signature",
    "connectionstring",
    "credentials",
];

/// The words of a key: camelCase, snake_case, kebab-case and dotted names alike, lower case.
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// A key name that suggests its value is a credential: `password`, `db.password`,
/// `DB_PASSWORD`, `apiKey`, `X-Api-Key`, `GITHUB_TOKEN`, `accessToken`, `SESSION_ID`, `DSN`...
/// Counts and settings about them are not: `MAX_TOKENS`, `session_timeout`, `auth_mode`.
pub fn is_secret_key(key: &str) -> bool {
    let words = key_words(key);
    let joined: String = words.concat();
    if SECRET_WORDS.iter().any(|w| joined.contains(w)) {
        return true;
    }
    let Some(last) = words.last() else { return false };
    // A bare `key` names a field (`"key": "POOL_SIZE"` in evidence and patches); `SSH_KEY`,
    // `signing-key` hold one.
    if last == "key" {
        return words.len() >= 2;
    }
    if SECRET_LAST_WORDS.contains(&last.as_str()) || (last.ends_with("token") && last.len() > "token".len()) {
        return true;
    }
    // `session_id`, `sid`-like pairs.
    words.len() >= 2 && last == "id" && words[words.len() - 2] == "session"
}

/// Masks secrets in one line of free text. Multi-line text goes through `redact_text`.
pub fn redact_line(line: &str) -> String {
    redact_text(line)
}

/// The gate for free text: masks every secret pattern, line by line (a ConfigMap value that is a
/// properties, ini, YAML or .env file is checked on each of its lines), after private key blocks
/// that span lines. Idempotent: masking twice changes nothing.
pub fn redact_text(text: &str) -> String {
    let without_keys = PRIVATE_KEY.replace_all(text, Kind::PrivateKey.marker());
    if !without_keys.contains('\n') {
        return redact_one_line(&without_keys);
    }
    without_keys.split('\n').map(redact_one_line).collect::<Vec<_>>().join("\n")
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid built-in regex")
}

static PRIVATE_KEY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)"));
/// Slack incoming-webhook and workflow URLs: the path is the credential.
static SLACK_WEBHOOK: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)(https?://hooks\.slack(?:-gov)?\.com/)(?:services|workflows|triggers)/[A-Za-z0-9_/+-]+"));
/// `scheme://user:password@host`: the password goes, the user and host stay.
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| regex(r#"\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s:/?#@"'<>]*):([^\s@"'<>]+)@"#));
/// `Authorization: Bearer …`, `Proxy-Authorization: Basic …`, `X-Api-Key: …` (header or
/// `key=value` form); the scheme word stays.
static AUTH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|x-auth-token)(["']?\s*[:=]\s*["']?)(?:(bearer|basic|token|digest|negotiate|apikey)\s+)?([^\s"',;]+)"#,
    )
});
static JWT: LazyLock<Regex> = LazyLock::new(|| regex(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"));
static BEARER: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]{6,})"));
static AWS_ACCESS_KEY_ID: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b"));
/// Stripe's `sk_live_…` / `rk_test_…` secret and restricted keys (and services using the format).
static API_KEY: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"));
static GITHUB_TOKEN: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})"));
static SLACK_TOKEN: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:xox[abposr]-[A-Za-z0-9-]{8,}|xapp-[0-9]+-[A-Za-z0-9-]{8,})"));
/// Kubernetes env entries in JSON: `{"name":"DB_PASSWORD","value":"…"}`.
static ENV_ENTRY: LazyLock<Regex> = LazyLock::new(|| regex(r#""name"\s*:\s*"([^"]*)"(\s*,\s*"value"\s*:\s*")((?:[^"\\]|\\.)*)""#));
/// `key=value`, `key: value`, `"key": "value"`, `key='v v'`; the key decides (see
/// `is_secret_key`). A quoted value is masked whole, up to its closing quote.
static KEY_VALUE: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"([A-Za-z_][A-Za-z0-9_.-]*)(["']?[ \t]*[=:][ \t]*)(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s"',;&}\]]+))"#));
/// A config file line assigning a secret key: `db.password=…`, `  password: …`,
/// `export API_TOKEN=…`. Everything after the separator is the value, spaces included.
static ASSIGNMENT_LINE: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"^(\s*(?:export\s+|-\s+)?["']?)([A-Za-z_][A-Za-z0-9_.-]*)(["']?\s*[=:]\s*)(\S.*)$"#));
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

/// A `Basic` credential is base64 (`user:pass`); "basic validation failed" is not one.
fn looks_like_basic_credential(s: &str) -> bool {
    s.len() >= 8 && s.trim_end_matches('=').chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/') && s.len().is_multiple_of(4)
}

/// A value that needs no masking: already masked, empty, or a plain flag.
fn harmless_value(v: &str) -> bool {
    v.is_empty() || v.starts_with(REDACTED) || matches!(v.to_ascii_lowercase().as_str(), "true" | "false" | "null" | "none")
}

/// The auth scheme words the header pass keeps; never themselves the secret.
fn is_auth_scheme(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "bearer" | "basic" | "token" | "digest" | "negotiate" | "apikey")
}

fn redact_one_line(line: &str) -> String {
    let s = SLACK_WEBHOOK.replace_all(line, |c: &Captures| format!("{}{}", &c[1], Kind::SlackWebhook.marker()));
    let s = URL_USERINFO.replace_all(&s, |c: &Captures| {
        if c[3].starts_with(REDACTED) { c[0].to_string() } else { format!("{}{}:{}@", &c[1], &c[2], Kind::UrlPassword.marker()) }
    });
    let s = AUTH_HEADER.replace_all(&s, |c: &Captures| {
        let value = &c[4];
        if value.starts_with(REDACTED) {
            return c[0].to_string();
        }
        let scheme = c.get(3).map(|m| format!("{} ", m.as_str())).unwrap_or_default();
        format!("{}{}{scheme}{}", &c[1], &c[2], Kind::Authorization.marker())
    });
    let s = JWT.replace_all(&s, Kind::Jwt.marker());
    let s = BEARER.replace_all(&s, |c: &Captures| {
        let token = &c[3];
        let basic = c[1].eq_ignore_ascii_case("basic");
        if token.starts_with(REDACTED) || (basic && !looks_like_basic_credential(token)) {
            c[0].to_string()
        } else {
            format!("{}{}{}", &c[1], &c[2], Kind::Authorization.marker())
        }
    });
    let s = AWS_ACCESS_KEY_ID.replace_all(&s, Kind::AwsAccessKey.marker());
    let s = API_KEY.replace_all(&s, Kind::ApiKey.marker());
    let s = GITHUB_TOKEN.replace_all(&s, Kind::GithubToken.marker());
    let s = SLACK_TOKEN.replace_all(&s, Kind::SlackToken.marker());
    let s = ENV_ENTRY.replace_all(&s, |c: &Captures| {
        if is_secret_key(&c[1]) && !harmless_value(&c[3]) {
            format!(r#""name":"{}"{}{}""#, &c[1], &c[2], Kind::SecretValue.marker())
        } else {
            c[0].to_string()
        }
    });
    let s = match ASSIGNMENT_LINE.captures(&s) {
        Some(c) if is_secret_key(&c[2]) && !harmless_value(c[4].trim()) && !c[4].contains(REDACTED) => {
            std::borrow::Cow::Owned(format!("{}{}{}{}", &c[1], &c[2], &c[3], Kind::SecretValue.marker()))
        }
        _ => s,
    };
    let s = mask_key_values(&s);
    let s = EMAIL.replace_all(&s, Kind::Email.marker());
    let s = CARD_CANDIDATE.replace_all(&s, |c: &Captures| {
        let m = &c[0];
        match card_prefix_len(m) {
            Some(end) => format!("{}{}", Kind::CardNumber.marker(), &m[end..]),
            None => m.to_string(),
        }
    });
    let s = BASE64_RUN.replace_all(&s, |c: &Captures| {
        if looks_like_secret_access_key(&c[0]) { Kind::AwsSecretKey.marker().to_string() } else { c[0].to_string() }
    });
    s.into_owned()
}

/// The `KEY_VALUE` pass. A pair whose key is not secret gives back its value to the search, so
/// `rejected: password=hunter2` still finds `password=hunter2` inside it.
fn mask_key_values(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(c) = KEY_VALUE.captures_at(s, pos) {
        let (Some(whole), Some(key), Some(sep)) = (c.get(0), c.get(1), c.get(2)) else { break };
        let (value, quote) = match (c.get(3), c.get(4), c.get(5)) {
            (Some(v), _, _) => (v, "\""),
            (_, Some(v), _) => (v, "'"),
            (_, _, Some(v)) => (v, ""),
            _ => break,
        };
        let v = value.as_str();
        if is_secret_key(key.as_str()) && !harmless_value(v) && !(quote.is_empty() && is_auth_scheme(v)) {
            out.push_str(&s[pos..whole.start()]);
            out.push_str(&format!("{}{}{quote}{}{quote}", key.as_str(), sep.as_str(), Kind::SecretValue.marker()));
            pos = whole.end();
        } else {
            // Past the key and separator only: the value may hold a pair of its own.
            let next = value.start().max(key.end());
            out.push_str(&s[pos..next]);
            pos = next;
        }
    }
    out.push_str(&s[pos..]);
    out
}

/// A ConfigMap value bound outside the operator: withheld whole under a secret-looking key,
/// otherwise masked line by line. The flag says whether anything was masked (then the value is
/// not known in full and must never be written back).
pub fn redact_config_value(key: &str, value: &str) -> (String, bool) {
    if is_secret_key(key) {
        return (Kind::SecretValue.marker().to_string(), true);
    }
    let out = redact_text(value);
    let masked = out != value;
    (out, masked)
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
        // Masked before it is bounded, so a cut never leaves the start of a secret. A value
        // with anything masked is not known in full: `redacted` tells the rules not to restore it.
        for v in [&mut c.previous, &mut c.current].into_iter().flatten() {
            let (masked, any) = redact_config_value(&c.key, v);
            c.redacted |= any;
            let (m, t) = truncate(&masked, b.max_value_len);
            *v = m;
            cut |= t;
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
            let (m, t) = truncate(&redact_config_value(k, v).0, b.max_value_len);
            *v = m;
            cut2 |= t;
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
                *v = Kind::SecretValue.marker().to_string();
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
        assert_eq!(out.config_maps[0].data["DB_PASSWORD"], Kind::SecretValue.marker());
        assert!(out.config_maps[0].data["POOL"].len() <= 1024 + 4);
        assert_eq!(out.pods[0].containers[0].message.as_deref(), Some("auth failed token=[REDACTED:secret-value] for user"));
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
        assert_eq!(redact_line("login password=hunter2 ok"), "login password=[REDACTED:secret-value] ok");
        assert_eq!(redact_line("Authorization: Bearer abc.def"), "Authorization: Bearer [REDACTED:authorization]");
        assert_eq!(redact_line("db_token: xyz"), "db_token: [REDACTED:secret-value]");
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
        assert_eq!(out.config_changes[0].previous.as_deref(), Some(Kind::SecretValue.marker()));
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
        assert_eq!(redact_line("password=[REDACTED:secret-value]"), "password=[REDACTED:secret-value]", "masking twice changes nothing");
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
        assert_eq!(out, "order 42 for [REDACTED:email] failed");
    }

    #[test]
    fn luhn_valid_card_numbers_are_masked_in_any_grouping() {
        for card in ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"] {
            let out = masked(&format!("charge card {card} declined"));
            assert_eq!(out, "charge card [REDACTED:card-number] declined");
        }
        // A trailing number after the card survives.
        assert_eq!(redact_line("card 4111 1111 1111 1111 200"), "card [REDACTED:card-number] 200");
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
        assert_eq!(lines[4], "49 ERROR mail [REDACTED:email]");
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

    /// Lines that look a little like secrets and are not: they must survive untouched.
    #[test]
    fn ordinary_settings_digests_and_ids_survive() {
        for line in [
            "timeout=30",
            "MAX_TOKENS=100",
            "max_tokens: 4096",
            "session_timeout=30 auth_mode=oidc author=bob",
            "image: registry.example.com/oms@sha256:3f2a9c1d4e5b6a7980112233445566778899aabbccddeeff0011223344556677",
            "id 550e8400-e29b-41d4-a716-446655440000 and commit 3f2a9c1d4e5b6a7980112233445566778899aabb",
            "GET https://api.example.com:8443/v1/orders?limit=10 200",
            "basic validation failed for order 42",
            "redis://cache:6379/0 connected",
            "automountServiceAccountToken: true",
            r#"{"configMap": "oms-config", "key": "POOL_SIZE", "previous": "10", "inputTokens": 1200}"#,
        ] {
            assert_eq!(redact_text(line), line);
        }
    }

    #[test]
    fn secret_like_key_names_are_recognised() {
        for k in [
            "password",
            "db.password",
            "DB_PASSWORD",
            "dbPassword",
            "passwd",
            "client_secret",
            "GITHUB_TOKEN",
            "accessToken",
            "x-auth-token",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "aws_secret_access_key",
            "private_key",
            "DATABASE_DSN",
            "SESSION_ID",
            "session",
            "Cookie",
            "basic_auth",
            "DB_PASS",
            "credentials",
        ] {
            assert!(is_secret_key(k), "{k} looks secret");
        }
        for k in ["timeout", "MAX_TOKENS", "token_ttl", "session_timeout", "auth_mode", "author", "POOL_SIZE", "bypass", "keys", "key"] {
            assert!(!is_secret_key(k), "{k} is not secret");
        }
    }

    #[test]
    fn urls_keep_user_and_host_and_lose_the_password() {
        assert_eq!(
            redact_text("connecting to postgres://oms:s3cr3t-Pa55@db.shop:5432/orders?sslmode=require"),
            "connecting to postgres://oms:[REDACTED:url-password]@db.shop:5432/orders?sslmode=require"
        );
        let out = redact_text(r#"{"DATABASE_URL":"mysql://root:hunter2@10.0.0.5/app"}"#);
        assert!(!out.contains("hunter2") && out.contains("mysql://root:[REDACTED:url-password]@10.0.0.5/app"), "{out}");
        let out = redact_text("https://x-access-token:v1.abcdef0123456789@github.com/acme/gitops.git");
        assert!(!out.contains("abcdef0123456789"), "{out}");
        assert_eq!(redact_text("see https://example.com/docs for help"), "see https://example.com/docs for help");
    }

    #[test]
    fn config_files_are_masked_line_by_line() {
        let props = "db.user=oms\ndb.password=Hunter2 with spaces\npool.size=10\n# comment\n";
        let (out, masked) = redact_config_value("application.properties", props);
        assert!(masked);
        assert_eq!(out, "db.user=oms\ndb.password=[REDACTED:secret-value]\npool.size=10\n# comment\n");
        let yaml = "database:\n  host: db\n  password: \"p@ss word\"\n  pool: 5\n";
        let (out, _) = redact_config_value("config.yaml", yaml);
        assert_eq!(out, "database:\n  host: db\n  password: [REDACTED:secret-value]\n  pool: 5\n");
        let dotenv = "export API_TOKEN='abc def'\nLOG_LEVEL=debug\n";
        let (out, _) = redact_config_value(".env", dotenv);
        assert_eq!(out, "export API_TOKEN=[REDACTED:secret-value]\nLOG_LEVEL=debug\n");
        let ini = "[client]\nuser = app\npassword = x!y\n";
        let (out, _) = redact_config_value("my.cnf", ini);
        assert_eq!(out, "[client]\nuser = app\npassword = [REDACTED:secret-value]\n");
        assert_eq!(redact_config_value("POOL_SIZE", "10"), ("10".to_string(), false), "a plain value is kept and known in full");
        assert_eq!(redact_config_value("DB_PASSWORD", "x").0, Kind::SecretValue.marker());
    }

    #[test]
    fn json_and_quoted_values_are_masked_whole() {
        let out = redact_text(r#"{"user":"bob","password":"two words, and \"quotes\"","n":1}"#);
        assert_eq!(out, r#"{"user":"bob","password":"[REDACTED:secret-value]","n":1}"#);
        let out = redact_text(r#"[{"name":"DB_PASSWORD","value":"hunter2"},{"name":"POOL","value":"10"}]"#);
        assert_eq!(out, r#"[{"name":"DB_PASSWORD","value":"[REDACTED:secret-value]"},{"name":"POOL","value":"10"}]"#);
    }

    #[test]
    fn authorization_headers_keep_their_scheme() {
        for (line, want) in [
            ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED:authorization]"),
            ("proxy-authorization: Basic dXNlcjpwYXNz", "proxy-authorization: Basic [REDACTED:authorization]"),
            ("Authorization: token 0123456789abcdef", "Authorization: token [REDACTED:authorization]"),
            ("X-Api-Key: 0123abcd", "X-Api-Key: [REDACTED:authorization]"),
            ("curl -H 'Authorization: Bearer tok_9f8e7d6c'", "curl -H 'Authorization: Bearer [REDACTED:authorization]'"),
        ] {
            assert_eq!(redact_text(line), want);
        }
    }

    #[test]
    fn provider_key_formats_are_masked_anywhere() {
        for (secret, kind) in [
            ("AKIAIOSFODNN7EXAMPLE", Kind::AwsAccessKey),
            ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", Kind::AwsSecretKey),
            ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", Kind::ApiKey),
            ("rk_test_51Habcdefghijklmnop", Kind::ApiKey),
            ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", Kind::GithubToken),
            ("ghs_abcdefghijklmnopqrstuvwx", Kind::GithubToken),
            ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", Kind::GithubToken),
            ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", Kind::SlackToken),
            ("xapp-1-A0123456789-0123456789012-abcdef", Kind::SlackToken),
        ] {
            let out = redact_text(&format!("charging with {secret} now"));
            assert_eq!(out, format!("charging with {} now", kind.marker()), "{secret}");
        }
        let out = redact_text("posting to https://hooks.slack.com/services/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 failed");
        assert_eq!(out, "posting to https://hooks.slack.com/[REDACTED:slack-webhook] failed");
    }

    #[test]
    fn pem_blocks_spanning_lines_are_masked_whole() {
        let text = "tls.key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\nport: 8443\n";
        let out = redact_text(text);
        assert_eq!(out, "tls.key:\n[REDACTED:private-key]\nport: 8443\n");
    }

    #[test]
    fn masking_is_idempotent() {
        for line in [
            "postgres://u:pw@h/db password=x Authorization: Bearer abcdef123 sk_live_abcdefghijkl",
            "db.password=x y z",
            r#"{"token":"abc","name":"DB_PASSWORD","value":"v"}"#,
        ] {
            let once = redact_text(line);
            assert_eq!(redact_text(&once), once, "{line}");
        }
    }

    #[test]
    fn a_masked_change_is_not_known_in_full_and_is_bounded_after_masking() {
        let secret = "s".repeat(2000);
        let ev = Evidence {
            config_changes: vec![ConfigChange {
                config_map: "c".into(),
                key: "app.properties".into(),
                previous: Some(format!("pool.size=10\ndb.password={secret}")),
                current: Some(format!("pool.size=0\ndb.password={secret}")),
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = redact_and_bound(ev, &Bounds::default());
        let c = &out.config_changes[0];
        assert!(c.redacted, "a value with a masked line must never be written back");
        assert_eq!(c.previous.as_deref(), Some("pool.size=10\ndb.password=[REDACTED:secret-value]"));
        assert!(!c.current.as_deref().unwrap_or_default().contains("sss"), "no prefix of the secret survives the bound");
    }
}
