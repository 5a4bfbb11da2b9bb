//! The structured facts the rules read, extracted once from an evidence bundle: container
//! terminations and waiting reasons (per container, init containers included), scheduling and
//! eviction failures, events with counts and ages (stale ones discounted), what the newest
//! revision changed, observed ConfigMap changes, missing references, exhausted quotas, node
//! pressure, the HPA at its maximum, and the text lines (classified by `signals`).

use std::collections::BTreeMap;

use super::signals::{Signal, classify, is_injection};
use crate::domain::evidence::{ConfigChange, Evidence, RolloutEvidence, TemplateChange};
use crate::domain::time::parse_time;

/// Events whose last occurrence is older than this (relative to the collection time) are stale:
/// they describe an earlier episode, not this one.
pub const STALE_EVENT_SECONDS: i64 = 3600;
/// A revision younger than this is "a recent rollout".
pub const RECENT_ROLLOUT_SECONDS: i64 = 6 * 3600;

#[derive(Clone, Debug)]
pub struct ContainerFact {
    pub pod: String,
    pub container: String,
    pub init: bool,
    pub ready: bool,
    pub restarts: i32,
    pub revision: Option<i64>,
    pub waiting_reason: Option<String>,
    pub waiting_message: String,
    /// Current termination, else last termination.
    pub term_reason: Option<String>,
    pub exit_code: Option<i32>,
    pub term_message: String,
}

#[derive(Clone, Debug)]
pub struct EventFact {
    pub reason: String,
    pub object: String,
    pub message: String,
    pub count: i32,
    /// Seconds since it was last seen; `None` when the bundle has no times.
    pub age: Option<i64>,
}

impl EventFact {
    pub fn fresh(&self) -> bool {
        self.age.is_none_or(|a| a <= STALE_EVENT_SECONDS)
    }
}

/// Where a line of text came from.
#[derive(Clone, Debug, PartialEq)]
pub enum LineSource {
    Log { pod: String, container: String, pod_ready: Option<bool> },
    Event { reason: String, object: String },
    Cloud,
    Alarm,
    Status,
}

#[derive(Clone, Debug)]
pub struct Line {
    pub source: LineSource,
    pub text: String,
    pub signals: Vec<Signal>,
}

#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub kind: String,
    pub name: String,
    pub containers: Vec<ContainerFact>,
    /// Pods that cannot be scheduled, with the scheduler's message.
    pub unschedulable: Vec<(String, String)>,
    /// Evicted pods with the kubelet's message.
    pub evicted: Vec<(String, String)>,
    pub events: Vec<EventFact>,
    pub newest: Option<RolloutEvidence>,
    pub previous: Option<RolloutEvidence>,
    /// What the newest revision changed (inferred from images for bundles without diffs).
    pub newest_changes: Vec<TemplateChange>,
    pub newest_age: Option<i64>,
    pub config_changes: Vec<ConfigChange>,
    pub lines: Vec<Line>,
    /// Lines set aside because they address the diagnoser.
    pub injections: usize,
    /// `resource used/hard` for quotas at their limit.
    pub quota_full: Vec<String>,
    /// `node: condition` for nodes under pressure or not ready.
    pub node_trouble: Vec<String>,
    pub hpa_at_max: bool,
}

fn age(now: Option<k8s_openapi::jiff::Timestamp>, t: &str) -> Option<i64> {
    let (now, t) = (now?, parse_time(t)?);
    Some(now.duration_since(t).as_secs())
}

impl Facts {
    pub fn from(ev: &Evidence) -> Self {
        let now = parse_time(&ev.collected_at);
        let mut f = Facts { kind: ev.kind().to_string(), name: ev.name().to_string(), ..Default::default() };
        for p in &ev.pods {
            if p.containers.is_empty() {
                // A bundle from before per-container statuses: one summary row per pod.
                let container = ev.containers.iter().find(|c| !c.init).map(|c| c.name.clone()).unwrap_or_default();
                f.containers.push(ContainerFact {
                    pod: p.name.clone(),
                    container,
                    init: false,
                    ready: p.ready,
                    restarts: p.restarts,
                    revision: p.revision,
                    waiting_reason: p.waiting_reason.clone(),
                    waiting_message: String::new(),
                    term_reason: p.last_termination_reason.clone(),
                    exit_code: p.last_exit_code,
                    term_message: String::new(),
                });
            }
            for c in &p.containers {
                let waiting = (c.state == "waiting").then(|| c.reason.clone()).flatten();
                let (term_reason, exit_code, term_message) = if c.state == "terminated" {
                    (c.reason.clone(), c.exit_code, c.message.clone().unwrap_or_default())
                } else if let Some(t) = &c.last_termination {
                    (Some(t.reason.clone()), Some(t.exit_code), t.message.clone().unwrap_or_default())
                } else {
                    (None, None, String::new())
                };
                f.containers.push(ContainerFact {
                    pod: p.name.clone(),
                    container: c.name.clone(),
                    init: c.init,
                    ready: c.ready,
                    restarts: c.restarts,
                    revision: p.revision,
                    waiting_message: if waiting.is_some() { c.message.clone().unwrap_or_default() } else { String::new() },
                    waiting_reason: waiting,
                    term_reason,
                    exit_code,
                    term_message,
                });
                if let Some(m) = &c.message {
                    f.push_line(LineSource::Status, m);
                }
            }
            let unsched = p.conditions.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False");
            if let Some(c) = unsched {
                f.unschedulable.push((p.name.clone(), c.message.clone().unwrap_or_default()));
            }
            if p.reason.as_deref() == Some("Evicted") {
                f.evicted.push((p.name.clone(), p.message.clone().unwrap_or_default()));
            }
        }
        for e in &ev.events {
            let fact = EventFact {
                reason: e.reason.clone(),
                object: e.object.clone(),
                message: e.message.clone(),
                count: e.count.unwrap_or(1).max(1),
                age: age(now, if e.last_seen.is_empty() { &e.first_seen } else { &e.last_seen }),
            };
            if fact.fresh() {
                f.push_line(LineSource::Event { reason: e.reason.clone(), object: e.object.clone() }, &e.message);
                if e.reason == "FailedScheduling" && !f.unschedulable.iter().any(|(_, m)| m == &e.message) {
                    f.unschedulable.push((e.object.clone(), e.message.clone()));
                }
                if e.reason == "Evicted" && !f.evicted.iter().any(|(_, m)| m == &e.message) {
                    f.evicted.push((e.object.clone(), e.message.clone()));
                }
            }
            f.events.push(fact);
        }
        let mut revs: Vec<&RolloutEvidence> = ev.rollouts.iter().collect();
        revs.sort_by_key(|r| r.revision);
        if let Some(newest) = revs.last() {
            f.newest = Some((*newest).clone());
            f.newest_age = age(now, &newest.created);
            f.newest_changes = newest.changes.clone();
            if revs.len() >= 2 {
                let prev = revs[revs.len() - 2];
                f.previous = Some(prev.clone());
                if f.newest_changes.is_empty() && prev.images != newest.images {
                    f.newest_changes.push(TemplateChange {
                        field: "image".into(),
                        container: None,
                        detail: format!("{} -> {}", prev.images.join(","), newest.images.join(",")),
                    });
                }
            }
        }
        f.config_changes = ev.config_changes.clone();
        for t in &ev.logs {
            for l in &t.lines {
                f.push_line(LineSource::Log { pod: t.pod.clone(), container: t.container.clone(), pod_ready: t.pod_ready }, l);
            }
        }
        if let Some(cloud) = &ev.cloud {
            for l in cloud.logs.iter().flat_map(|l| l.lines.iter()) {
                f.push_line(LineSource::Cloud, l);
            }
        }
        f.push_line(LineSource::Alarm, &ev.signal);
        for q in &ev.quotas {
            for (res, hard) in &q.hard {
                if let Some(used) = q.used.get(res)
                    && quantity_at_least(used, hard)
                {
                    f.quota_full.push(format!("{} {res} used {used} of {hard}", q.name));
                }
            }
        }
        for n in &ev.nodes {
            for c in &n.conditions {
                f.node_trouble.push(format!("{}: {c}", n.name));
            }
        }
        if let Some(h) = &ev.hpa {
            f.hpa_at_max = (h.current_replicas >= h.max_replicas && h.desired_replicas >= h.max_replicas)
                || h.conditions.iter().any(|c| c.starts_with("ScalingLimited=True") && c.contains("TooManyReplicas"));
        }
        f
    }

    fn push_line(&mut self, source: LineSource, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        if is_injection(text) {
            self.injections += 1;
            return;
        }
        let signals = classify(text);
        self.lines.push(Line { source, text: text.to_string(), signals });
    }

    /// Lines supporting `signal`, from any source.
    pub fn lines_with(&self, signal: Signal) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(move |l| l.signals.contains(&signal))
    }

    /// Containers whose current or last termination is `reason`.
    pub fn terminated_with<'a>(&'a self, reason: &'a str) -> impl Iterator<Item = &'a ContainerFact> {
        self.containers.iter().filter(move |c| c.term_reason.as_deref() == Some(reason))
    }

    pub fn waiting_with<'a>(&'a self, reasons: &'a [&str]) -> impl Iterator<Item = &'a ContainerFact> {
        self.containers.iter().filter(move |c| c.waiting_reason.as_deref().is_some_and(|r| reasons.contains(&r)))
    }

    /// Containers that keep failing: crash-looping, or restarted and not ready, or terminated
    /// with a non-zero exit (a Job's pod).
    pub fn crashing(&self) -> Vec<&ContainerFact> {
        self.containers
            .iter()
            .filter(|c| {
                c.waiting_reason.as_deref() == Some("CrashLoopBackOff")
                    || (c.restarts > 0 && !c.ready && c.term_reason.is_some())
                    || (c.exit_code.is_some_and(|e| e != 0) && !c.ready && c.term_reason.as_deref() != Some("OOMKilled"))
            })
            .collect()
    }

    /// Fresh events with this reason, with their summed count.
    pub fn fresh_events<'a>(&'a self, reason: &'a str) -> impl Iterator<Item = &'a EventFact> {
        self.events.iter().filter(move |e| e.reason == reason && e.fresh())
    }

    pub fn stale_events(&self) -> usize {
        self.events.iter().filter(|e| !e.fresh()).count()
    }

    /// Whether the newest revision is a recent rollout (unknown age counts as recent, as in
    /// bundles written before revision times were compared).
    pub fn newest_is_recent(&self) -> bool {
        self.newest_age.is_none_or(|a| a <= RECENT_ROLLOUT_SECONDS)
    }

    pub fn newest_changed(&self, field: &str) -> Option<&TemplateChange> {
        self.newest_changes.iter().find(|c| c.field == field)
    }

    /// The newest revision changed more than annotations.
    pub fn newest_changed_template(&self) -> bool {
        self.newest_changes.iter().any(|c| c.field != "annotations")
    }

    /// Every failing container belongs to the newest revision (or revisions are unknown).
    pub fn failures_on_newest(&self, failing: &[&ContainerFact]) -> bool {
        let newest = self.newest.as_ref().map(|n| n.revision);
        !failing.is_empty() && failing.iter().all(|c| c.revision.is_none() || c.revision == newest)
    }

    /// Text lines grouped by signal, counting distinct texts.
    pub fn signal_counts(&self) -> BTreeMap<Signal, usize> {
        let mut m: BTreeMap<Signal, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for l in &self.lines {
            for s in &l.signals {
                m.entry(*s).or_default().insert(l.text.as_str());
            }
        }
        m.into_iter().map(|(k, v)| (k, v.len())).collect()
    }
}

/// `used >= hard` for quota quantities (memory, cpu, counts); unparseable compares as text.
fn quantity_at_least(used: &str, hard: &str) -> bool {
    match (crate::domain::quantity::parse_any(used), crate::domain::quantity::parse_any(hard)) {
        (Some(u), Some(h)) => h > 0.0 && u >= h,
        _ => used == hard,
    }
}
