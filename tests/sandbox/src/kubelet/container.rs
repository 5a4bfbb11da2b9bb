//! One container's life on the simulated node, as the kubelet's runtime manager reports it:
//! `Waiting` (ContainerCreating, ErrImagePull/ImagePullBackOff, CreateContainerConfigError,
//! CrashLoopBackOff) -> `Running` -> `Terminated` (Completed, Error, OOMKilled with exit 137),
//! restarted IN PLACE (same pod, `restartCount` + 1) after a back-off of 10 s doubling to 5 min,
//! reset once the container ran for 10 minutes (pkg/kubelet/kubelet.go, `backOffPeriod`,
//! `MaxContainerBackOff`). The log of the instance before the last restart is kept for
//! `kubectl logs --previous`.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::clock::TimeScale;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long has its back-off reset.
pub const BACKOFF_RESET: Duration = Duration::from_secs(600);
const LOG_LINES: usize = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug)]
pub enum State {
    Waiting { reason: String, message: Option<String> },
    Running { started_at: String, since: Instant, child: Child },
    Terminated(Terminated),
}

pub struct ContainerRuntime {
    pub spec: Container,
    pub state: State,
    pub restart_count: i32,
    pub last_termination: Option<Terminated>,
    /// No new start before this instant (back-off).
    pub not_before: Option<Instant>,
    pub next_backoff: Duration,
    pub ready: bool,
    pub readiness_failures: i32,
    pub liveness_failures: i32,
    pub last_probe: Option<Instant>,
    /// Set when the kubelet killed it for exceeding its memory limit.
    pub oom_killed: bool,
    pub log: Arc<Mutex<VecDeque<String>>>,
    pub previous_log: Option<String>,
    pub ever_started: bool,
}

impl ContainerRuntime {
    pub fn new(spec: Container) -> Self {
        Self {
            spec,
            state: State::Waiting { reason: "ContainerCreating".into(), message: None },
            restart_count: 0,
            last_termination: None,
            not_before: None,
            next_backoff: INITIAL_BACKOFF,
            ready: false,
            readiness_failures: 0,
            liveness_failures: 0,
            last_probe: None,
            oom_killed: false,
            log: Arc::default(),
            previous_log: None,
            ever_started: false,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Running { child, .. } => child.id(),
            _ => None,
        }
    }

    pub fn in_backoff(&self) -> bool {
        self.not_before.is_some_and(|t| Instant::now() < t)
    }

    /// Starts the process: `exe container IMAGE ARGS...` with exactly `env`.
    pub fn start(
        &mut self,
        exe: &std::path::Path,
        image: &str,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: &std::path::Path,
    ) -> std::io::Result<()> {
        let _ = std::fs::create_dir_all(cwd);
        let mut cmd = Command::new(exe);
        cmd.arg("container")
            .arg(image)
            .args(args)
            .env_clear()
            .envs(env)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        let mut child = cmd.spawn()?;
        if let Some(previous) =
            self.ever_started.then(|| self.log.lock().map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default())
        {
            self.previous_log = Some(previous);
        }
        let log: Arc<Mutex<VecDeque<String>>> = Arc::default();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut l) = log.lock() {
                        if l.len() >= LOG_LINES {
                            l.pop_front();
                        }
                        l.push_back(line);
                    }
                }
            });
        }
        self.log = log;
        self.state = State::Running { started_at: now(), since: Instant::now(), child };
        self.ever_started = true;
        self.ready = false;
        self.readiness_failures = 0;
        self.liveness_failures = 0;
        self.last_probe = None;
        self.oom_killed = false;
        Ok(())
    }

    /// Has the process exited? Then record it as terminated (and whether to restart).
    pub fn reap(&mut self) -> Option<Terminated> {
        let State::Running { started_at, since, child } = &mut self.state else { return None };
        let status = child.try_wait().ok().flatten()?;
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(9)
        });
        let reason = if self.oom_killed {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let ran = since.elapsed();
        let t = Terminated {
            exit_code: if self.oom_killed { 137 } else { code },
            reason: reason.into(),
            message: None,
            started_at: started_at.clone(),
            finished_at: now(),
        };
        self.state = State::Terminated(t.clone());
        self.ready = false;
        if ran >= BACKOFF_RESET {
            self.next_backoff = INITIAL_BACKOFF;
        }
        Some(t)
    }

    /// After a termination under `restartPolicy: Always`: wait the back-off, then restart in place.
    pub fn back_off(&mut self, pod: &str, scale: TimeScale) -> Duration {
        let delay = self.next_backoff;
        self.not_before = Some(Instant::now() + scale.wall(delay));
        self.next_backoff = (delay * 2).min(MAX_BACKOFF);
        if let State::Terminated(t) = &self.state {
            self.last_termination = Some(t.clone());
        }
        self.restart_count += 1;
        self.state = State::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: Some(format!("back-off {} restarting failed container={} pod={pod}", go_duration(delay), self.spec.name)),
        };
        delay
    }

    /// SIGKILL (memory limit, liveness failure, pod deletion).
    pub fn kill(&mut self) {
        if let State::Running { child, .. } = &mut self.state {
            let _ = child.start_kill();
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
    }
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`), as the kubelet's messages show it.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 { format!("{s}s") } else { format!("{}m{}s", s / 60, s % 60) }
}

pub fn now() -> String {
    Timestamp::now().round(k8s_openapi::jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

/// Resident memory of a process in bytes (`VmRSS` of /proc/PID/status), what the kernel's
/// memory cgroup charges and what an OOM kill is judged by.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_ten_seconds_to_five_minutes() {
        let mut c = ContainerRuntime::new(Container { name: "app".into(), ..Default::default() });
        let delays: Vec<u64> = (0..7).map(|_| c.back_off("p", TimeScale(1000.0)).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(c.restart_count, 7, "every restart is counted in place");
        assert!(
            matches!(&c.state, State::Waiting { message: Some(m), .. } if m.starts_with("back-off 5m0s restarting failed container=app"))
        );
        assert!(matches!(&c.state, State::Waiting { reason, .. } if reason == "CrashLoopBackOff"));
    }
}
