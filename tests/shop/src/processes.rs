//! The real `oms` and `ims` binaries as child processes, for tests that need separate
//! processes (HTTP delivery, kill -9, settings files).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// Where cargo put the workspace binaries: next to the `deps` folder holding this test, unless
/// `SHOP_BIN_DIR` says otherwise.
pub fn bin_path(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("SHOP_BIN_DIR") {
        return Path::new(&dir).join(name);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A port that was free a moment ago (the OS hands out ephemeral ports round-robin, so a
/// collision with another test is unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

pub struct ServiceProcess {
    pub name: String,
    pub url: String,
    child: Option<Child>,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl ServiceProcess {
    /// Starts `bin` with `env`, logging to `<log_dir>/<bin>.log`, and waits for /healthz.
    pub async fn start(bin: &str, port: u16, env: Vec<(String, String)>, log_dir: &Path) -> anyhow::Result<ServiceProcess> {
        let mut process = ServiceProcess {
            name: bin.to_string(),
            url: format!("http://127.0.0.1:{port}"),
            child: None,
            bin: bin_path(bin),
            env,
            log: log_dir.join(format!("{bin}.log")),
        };
        process.restart().await?;
        Ok(process)
    }

    /// (Re)starts the process with the same environment, appending to the same log.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if !self.bin.exists() {
            bail!("{} not found: run `cargo build --bins` first (or set SHOP_BIN_DIR)", self.bin.display());
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.bin)
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_healthy(Duration::from_secs(20)).await
    }

    async fn wait_healthy(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("{} exited with {status}; log: {}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{} not healthy within {within:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a graceful exit.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let Some(mut child) = self.child.take() else { bail!("{} is not running", self.name) };
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        Ok(child.wait()?)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// OMS and IMS as two processes on free ports, each with its own data directory.
pub struct TwoProcesses {
    pub oms: ServiceProcess,
    pub ims: ServiceProcess,
}

impl TwoProcesses {
    pub async fn start(dir: &Path, key: &str, oms_extra: &[(&str, String)], ims_extra: &[(&str, String)]) -> anyhow::Result<Self> {
        let (oms_port, ims_port) = (free_port(), free_port());
        let mut ims_env = vec![
            ("IMS_LISTEN".to_string(), format!("127.0.0.1:{ims_port}")),
            ("IMS_DATA_DIR".to_string(), dir.join("ims").display().to_string()),
            ("IMS_OMS_URL".to_string(), format!("http://127.0.0.1:{oms_port}")),
            ("SALVE_API_KEYS".to_string(), key.to_string()),
        ];
        ims_env.extend(ims_extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut oms_env = vec![
            ("OMS_LISTEN".to_string(), format!("127.0.0.1:{oms_port}")),
            ("OMS_DATA_DIR".to_string(), dir.join("oms").display().to_string()),
            ("OMS_IMS_URL".to_string(), format!("http://127.0.0.1:{ims_port}")),
            ("SALVE_API_KEYS".to_string(), key.to_string()),
        ];
        oms_env.extend(oms_extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let ims = ServiceProcess::start("ims", ims_port, ims_env, dir).await?;
        let oms = ServiceProcess::start("oms", oms_port, oms_env, dir).await?;
        Ok(Self { oms, ims })
    }

    /// The last `chars` characters of each service's log, for a failing test's message.
    pub fn log_tails(&self, chars: usize) -> String {
        let tail = |log: String| log.chars().rev().take(chars).collect::<Vec<_>>().into_iter().rev().collect::<String>();
        format!("--- oms log (tail) ---\n{}\n--- ims log (tail) ---\n{}", tail(self.oms.log()), tail(self.ims.log()))
    }
}
