//! The GitHub adapter against fake-github (a TEST STAND-IN speaking GitHub's REST shapes):
//! branch, commits, PR and labels; nothing pushed when a change does not apply; an existing PR
//! is adopted; failures surface as the right error kinds.

use clap::Parser;
use fake_github::FakeGithub;
use operator::config::Cli;
use operator::crd::{ActionKind, ProposedAction};
use operator::domain::action::FileChange;
use operator::domain::pull_request::{ChangeError, RepoSnapshot};
use operator::github::client::{GithubClient, GithubError};

const TOKEN: &str = "ghs_test_token";
const REPO: &str = "acme/gitops";
const VALUES: &str = "apps/oms/values.yaml";
const ORIGINAL: &str = "image: oms:1.0\nresources:\n  limits:\n    memory: 256Mi\n";

async fn fake() -> FakeGithub {
    let f = FakeGithub::start(TOKEN).await.expect("fake github");
    f.create_repo(REPO, "main", &[(VALUES, ORIGINAL), ("README.md", "gitops\n")]);
    f
}

fn client(f: &FakeGithub, token: &str) -> std::sync::Arc<GithubClient> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse_from(["operator", "run", "--github-token", token, "--github-api-url", &f.url()]);
    let Some(operator::config::Command::Run(run)) = cli.command else { panic!("run") };
    run.github.client().expect("client").expect("configured")
}

fn action(search: &str, replace: &str) -> ProposedAction {
    let mut a = ProposedAction::new(ActionKind::PullRequest, "oms");
    a.repository = Some(REPO.into());
    a.files = vec![
        FileChange { path: VALUES.into(), search: Some(search.into()), replace: replace.into() },
        FileChange { path: "apps/oms/NOTES.md".into(), search: None, replace: "memory raised by Salve\n".into() },
    ];
    a
}

fn labels() -> Vec<String> {
    vec!["salve".into(), "remediation".into(), "Resource_Limit".into()]
}

async fn open(gh: &GithubClient, a: &ProposedAction) -> Result<(RepoSnapshot, operator::github::client::Opened), GithubError> {
    let snap = gh.snapshot(REPO, a).await?;
    let opened =
        gh.propose(REPO, "salve/oms-5xx-r1", a, &snap, "Salve: raise oms memory", "Root cause: **Resource_Limit**", &labels()).await?;
    Ok((snap, opened))
}

#[tokio::test]
async fn opens_branch_commits_pull_request_and_labels() {
    let f = fake().await;
    let gh = client(&f, TOKEN);
    let (snap, opened) = open(&gh, &action("memory: 256Mi", "memory: 512Mi")).await.expect("opened");

    assert!(!opened.adopted);
    assert_eq!(snap.base_branch, "main");
    assert_eq!(
        snap.files.iter().find(|p| p.path == VALUES).and_then(|p| p.content.as_deref()),
        Some(ORIGINAL),
        "snapshot keeps the old file"
    );
    assert_eq!(
        snap.files.iter().find(|p| p.path == "apps/oms/NOTES.md").map(|p| p.content.is_none()),
        Some(true),
        "new file recorded as absent"
    );
    let changed = f.file(REPO, "salve/oms-5xx-r1", VALUES).expect("file on branch");
    assert_eq!(changed, ORIGINAL.replace("256Mi", "512Mi"));
    assert_eq!(f.file(REPO, "salve/oms-5xx-r1", "apps/oms/NOTES.md").as_deref(), Some("memory raised by Salve\n"));
    assert_eq!(f.file(REPO, "main", VALUES).as_deref(), Some(ORIGINAL), "nothing reaches main without a merge");

    let pulls = f.pulls(REPO);
    assert_eq!(pulls.len(), 1);
    let p = &pulls[0];
    assert_eq!((p.head.as_str(), p.base.as_str(), p.state.as_str()), ("salve/oms-5xx-r1", "main", "open"));
    assert_eq!(p.title, "Salve: raise oms memory");
    assert!(p.body.contains("Resource_Limit"));
    assert_eq!(p.labels, labels());
    assert_eq!(opened.pr.number, p.number);
    assert!(opened.pr.html_url.ends_with(&format!("/pull/{}", p.number)));
    assert_eq!(opened.pr.salve_state(), "open");
}

#[tokio::test]
async fn a_search_that_does_not_match_exactly_once_pushes_nothing() {
    let f = fake().await;
    let gh = client(&f, TOKEN);
    for search in ["memory: 999Mi", "m"] {
        let err = open(&gh, &action(search, "memory: 512Mi")).await.expect_err("must not apply");
        assert!(matches!(err, GithubError::Change(ChangeError::SearchNotUnique { .. })), "{err}");
        assert!(!err.is_transient());
    }
    assert_eq!(f.writes(), 0, "no branch, no commit, no PR: {:?}", f.requests());
    assert!(f.pulls(REPO).is_empty());
    assert_eq!(f.branches(REPO), ["main"]);
}

#[tokio::test]
async fn an_existing_pull_request_is_adopted_not_opened_twice() {
    let f = fake().await;
    let gh = client(&f, TOKEN);
    let a = action("memory: 256Mi", "memory: 512Mi");
    // The first attempt dies after the PR exists (labelling fails), like a crash mid-way.
    f.fail_next("POST", "/labels", 502, 1);
    let err = open(&gh, &a).await.expect_err("labelling failed");
    assert!(err.is_transient(), "{err}");
    assert_eq!(f.count("POST", "/pulls"), 1);

    let (_, opened) = open(&gh, &a).await.expect("second attempt");
    assert!(opened.adopted);
    assert_eq!(f.count("POST", "/pulls"), 1, "exactly one PR opened");
    assert_eq!(f.pulls(REPO).len(), 1);
    assert_eq!(f.pulls(REPO)[0].labels, labels(), "the adopted PR is labelled");
}

#[tokio::test]
async fn failures_surface_as_transient_or_permanent() {
    let f = fake().await;
    let a = action("memory: 256Mi", "memory: 512Mi");

    let err = open(&client(&f, "wrong-token"), &a).await.expect_err("bad credentials");
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_transient());

    let gh = client(&f, TOKEN);
    f.fail_next("POST", "/pulls", 422, 1);
    let err = open(&gh, &a).await.expect_err("validation failed");
    assert_eq!(err.status(), Some(422));
    assert!(!err.is_transient());

    f.fail_next("GET", "/repos/acme/gitops", 500, 1);
    let err = open(&gh, &a).await.expect_err("server error");
    assert_eq!(err.status(), Some(500));
    assert!(err.is_transient(), "5xx is retried later");

    let mut other = a.clone();
    other.repository = Some("acme/missing".into());
    let err = gh.snapshot("acme/missing", &other).await.expect_err("no such repository");
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_transient());

    // After the failures the same call still ends with exactly one PR.
    open(&gh, &a).await.expect("recovers");
    assert_eq!(f.pulls(REPO).len(), 1);
}

#[tokio::test]
async fn a_revert_pull_request_restores_the_previous_contents() {
    let f = fake().await;
    let gh = client(&f, TOKEN);
    let (snap, opened) = open(&gh, &action("memory: 256Mi", "memory: 512Mi")).await.expect("opened");
    f.merge(REPO, opened.pr.number);
    assert!(gh.pull_request(REPO, opened.pr.number).await.expect("pr").is_merged());
    assert_eq!(f.file(REPO, "main", VALUES), Some(ORIGINAL.replace("256Mi", "512Mi")));

    let revert = gh.propose_revert(REPO, "salve/oms-5xx-r1-revert", &snap, "Revert", "verification failed").await.expect("revert");
    assert_eq!(f.file(REPO, "salve/oms-5xx-r1-revert", VALUES).as_deref(), Some(ORIGINAL));
    assert_eq!(f.file(REPO, "salve/oms-5xx-r1-revert", "apps/oms/NOTES.md"), None, "a file the change added is removed");
    f.merge(REPO, revert.pr.number);
    assert_eq!(f.file(REPO, "main", VALUES).as_deref(), Some(ORIGINAL));
}
