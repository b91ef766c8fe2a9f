//! Closed-loop load: N clients, each on its own keep-alive connection, each sending
//! its next request as soon as the previous answer is in. Every run is bounded both
//! in requests per client and in time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::memmem;

use crate::http::{Conn, Request};

/// How much load one run may send.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub per_client: u64,
    pub time: Duration,
}

/// A client gives up after this many failed requests.
const MAX_FAILURES_PER_CLIENT: u64 = 20;

/// What a run measured.
#[derive(Debug, Default)]
pub struct Run {
    /// Latency of every successful request, in microseconds.
    pub micros: Vec<u32>,
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
    pub first_failure: Option<String>,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A response counts as a success when it is HTTP 200 without GraphQL errors.
fn failure(status: u16, body: &[u8]) -> Option<String> {
    if status == 200 && memmem::find(body, b"\"errors\"").is_none() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    Some(format!("HTTP {status}: {text}"))
}

/// Runs one client per entry of `requests` (client `i` sends `requests[i]` again and
/// again) until each has sent `budget.per_client` requests or `budget.time` is up.
pub async fn closed_loop(addr: SocketAddr, requests: Vec<Arc<Request>>, budget: Budget) -> Run {
    let started = Instant::now();
    let deadline = started + budget.time;
    let mut clients = tokio::task::JoinSet::new();
    for request in requests {
        clients.spawn(async move {
            let mut conn = Conn::new(addr);
            let mut run = Run {
                micros: Vec::with_capacity(budget.per_client.min(200_000) as usize),
                ..Run::default()
            };
            let mut sent = 0;
            while sent < budget.per_client && Instant::now() < deadline {
                sent += 1;
                let t = Instant::now();
                let outcome = match conn.send(&request).await {
                    Ok((status, body)) => failure(status, body),
                    Err(e) => Some(e.to_string()),
                };
                match outcome {
                    None => {
                        run.ok += 1;
                        run.micros
                            .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    Some(why) => {
                        run.failed += 1;
                        run.first_failure.get_or_insert(why);
                        if run.failed >= MAX_FAILURES_PER_CLIENT {
                            break;
                        }
                    }
                }
            }
            run
        });
    }
    let mut total = Run::default();
    while let Some(joined) = clients.join_next().await {
        let run = joined.unwrap_or_else(|e| Run {
            failed: 1,
            first_failure: Some(format!("client task failed: {e}")),
            ..Run::default()
        });
        total.micros.extend(run.micros);
        total.ok += run.ok;
        total.failed += run.failed;
        if total.first_failure.is_none() {
            total.first_failure = run.first_failure;
        }
    }
    total.elapsed = started.elapsed();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_errors_are_failures() {
        assert!(failure(200, br#"{"data":{"x":1}}"#).is_none());
        assert!(failure(200, br#"{"data":null,"errors":[{"message":"no"}]}"#).is_some());
        assert!(failure(401, b"{}").is_some());
    }
}
