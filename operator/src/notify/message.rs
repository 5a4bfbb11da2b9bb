//! What to tell people, decided as data from an Incident and its Remediations.

use serde::Serialize;
use serde_json::{Value, json};

use crate::crd::{Incident, Remediation};
use crate::domain::outbound;
use crate::domain::phase::{IncidentPhase, RemediationPhase};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ApprovalNeeded,
    Resolved,
    Escalated,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ApprovalNeeded => "approval_needed",
            Kind::Resolved => "resolved",
            Kind::Escalated => "escalated",
        }
    }
}

/// One notification, with the key that makes it once-only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// `approval:<remediation>`, `resolved`, `escalated`.
    pub key: String,
    pub kind: Kind,
    pub namespace: String,
    pub incident: String,
    pub service: String,
    pub severity: String,
    pub summary: String,
    pub action: Option<String>,
    pub risk: Option<String>,
    /// What a person runs to approve (or the pull request to review).
    pub next_step: Option<String>,
}

/// The notifications an Incident is owed now (already-sent ones are filtered by the caller).
pub fn pending_notifications(inc: &Incident, remediations: &[&Remediation]) -> Vec<Notification> {
    let st = inc.status.clone().unwrap_or_default();
    let ns = inc.metadata.namespace.clone().unwrap_or_default();
    let name = inc.metadata.name.clone().unwrap_or_default();
    let summary =
        st.diagnosis.as_ref().map(|d| d.summary.clone()).or_else(|| st.timeline.last().map(|t| t.message.clone())).unwrap_or_default();
    let base = |key: String, kind: Kind| Notification {
        key,
        kind,
        namespace: ns.clone(),
        incident: name.clone(),
        service: inc.spec.service.clone(),
        severity: format!("{:?}", inc.spec.severity),
        summary: summary.clone(),
        action: None,
        risk: None,
        next_step: None,
    };
    let mut out: Vec<Notification> = Vec::new();
    for r in remediations {
        let rs = r.status.clone().unwrap_or_default();
        let rname = r.metadata.name.clone().unwrap_or_default();
        let waiting_person = rs.phase == RemediationPhase::AwaitingApproval;
        let waiting_merge = rs.phase == RemediationPhase::AwaitingMerge;
        if waiting_person || waiting_merge {
            let mut n = base(format!("approval:{rname}"), Kind::ApprovalNeeded);
            n.action = Some(r.spec.action.describe());
            n.risk = Some(format!("{:?}", r.spec.risk));
            n.next_step = Some(match rs.pr_url.clone() {
                Some(url) if waiting_merge => format!("review and merge {url}"),
                _ => format!("kubectl salve approve {rname} -n {ns}   (or: kubectl salve reject {rname} -n {ns} --feedback '...')"),
            });
            out.push(n);
        }
    }
    match st.phase {
        IncidentPhase::Resolved | IncidentPhase::Escalated => {
            let kind = if st.phase == IncidentPhase::Resolved { Kind::Resolved } else { Kind::Escalated };
            let mut n = base(kind.as_str().to_string(), kind);
            let last = st.remediations.last().and_then(|l| remediations.iter().find(|r| r.metadata.name.as_deref() == Some(l.as_str())));
            n.action = last.map(|r| r.spec.action.describe());
            n.risk = last.map(|r| format!("{:?}", r.spec.risk));
            n.summary = st.timeline.last().map(|t| t.message.clone()).unwrap_or(summary.clone());
            n.next_step = Some(format!("kubectl salve describe {name} -n {ns}"));
            out.push(n);
        }
        _ => {}
    }
    out.into_iter().map(redacted).collect()
}

/// Everything a notification says passes the outbound gate: the summary quotes a model or the
/// evidence, the action names what changed.
fn redacted(mut n: Notification) -> Notification {
    n.summary = outbound::text(&n.summary);
    n.action = n.action.as_deref().map(outbound::text);
    n.next_step = n.next_step.as_deref().map(outbound::text);
    n
}

/// The generic webhook's JSON body (documented in the chart's README).
pub fn json_body(n: &Notification) -> Value {
    json!({"version": "salve.dev/notification/v1", "notification": n})
}

/// Text Slack shows as written. Slack's formatting reference asks for `&`, `<` and `>` to be
/// escaped as `&amp;`, `&lt;` and `&gt;` (https://api.slack.com/reference/surfaces/formatting#escaping):
/// unescaped, `<!channel>`, `<!here>` and `<@U123>` in a model's summary or a reviewer's
/// feedback would notify people, and `<http://x|click>` would hide where a link goes. `@channel`,
/// `@here` and `@everyone` typed out get a zero-width space after the `@`, so they stay text
/// even where Slack links names (`link_names`). Every value that reaches Slack goes through
/// this; only the message's own frame (titles, labels, code spans) is markup.
pub fn slack_escape(s: &str) -> String {
    let escaped = s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped.as_str();
    while let Some(i) = rest.find('@') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
        if ["channel", "here", "everyone"].iter().any(|m| lower.starts_with(m)) {
            out.push('\u{200B}');
        }
    }
    out.push_str(rest);
    out
}

/// A Slack incoming-webhook message (`text` plus mrkdwn blocks); every value is escaped.
pub fn slack_body(n: &Notification) -> Value {
    let e = slack_escape;
    let (ns, incident, service) = (e(&n.namespace), e(&n.incident), e(&n.service));
    let title = match n.kind {
        Kind::ApprovalNeeded => format!(":raised_hand: Approval needed: incident `{ns}/{incident}` ({service})"),
        Kind::Resolved => format!(":white_check_mark: Resolved: incident `{ns}/{incident}` ({service})"),
        Kind::Escalated => format!(":rotating_light: Escalated: incident `{ns}/{incident}` ({service}) needs a person"),
    };
    let mut lines = vec![title.clone(), format!("*Severity:* {}", e(&n.severity)), format!("*Summary:* {}", e(&n.summary))];
    if let Some(a) = &n.action {
        lines.push(format!("*Action:* {} ({} risk)", e(a), e(&n.risk.clone().unwrap_or_default())));
    }
    if let Some(s) = &n.next_step {
        lines.push(format!("*Next:* `{}`", e(s)));
    }
    json!({"text": title, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(phase: &str) -> Incident {
        serde_json::from_value(json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Incident", "metadata": {"name": "oms-5xx", "namespace": "shop"},
            "spec": {"service": "oms", "severity": "High", "source": {"kind": "Manual"}, "target": {"kind": "Deployment", "name": "oms"}},
            "status": {"phase": phase, "remediations": ["oms-5xx-r1"], "timeline": [{"time": "t", "phase": phase, "message": "it happened"}]}}))
        .expect("incident")
    }

    fn remediation(phase: &str) -> Remediation {
        serde_json::from_value(
            json!({"apiVersion": "salve.dev/v1alpha1", "kind": "Remediation", "metadata": {"name": "oms-5xx-r1", "namespace": "shop"},
            "spec": {"incidentRef": "oms-5xx", "risk": "Medium", "action": {"kind": "Rollback", "targetName": "oms", "revision": 3}},
            "status": {"phase": phase}}),
        )
        .expect("remediation")
    }

    #[test]
    fn a_waiting_approval_says_what_to_run_and_a_resolution_says_what_fixed_it() {
        let r = remediation("AwaitingApproval");
        let n = pending_notifications(&incident("Remediating"), &[&r]);
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].key.as_str(), n[0].kind), ("approval:oms-5xx-r1", Kind::ApprovalNeeded));
        assert!(n[0].next_step.as_deref().is_some_and(|s| s.starts_with("kubectl salve approve oms-5xx-r1 -n shop")));
        assert_eq!(n[0].risk.as_deref(), Some("Medium"));
        let done = remediation("Succeeded");
        let n = pending_notifications(&incident("Resolved"), &[&done]);
        assert_eq!(n.iter().map(|n| n.key.as_str()).collect::<Vec<_>>(), ["resolved"]);
        assert!(n[0].action.as_deref().is_some_and(|a| a.contains("roll back")));
        assert!(slack_body(&n[0])["text"].as_str().is_some_and(|t| t.contains("Resolved")));
    }

    #[test]
    fn nothing_from_the_model_or_a_person_becomes_a_mention_or_a_link_in_slack() {
        let mut n = pending_notifications(&incident("Resolved"), &[&remediation("Succeeded")]).remove(0);
        n.summary = "<!channel> pool exhausted, see <http://evil.example|the runbook> & ask <@U123> @here or @Channel".into();
        n.service = "oms<!here>".into();
        let body = slack_body(&n);
        let text = body["blocks"][0]["text"]["text"].as_str().expect("mrkdwn");
        let title = body["text"].as_str().expect("text");
        for t in [text, title] {
            assert!(!t.contains('<') && !t.contains('>'), "no Slack markup from data: {t}");
        }
        assert!(
            text.contains("&lt;!channel&gt; pool exhausted, see &lt;http://evil.example|the runbook&gt; &amp; ask &lt;@U123&gt;"),
            "{text}"
        );
        assert!(text.contains("@\u{200B}here or @\u{200B}Channel"), "{text}");
        assert!(!text.contains("@here") && !text.contains("@Channel"), "{text}");
        assert!(title.contains("(oms&lt;!here&gt;)"), "{title}");
        assert_eq!(slack_escape("mail ops@example.com"), "mail ops@example.com", "other @ are left alone");
    }

    #[test]
    fn notifications_never_carry_a_secret_the_story_quoted() {
        let mut inc = incident("Escalated");
        if let Some(st) = inc.status.as_mut() {
            st.timeline[0].message = "oms-5xx-r1 failed: postgres://oms:hunter2@db refused, Bearer tok_0123456789".into();
        }
        let n = pending_notifications(&inc, &[&remediation("Failed")]);
        let text = format!("{}{}", json_body(&n[0]), slack_body(&n[0]));
        assert!(!text.contains("hunter2") && !text.contains("tok_0123456789"), "{text}");
        assert!(text.contains("[REDACTED:url-password]"), "{text}");
    }
}
