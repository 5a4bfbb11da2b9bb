//! Where the `salve-sandbox` binary is, for tests of other crates that start a simulated
//! cluster. Every container is a child process of that binary (`salve-sandbox container IMAGE`),
//! so a test binary that is not `salve-sandbox` itself must find it: next to the test executable
//! in the same target directory (`target/<profile>/deps/<test>` → `target/<profile>/salve-sandbox`).
//! When it is missing (e.g. `cargo nextest run -p operator` builds only that package's targets),
//! it is built once with the same cargo and target directory.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const NAME: &str = "salve-sandbox";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecutableError {
    #[error("cannot tell where this test runs from: {0}")]
    CurrentExe(String),
    #[error("`cargo build -p salve-sandbox` failed ({0}); build it by hand and run the tests again")]
    Build(String),
}

/// The `salve-sandbox` binary of this target directory, built if it is missing.
pub fn sandbox_executable() -> Result<PathBuf, ExecutableError> {
    static FOUND: OnceLock<Result<PathBuf, ExecutableError>> = OnceLock::new();
    FOUND.get_or_init(locate_or_build).clone()
}

fn locate_or_build() -> Result<PathBuf, ExecutableError> {
    let exe = std::env::current_exe().map_err(|e| ExecutableError::CurrentExe(e.to_string()))?;
    let dir = exe.parent().ok_or_else(|| ExecutableError::CurrentExe(exe.display().to_string()))?;
    // Test executables live in `<profile>/deps`; binaries one level up.
    let profile_dir = if dir.ends_with("deps") { dir.parent().unwrap_or(dir) } else { dir };
    let candidate = profile_dir.join(format!("{NAME}{}", std::env::consts::EXE_SUFFIX));
    if candidate.is_file() {
        return Ok(candidate);
    }
    let target_dir = profile_dir.parent().ok_or_else(|| ExecutableError::CurrentExe(exe.display().to_string()))?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", NAME, "--bin", NAME]).env("CARGO_TARGET_DIR", target_dir).current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| ExecutableError::Build(e.to_string()))?;
    if !status.success() || !candidate.is_file() {
        return Err(ExecutableError::Build(status.to_string()));
    }
    Ok(candidate)
}
