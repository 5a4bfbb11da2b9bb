//! HTTP/1.1 by hand over a TCP socket, for requests no well-behaved client sends: a body
//! shorter than its Content-Length, a URI of 70 KiB, a megabyte of header fields.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Only a guard against a hung server, so that a broken build fails instead of stalling.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// Parsed JSON, `Value::Null` for an empty body, a string for anything else.
    pub body: Value,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What to do after writing the request.
#[derive(Clone, Copy, PartialEq)]
pub enum Then {
    /// Keep the connection open, sending nothing more: the server must answer on its own.
    Wait,
    /// Close our sending side (a half-close): the server sees the end of the stream.
    HalfClose,
}

/// Writes `request` (while already reading, since the server may answer before it has read
/// everything) and reads one response.
pub async fn exchange(addr: SocketAddr, request: Vec<u8>, then: Then) -> anyhow::Result<RawReply> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let sending = tokio::spawn(async move {
        // A server that answers early and stops reading may reset the connection under a large
        // request: what matters is the answer, read below.
        let _ = writer.write_all(&request).await;
        if then == Then::HalfClose {
            let _ = writer.shutdown().await;
        }
        // Keeps the sending side open (for `Wait`) until the exchange is over.
        writer
    });
    let reply = tokio::time::timeout(HANG_GUARD, read_response(&mut reader)).await.context("no response from the server")?;
    sending.abort();
    reply
}

async fn read_response(reader: &mut (impl AsyncReadExt + Unpin)) -> anyhow::Result<RawReply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = reader.read(&mut chunk).await.context("reading the response head")?;
        if n == 0 {
            bail!("connection closed before a complete response head; got {:?}", String::from_utf8_lossy(&buf));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = reader.read(&mut chunk).await.context("reading the response body")?;
        if n == 0 {
            bail!("connection closed after {} of {length} body bytes", body.len());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    Ok(RawReply { status, headers, body })
}
