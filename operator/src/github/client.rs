//! GitHub adapter: the REST calls that turn a PullRequest action into a branch, commits and a
//! pull request, and that read the PR's fate (merged, closed, reviews). Built on octocrab's
//! authenticated HTTP methods with our own small response types: we read only a few documented
//! fields, so a GitHub Enterprise version with a different full schema still works.
//!
//! Every write is idempotent on a restart: an existing PR for the branch is adopted, an
//! existing branch is reused, and a file already holding the desired content is not committed
//! again.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use octocrab::Octocrab;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::domain::action::ProposedAction;
use crate::domain::outbound;
use crate::domain::pull_request::{ChangeError, PreviousFile, RepoSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub answered {status} to {what}: {message}")]
    Api { status: u16, what: String, message: String },
    #[error("GitHub unreachable during {what}: {message}")]
    Transport { what: String, message: String },
    #[error("unexpected answer from GitHub to {what}: {message}")]
    Decode { what: String, message: String },
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("invalid repository {0:?}, expected owner/name")]
    Repository(String),
}

impl GithubError {
    /// Worth retrying later: GitHub is down, overloaded or rate limiting us. Everything else
    /// (bad credentials, no access, no such repository, validation failures) needs a person.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, message, .. } => {
                *status >= 500 || *status == 429 || (*status == 403 && message.to_ascii_lowercase().contains("rate limit"))
            }
            Self::Transport { .. } => true,
            _ => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn is_status(&self, code: u16) -> bool {
        self.status() == Some(code)
    }
}

fn map_err(what: &str, e: octocrab::Error) -> GithubError {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            GithubError::Api { status: source.status_code.as_u16(), what: what.to_string(), message: source.message }
        }
        octocrab::Error::Serde { source, .. } => GithubError::Decode { what: what.to_string(), message: source.to_string() },
        octocrab::Error::Json { source, .. } => GithubError::Decode { what: what.to_string(), message: source.to_string() },
        other => GithubError::Transport { what: what.to_string(), message: other.to_string() },
    }
}

/// A pull request, as much of it as Salve reads.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub html_url: String,
    /// `open` or `closed`.
    pub state: String,
    /// Only in single-PR answers; lists carry `merged_at` alone.
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merged_at: Option<String>,
}

impl PullRequest {
    pub fn is_merged(&self) -> bool {
        self.merged.unwrap_or(false) || self.merged_at.is_some()
    }

    /// `open`, `merged` or `closed`, as recorded in `status.prState`.
    pub fn salve_state(&self) -> &'static str {
        if self.is_merged() {
            "merged"
        } else if self.state == "closed" {
            "closed"
        } else {
            "open"
        }
    }
}

/// A file at a ref: its blob sha (needed to update it) and its decoded text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFile {
    pub sha: String,
    pub content: String,
}

#[derive(Deserialize)]
struct RepoInfo {
    default_branch: String,
}

#[derive(Deserialize)]
struct GitRef {
    object: GitObject,
}

#[derive(Deserialize)]
struct GitObject {
    sha: String,
}

#[derive(Deserialize)]
struct Contents {
    sha: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    encoding: String,
}

#[derive(Deserialize)]
struct WithBody {
    #[serde(default)]
    body: Option<String>,
}

/// Percent-encodes a repository path for a URL, keeping `/` between segments.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn split_repo(repo: &str) -> Result<(&str, &str), GithubError> {
    repo.split_once('/').filter(|(o, n)| !o.is_empty() && !n.is_empty()).ok_or_else(|| GithubError::Repository(repo.to_string()))
}

/// The result of opening (or finding) the pull request of a Remediation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    pub pr: PullRequest,
    /// True when an existing PR for the branch was found and adopted instead of created.
    pub adopted: bool,
}

pub struct GithubClient {
    crab: Octocrab,
    /// Branch PRs target; `None` = the repository's default branch.
    base_branch: Option<String>,
}

impl GithubClient {
    pub fn new(crab: Octocrab, base_branch: Option<String>) -> Self {
        Self { crab, base_branch }
    }

    async fn get<T: DeserializeOwned>(&self, what: &str, route: &str, query: Option<&[(&str, &str)]>) -> Result<T, GithubError> {
        self.crab.get(route, query).await.map_err(|e| map_err(what, e))
    }

    async fn post<T: DeserializeOwned>(&self, what: &str, route: &str, body: &Value) -> Result<T, GithubError> {
        self.crab.post(route, Some(body)).await.map_err(|e| map_err(what, e))
    }

    /// The branch PRs go to and its head commit.
    pub async fn base(&self, repo: &str) -> Result<(String, String), GithubError> {
        split_repo(repo)?;
        let branch = match &self.base_branch {
            Some(b) => b.clone(),
            None => self.get::<RepoInfo>("read repository", &format!("/repos/{repo}"), None).await?.default_branch,
        };
        let sha = self.branch_head(repo, &branch).await?.ok_or_else(|| GithubError::Api {
            status: 404,
            what: "read base branch".into(),
            message: format!("branch {branch} not found"),
        })?;
        Ok((branch, sha))
    }

    async fn branch_head(&self, repo: &str, branch: &str) -> Result<Option<String>, GithubError> {
        let route = format!("/repos/{repo}/git/ref/heads/{}", encode_path(branch));
        match self.get::<GitRef>("read branch", &route, None).await {
            Ok(r) => Ok(Some(r.object.sha)),
            Err(e) if e.is_status(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A file at `git_ref` (branch or commit); `None` when it does not exist there.
    pub async fn file(&self, repo: &str, path: &str, git_ref: &str) -> Result<Option<RepoFile>, GithubError> {
        let route = format!("/repos/{repo}/contents/{}", encode_path(path));
        let c = match self.get::<Contents>("read file", &route, Some(&[("ref", git_ref)])).await {
            Ok(c) => c,
            Err(e) if e.is_status(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        if c.encoding != "base64" {
            return Err(GithubError::Decode { what: format!("read {path}"), message: format!("unsupported encoding {:?}", c.encoding) });
        }
        // GitHub wraps base64 at 60 columns.
        let compact: String = c.content.chars().filter(|ch| !ch.is_whitespace()).collect();
        let bytes = BASE64.decode(compact).map_err(|e| GithubError::Decode { what: format!("read {path}"), message: e.to_string() })?;
        let content =
            String::from_utf8(bytes).map_err(|_| GithubError::Decode { what: format!("read {path}"), message: "not UTF-8 text".into() })?;
        Ok(Some(RepoFile { sha: c.sha, content }))
    }

    /// Reads the base commit and the current contents of every file the action changes, and
    /// checks that every change applies (a search that does not match exactly once fails here,
    /// before anything is pushed).
    pub async fn snapshot(&self, repo: &str, action: &ProposedAction) -> Result<RepoSnapshot, GithubError> {
        let (branch, commit) = self.base(repo).await?;
        let mut files: Vec<PreviousFile> = Vec::new();
        for change in &action.files {
            if files.iter().any(|f| f.path == change.path) {
                continue;
            }
            let content = self.file(repo, &change.path, &commit).await?.map(|f| f.content);
            files.push(PreviousFile { path: change.path.clone(), content });
        }
        let snapshot = RepoSnapshot::new(branch, commit, files)?;
        snapshot.desired(action)?;
        Ok(snapshot)
    }

    /// The PR whose head is `branch`, in any state: a restart finds the PR it opened before.
    pub async fn find_pull_request(&self, repo: &str, branch: &str) -> Result<Option<PullRequest>, GithubError> {
        let (owner, _) = split_repo(repo)?;
        let head = format!("{owner}:{branch}");
        let prs: Vec<PullRequest> = self
            .get(
                "find pull request",
                &format!("/repos/{repo}/pulls"),
                Some(&[("head", head.as_str()), ("state", "all"), ("per_page", "100")]),
            )
            .await?;
        Ok(prs.into_iter().max_by_key(|p| p.number))
    }

    pub async fn pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, GithubError> {
        self.get("read pull request", &format!("/repos/{repo}/pulls/{number}"), None).await
    }

    /// Creates `branch` at `commit` unless it exists (adopted as it is: it holds our earlier commits).
    async fn ensure_branch(&self, repo: &str, branch: &str, commit: &str) -> Result<(), GithubError> {
        if self.branch_head(repo, branch).await?.is_some() {
            return Ok(());
        }
        let body = json!({"ref": format!("refs/heads/{branch}"), "sha": commit});
        match self.post::<Value>("create branch", &format!("/repos/{repo}/git/refs"), &body).await {
            Ok(_) => Ok(()),
            // Created concurrently (or the read raced a replica): it exists now, which is what we want.
            Err(e) if e.is_status(422) && self.branch_head(repo, branch).await?.is_some() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Commits `content` to `path` on `branch` unless it is already there; `None` deletes the file.
    async fn commit_file(&self, repo: &str, branch: &str, path: &str, content: Option<&str>, message: &str) -> Result<(), GithubError> {
        let current = self.file(repo, path, branch).await?;
        let route = format!("/repos/{repo}/contents/{}", encode_path(path));
        match (current, content) {
            (Some(f), Some(c)) if f.content == c => Ok(()),
            (None, None) => Ok(()),
            (current, Some(c)) => {
                let mut body = json!({"message": message, "content": BASE64.encode(c), "branch": branch});
                if let Some(f) = current {
                    body["sha"] = json!(f.sha);
                }
                self.crab.put::<Value, _, _>(&route, Some(&body)).await.map(|_| ()).map_err(|e| map_err(&format!("commit {path}"), e))
            }
            (Some(f), None) => {
                let body = json!({"message": message, "sha": f.sha, "branch": branch});
                self.crab.delete::<Value, _, _>(&route, Some(&body)).await.map(|_| ()).map_err(|e| map_err(&format!("delete {path}"), e))
            }
        }
    }

    /// Finds or opens the PR for `branch` carrying `files` (path, new content or `None` to delete),
    /// cut from `base_commit` and targeting `base_branch`, and labels it.
    #[allow(clippy::too_many_arguments)]
    pub async fn open_pull_request(
        &self,
        repo: &str,
        branch: &str,
        base_branch: &str,
        base_commit: &str,
        files: &[(String, Option<String>)],
        title: &str,
        body: &str,
        labels: &[String],
    ) -> Result<Opened, GithubError> {
        // Every pull request (a fix or a revert) passes the outbound gate here. The file
        // contents are the change itself, which the reviewer must see as it will be merged.
        let (title, body) = (outbound::text(title), outbound::text(body));
        let (pr, adopted) = match self.find_pull_request(repo, branch).await? {
            Some(pr) => (pr, true),
            None => {
                self.ensure_branch(repo, branch, base_commit).await?;
                for (path, content) in files {
                    self.commit_file(repo, branch, path, content.as_deref(), &format!("{title}\n\n{path}")).await?;
                }
                let req = json!({"title": title, "head": branch, "base": base_branch, "body": body});
                let pr: PullRequest = self.post("open pull request", &format!("/repos/{repo}/pulls"), &req).await?;
                (pr, false)
            }
        };
        if !labels.is_empty() {
            // Adding labels is idempotent, so an adopted PR gets them too (the first try may have failed after the PR existed).
            let route = format!("/repos/{repo}/issues/{}/labels", pr.number);
            self.post::<Value>("label pull request", &route, &json!({"labels": labels})).await?;
        }
        Ok(Opened { pr, adopted })
    }

    /// Opens the PR of a Remediation: its branch, the desired contents computed from the snapshot.
    #[allow(clippy::too_many_arguments)]
    pub async fn propose(
        &self,
        repo: &str,
        branch: &str,
        action: &ProposedAction,
        snapshot: &RepoSnapshot,
        title: &str,
        body: &str,
        labels: &[String],
    ) -> Result<Opened, GithubError> {
        let files: Vec<(String, Option<String>)> = snapshot.desired(action)?.into_iter().map(|(p, c)| (p, Some(c))).collect();
        self.open_pull_request(repo, branch, &snapshot.base_branch, &snapshot.base_commit, &files, title, body, labels).await
    }

    /// Opens a PR putting back the snapshot's previous contents, cut from the base branch's
    /// current head (the merged change is on it).
    pub async fn propose_revert(
        &self,
        repo: &str,
        branch: &str,
        snapshot: &RepoSnapshot,
        title: &str,
        body: &str,
    ) -> Result<Opened, GithubError> {
        let head = match self.find_pull_request(repo, branch).await? {
            Some(pr) => return Ok(Opened { pr, adopted: true }),
            None => self.branch_head(repo, &snapshot.base_branch).await?.ok_or_else(|| GithubError::Api {
                status: 404,
                what: "read base branch".into(),
                message: format!("branch {} not found", snapshot.base_branch),
            })?,
        };
        let files: Vec<(String, Option<String>)> = snapshot.files.iter().map(|f| (f.path.clone(), f.content.clone())).collect();
        let labels = ["salve".to_string(), "revert".to_string()];
        self.open_pull_request(repo, branch, &snapshot.base_branch, &head, &files, title, body, &labels).await
    }

    /// Bodies of the PR's reviews, oldest first.
    pub async fn review_bodies(&self, repo: &str, number: u64) -> Result<Vec<String>, GithubError> {
        let route = format!("/repos/{repo}/pulls/{number}/reviews");
        let v: Vec<WithBody> = self.get("read reviews", &route, Some(&[("per_page", "100")])).await?;
        Ok(v.into_iter().filter_map(|r| r.body).collect())
    }

    /// Bodies of the PR's conversation comments, oldest first.
    pub async fn comment_bodies(&self, repo: &str, number: u64) -> Result<Vec<String>, GithubError> {
        let route = format!("/repos/{repo}/issues/{number}/comments");
        let v: Vec<WithBody> = self.get("read comments", &route, Some(&[("per_page", "100")])).await?;
        Ok(v.into_iter().filter_map(|r| r.body).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_segment_by_segment() {
        assert_eq!(encode_path("apps/oms/values.yaml"), "apps/oms/values.yaml");
        assert_eq!(encode_path("apps/my app/#1?.yaml"), "apps/my%20app/%231%3F.yaml");
    }

    #[test]
    fn transient_and_permanent_errors_are_told_apart() {
        let api = |status: u16, message: &str| GithubError::Api { status, what: "x".into(), message: message.into() };
        assert!(api(500, "boom").is_transient());
        assert!(api(429, "slow down").is_transient());
        assert!(api(403, "API rate limit exceeded").is_transient());
        for s in [401, 403, 404, 422] {
            assert!(!api(s, "no").is_transient(), "{s}");
        }
    }
}
