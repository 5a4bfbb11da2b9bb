//! Job controller, after pkg/controller/job (job_controller.go `syncJob`, `manageJob`,
//! `pastBackoffLimitOnFailure`, `pastActiveDeadline`; backoff_utils.go):
//!
//! - Pods named `<job>-<random>` with a controller owner reference and the labels
//!   `batch.kubernetes.io/controller-uid`, `controller-uid`, `batch.kubernetes.io/job-name` and
//!   `job-name` (what the API server's Job defaulting puts on the template)
//! - `parallelism` (default 1) Pods at a time until `completions` (unset: the first success, once
//!   no Pod is active) have succeeded
//! - `restartPolicy: OnFailure`: the kubelet restarts the container in place and the restarts of
//!   active Pods count against `backoffLimit` (default 6); `Never`: every failed Pod counts and a
//!   new Pod replaces it after a back-off of 10 s doubling (at most 10 min) since the last failure
//! - more failures than `backoffLimit`: conditions `FailureTarget` then `Failed`, reason
//!   `BackoffLimitExceeded`, "Job has reached the specified backoff limit"; active Pods deleted
//! - `activeDeadlineSeconds` past `startTime`: the same with `DeadlineExceeded`, "Job was active
//!   longer than specified deadline"
//! - success: conditions `SuccessCriteriaMet` then `Complete` (reason `CompletionsReached`,
//!   "Reached expected number of succeeded pods"), `completionTime`, event `Completed` "Job
//!   completed"
//! - status: active, ready, succeeded, failed, terminating, startTime, completionTime, conditions
//! - events `SuccessfulCreate` "Created pod: x", `SuccessfulDelete` "Deleted pod: x",
//!   `BackoffLimitExceeded`, `DeadlineExceeded`, `Completed`
//!
//! Not simulated: Indexed completion mode, podFailurePolicy, successPolicy, suspend,
//! backoffLimitPerIndex, podReplacementPolicy, ttlSecondsAfterFinished, CronJobs, the
//! `batch.kubernetes.io/job-tracking` finalizer (succeeded/failed are counted from the Pods that
//! exist, so deleting a finished Pod by hand lowers them), and the API server's defaulting of
//! the Job's own selector and template labels (the controller finds its Pods by owner reference).
//! The back-off and `activeDeadlineSeconds` are divided by the sandbox's time scale.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{active, controller_ref, list_owned, phase, random_suffix, replica_set::pod_ready};
use crate::clock::TimeScale;
use crate::events::{Recorder, reference};

pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff.
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

pub async fn sync_all(client: &Client, events: &Recorder, scale: TimeScale) -> Result<(), kube::Error> {
    let jobs: Api<Job> = Api::all(client.clone());
    for job in jobs.list(&ListParams::default()).await?.items {
        if let Err(e) = sync(client, events, &job, scale).await {
            tracing::debug!(job = %job.name_any(), error = %e, "job sync failed; retried");
        }
    }
    Ok(())
}

fn finished(status: &JobStatus) -> bool {
    status.conditions.iter().flatten().any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn condition(type_: &str, reason: &str, message: &str, now: &Time) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// When the last failed pod of the job finished (its containers' latest `finishedAt`).
fn last_failure(pods: &[Pod]) -> Option<Timestamp> {
    pods.iter()
        .filter(|p| phase(p) == "Failed")
        .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0))
        .max()
}

/// Back-off before the next pod after `failures` failures: 10 s, 20 s, 40 s ... at most 10 min.
pub fn failure_backoff(failures: i32) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let exp = (failures - 1).min(16) as u32;
    (POD_FAILURE_BACKOFF * 2u32.pow(exp)).min(MAX_POD_FAILURE_BACKOFF)
}

async fn sync(client: &Client, events: &Recorder, job: &Job, scale: TimeScale) -> Result<(), kube::Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let uid = job.uid().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let old = job.status.clone().unwrap_or_default();
    let job_ref = reference("Job", "batch/v1", &job.metadata);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pods: Vec<Pod> = list_owned(&pods_api, &uid).await?;
    let mut actives: Vec<Pod> = pods.iter().filter(|p| active(p)).cloned().collect();
    let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i32;
    let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i32;
    let now = Time(Timestamp::now());
    let mut status = JobStatus {
        start_time: old.start_time.clone().or_else(|| Some(now.clone())),
        completion_time: old.completion_time.clone(),
        conditions: old.conditions.clone(),
        uncounted_terminated_pods: old.uncounted_terminated_pods.clone(),
        ..Default::default()
    };
    let delete_actives = |actives: Vec<Pod>| {
        let pods_api = pods_api.clone();
        let events = events.clone();
        let job_ref = job_ref.clone();
        async move {
            for p in actives {
                if pods_api.delete(&p.name_any(), &DeleteParams::default()).await.is_ok() {
                    events.record(&job_ref, false, "SuccessfulDelete", &format!("Deleted pod: {}", p.name_any())).await;
                }
            }
        }
    };
    if finished(&old) {
        // A finished Job keeps no active pods.
        delete_actives(actives).await;
        actives = Vec::new();
    } else {
        let restart_policy = spec.template.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Never".into());
        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        // pastBackoffLimitOnFailure: restarts of active pods count under OnFailure.
        let restarts: i32 = if restart_policy == "OnFailure" {
            actives
                .iter()
                .flat_map(|p| {
                    p.status.iter().flat_map(|s| s.container_statuses.iter().flatten().chain(s.init_container_statuses.iter().flatten()))
                })
                .map(|c| c.restart_count)
                .sum()
        } else {
            0
        };
        let past_on_failure = restart_policy == "OnFailure" && if backoff_limit == 0 { restarts > 0 } else { restarts >= backoff_limit };
        let started = status.start_time.as_ref().map(|t| t.0).unwrap_or_else(Timestamp::now);
        let deadline = spec.active_deadline_seconds.map(|s| scale.wall(Duration::from_secs(s.max(0).unsigned_abs())));
        let past_deadline = deadline.is_some_and(|d| Timestamp::now().duration_since(started).unsigned_abs() >= d);
        let parallelism = spec.parallelism.unwrap_or(1).max(0);
        let complete = match spec.completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0 && actives.is_empty(),
        };
        let failure = if failed > backoff_limit || past_on_failure {
            Some(("BackoffLimitExceeded", "Job has reached the specified backoff limit"))
        } else if past_deadline {
            Some(("DeadlineExceeded", "Job was active longer than specified deadline"))
        } else {
            None
        };
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        if let Some((reason, message)) = failure {
            conditions.push(condition("FailureTarget", reason, message, &now));
            conditions.push(condition("Failed", reason, message, &now));
            events.record(&job_ref, true, reason, message).await;
            delete_actives(std::mem::take(&mut actives)).await;
        } else if complete {
            conditions.push(condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", &now));
            conditions.push(condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", &now));
            status.completion_time = Some(now.clone());
            events.record(&job_ref, false, "Completed", "Job completed").await;
        } else {
            // manageJob: as many active pods as parallelism allows and completions still need.
            let want = match spec.completions {
                Some(c) => parallelism.min((c - succeeded).max(0)),
                None if succeeded > 0 => 0,
                None => parallelism,
            };
            let missing = (want - actives.len() as i32).max(0);
            let backoff = scale.wall(failure_backoff(failed));
            let waiting = last_failure(&pods).is_some_and(|t| Timestamp::now().duration_since(t).unsigned_abs() < backoff);
            if missing > 0 && !waiting {
                for _ in 0..missing {
                    if let Some(p) = create(&pods_api, events, job).await {
                        actives.push(p);
                    }
                }
            } else if (actives.len() as i32) > want {
                let surplus = actives.split_off(want.max(0) as usize);
                delete_actives(surplus).await;
            }
        }
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
    status.active = Some(actives.len() as i32).filter(|n| *n > 0);
    status.ready = Some(actives.iter().filter(|p| pod_ready(p)).count() as i32);
    status.succeeded = Some(succeeded).filter(|n| *n > 0);
    status.failed = Some(failed).filter(|n| *n > 0);
    status.terminating = Some(0);
    if status != old {
        let api: Api<Job> = Api::namespaced(client.clone(), &ns);
        // A merge patch leaves out what is None: counts that drop to none are written as null.
        let mut body = serde_json::to_value(&status).unwrap_or_default();
        for field in ["active", "succeeded", "failed", "completionTime", "conditions"] {
            if let Some(o) = body.as_object_mut() {
                o.entry(field).or_insert(serde_json::Value::Null);
            }
        }
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": body}))).await?;
    }
    Ok(())
}

async fn create(pods_api: &Api<Pod>, events: &Recorder, job: &Job) -> Option<Pod> {
    let name = job.name_any();
    let uid = job.uid().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let mut meta = spec.template.metadata.clone().unwrap_or_default();
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(CONTROLLER_UID_LABEL.into(), uid.clone());
    labels.insert(LEGACY_CONTROLLER_UID_LABEL.into(), uid.clone());
    labels.insert(JOB_NAME_LABEL.into(), name.clone());
    labels.insert(LEGACY_JOB_NAME_LABEL.into(), name.clone());
    let pod_name = format!("{name}-{}", random_suffix());
    meta.name = Some(pod_name.clone());
    meta.namespace = job.namespace();
    meta.owner_references = Some(vec![controller_ref("batch/v1", "Job", &name, &uid)]);
    let pod = Pod { metadata: meta, spec: spec.template.spec.clone(), status: None };
    let job_ref = reference("Job", "batch/v1", &job.metadata);
    match pods_api.create(&PostParams::default(), &pod).await {
        Ok(p) => {
            events.record(&job_ref, false, "SuccessfulCreate", &format!("Created pod: {pod_name}")).await;
            Some(p)
        }
        Err(e) => {
            events.record(&job_ref, true, "FailedCreate", &format!("Error creating: {e}")).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_failure_back_off_doubles_from_ten_seconds_to_ten_minutes() {
        let secs: Vec<u64> = (0..9).map(|n| failure_backoff(n).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 320, 600, 600]);
    }
}
