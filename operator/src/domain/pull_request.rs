//! Pure pieces of pull-request remediation: applying a file change to a file's text, the
//! snapshot that makes a merged change undoable, the branch name, the PR body and labels, and
//! which reviewer comment becomes the feedback of a rejection. No HTTP here; the GitHub adapter
//! moves these values over the wire.

use serde::{Deserialize, Serialize};

use super::action::{FileChange, ProposedAction};

/// Upper bound for the previous contents kept in a snapshot (status must stay small).
pub const MAX_SNAPSHOT_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("{path}: the search text occurs {found} times; it must occur exactly once")]
    SearchNotUnique { path: String, found: usize },
    #[error("{path}: the file does not exist, so there is nothing to search in")]
    FileMissing { path: String },
    #[error("previous contents of the changed files exceed {MAX_SNAPSHOT_BYTES} bytes")]
    SnapshotTooLarge,
    #[error("snapshot is corrupt: {0}")]
    BadSnapshot(String),
}

/// The new text of one file. With `search`, it must occur exactly once in `current` (a second
/// occurrence means the model could not say which one it meant); without it, `replace` is the
/// whole file.
pub fn apply_change(current: Option<&str>, change: &FileChange) -> Result<String, ChangeError> {
    let Some(search) = change.search.as_deref() else {
        return Ok(change.replace.clone());
    };
    let text = current.ok_or_else(|| ChangeError::FileMissing { path: change.path.clone() })?;
    let found = text.match_indices(search).count();
    if found != 1 {
        return Err(ChangeError::SearchNotUnique { path: change.path.clone(), found });
    }
    Ok(text.replacen(search, &change.replace, 1))
}

/// One file as it was on the base commit; `content: None` means it did not exist.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PreviousFile {
    pub path: String,
    pub content: Option<String>,
}

/// What is needed to undo a merged pull request: the base it was cut from and the previous
/// contents of every file it changes. Stored as JSON in `Snapshot.undo_patch`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RepoSnapshot {
    pub base_branch: String,
    pub base_commit: String,
    pub files: Vec<PreviousFile>,
}

impl RepoSnapshot {
    pub fn new(base_branch: String, base_commit: String, files: Vec<PreviousFile>) -> Result<Self, ChangeError> {
        let bytes: usize = files.iter().map(|f| f.content.as_deref().map_or(0, str::len)).sum();
        if bytes > MAX_SNAPSHOT_BYTES {
            return Err(ChangeError::SnapshotTooLarge);
        }
        Ok(Self { base_branch, base_commit, files })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, ChangeError> {
        serde_json::from_str(s).map_err(|e| ChangeError::BadSnapshot(e.to_string()))
    }

    fn previous(&self, path: &str) -> Option<&str> {
        self.files.iter().find(|f| f.path == path).and_then(|f| f.content.as_deref())
    }

    /// The final content of every changed path, in first-change order: the changes applied in
    /// order to the snapshot's contents. A pure function of snapshot and action, so a restart
    /// computes exactly the same commit contents.
    pub fn desired(&self, action: &ProposedAction) -> Result<Vec<(String, String)>, ChangeError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for change in &action.files {
            let slot = out.iter().position(|(p, _)| *p == change.path);
            let current = match slot {
                Some(i) => Some(out[i].1.as_str()),
                None => self.previous(&change.path),
            };
            let next = apply_change(current, change)?;
            match slot {
                Some(i) => out[i].1 = next,
                None => out.push((change.path.clone(), next)),
            }
        }
        Ok(out)
    }
}

/// Branch of the pull request for a Remediation; one Remediation, one branch, one PR.
pub fn branch_name(remediation: &str) -> String {
    format!("salve/{remediation}")
}

pub fn revert_branch_name(remediation: &str) -> String {
    format!("salve/{remediation}-revert")
}

/// What the PR body tells the reviewer.
#[derive(Clone, Debug, Default)]
pub struct PrContext {
    pub namespace: String,
    pub incident: String,
    pub remediation: String,
    pub workload: String,
    pub category: Option<String>,
    pub summary: String,
    pub cited_evidence: Vec<String>,
    pub rationale: String,
    pub verify_window_seconds: u32,
}

pub fn title(action: &ProposedAction, ctx: &PrContext) -> String {
    let t = action.title.clone().unwrap_or_else(|| format!("Salve: fix for incident {}", ctx.incident));
    // Masked before it is cut, so the cut never leaves the start of a secret.
    super::outbound::text(&t).chars().take(200).collect()
}

/// Markdown body: the diagnosis, the evidence it cites, how the fix will be verified, and the
/// names to find the Incident and Remediation with kubectl.
pub fn body(action: &ProposedAction, ctx: &PrContext) -> String {
    let mut b = String::new();
    b.push_str("## Diagnosis\n\n");
    b.push_str(&format!("Root cause: **{}**\n\n", ctx.category.as_deref().unwrap_or("Unknown")));
    b.push_str(&format!("{}\n\n", if ctx.summary.is_empty() { &ctx.rationale } else { &ctx.summary }));
    if !ctx.cited_evidence.is_empty() {
        b.push_str("## Evidence\n\n");
        for e in &ctx.cited_evidence {
            b.push_str(&format!("- {e}\n"));
        }
        b.push('\n');
    }
    b.push_str("## Change\n\n");
    for f in &action.files {
        let how = if f.search.is_some() { "one exact text replaced" } else { "whole file replaced" };
        b.push_str(&format!("- `{}`: {how}\n", f.path));
    }
    b.push_str("\n## Verification plan\n\n");
    b.push_str(&format!(
        "After the merge, Salve waits for Deployment `{}` to roll out, then for the alarm to return to OK or every replica \
         to be ready without new restarts within {}s. If it does not, Salve opens a pull request reverting this change.\n\n",
        ctx.workload, ctx.verify_window_seconds
    ));
    b.push_str("## Salve\n\n");
    b.push_str(&format!(
        "Incident `{ns}/{inc}`, Remediation `{ns}/{rem}` (`kubectl -n {ns} get remediation {rem}`). Closing this pull \
         request without merging rejects the remediation; a review comment becomes feedback for the next diagnosis.\n",
        ns = ctx.namespace,
        inc = ctx.incident,
        rem = ctx.remediation
    ));
    // The body goes to GitHub: the summary and cited evidence pass the outbound gate.
    super::outbound::text(&b)
}

/// Labels on the PR: what opened it, and the root-cause category for triage.
pub fn labels(category: Option<&str>) -> Vec<String> {
    let mut l = vec!["salve".to_string(), "remediation".to_string()];
    if let Some(c) = category {
        l.push(c.to_string());
    }
    l
}

pub const CLOSED_WITHOUT_MERGE: &str = "closed without merge";

/// The feedback of a PR closed without merge: the last review with text, else the last issue
/// comment with text, else a fixed sentence. Bounded, it goes into the next prompt.
pub fn rejection_feedback(review_bodies: &[String], comment_bodies: &[String]) -> String {
    let last = |v: &[String]| v.iter().rev().find(|b| !b.trim().is_empty()).map(|b| b.trim().to_string());
    let text = last(review_bodies).or_else(|| last(comment_bodies)).unwrap_or_else(|| CLOSED_WITHOUT_MERGE.to_string());
    text.chars().take(2000).collect()
}

/// What a Deployment reports about its roll-out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    pub generation: i64,
    pub observed_generation: i64,
    pub desired: i32,
    pub updated: i32,
    pub available: i32,
}

impl Rollout {
    /// Done when the Deployment controller has seen the latest spec and every desired replica
    /// runs the new template and is available (what `kubectl rollout status` waits for).
    pub fn is_complete(&self) -> bool {
        self.observed_generation >= self.generation && self.updated == self.desired && self.available == self.desired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::action::ActionKind;

    fn change(path: &str, search: Option<&str>, replace: &str) -> FileChange {
        FileChange { path: path.into(), search: search.map(String::from), replace: replace.into() }
    }

    #[test]
    fn search_must_match_exactly_once() {
        let c = change("a", Some("memory: 256Mi"), "memory: 512Mi");
        assert_eq!(apply_change(Some("x\nmemory: 256Mi\n"), &c).as_deref(), Ok("x\nmemory: 512Mi\n"));
        assert_eq!(apply_change(Some("x"), &c), Err(ChangeError::SearchNotUnique { path: "a".into(), found: 0 }));
        assert_eq!(
            apply_change(Some("memory: 256Mi\nmemory: 256Mi"), &c),
            Err(ChangeError::SearchNotUnique { path: "a".into(), found: 2 })
        );
        assert_eq!(apply_change(None, &c), Err(ChangeError::FileMissing { path: "a".into() }));
        assert_eq!(apply_change(None, &change("a", None, "new")).as_deref(), Ok("new"));
    }

    #[test]
    fn desired_contents_chain_changes_to_the_same_file() {
        let mut a = ProposedAction::new(ActionKind::PullRequest, "oms");
        a.files = vec![change("v.yaml", Some("a: 1"), "a: 2"), change("v.yaml", Some("b: 1"), "b: 2"), change("n.yaml", None, "x")];
        let s = RepoSnapshot::new(
            "main".into(),
            "c0".into(),
            vec![PreviousFile { path: "v.yaml".into(), content: Some("a: 1\nb: 1\n".into()) }],
        )
        .expect("snapshot");
        let d = s.desired(&a).expect("desired");
        assert_eq!(d, vec![("v.yaml".to_string(), "a: 2\nb: 2\n".to_string()), ("n.yaml".to_string(), "x".to_string())]);
        assert_eq!(RepoSnapshot::from_json(&s.to_json()), Ok(s));
    }

    #[test]
    fn snapshot_is_bounded() {
        let big = PreviousFile { path: "a".into(), content: Some("x".repeat(MAX_SNAPSHOT_BYTES + 1)) };
        assert_eq!(RepoSnapshot::new("main".into(), "c".into(), vec![big]), Err(ChangeError::SnapshotTooLarge));
    }

    #[test]
    fn roll_out_needs_the_latest_generation_and_every_replica() {
        let done = Rollout { generation: 3, observed_generation: 3, desired: 2, updated: 2, available: 2 };
        assert!(done.is_complete());
        assert!(!Rollout { observed_generation: 2, ..done }.is_complete(), "controller has not seen the new spec");
        assert!(!Rollout { updated: 1, ..done }.is_complete());
        assert!(!Rollout { available: 1, ..done }.is_complete());
    }

    #[test]
    fn feedback_prefers_reviews_then_comments() {
        let r = vec!["LGTM".to_string(), " ".to_string()];
        let c = vec!["use 384Mi".to_string()];
        assert_eq!(rejection_feedback(&r, &c), "LGTM");
        assert_eq!(rejection_feedback(&[], &c), "use 384Mi");
        assert_eq!(rejection_feedback(&[], &[]), CLOSED_WITHOUT_MERGE);
    }

    #[test]
    fn body_links_back_and_states_the_plan() {
        let mut a = ProposedAction::new(ActionKind::PullRequest, "oms");
        a.files = vec![change("apps/oms/values.yaml", Some("x"), "y")];
        let ctx = PrContext {
            namespace: "shop".into(),
            incident: "oms-5xx".into(),
            remediation: "oms-5xx-r1".into(),
            workload: "oms".into(),
            category: Some("Resource_Limit".into()),
            summary: "OOMKilled at 256Mi".into(),
            cited_evidence: vec!["oms-1 OOMKilled".into()],
            verify_window_seconds: 300,
            ..Default::default()
        };
        let b = body(&a, &ctx);
        for want in ["Resource_Limit", "OOMKilled at 256Mi", "- oms-1 OOMKilled", "apps/oms/values.yaml", "300s", "shop/oms-5xx-r1"] {
            assert!(b.contains(want), "{want} missing from {b}");
        }
        assert_eq!(labels(Some("Resource_Limit")), ["salve", "remediation", "Resource_Limit"]);
    }

    #[test]
    fn title_and_body_never_carry_a_secret_the_diagnosis_quoted() {
        let mut a = ProposedAction::new(ActionKind::PullRequest, "oms");
        a.title = Some("Fix DATABASE_URL=postgres://oms:hunter2@db/shop".into());
        let ctx = PrContext {
            summary: "oms fails with Authorization: Bearer tok_0123456789".into(),
            cited_evidence: vec!["payment key sk_live_4eC39HqLyjWDarjtT1zdp7dc rejected".into()],
            ..Default::default()
        };
        let text = format!("{}\n{}", title(&a, &ctx), body(&a, &ctx));
        for secret in ["hunter2", "tok_0123456789", "4eC39HqLyjWDarjtT1zdp7dc"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("postgres://oms:[REDACTED:url-password]@db/shop"), "{text}");
    }
}
