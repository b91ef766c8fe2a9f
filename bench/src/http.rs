//! A minimal HTTP/1.1 client over tokio's `TcpStream`: one keep-alive connection per
//! simulated client, requests serialised once up front, responses read by their
//! `Content-Length` (which is what makima sends). Lean on purpose: the load generator
//! shares the server's two cores, so every microsecond it spends is taken from the
//! figures.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// No single request may take longer than this; a stuck server fails the bench.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Responses larger than this are refused (a page of 50 events is a few tens of KiB).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Where requests go and with which API key.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub key: String,
}

/// A complete request, serialised once and sent as is, any number of times.
#[derive(Clone, Debug)]
pub struct Request(Vec<u8>);

impl Endpoint {
    /// `POST /graphql` with a JSON body `{query, operationName, variables}`.
    /// An empty `operation` names none (a document with one anonymous operation).
    pub fn graphql(&self, operation: &str, query: &str, variables: serde_json::Value) -> Request {
        let mut body = serde_json::json!({ "query": query, "variables": variables });
        if !operation.is_empty() {
            body["operationName"] = operation.into();
        }
        let body = body.to_string();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nAccept: application/graphql-response+json\r\n\
             Content-Length: {}\r\n\r\n",
            self.addr,
            self.key,
            body.len()
        );
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        Request(bytes)
    }

    /// A bodiless `GET` (health checks).
    pub fn get(&self, path: &str) -> Request {
        Request(format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr).into_bytes())
    }
}

/// One keep-alive connection; connects (again) on demand.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    body_start: usize,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(64 * 1024),
            body_start: 0,
        }
    }

    /// Sends `req` and returns the status and body of the response. The body borrows
    /// the connection's buffer until the next request. A failed request is not retried
    /// (it may have been a mutation); the next one reconnects.
    pub async fn send(&mut self, req: &Request) -> Result<(u16, &[u8])> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(req)).await {
            Ok(Ok(status)) => Ok((status, &self.buf[self.body_start..])),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                self.stream = None;
                Err(Error::msg("request timed out"))
            }
        }
    }

    async fn exchange(&mut self, req: &Request) -> Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let result = self.exchange_on_stream(req).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange_on_stream(&mut self, req: &Request) -> Result<u16> {
        let stream = self.stream.as_mut().expect("connected");
        stream.write_all(&req.0).await?;
        self.buf.clear();
        // Read until the end of the headers.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 64 * 1024 {
                return Err(Error::msg("response headers too large"));
            }
            read_more(stream, &mut self.buf).await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| Error::msg("response headers are not UTF-8"))?;
        let status = parse_status(head)?;
        let mut length = None;
        let mut close = false;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(Error::msg(format!(
                    "unsupported transfer-encoding {value} (expected Content-Length)"
                )));
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                close = true;
            }
        }
        let length = length.ok_or_else(|| Error::msg("response without Content-Length"))?;
        if length > MAX_RESPONSE {
            return Err(Error::msg(format!(
                "response of {length} bytes is too large"
            )));
        }
        while self.buf.len() < head_end + length {
            read_more(stream, &mut self.buf).await?;
        }
        if self.buf.len() > head_end + length {
            return Err(Error::msg("unexpected bytes after the response body"));
        }
        self.body_start = head_end;
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    buf.reserve(16 * 1024);
    let n = stream.read_buf(buf).await?;
    if n == 0 {
        return Err(Error::msg("connection closed by the server"));
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_status(head: &str) -> Result<u16> {
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    match (parts.next(), parts.next().and_then(|s| s.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(Error::msg(format!("malformed status line {line:?}"))),
    }
}

/// Sends one request on a fresh connection and parses the JSON answer (setup queries,
/// not measured). A GraphQL error fails the bench.
pub async fn query_json(ep: &Endpoint, req: &Request) -> Result<serde_json::Value> {
    let mut conn = Conn::new(ep.addr);
    let (status, body) = conn.send(req).await?;
    let value: serde_json::Value = serde_json::from_slice(body)?;
    if status != 200 || value.get("errors").is_some() {
        return Err(Error::msg(format!("HTTP {status}: {value}")));
    }
    Ok(value)
}

/// The string at `path` under `data` in a GraphQL response.
pub fn data_str(response: &serde_json::Value, path: &[&str]) -> Result<String> {
    let mut v = &response["data"];
    for key in path {
        v = &v[*key];
    }
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::msg(format!("nothing at {path:?} in {response}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status("HTTP/1.1 200 OK\r\n").unwrap(), 200);
        assert_eq!(parse_status("HTTP/1.1 413 Payload Too Large").unwrap(), 413);
        assert!(parse_status("SSH-2.0").is_err());
        assert_eq!(find(b"ab\r\n\r\ncd", b"\r\n\r\n"), Some(2));
    }
}
