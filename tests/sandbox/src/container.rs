//! The process side of a container: `salve-sandbox container IMAGE [ARGS...]`, started by the
//! kubelet with the pod's environment. OMS and IMS run exactly as their own binaries would
//! (same library code, same flags and variables); the scripted image follows `ScriptV1`.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;

use crate::images::{Image, SCRIPT_ENV, ScriptV1};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("image {0} does not exist in the sandbox")]
    UnknownImage(String),
    #[error("{SCRIPT_ENV} is not a valid v1 script: {0}")]
    BadScript(String),
    #[error("{0}")]
    Service(String),
    #[error("listening: {0}")]
    Listen(#[from] std::io::Error),
}

/// Runs the container's process until it exits; returns its exit code.
pub async fn run(image: &str, args: Vec<String>) -> Result<i32, ContainerError> {
    exit_with_the_kubelet();
    match Image::resolve(image).ok_or_else(|| ContainerError::UnknownImage(image.into()))? {
        Image::Oms => {
            let config = oms::config::Config::parse_from(std::iter::once("oms".to_string()).chain(args));
            salve_common::telemetry::init_logging(config.log_format == "json");
            oms::process::run(config).await.map_err(|e| ContainerError::Service(format!("{e:#}")))?;
            Ok(0)
        }
        Image::Ims => {
            let config = ims::config::Config::parse_from(std::iter::once("ims".to_string()).chain(args));
            salve_common::telemetry::init_logging(config.log_format == "json");
            ims::process::run(config).await.map_err(|e| ContainerError::Service(format!("{e:#}")))?;
            Ok(0)
        }
        Image::Scripted => {
            let text = std::env::var(SCRIPT_ENV).unwrap_or_else(|_| "{}".into());
            let script: ScriptV1 = serde_json::from_str(&text).map_err(|e| ContainerError::BadScript(e.to_string()))?;
            scripted(script, image).await
        }
    }
}

/// An in-container path on the node, through the mounts the kubelet described.
fn in_container(path: &str) -> std::path::PathBuf {
    let mounts: Vec<(String, std::path::PathBuf)> =
        std::env::var(crate::network::MOUNTS_ENV).ok().and_then(|m| serde_json::from_str(&m).ok()).unwrap_or_default();
    let rootfs = std::env::var(crate::network::ROOTFS_ENV).map(std::path::PathBuf::from).unwrap_or_default();
    crate::kubelet::env::Translation { pod_ip: String::new(), mounts, rootfs, services: Default::default() }.path(path)
}

async fn scripted(s: ScriptV1, image: &str) -> Result<i32, ContainerError> {
    for line in &s.start_log {
        println!("{line}");
    }
    if let Some(c) = &s.crash {
        let env_hit = c.env.as_ref().is_some_and(|name| std::env::var(name).ok() == c.equals);
        let file_hit = c.file.as_ref().is_some_and(|path| {
            std::fs::read_to_string(in_container(path))
                .is_ok_and(|text| c.contains.as_ref().is_some_and(|needle| text.contains(needle.as_str())))
        });
        let tag_hit = c.image_tag.as_ref().is_some_and(|t| image.rsplit_once(':').is_some_and(|(_, tag)| tag == t));
        if env_hit || file_hit || tag_hit {
            for line in &c.log {
                eprintln!("{line}");
            }
            return Ok(c.exit_code);
        }
    }
    let status =
        s.failing_dependency.as_ref().map(|d| StatusCode::from_u16(d.status).unwrap_or(StatusCode::BAD_GATEWAY)).unwrap_or(StatusCode::OK);
    let ready = if s.fail_readiness { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || async move { ready }))
        .route("/", get(move || async move { status }));
    let ip = std::env::var(crate::network::POD_IP_ENV).unwrap_or_else(|_| "127.0.0.1".into());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| format!("{ip}:{}", s.port.unwrap_or(8080)));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    if let Some(d) = s.failing_dependency.clone() {
        tokio::spawn(async move {
            loop {
                eprintln!("{}", d.line);
                tokio::time::sleep(Duration::from_millis(d.every_ms.max(50))).await;
            }
        });
    }
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let held_mib = hoard.iter().map(Vec::len).sum::<usize>() / (1024 * 1024);
        if s.grow_memory_mib_per_s > 0 && (s.grow_memory_to_mib == 0 || held_mib < s.grow_memory_to_mib as usize) {
            // Touch every page so the memory is resident (what the kubelet measures).
            let chunk = (s.grow_memory_mib_per_s as usize * 1024 * 1024) / 10;
            hoard.push(vec![1u8; chunk]);
        }
        if let Some(e) = &s.exit
            && started.elapsed() >= Duration::from_millis(e.after_ms)
        {
            println!("done");
            return Ok(e.code);
        }
    }
}

/// A container dies with its node: when the process running the kubelet is gone (killed, even
/// with SIGKILL, which runs no clean-up), this process is re-parented and exits, so no container
/// outlives its simulated cluster and holds its pod's address.
fn exit_with_the_kubelet() {
    let kubelet = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            if std::os::unix::process::parent_id() != kubelet {
                std::process::exit(137);
            }
        }
    });
}
