//! `salve-sandbox demo`: one scenario on the simulated cluster, narrated live with elapsed
//! times, ending with the root cause, the action, the verification, the MTTR (fault injected ->
//! verified resolved) and where the post-mortem is.

pub mod alerts;
pub mod apply;
pub mod operator;
pub mod traffic;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::clock::TimeScale;
use crate::scenario::{self, BUILT_IN, Progress, RunOptions};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Which failure: config-typo, oom, bad-rollout, dependency-down, permission-denied.
    #[arg(long, env = "SANDBOX_SCENARIO", default_value = "config-typo")]
    pub scenario: String,
    /// Print one JSON line at the end instead of the narration.
    #[arg(long, env = "SANDBOX_JSON", default_value_t = false)]
    pub json: bool,
    /// Stay up after the outcome (kubectl works against the printed KUBECONFIG) until Ctrl-C.
    #[arg(long, env = "SANDBOX_KEEP", default_value_t = false)]
    pub keep: bool,
    /// Where the kubeconfig, pods' files and the post-mortem go.
    #[arg(long, env = "SANDBOX_WORKDIR")]
    pub workdir: Option<PathBuf>,
    /// The simulated kubelet's sync frequency, seconds (a real kubelet's default is 60; how late
    /// a mounted ConfigMap change reaches the pods).
    #[arg(long, env = "SANDBOX_SYNC_FREQUENCY_SECONDS", default_value_t = 10)]
    pub sync_frequency_seconds: u64,
}

pub async fn main(args: DemoArgs) -> i32 {
    let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == args.scenario) else {
        let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        eprintln!("salve-sandbox: unknown scenario {:?}; one of: {}", args.scenario, names.join(", "));
        return 2;
    };
    let s = match scenario::parse(&args.scenario, text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("salve-sandbox: {e}");
            return 2;
        }
    };
    let workdir = args.workdir.clone().unwrap_or_else(|| scenario::default_workdir("demo"));
    let opts = RunOptions {
        workdir,
        scale: TimeScale::default(),
        sync_frequency: Duration::from_secs(args.sync_frequency_seconds),
        keep: args.keep,
        exe: None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Progress)>();
    let quiet = args.json;
    let start = Instant::now();
    if !quiet {
        println!("salve-sandbox demo: {} — {}", s.name, s.description);
        println!("(a SIMULATED cluster in this process: see tests/sandbox/README.md for what differs from a real one)\n");
    }
    let narrator = tokio::spawn(async move {
        let mut fault_at: Option<Instant> = None;
        while let Some((at, p)) = rx.recv().await {
            if quiet {
                continue;
            }
            let t = at.duration_since(start).as_secs_f64();
            let since_fault = fault_at.map(|f| format!(" (+{:.1}s)", at.duration_since(f).as_secs_f64())).unwrap_or_default();
            match p {
                Progress::Cluster { kubeconfig } => {
                    println!(
                        "[{t:6.1}s] cluster up. In another terminal:\n           export KUBECONFIG={}\n           kubectl get incidents,remediations -n shop -w",
                        kubeconfig.display()
                    )
                }
                Progress::Ready => println!("[{t:6.1}s] workload running with traffic; operator watching"),
                Progress::FaultInjected(what) => {
                    fault_at = Some(at);
                    println!("[{t:6.1}s] FAULT   {what}")
                }
                Progress::Alert(alerts::AlertEvent::Firing(summary)) => println!("[{t:6.1}s] ALERT   firing: {summary}{since_fault}"),
                Progress::Alert(alerts::AlertEvent::Resolved) => println!("[{t:6.1}s] ALERT   resolved{since_fault}"),
                Progress::Incident { name, phase, message } => println!("[{t:6.1}s] {name:<28} {phase:<13} {message}{since_fault}"),
                Progress::Remediation { name, phase, message } => println!("[{t:6.1}s]   {name:<26} {phase:<13} {message}{since_fault}"),
                Progress::Approved { name, by } => {
                    println!("[{t:6.1}s]   {name:<26} {:<13} by {by} (kubectl salve approve {name}){since_fault}", "approved")
                }
            }
        }
    });
    let result = scenario::run_one(&s, &opts, tx).await;
    let _ = narrator.await;
    match result {
        Ok(o) => {
            let miss = o.mismatches(&s.expect);
            if args.json {
                println!("{}", serde_json::to_string(&o).unwrap_or_default());
            } else {
                println!("\nroot cause:   {}", o.root_cause.clone().unwrap_or_else(|| "-".into()));
                println!("action:       {}", o.action.clone().unwrap_or_else(|| "none (escalated to a person)".into()));
                println!("outcome:      {}{}", o.phase, if o.verified { ", verified" } else { "" });
                println!(
                    "MTTR:         {}",
                    o.mttr_seconds.map(|m| format!("{m:.1}s (fault injected -> verified resolved)")).unwrap_or_else(|| "-".into())
                );
                println!("post-mortem:  {}", o.post_mortem.clone().unwrap_or_else(|| "-".into()));
                if !miss.is_empty() {
                    println!("UNEXPECTED:   {}", miss.join("; "));
                }
            }
            i32::from(!miss.is_empty())
        }
        Err(e) => {
            eprintln!("salve-sandbox: {e}");
            1
        }
    }
}

/// `salve-sandbox serve`: the cluster alone, for exploring with kubectl.
pub async fn serve(workdir: Option<PathBuf>) -> i32 {
    let workdir = workdir.unwrap_or_else(|| scenario::default_workdir("serve"));
    let opts = crate::cluster::ClusterOptions { workdir, scale: TimeScale::default(), sync_frequency: Duration::from_secs(10), exe: None };
    match crate::cluster::Cluster::start(opts).await {
        Ok(c) => {
            println!("export KUBECONFIG={}", c.kubeconfig.display());
            let _ = tokio::signal::ctrl_c().await;
            c.stop().await;
            0
        }
        Err(e) => {
            eprintln!("salve-sandbox: {e}");
            1
        }
    }
}
