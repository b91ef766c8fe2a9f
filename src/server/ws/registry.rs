//! Open WebSocket connections, for graceful shutdown: axum stops tracking a connection
//! once it is upgraded, so the server closes each one itself (1001) and waits for them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    shutdown: watch::Sender<bool>,
    open: watch::Sender<usize>,
}

/// Held by a connection while it is open.
pub struct Registered {
    inner: Arc<Inner>,
    /// Changes to `true` when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.inner.open.send_modify(|n| *n -= 1);
    }
}

impl Registry {
    /// Registers a new connection; `None` once the server is shutting down.
    pub fn register(&self) -> Option<Registered> {
        let shutdown = self.inner.shutdown.subscribe();
        if *shutdown.borrow() {
            return None;
        }
        self.inner.open.send_modify(|n| *n += 1);
        Some(Registered {
            inner: self.inner.clone(),
            shutdown,
        })
    }

    /// Asks every open connection to close (1001, going away).
    pub fn close_all(&self) {
        self.inner.shutdown.send_replace(true);
    }

    pub fn open_connections(&self) -> usize {
        *self.inner.open.borrow()
    }

    /// Waits until every connection has closed, at most `limit`.
    pub async fn closed(&self, limit: Duration) {
        let mut open = self.inner.open.subscribe();
        let _ = tokio::time::timeout(limit, open.wait_for(|n| *n == 0)).await;
    }
}
