//! The connections under the HTTP server.
//!
//! hyper answers some requests itself, before any of our code sees them: a request line or
//! header field it cannot parse (400), a URI of 64 KiB or more (414: the `http` crate cannot
//! hold one), a head larger than its read buffer or with more than 100 header fields (431).
//! axum offers no way to raise those limits or to shape those answers, and hyper sends them
//! with an empty body, while every client error of these services promises the JSON error
//! shape. [`EdgeListener`] hands hyper connections that rewrite exactly those answers on their
//! way out, and that close without destroying an answer the client has not read yet.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::error::ApiError;
use crate::http::{MAX_HEADER_BYTES, MAX_URI_BYTES};

/// How long, and for how many bytes, a closing connection keeps reading what the peer still
/// sends (see [`linger`]).
const LINGER: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 8 * 1024 * 1024;

/// A TCP listener whose connections are [`EdgeStream`]s; give it to `axum::serve`.
pub struct EdgeListener(TcpListener);

impl EdgeListener {
    pub fn new(listener: TcpListener) -> Self {
        Self(listener)
    }
}

impl axum::serve::Listener for EdgeListener {
    type Io = EdgeStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (EdgeStream, SocketAddr) {
        // axum's own accept loop for TCP: it logs and backs off on errors such as EMFILE.
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (EdgeStream { stream: Some(stream), pending: Vec::new(), peer_done: false }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

pub struct EdgeStream {
    /// Taken only when the connection is dropped.
    stream: Option<TcpStream>,
    /// A rewritten answer not yet fully written to the socket.
    pending: Vec<u8>,
    /// The peer has stopped sending (end of stream or a failed read): nothing left to drain.
    peer_done: bool,
}

impl EdgeStream {
    fn stream(stream: &mut Option<TcpStream>) -> io::Result<&mut TcpStream> {
        stream.as_mut().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "connection already closed"))
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let written = ready!(Pin::new(Self::stream(&mut self.stream)?).poll_write(cx, &self.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..written);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for EdgeStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (before, room) = (buf.filled().len(), buf.remaining() > 0);
        let result = ready!(Pin::new(Self::stream(&mut this.stream)?).poll_read(cx, buf));
        if result.is_err() || (room && buf.filled().len() == before) {
            this.peer_done = true;
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for EdgeStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = json_answer(buf) {
            this.pending = answer;
            // As much as the socket takes now; flush and shutdown write the rest.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(Self::stream(&mut this.stream)?).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(Self::stream(&mut this.stream)?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(Self::stream(&mut this.stream)?).poll_shutdown(cx)
    }

    /// Not vectored, so hyper writes each response head in one piece, where [`json_answer`]
    /// can recognise it.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl Drop for EdgeStream {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else { return };
        if self.peer_done && self.pending.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, std::mem::take(&mut self.pending)));
        }
    }
}

/// Closing a socket the peer is still writing to resets the connection, and the reset can
/// destroy our answer in the peer's receive buffer before the peer has read it: typically an
/// early 413, 408 or 431 while the client is still sending. So finish the answer, signal the
/// end of our side, and read and discard what the peer still sends, within bounds, before
/// closing.
async fn linger(mut stream: TcpStream, pending: Vec<u8>) {
    let drain = async {
        if stream.write_all(&pending).await.is_err() {
            return;
        }
        let _ = stream.shutdown().await;
        let mut discard = vec![0u8; 16 * 1024];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match stream.read(&mut discard).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// hyper's own answer to a request it could not parse is a bare head: a 400, 414 or 431 status
/// line, then exactly `connection: close`, `content-length: 0` and `date`. Our responses always
/// carry a content type, so nothing else matches. Returns the same answer with the JSON error
/// body.
fn json_answer(written: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(written).ok()?.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let (version, rest) = status_line.split_once(' ')?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let (mut close, mut empty, mut date) = (false, false, None);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "connection" if value.eq_ignore_ascii_case("close") => close = true,
            "content-length" if value == "0" => empty = true,
            "date" => date = Some(value),
            _ => return None,
        }
    }
    let date = date.filter(|_| close && empty)?;
    let error = match rest.get(..3)?.parse::<u16>().ok()? {
        400 => ApiError::new(StatusCode::BAD_REQUEST, "malformed_request", "the request could not be parsed as HTTP/1.1"),
        414 => ApiError::uri_too_long(MAX_URI_BYTES),
        431 => ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request head is too large (header fields take at most {MAX_HEADER_BYTES} bytes) or has more than 100 header fields"
            ),
        )
        .with_details(json!({"limit_bytes": MAX_HEADER_BYTES})),
        _ => return None,
    };
    let body = serde_json::to_vec(&error.into_body()).ok()?;
    let mut answer = format!(
        "{status_line}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\ndate: {date}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(answer: &[u8]) -> serde_json::Value {
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn hypers_bare_answers_get_the_json_error_shape() {
        let date = "date: Sun, 29 Nov 2026 14:15:09 GMT";
        for (status_line, code) in [
            ("HTTP/1.1 414 URI Too Long", "uri_too_long"),
            ("HTTP/1.1 431 Request Header Fields Too Large", "headers_too_large"),
            ("HTTP/1.1 400 Bad Request", "malformed_request"),
        ] {
            let bare = format!("{status_line}\r\nconnection: close\r\ncontent-length: 0\r\n{date}\r\n\r\n");
            let answer = json_answer(bare.as_bytes()).unwrap_or_else(|| panic!("{status_line} not recognised"));
            let text = String::from_utf8(answer.clone()).unwrap();
            assert!(text.starts_with(&format!("{status_line}\r\n")), "{text}");
            assert!(text.contains("content-type: application/json\r\n"), "{text}");
            let body = body_of(&answer);
            assert_eq!(body["error"]["code"], code);
            let (_, rest) = text.split_once("content-length: ").unwrap();
            let length: usize = rest.split("\r\n").next().unwrap().parse().unwrap();
            assert_eq!(length, text.split_once("\r\n\r\n").unwrap().1.len(), "content-length matches the body");
        }
    }

    #[test]
    fn responses_of_the_services_pass_untouched() {
        for written in [
            // An error of ours: it has a content type and a body.
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\ndate: x\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            "{\"error\": \"HTTP/1.1 414 URI Too Long\"}",
            "",
        ] {
            assert_eq!(json_answer(written.as_bytes()), None, "{written}");
        }
    }
}
