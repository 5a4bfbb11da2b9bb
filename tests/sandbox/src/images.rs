//! What an image name runs. There is no registry: the images this sandbox "has" are
//!
//! - `…/oms:<tag>` and `…/ims:<tag>`: the real services, started as this binary's `container`
//!   subcommand with the pod's arguments and environment (same code as the images in a cluster)
//! - `sandbox.salve.dev/scripted:v1`: a small, versioned behaviour (see `ScriptV1`), for failures
//!   a real binary does not produce on demand
//!
//! Any other image fails to pull, as a missing image does (`ErrImagePull`, `ImagePullBackOff`).

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    Oms,
    Ims,
    Scripted,
}

pub const SCRIPTED: &str = "sandbox.salve.dev/scripted";
/// The environment variable holding a scripted container's behaviour (JSON, `ScriptV1`).
pub const SCRIPT_ENV: &str = "SANDBOX_SCRIPT";

impl Image {
    /// `None`: the image does not exist (the pull fails).
    pub fn resolve(image: &str) -> Option<Image> {
        let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        if repo == SCRIPTED {
            // `v1` and `v1-<version>`: behaviour spec v1 (a script may react to its own tag).
            return (tag == "v1" || tag.starts_with("v1-")).then_some(Image::Scripted);
        }
        match repo.rsplit('/').next() {
            Some("oms") => Some(Image::Oms),
            Some("ims") => Some(Image::Ims),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Image::Oms => "oms",
            Image::Ims => "ims",
            Image::Scripted => "scripted",
        }
    }
}

/// Version 1 of the scripted behaviour. Every field is optional; the defaults are a healthy
/// HTTP server on `port` answering 200 on `/healthz`, `/readyz` and `/`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptV1 {
    pub port: Option<u16>,
    /// Printed at start, one per line.
    pub start_log: Vec<String>,
    /// Crash at start (after printing `log`) when the condition holds.
    pub crash: Option<Crash>,
    /// Exit with `code` after `after_ms` (a Job's work; 0 = Completed).
    pub exit: Option<Exit>,
    /// Allocate and touch this much memory per second (for OOM kills)...
    pub grow_memory_mib_per_s: u32,
    /// ...until this much is held (0: without end).
    pub grow_memory_to_mib: u32,
    /// `/readyz` answers 503.
    pub fail_readiness: bool,
    /// Every `every_ms`, print `line` (e.g. a dependency's error) and answer `/` with `status`.
    pub failing_dependency: Option<FailingDependency>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    /// The environment variable `env` equals `equals`, the file `file` contains `contains`, or the
    /// container runs the image tag `image_tag`.
    #[serde(default)]
    pub image_tag: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    pub log: Vec<String>,
    pub exit_code: i32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Exit {
    pub after_ms: u64,
    pub code: i32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FailingDependency {
    pub line: String,
    pub every_ms: u64,
    #[serde(default = "bad_gateway")]
    pub status: u16,
}

fn bad_gateway() -> u16 {
    502
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_images_resolve_and_others_do_not_exist() {
        assert_eq!(Image::resolve("ghcr.io/salve/oms:0.1.0"), Some(Image::Oms));
        assert_eq!(Image::resolve("ghcr.io/salve/ims@sha256"), None, "a digest with no tag is not an image we have");
        assert_eq!(Image::resolve("sandbox.salve.dev/scripted:v1"), Some(Image::Scripted));
        assert_eq!(Image::resolve("sandbox.salve.dev/scripted:v2"), None);
        assert_eq!(Image::resolve("sandbox.salve.dev/scripted:v1-2.0.0"), Some(Image::Scripted));
        assert_eq!(Image::resolve("ghcr.io/salve/oms-typo:1"), None);
    }
}
