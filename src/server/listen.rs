//! The accept loop: HTTP/1.1 connections served by hyper with a cap on open
//! connections and read timeouts, so a client that opens many sockets, sends half its
//! headers or trickles its body cannot hold server resources for long.
//!
//! axum's own `serve` offers none of these knobs, so connections are driven here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::{AppState, router};

/// What one client may hold, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time a client has to send a request's headers, counted from when the connection
    /// is ready for a request: when it opens, and after each response. A keep-alive
    /// connection that sends nothing for this long is closed, so this is also the idle
    /// timeout of HTTP connections.
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body once its headers arrived.
    pub body_timeout: Duration,
    /// Open HTTP connections; past it, new connections wait in the listen backlog.
    pub max_connections: usize,
    /// Open WebSocket connections; past it, an upgrade is refused with 503.
    pub max_websockets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_websockets: 10_000,
        }
    }
}

/// How long shutdown waits for requests in flight and WebSockets to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then stops accepting, lets HTTP requests in flight
/// finish, closes every WebSocket (1001) and waits for them (at most 10 s).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    let registry = state.ws.clone();
    let service = TowerToHyperService::new(router(state));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit.expect("never closed"),
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stopping.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
            }
            let _ = tokio::time::timeout(DRAIN, conn).await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    registry.close_all();
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
    registry.closed(DRAIN).await;
    Ok(())
}
