//! The Remediation controller's steps for PullRequest actions:
//! Approved (snapshot) -> Applying (open the PR) -> AwaitingMerge (poll) -> RollingOut (wait
//! for the Deployment) -> Verifying (shared with in-cluster fixes) -> RollingBack (revert PR).
//!
//! Restart safety mirrors the in-cluster path: the snapshot (base commit + previous contents)
//! is in status before anything is pushed, and the PR is found by its branch before one is
//! opened, so a restart never opens a second PR for the same Remediation.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::step::{Error, Step, cond, failing, step, workload_of};
use crate::controllers::context::Context;
use crate::crd::*;
use crate::domain::pull_request::{self as pr, PrContext, RepoSnapshot, Rollout};
use crate::domain::time::{now_rfc3339, parse_time};
use crate::github::client::{GithubClient, GithubError};
use crate::kube::health;

fn failed(reason: &'static str, condition: &str, message: String) -> Step {
    failing(RemediationPhase::Failed, condition, reason, message)
}

/// Transient failures go back to the controller (requeued with a delay); permanent ones end the
/// Remediation with a condition and a warning Event, saying how far it got.
fn github_failure(e: GithubError, during: &str) -> Result<Step, Error> {
    if e.is_transient() {
        return Err(Error::Github(e));
    }
    let reason = match &e {
        GithubError::Change(_) => reason::CHANGE_DOES_NOT_APPLY,
        _ => reason::GITHUB_ERROR,
    };
    Ok(failed(reason, condition_type::PULL_REQUEST, format!("{during} failed: {e}")))
}

fn repository(rem: &Remediation) -> String {
    rem.spec.action.repository.clone().unwrap_or_default()
}

fn github(ctx: &Context) -> Option<&GithubClient> {
    ctx.github.as_deref()
}

/// `Some(refusal)` when GitHub is not configured: a PullRequest then cannot run at all.
pub fn refuse_without_github(action: &ProposedAction, ctx: &Context) -> Option<Step> {
    if action.kind != ActionKind::PullRequest || ctx.github.is_some() {
        return None;
    }
    let msg =
        format!("cannot {}: GitHub is not configured (set SALVE_GITHUB_TOKEN_FILE or the SALVE_GITHUB_APP_* settings)", action.describe());
    Some(Step {
        to: RemediationPhase::Refused,
        condition: cond(condition_type::POLICY_ALLOWED, false, reason::GITHUB_NOT_CONFIGURED, &msg),
        reason: reason::POLICY_REFUSED,
        message: msg,
        warning: true,
    })
}

/// Approved: read the base commit and the files' current contents (checking every change
/// applies) and save them as the snapshot. Nothing is written to GitHub.
pub async fn prepare(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let Some(gh) = github(ctx) else {
        return Ok(
            refuse_without_github(&rem.spec.action, ctx).unwrap_or_else(|| step(RemediationPhase::Refused, reason::POLICY_REFUSED, ""))
        );
    };
    let action = &rem.spec.action;
    let repo = repository(rem);
    if st.snapshot.is_none() || ctx.policy.dry_run {
        let snap = match gh.snapshot(&repo, action).await {
            Ok(s) => s,
            Err(e) => return github_failure(e, "reading the repository"),
        };
        if ctx.policy.dry_run {
            let paths: Vec<&str> = action.files.iter().map(|f| f.path.as_str()).collect();
            st.dry_run_result = Some(format!(
                "would open a pull request on {repo} from {}@{} changing {}",
                snap.base_branch,
                snap.base_commit,
                paths.join(", ")
            ));
            return Ok(step(
                RemediationPhase::DryRun,
                reason::DRY_RUN,
                format!("dry run of {}: every change applies; nothing pushed", action.describe()),
            ));
        }
        let (workload, _) = workload_of(rem, ns, ctx).await?;
        let baseline = health::observe(&ctx.client, ns, &workload).await.map(|h| h.restarts).unwrap_or(0);
        st.snapshot = Some(Snapshot {
            target: action.target(),
            resource_version: snap.base_commit.clone(),
            undo_patch: snap.to_json(),
            restarts: baseline,
            taken_at: now_rfc3339(),
            healthy_before: None,
            restart: None,
        });
    }
    Ok(Step {
        condition: cond(condition_type::SNAPSHOT_SAVED, true, reason::SNAPSHOT_SAVED, "base commit and previous file contents saved"),
        ..step(RemediationPhase::Applying, reason::APPLYING, format!("snapshot saved; opening a pull request on {repo}"))
    })
}

fn saved_snapshot(st: &RemediationStatus) -> Result<RepoSnapshot, String> {
    let text = st.snapshot.as_ref().map(|s| s.undo_patch.as_str()).unwrap_or_default();
    RepoSnapshot::from_json(text).map_err(|e| e.to_string())
}

async fn pr_context(rem: &Remediation, ns: &str, ctx: &Context) -> Result<PrContext, kube::Error> {
    let inc = Api::<Incident>::namespaced(ctx.client.clone(), ns).get_opt(&rem.spec.incident_ref).await?;
    let diagnosis = inc.as_ref().and_then(|i| i.status.as_ref()).and_then(|s| s.diagnosis.clone());
    Ok(PrContext {
        namespace: ns.to_string(),
        incident: rem.spec.incident_ref.clone(),
        remediation: rem.name_any(),
        workload: inc.as_ref().map(|i| i.spec.target.name.clone()).unwrap_or_else(|| rem.spec.action.target_name.clone()),
        category: diagnosis.as_ref().and_then(|d| d.root_cause_category).map(|c| c.as_str().to_string()),
        summary: diagnosis.as_ref().map(|d| d.summary.clone()).unwrap_or_default(),
        cited_evidence: diagnosis.map(|d| d.cited_evidence).unwrap_or_default(),
        rationale: rem.spec.rationale.clone(),
        verify_window_seconds: rem.spec.verification.window_seconds,
    })
}

/// Applying: open (or adopt) the PR and record it.
pub async fn open(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let Some(gh) = github(ctx) else {
        return Ok(failed(reason::GITHUB_NOT_CONFIGURED, condition_type::PULL_REQUEST, "GitHub is no longer configured".into()));
    };
    let snap = match saved_snapshot(st) {
        Ok(s) => s,
        Err(e) => return Ok(failed(reason::SNAPSHOT_FAILED, condition_type::PULL_REQUEST, e)),
    };
    let action = &rem.spec.action;
    let repo = repository(rem);
    let pctx = pr_context(rem, ns, ctx).await?;
    let title = pr::title(action, &pctx);
    let body = pr::body(action, &pctx);
    let labels = pr::labels(pctx.category.as_deref());
    let opened = match gh.propose(&repo, &pr::branch_name(&rem.name_any()), action, &snap, &title, &body, &labels).await {
        Ok(o) => o,
        Err(e) => return github_failure(e, "opening the pull request"),
    };
    st.pr_url = Some(opened.pr.html_url.clone());
    st.pr_number = Some(opened.pr.number);
    st.pr_state = Some(opened.pr.salve_state().to_string());
    st.applied_patch = Some(json!({"repository": repo, "baseCommit": snap.base_commit, "files": action.files}).to_string());
    if st.applied_at.is_none() {
        st.applied_at = Some(now_rfc3339());
    }
    let how = if opened.adopted { "found" } else { "opened" };
    Ok(Step {
        condition: cond(condition_type::PULL_REQUEST_OPENED, true, reason::OPENED, &opened.pr.html_url),
        ..step(
            RemediationPhase::AwaitingMerge,
            reason::PULL_REQUEST_OPENED,
            format!("{how} pull request {}; waiting for a person to merge it", opened.pr.html_url),
        )
    })
}

/// AwaitingMerge: merged -> RollingOut; closed -> Rejected with the reviewer's words; open -> wait.
pub async fn await_merge(rem: &Remediation, st: &mut RemediationStatus, ctx: &Context) -> Result<Option<Step>, Error> {
    let Some(gh) = github(ctx) else {
        return Ok(Some(failed(reason::GITHUB_NOT_CONFIGURED, condition_type::PULL_REQUEST, "GitHub is no longer configured".into())));
    };
    let repo = repository(rem);
    let Some(number) = st.pr_number else {
        return Ok(Some(failed(reason::GITHUB_ERROR, condition_type::PULL_REQUEST, "no pull request number recorded".into())));
    };
    let pull = match gh.pull_request(&repo, number).await {
        Ok(p) => p,
        Err(e) => return github_failure(e, "reading the pull request").map(Some),
    };
    if pull.is_merged() {
        st.pr_state = Some("merged".into());
        // Until the roll-out finishes, the verification deadline bounds the roll-out instead.
        let timeout = SignedDuration::from_secs(ctx.settings.rollout_timeout_seconds.try_into().unwrap_or(i64::MAX));
        st.verification = Some(VerificationResult {
            deadline: (Timestamp::now() + timeout).to_string(),
            passed: None,
            message: "waiting for the roll-out".into(),
        });
        return Ok(Some(Step {
            condition: cond(condition_type::MERGED, true, reason::MERGED, &pull.html_url),
            ..step(RemediationPhase::RollingOut, reason::MERGED, format!("pull request {} merged; waiting for the roll-out", pull.html_url))
        }));
    }
    if pull.state != "closed" {
        return Ok(None);
    }
    let reviews = gh.review_bodies(&repo, number).await;
    let comments = gh.comment_bodies(&repo, number).await;
    let (reviews, comments) = match (reviews, comments) {
        (Ok(r), Ok(c)) => (r, c),
        (Err(e), _) | (_, Err(e)) => return github_failure(e, "reading the review").map(Some),
    };
    let feedback = pr::rejection_feedback(&reviews, &comments);
    st.pr_state = Some("closed".into());
    st.feedback = Some(feedback.clone());
    Ok(Some(Step {
        to: RemediationPhase::Rejected,
        condition: cond(condition_type::APPROVED, false, reason::CLOSED_WITHOUT_MERGE, &feedback),
        reason: reason::REJECTED,
        message: format!("pull request {} closed without merge: {feedback}", pull.html_url),
        warning: false,
    }))
}

/// RollingOut: the incident's Deployment has the merged change everywhere -> Verifying; too
/// slow -> Failed (escalates).
pub async fn roll_out(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Option<Step>, Error> {
    let (workload, _) = workload_of(rem, ns, ctx).await?;
    let d = Api::<Deployment>::namespaced(ctx.client.clone(), ns).get_opt(&workload).await?;
    let rollout = d.as_ref().map(|d| {
        let s = d.status.clone().unwrap_or_default();
        Rollout {
            generation: d.metadata.generation.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            desired: d.spec.replicas.unwrap_or(1),
            updated: s.updated_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
        }
    });
    if rollout.is_some_and(|r| r.is_complete()) {
        let window = SignedDuration::from_secs(rem.spec.verification.window_seconds.into());
        st.verification =
            Some(VerificationResult { deadline: (Timestamp::now() + window).to_string(), passed: None, message: String::new() });
        return Ok(Some(Step {
            condition: cond(condition_type::ROLLED_OUT, true, reason::ROLLED_OUT, &format!("Deployment/{workload}")),
            ..step(
                RemediationPhase::Verifying,
                reason::ROLLED_OUT,
                format!("Deployment {workload} rolled out; verifying for {}s", rem.spec.verification.window_seconds),
            )
        }));
    }
    let deadline = st.verification.as_ref().and_then(|v| parse_time(&v.deadline));
    if deadline.is_some_and(|d| Timestamp::now() < d) {
        return Ok(None);
    }
    let what = match rollout {
        None => format!("Deployment {workload} not found"),
        Some(r) => format!("Deployment {workload}: {}/{} updated, {} available", r.updated, r.desired, r.available),
    };
    Ok(Some(failed(
        reason::ROLLOUT_TIMED_OUT,
        reason::ROLLED_OUT,
        format!("the merged change did not roll out within {}s ({what}); needs a person", ctx.settings.rollout_timeout_seconds),
    )))
}

/// RollingBack after a merged change failed verification: open a PR restoring the previous
/// contents (a person merges it, as with every change that reaches the repository), then Failed.
pub async fn revert(rem: &Remediation, ns: &str, st: &mut RemediationStatus, ctx: &Context) -> Result<Step, Error> {
    let Some(gh) = github(ctx) else {
        return Ok(failed(reason::UNDO_FAILED, condition_type::ROLLED_BACK, "GitHub is no longer configured; revert by hand".into()));
    };
    let snap = match saved_snapshot(st) {
        Ok(s) => s,
        Err(e) => return Ok(failed(reason::SNAPSHOT_FAILED, condition_type::PULL_REQUEST, e)),
    };
    let why = st
        .conditions
        .iter()
        .find(|c| c.type_ == condition_type::VERIFIED)
        .filter(|c| c.status == ConditionStatus::False)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    let pctx = pr_context(rem, ns, ctx).await?;
    let title = format!("Revert: {}", pr::title(&rem.spec.action, &pctx)).chars().take(200).collect::<String>();
    let body = format!(
        "Salve merged change {} did not clear the signal: {why}\n\nThis pull request restores the files as they were on {}.\n\nIncident `{ns}/{}`, Remediation `{ns}/{}`.\n",
        st.pr_url.as_deref().unwrap_or("?"),
        snap.base_commit,
        rem.spec.incident_ref,
        rem.name_any()
    );
    let repo = repository(rem);
    match gh.propose_revert(&repo, &pr::revert_branch_name(&rem.name_any()), &snap, &title, &body).await {
        Ok(opened) => {
            st.revert_pr_url = Some(opened.pr.html_url.clone());
            Ok(Step {
                to: RemediationPhase::Failed,
                condition: cond(condition_type::ROLLED_BACK, true, reason::REVERT_PROPOSED, &opened.pr.html_url),
                reason: reason::REVERT_PROPOSED,
                message: format!("verification failed after the merge ({why}); revert pull request {}", opened.pr.html_url),
                warning: true,
            })
        }
        Err(e) if e.is_transient() => Err(Error::Github(e)),
        Err(e) => Ok(failed(
            reason::UNDO_FAILED,
            condition_type::ROLLED_BACK,
            format!("opening the revert pull request failed: {e}; revert by hand"),
        )),
    }
}
