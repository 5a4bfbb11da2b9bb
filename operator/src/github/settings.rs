//! Configuration of pull-request remediation: where GitHub is, how Salve authenticates (a
//! token or a GitHub App, mounted from a Secret), which repositories and paths the policy
//! allows, and how often an open PR is polled.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;

use super::client::GithubClient;
use crate::domain::policy::PullRequestPolicy;

/// A secret value from the environment: never printed by `Debug` (RunArgs is logged and cloned).
#[derive(Clone, Default)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for SecretValue {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct GithubArgs {
    /// GitHub REST API base URL (GitHub Enterprise: `https://HOST/api/v3`).
    #[arg(long = "github-api-url", env = "SALVE_GITHUB_API_URL", default_value = "https://api.github.com")]
    pub api_url: String,
    /// Token for GitHub (prefer `SALVE_GITHUB_TOKEN_FILE` with a mounted Secret).
    #[arg(long = "github-token", env = "SALVE_GITHUB_TOKEN", hide_env_values = true)]
    pub token: Option<SecretValue>,
    /// File holding the token (a mounted Secret key).
    #[arg(long = "github-token-file", env = "SALVE_GITHUB_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// GitHub App id (with the private key file and installation id, instead of a token).
    #[arg(long = "github-app-id", env = "SALVE_GITHUB_APP_ID")]
    pub app_id: Option<u64>,
    /// PEM private key of the GitHub App (a mounted Secret key).
    #[arg(long = "github-app-private-key-file", env = "SALVE_GITHUB_APP_PRIVATE_KEY_FILE")]
    pub app_private_key_file: Option<PathBuf>,
    #[arg(long = "github-app-installation-id", env = "SALVE_GITHUB_APP_INSTALLATION_ID")]
    pub app_installation_id: Option<u64>,
    /// Branch pull requests target; unset = the repository's default branch.
    #[arg(long = "github-base-branch", env = "SALVE_GITHUB_BASE_BRANCH")]
    pub base_branch: Option<String>,
    /// Repositories pull requests may go to (`owner/name`, comma-separated).
    #[arg(long = "github-repositories", env = "SALVE_GITHUB_REPOSITORIES", value_delimiter = ',')]
    pub repositories: Vec<String>,
    /// Path prefixes pull requests may change (comma-separated, e.g. `apps/,charts/`).
    #[arg(long = "github-allowed-paths", env = "SALVE_GITHUB_ALLOWED_PATHS", value_delimiter = ',')]
    pub allowed_paths: Vec<String>,
    #[arg(long = "github-max-files", env = "SALVE_GITHUB_MAX_FILES", default_value_t = 5)]
    pub max_files: usize,
    /// Upper bound for the text of all changes of one pull request, bytes.
    #[arg(long = "github-max-bytes", env = "SALVE_GITHUB_MAX_BYTES", default_value_t = 65536)]
    pub max_bytes: usize,
    /// How often an open pull request is checked for merge or close, milliseconds.
    #[arg(long = "github-poll-ms", env = "SALVE_GITHUB_POLL_MS", default_value_t = 60000)]
    pub poll_ms: u64,
    /// How long a merged change may take to roll out before the remediation fails, seconds.
    #[arg(long = "github-rollout-timeout-seconds", env = "SALVE_GITHUB_ROLLOUT_TIMEOUT_SECONDS", default_value_t = 900)]
    pub rollout_timeout_seconds: u64,
    /// Delay before retrying after a transient GitHub failure (5xx, rate limit), milliseconds.
    #[arg(long = "github-retry-ms", env = "SALVE_GITHUB_RETRY_MS", default_value_t = 10000)]
    pub retry_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GithubConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("GitHub App configuration needs app id, private key file and installation id together")]
    IncompleteApp,
    #[error("GitHub App private key is not an RSA PEM key: {0}")]
    Key(String),
    #[error("GitHub client: {0}")]
    Client(String),
}

impl GithubArgs {
    pub fn pull_request_policy(&self) -> PullRequestPolicy {
        let clean = |v: &[String]| v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
        PullRequestPolicy {
            repositories: clean(&self.repositories).into_iter().collect::<BTreeSet<_>>(),
            path_prefixes: clean(&self.allowed_paths),
            max_files: self.max_files,
            max_bytes: self.max_bytes,
        }
    }

    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }

    pub fn retry(&self) -> Duration {
        Duration::from_millis(self.retry_ms)
    }

    fn read(path: &PathBuf) -> Result<String, GithubConfigError> {
        std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| GithubConfigError::Read(path.clone(), e))
    }

    /// The client, when credentials are configured; `None` otherwise (PullRequest actions are
    /// then refused with a clear reason). Must be called inside a Tokio runtime.
    pub fn client(&self) -> Result<Option<Arc<GithubClient>>, GithubConfigError> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) if !t.expose().trim().is_empty() => Some(t.expose().trim().to_string()),
            (_, Some(path)) => Some(Self::read(path)?),
            _ => None,
        };
        let app = [self.app_id.is_some(), self.app_private_key_file.is_some(), self.app_installation_id.is_some()];
        if token.is_none() && app.iter().all(|set| !set) {
            return Ok(None);
        }
        let builder = Octocrab::builder()
            .base_uri(self.api_url.as_str())
            .map_err(|e| GithubConfigError::Client(e.to_string()))?
            // Retries belong to the controller (requeue with backoff), not to one reconcile.
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)));
        let crab = if let Some(token) = token {
            builder.personal_token(token).build().map_err(|e| GithubConfigError::Client(e.to_string()))?
        } else {
            let (Some(app_id), Some(key_file), Some(installation)) = (self.app_id, &self.app_private_key_file, self.app_installation_id)
            else {
                return Err(GithubConfigError::IncompleteApp);
            };
            let pem = Self::read(key_file)?;
            let key = octocrab::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| GithubConfigError::Key(e.to_string()))?;
            let app = builder.app(app_id.into(), key).build().map_err(|e| GithubConfigError::Client(e.to_string()))?;
            app.installation(installation.into()).map_err(|e| GithubConfigError::Client(e.to_string()))?
        };
        let base = self.base_branch.clone().filter(|b| !b.trim().is_empty());
        Ok(Some(Arc::new(GithubClient::new(crab, base))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        github: GithubArgs,
    }

    #[test]
    fn token_never_shows_in_debug_output() {
        let cli = Cli::parse_from(["x", "--github-token", "ghp_supersecret", "--github-repositories", "acme/gitops, acme/infra"]);
        assert!(!format!("{:?}", cli.github).contains("supersecret"));
        let p = cli.github.pull_request_policy();
        assert!(p.repositories.contains("acme/infra"));
    }

    #[tokio::test]
    async fn without_credentials_there_is_no_client_and_partial_apps_are_errors() {
        let cli = Cli::parse_from(["x"]);
        assert!(cli.github.client().expect("no config is fine").is_none());
        let cli = Cli::parse_from(["x", "--github-app-id", "7"]);
        assert!(matches!(cli.github.client(), Err(GithubConfigError::IncompleteApp)));
        let cli = Cli::parse_from(["x", "--github-token-file", "/nonexistent/token"]);
        assert!(matches!(cli.github.client(), Err(GithubConfigError::Read(..))));
    }
}
