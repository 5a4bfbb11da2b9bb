//! HTTP probes with the kubelet's outcome and wording (pkg/probe/http): 200-399 succeeds;
//! otherwise `HTTP probe failed with statuscode: 503`, or the dial error
//! (`Get "http://…": dial tcp …: connect: connection refused`).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `Ok(())` when healthy, `Err(message)` as the kubelet reports a failure.
pub async fn http_probe(http: &reqwest::Client, pod_ip: &str, c: &Container, probe: &Probe) -> Result<(), String> {
    let Some(get) = &probe.http_get else { return Ok(()) };
    let port = match &get.port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            c.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name.as_str())).map(|p| p.container_port).unwrap_or(0)
        }
    };
    let url = format!("http://{pod_ip}:{port}{}", get.path.clone().unwrap_or_else(|| "/".into()));
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1).unsigned_abs().into());
    match http.get(&url).timeout(timeout).send().await {
        Ok(r) if (200..400).contains(&r.status().as_u16()) => Ok(()),
        Ok(r) => Err(format!("HTTP probe failed with statuscode: {}", r.status().as_u16())),
        Err(e) if e.is_timeout() => {
            Err(format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
        }
        Err(_) => Err(format!("Get \"{url}\": dial tcp {pod_ip}:{port}: connect: connection refused")),
    }
}
