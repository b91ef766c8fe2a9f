//! GraphQL over plain HTTP/1.1: one `POST /graphql` per call on a fresh connection
//! (hyper's low-level client over a tokio `TcpStream`; no TLS, no pool).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::Shutdown;
use super::backoff::Backoff;

/// How long one call may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body read.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Where the server is: `http://HOST:PORT[/PATH]` (the path defaults to `/graphql`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `HOST:PORT`.
    pub authority: String,
    /// The GraphQL path, e.g. `/graphql`.
    pub path: String,
}

impl Endpoint {
    /// Parses a plain `http://` URL; `https://` is refused (the reference daemon speaks
    /// no TLS: put it behind a local proxy or a tunnel).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: the daemon speaks plain http:// only (no TLS)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url}: expected http://HOST:PORT[/PATH]"));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let path = match path.trim_end_matches('/') {
            "" => "/graphql".to_owned(),
            p => p.to_owned(),
        };
        Ok(Self { authority, path })
    }

    /// The WebSocket URL of the same endpoint.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.authority, self.path)
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The server could not be reached or answered without a GraphQL result (or
    /// with a server error): worth retrying.
    Transient(String),
    /// A GraphQL error: `code` is its `extensions.code`.
    Refused { code: String, message: String },
}

impl CallError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transient(_) => true,
            // The server's own failures (a busy database, a stop under way).
            Self::Refused { code, .. } => code == "INTERNAL_SERVER_ERROR",
        }
    }

    /// The GraphQL error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Transient(_) => None,
            Self::Refused { code, .. } => Some(code),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(m) => write!(f, "{m}"),
            Self::Refused { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

/// A GraphQL client with the daemon's key.
#[derive(Clone)]
pub struct Client {
    pub endpoint: Endpoint,
    key: String,
}

impl Client {
    pub fn new(endpoint: Endpoint, key: impl Into<String>) -> Self {
        Self {
            endpoint,
            key: key.into(),
        }
    }

    /// The daemon's key, for the WebSocket's `connection_init`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Runs one operation; returns its `data`.
    pub async fn call(&self, query: &str, variables: Value) -> Result<Value, CallError> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let response = tokio::time::timeout(CALL_TIMEOUT, self.post(body))
            .await
            .map_err(|_| CallError::Transient("the server did not answer in time".into()))??;
        let (status, bytes) = response;
        let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(CallError::Transient(format!(
                "HTTP {status} without a GraphQL result: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )));
        };
        if let Some(error) = body["errors"].get(0) {
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or("UNKNOWN")
                .to_owned();
            let message = error["message"].as_str().unwrap_or("").to_owned();
            return Err(CallError::Refused { code, message });
        }
        if !status.is_success() {
            return Err(CallError::Transient(format!("HTTP {status}")));
        }
        Ok(body["data"].clone())
    }

    /// `call`, retrying transient failures with backoff until it succeeds, fails for
    /// good, or the daemon stops (then the last error).
    pub async fn call_retrying(
        &self,
        query: &str,
        variables: Value,
        shutdown: &Shutdown,
    ) -> Result<Value, CallError> {
        let mut backoff = Backoff::new();
        loop {
            match self.call(query, variables.clone()).await {
                Err(e) if e.is_transient() && !shutdown.is_stopping() => {
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?wait, "call failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.stopped() => {}
                    }
                }
                other => return other,
            }
        }
    }

    async fn post(&self, body: String) -> Result<(hyper::StatusCode, Bytes), CallError> {
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            CallError::Transient(format!("{what} {}: {e}", self.endpoint.authority))
        };
        let stream = TcpStream::connect(&self.endpoint.authority)
            .await
            .map_err(|e| transient("cannot connect to", &e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transient("no HTTP/1.1 with", &e))?;
        let connection = tokio::spawn(connection);
        let request = Request::post(&self.endpoint.path)
            .header(header::HOST, &self.endpoint.authority)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| transient("bad request to", &e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transient("request failed at", &e))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| transient("cannot read the response of", &*e))?
            .to_bytes();
        connection.abort();
        Ok((status, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_plain_http_with_a_default_path() {
        let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(e.authority, "127.0.0.1:8080");
        assert_eq!(e.path, "/graphql");
        assert_eq!(e.ws_url(), "ws://127.0.0.1:8080/graphql");
        let e = Endpoint::parse("http://example.org/api/graphql/").unwrap();
        assert_eq!(e.authority, "example.org:80");
        assert_eq!(e.path, "/api/graphql");
        assert!(Endpoint::parse("https://example.org").is_err());
        assert!(Endpoint::parse("http://").is_err());
        assert!(Endpoint::parse("http://user@host:1").is_err());
    }
}
