//! Container logs as the kubelet serves them through `GET .../pods/{name}/log`: one timestamp
//! per line (the CRI log format keeps one), filtered by `sinceSeconds`/`sinceTime`, cut by
//! `tailLines`, optionally prefixed with the timestamp (`timestamps=true`, RFC3339Nano with a
//! fixed nine-digit fraction, kubelet/kuberuntime/logs `timeFormatOut`).

use chrono::{DateTime, SecondsFormat, Utc};

/// One container instance's log.
#[derive(Clone, Debug, Default)]
pub struct ContainerLog {
    pub lines: Vec<(DateTime<Utc>, String)>,
}

impl ContainerLog {
    /// Replaces the text, as callers that re-send a container's whole (growing, possibly
    /// front-trimmed) log do: lines already held keep their timestamps when the new text
    /// continues them, and only the lines not seen before are stamped `now`.
    pub fn set_text(&mut self, text: &str, now: DateTime<Utc>) {
        let new: Vec<&str> = text.lines().collect();
        let old = &self.lines;
        // The longest suffix of the old lines that is a prefix of the new text.
        let overlap = (0..=old.len().min(new.len()))
            .rev()
            .find(|&n| old[old.len() - n..].iter().zip(&new[..n]).all(|((_, a), b)| a == b))
            .unwrap_or(0);
        let mut lines: Vec<(DateTime<Utc>, String)> = old[old.len() - overlap..].to_vec();
        lines.extend(new[overlap..].iter().map(|l| (now, l.to_string())));
        self.lines = lines;
    }
}

/// What a log request asks for.
#[derive(Default)]
pub struct LogQuery {
    pub since: Option<DateTime<Utc>>,
    pub tail_lines: Option<usize>,
    pub timestamps: bool,
}

impl LogQuery {
    /// Reads `sinceSeconds`, `sinceTime`, `tailLines`, `timestamps`. Giving both since
    /// parameters, or a malformed one, is a 422 as in `ValidatePodLogOptions`.
    pub fn parse(get: impl Fn(&str) -> Option<String>, now: DateTime<Utc>) -> Result<Self, String> {
        let since_seconds = get("sinceSeconds");
        let since_time = get("sinceTime");
        let since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into()),
            (Some(s), None) => match s.parse::<i64>() {
                Ok(n) if n >= 1 => Some(now - chrono::Duration::seconds(n)),
                _ => return Err("sinceSeconds: Invalid value: must be greater than 0".into()),
            },
            (None, Some(t)) => match DateTime::parse_from_rfc3339(&t) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(e) => return Err(format!("sinceTime: Invalid value: \"{t}\": {e}")),
            },
            (None, None) => None,
        };
        let tail_lines = match get("tailLines") {
            Some(n) => match n.parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => return Err(format!("tailLines: Invalid value: \"{n}\": must be a non-negative integer")),
            },
            None => None,
        };
        let timestamps = matches!(get("timestamps").as_deref(), Some("true" | "1"));
        Ok(Self { since, tail_lines, timestamps })
    }

    /// The response body: the kubelet applies the tail to the file and the since filter to
    /// each line read; for a chronological log both orders select the same lines.
    pub fn render(&self, log: &ContainerLog) -> String {
        let selected: Vec<&(DateTime<Utc>, String)> = log.lines.iter().filter(|(t, _)| self.since.is_none_or(|s| *t >= s)).collect();
        let n = self.tail_lines.unwrap_or(selected.len()).min(selected.len());
        selected[selected.len() - n..]
            .iter()
            .map(
                |(t, line)| {
                    if self.timestamps { format!("{} {line}", t.to_rfc3339_opts(SecondsFormat::Nanos, true)) } else { line.clone() }
                },
            )
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resent_text_keeps_timestamps_of_known_lines() {
        let t0 = Utc::now() - chrono::Duration::seconds(100);
        let t1 = Utc::now();
        let mut log = ContainerLog::default();
        log.set_text("a\nb", t0);
        log.set_text("a\nb\nc", t1);
        assert_eq!(log.lines, vec![(t0, "a".into()), (t0, "b".into()), (t1, "c".into())]);
        // The front was trimmed (a bounded buffer): "b" keeps its time.
        log.set_text("b\nc\nd", t1);
        assert_eq!(log.lines[0], (t0, "b".into()));
        assert_eq!(log.lines.len(), 3);
    }
}
