//! # fake-github — a TEST STAND-IN for the GitHub REST API
//!
//! **This is not GitHub** and must never be used as one. GitHub cannot run on the machines this
//! project is tested on, so the operator's pull-request tests talk to this small in-memory
//! server instead; production talks to `https://api.github.com` (or GitHub Enterprise) through
//! the same client code, only the base URL differs. It speaks the documented JSON shapes of
//! exactly the calls the operator makes:
//!
//! - `GET /repos/{o}/{r}` (`default_branch`)
//! - `GET /repos/{o}/{r}/git/ref/heads/{branch}` (also `git/refs/heads/...`), `POST /repos/{o}/{r}/git/refs`
//!   (`422 Reference already exists`)
//! - `GET|PUT|DELETE /repos/{o}/{r}/contents/{path}?ref=` (base64 content wrapped at 60 columns,
//!   blob `sha`; PUT of an existing file without or with a stale `sha` fails like GitHub: 422 / 409)
//! - `GET /repos/{o}/{r}/pulls?head=owner:branch&state=`, `POST /repos/{o}/{r}/pulls` (`422` when
//!   an open PR for the head exists), `GET /repos/{o}/{r}/pulls/{n}`
//! - `POST /repos/{o}/{r}/issues/{n}/labels`, `GET /repos/{o}/{r}/pulls/{n}/reviews`,
//!   `GET /repos/{o}/{r}/issues/{n}/comments`
//!
//! Every request must carry `Authorization: Bearer <token>` (or `token <token>`); otherwise 401
//! `Bad credentials`. Test controls: create repositories, merge or close a PR (a merge makes the
//! base branch's tree equal to the head's), add reviews and comments, make the next N requests
//! to a route fail with a status, and read the request log.
//!
//! Not modelled: pagination beyond one page, the git data API for trees/blobs/commits, real
//! git hashes (shas are counters), three-way merges, permissions, webhooks, GraphQL.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

const TIME: &str = "2026-01-01T00:00:00Z";

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path, percent-decoded, without the query.
    pub path: String,
    pub query: String,
    pub body: String,
}

/// A pull request as a test sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pull {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
    pub labels: Vec<String>,
    reviews: Vec<(String, String)>,
    comments: Vec<String>,
}

#[derive(Clone, Default)]
struct Commit {
    /// path -> (blob sha, content)
    files: BTreeMap<String, (String, String)>,
}

#[derive(Default)]
struct Repo {
    default_branch: String,
    branches: BTreeMap<String, String>,
    commits: BTreeMap<String, Commit>,
    pulls: Vec<Pull>,
}

struct Failure {
    method: String,
    path_suffix: String,
    status: u16,
    remaining: usize,
}

#[derive(Default)]
struct Inner {
    token: String,
    repos: BTreeMap<String, Repo>,
    counter: u64,
    log: Vec<LoggedRequest>,
    failures: Vec<Failure>,
}

impl Inner {
    fn next_sha(&mut self) -> String {
        self.counter += 1;
        format!("{:040x}", self.counter)
    }
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake GitHub API on 127.0.0.1 at a free port. Dropping it stops the server.
pub struct FakeGithub {
    addr: SocketAddr,
    inner: Shared,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn lock(inner: &Shared) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeGithub {
    /// Starts the server; requests must authenticate with `token`.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let inner: Shared = Arc::new(Mutex::new(Inner { token: token.to_string(), ..Default::default() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await;
        });
        Ok(Self { addr, inner, shutdown })
    }

    /// Base URL to configure as the API URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates `owner/name` with one commit on `default_branch` holding `files`.
    pub fn create_repo(&self, repo: &str, default_branch: &str, files: &[(&str, &str)]) {
        let mut g = lock(&self.inner);
        let mut commit = Commit::default();
        for (p, c) in files {
            let sha = g.next_sha();
            commit.files.insert(p.to_string(), (sha, c.to_string()));
        }
        let sha = g.next_sha();
        let mut r = Repo { default_branch: default_branch.into(), ..Default::default() };
        r.commits.insert(sha.clone(), commit);
        r.branches.insert(default_branch.into(), sha);
        g.repos.insert(repo.to_string(), r);
    }

    /// Content of `path` on `branch`.
    pub fn file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let g = lock(&self.inner);
        let r = g.repos.get(repo)?;
        let sha = r.branches.get(branch)?;
        r.commits.get(sha)?.files.get(path).map(|(_, c)| c.clone())
    }

    pub fn branches(&self, repo: &str) -> Vec<String> {
        lock(&self.inner).repos.get(repo).map(|r| r.branches.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn pulls(&self, repo: &str) -> Vec<Pull> {
        lock(&self.inner).repos.get(repo).map(|r| r.pulls.clone()).unwrap_or_default()
    }

    /// What a person clicking "Merge" does: the base branch gets the head's tree.
    pub fn merge(&self, repo: &str, number: u64) {
        let mut g = lock(&self.inner);
        let sha = g.next_sha();
        let Some(r) = g.repos.get_mut(repo) else { return };
        let Some(p) = r.pulls.iter_mut().find(|p| p.number == number) else { return };
        p.state = "closed".into();
        p.merged = true;
        let (head, base) = (p.head.clone(), p.base.clone());
        let tree = r.branches.get(&head).and_then(|h| r.commits.get(h)).cloned().unwrap_or_default();
        r.commits.insert(sha.clone(), tree);
        r.branches.insert(base, sha);
    }

    /// "Close pull request" without merging.
    pub fn close(&self, repo: &str, number: u64) {
        if let Some(p) = lock(&self.inner).repos.get_mut(repo).and_then(|r| r.pulls.iter_mut().find(|p| p.number == number)) {
            p.state = "closed".into();
        }
    }

    /// A review (`state` e.g. `CHANGES_REQUESTED`, `COMMENTED`).
    pub fn add_review(&self, repo: &str, number: u64, body: &str, state: &str) {
        if let Some(p) = lock(&self.inner).repos.get_mut(repo).and_then(|r| r.pulls.iter_mut().find(|p| p.number == number)) {
            p.reviews.push((body.into(), state.into()));
        }
    }

    pub fn add_comment(&self, repo: &str, number: u64, body: &str) {
        if let Some(p) = lock(&self.inner).repos.get_mut(repo).and_then(|r| r.pulls.iter_mut().find(|p| p.number == number)) {
            p.comments.push(body.into());
        }
    }

    /// The next `times` requests with `method` whose path ends with `path_suffix` answer `status`.
    pub fn fail_next(&self, method: &str, path_suffix: &str, status: u16, times: usize) {
        lock(&self.inner).failures.push(Failure {
            method: method.to_string(),
            path_suffix: path_suffix.to_string(),
            status,
            remaining: times,
        });
    }

    pub fn clear_failures(&self) {
        lock(&self.inner).failures.clear();
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.inner).log.clone()
    }

    /// Requests with `method` whose path ends with `path_suffix`.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        lock(&self.inner).log.iter().filter(|r| r.method == method && r.path.ends_with(path_suffix)).count()
    }

    /// Requests that change something (anything but GET).
    pub fn writes(&self) -> usize {
        lock(&self.inner).log.iter().filter(|r| r.method != "GET").count()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| percent_decode(v))
}

fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"}))).into_response()
}

fn ok(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn wrap_base64(content: &str) -> String {
    let enc = BASE64.encode(content);
    enc.as_bytes().chunks(60).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\n") + "\n"
}

fn pull_json(repo: &str, p: &Pull, single: bool) -> Value {
    let owner = repo.split('/').next().unwrap_or_default();
    let mut v = json!({
        "url": format!("https://api.github.example/repos/{repo}/pulls/{}", p.number),
        "id": p.number, "number": p.number, "state": p.state, "title": p.title, "body": p.body,
        "html_url": format!("https://github.example/{repo}/pull/{}", p.number),
        "head": {"ref": p.head, "label": format!("{owner}:{}", p.head)},
        "base": {"ref": p.base, "label": format!("{owner}:{}", p.base)},
        "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "merged_at": if p.merged { json!(TIME) } else { Value::Null },
        "created_at": TIME, "updated_at": TIME,
    });
    // Like GitHub: `merged` only in the single-PR answer.
    if single {
        v["merged"] = json!(p.merged);
    }
    v
}

async fn handle(State(inner): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = percent_decode(uri.path());
    let query = uri.query().unwrap_or_default().to_string();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let mut g = lock(&inner);
    g.log.push(LoggedRequest { method: method.to_string(), path: path.clone(), query: query.clone(), body: body_text });
    if let Some(f) = g.failures.iter_mut().find(|f| f.remaining > 0 && f.method == method.as_str() && path.ends_with(&f.path_suffix)) {
        f.remaining -= 1;
        let status = f.status;
        return error(status, "injected failure");
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("token ")).unwrap_or_default();
    if g.token.is_empty() || token != g.token {
        return error(401, "Bad credentials");
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segs.len() < 3 || segs[0] != "repos" {
        return error(404, "Not Found");
    }
    let repo = format!("{}/{}", segs[1], segs[2]);
    let rest = &segs[3..];
    route(&mut g, &method, &repo, rest, &query, &body)
}

fn route(g: &mut Inner, method: &Method, repo: &str, rest: &[&str], query: &str, body: &Value) -> Response {
    if !g.repos.contains_key(repo) {
        return error(404, "Not Found");
    }
    match (method.as_str(), rest) {
        ("GET", []) => {
            let r = &g.repos[repo];
            let (owner, name) = repo.split_once('/').unwrap_or_default();
            ok(
                StatusCode::OK,
                json!({"id": 1, "name": name, "full_name": repo, "owner": {"login": owner}, "private": true,
                "html_url": format!("https://github.example/{repo}"), "default_branch": r.default_branch}),
            )
        }
        ("GET", ["git", "ref" | "refs", "heads", branch @ ..]) => {
            let branch = branch.join("/");
            match g.repos[repo].branches.get(&branch) {
                Some(sha) => ok(StatusCode::OK, json!({"ref": format!("refs/heads/{branch}"), "object": {"type": "commit", "sha": sha}})),
                None => error(404, "Not Found"),
            }
        }
        ("POST", ["git", "refs"]) => {
            let (Some(r), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
                return error(422, "Invalid request: ref and sha are required");
            };
            let Some(branch) = r.strip_prefix("refs/heads/") else {
                return error(422, "Reference name must start with refs/heads/");
            };
            let rp = g.repos.get_mut(repo).expect("checked");
            if rp.branches.contains_key(branch) {
                return error(422, "Reference already exists");
            }
            if !rp.commits.contains_key(sha) {
                return error(422, "Object does not exist");
            }
            rp.branches.insert(branch.to_string(), sha.to_string());
            ok(StatusCode::CREATED, json!({"ref": r, "object": {"type": "commit", "sha": sha}}))
        }
        (m @ ("GET" | "PUT" | "DELETE"), ["contents", path @ ..]) if !path.is_empty() => contents(g, m, repo, &path.join("/"), query, body),
        ("GET", ["pulls"]) => {
            let head = query_param(query, "head");
            let state = query_param(query, "state").unwrap_or_else(|| "open".into());
            let owner = repo.split('/').next().unwrap_or_default();
            let list: Vec<Value> = g.repos[repo]
                .pulls
                .iter()
                .filter(|p| head.as_deref().is_none_or(|h| h == format!("{owner}:{}", p.head)))
                .filter(|p| state == "all" || p.state == state)
                .map(|p| pull_json(repo, p, false))
                .collect();
            ok(StatusCode::OK, Value::Array(list))
        }
        ("POST", ["pulls"]) => {
            let (Some(title), Some(head), Some(base)) = (body["title"].as_str(), body["head"].as_str(), body["base"].as_str()) else {
                return error(422, "Validation Failed: title, head and base are required");
            };
            let rp = g.repos.get_mut(repo).expect("checked");
            if !rp.branches.contains_key(head) || !rp.branches.contains_key(base) {
                return error(422, "Validation Failed: head or base branch does not exist");
            }
            if rp.pulls.iter().any(|p| p.head == head && p.state == "open") {
                return error(422, &format!("Validation Failed: A pull request already exists for {head}."));
            }
            let p = Pull {
                number: rp.pulls.len() as u64 + 1,
                title: title.into(),
                body: body["body"].as_str().unwrap_or_default().into(),
                head: head.into(),
                base: base.into(),
                state: "open".into(),
                ..Default::default()
            };
            let v = pull_json(repo, &p, true);
            rp.pulls.push(p);
            ok(StatusCode::CREATED, v)
        }
        ("GET", ["pulls", n]) => match find_pull(g, repo, n) {
            Some(p) => ok(StatusCode::OK, pull_json(repo, p, true)),
            None => error(404, "Not Found"),
        },
        ("GET", ["pulls", n, "reviews"]) => match find_pull(g, repo, n) {
            Some(p) => ok(
                StatusCode::OK,
                Value::Array(
                    p.reviews
                        .iter()
                        .enumerate()
                        .map(|(i, (b, s))| json!({"id": i + 1, "user": {"login": "reviewer"}, "body": b, "state": s, "submitted_at": TIME}))
                        .collect(),
                ),
            ),
            None => error(404, "Not Found"),
        },
        ("GET", ["issues", n, "comments"]) => match find_pull(g, repo, n) {
            Some(p) => ok(
                StatusCode::OK,
                Value::Array(
                    p.comments
                        .iter()
                        .enumerate()
                        .map(|(i, b)| json!({"id": i + 1, "user": {"login": "reviewer"}, "body": b, "created_at": TIME}))
                        .collect(),
                ),
            ),
            None => error(404, "Not Found"),
        },
        ("POST", ["issues", n, "labels"]) => {
            let labels: Vec<String> =
                body["labels"].as_array().map(|a| a.iter().filter_map(|l| l.as_str().map(String::from)).collect()).unwrap_or_default();
            let number: u64 = n.parse().unwrap_or(0);
            let Some(p) = g.repos.get_mut(repo).and_then(|r| r.pulls.iter_mut().find(|p| p.number == number)) else {
                return error(404, "Not Found");
            };
            for l in labels {
                if !p.labels.contains(&l) {
                    p.labels.push(l);
                }
            }
            let out: Vec<Value> = p.labels.iter().map(|l| json!({"name": l, "color": "ededed"})).collect();
            ok(StatusCode::OK, Value::Array(out))
        }
        _ => error(404, "Not Found"),
    }
}

fn find_pull<'a>(g: &'a Inner, repo: &str, n: &str) -> Option<&'a Pull> {
    let number: u64 = n.parse().ok()?;
    g.repos.get(repo)?.pulls.iter().find(|p| p.number == number)
}

fn contents(g: &mut Inner, method: &str, repo: &str, path: &str, query: &str, body: &Value) -> Response {
    let file_json = |path: &str, sha: &str, content: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        json!({"type": "file", "encoding": "base64", "size": content.len(), "name": name, "path": path,
            "content": wrap_base64(content), "sha": sha})
    };
    if method == "GET" {
        let r = &g.repos[repo];
        let at = query_param(query, "ref").unwrap_or_else(|| r.default_branch.clone());
        let commit = r.branches.get(&at).cloned().unwrap_or(at);
        return match r.commits.get(&commit).and_then(|c| c.files.get(path)) {
            Some((sha, content)) => ok(StatusCode::OK, file_json(path, sha, content)),
            None => error(404, "Not Found"),
        };
    }
    let default_branch = g.repos[repo].default_branch.clone();
    let branch = body["branch"].as_str().map(String::from).unwrap_or(default_branch);
    let Some(head) = g.repos[repo].branches.get(&branch).cloned() else {
        return error(404, &format!("Branch {branch} not found"));
    };
    let mut tree = g.repos[repo].commits.get(&head).cloned().unwrap_or_default();
    let existing = tree.files.get(path).cloned();
    let given_sha = body["sha"].as_str();
    let status = match (method, &existing, given_sha) {
        ("PUT", Some(_), None) => return error(422, "Invalid request.\n\n\"sha\" wasn't supplied."),
        ("DELETE", None, _) => return error(404, "Not Found"),
        ("DELETE", Some(_), None) => return error(422, "Invalid request.\n\n\"sha\" wasn't supplied."),
        (_, Some((sha, _)), Some(given)) if sha != given => return error(409, &format!("{path} does not match {given}")),
        ("PUT", None, _) => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let mut content_json = Value::Null;
    if method == "PUT" {
        let Some(enc) = body["content"].as_str() else {
            return error(422, "Invalid request: content is required");
        };
        let Ok(bytes) = BASE64.decode(enc.replace('\n', "")) else {
            return error(422, "content is not valid Base64");
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let blob = g.next_sha();
        content_json = file_json(path, &blob, &text);
        tree.files.insert(path.to_string(), (blob, text));
    } else {
        tree.files.remove(path);
    }
    let commit = g.next_sha();
    let r = g.repos.get_mut(repo).expect("checked");
    r.commits.insert(commit.clone(), tree);
    r.branches.insert(branch, commit.clone());
    ok(status, json!({"content": content_json, "commit": {"sha": commit, "message": body["message"]}}))
}
