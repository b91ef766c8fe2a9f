//! Open WebSocket connections, for graceful shutdown: axum stops tracking a connection
//! once it is upgraded, so the server closes each one itself (1001) and waits for them.
//! It also holds the outgoing-queue limits of every connection and counts what they did
//! with them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// Bytes of outgoing frames one connection may have queued, by default.
pub const DEFAULT_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// How long a full queue may go without the socket accepting a frame, by default.
pub const DEFAULT_STALL: Duration = Duration::from_secs(10);

#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    shutdown: watch::Sender<bool>,
    open: watch::Sender<usize>,
    queue_bytes: AtomicUsize,
    stall_ms: AtomicU64,
    /// The most bytes any connection had queued.
    peak_queued: AtomicUsize,
    /// Connections closed because their peer stopped reading.
    slow_closes: AtomicU64,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            shutdown: Default::default(),
            open: Default::default(),
            queue_bytes: AtomicUsize::new(DEFAULT_QUEUE_BYTES),
            stall_ms: AtomicU64::new(DEFAULT_STALL.as_millis() as u64),
            peak_queued: AtomicUsize::new(0),
            slow_closes: AtomicU64::new(0),
        }
    }
}

/// Held by a connection while it is open.
pub struct Registered {
    inner: Arc<Inner>,
    /// Changes to `true` when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

impl Registered {
    /// The byte budget of this connection's outgoing queue.
    pub fn queue_bytes(&self) -> usize {
        self.inner.queue_bytes.load(Ordering::Relaxed)
    }

    /// How long a full queue may stall before the connection is closed.
    pub fn stall(&self) -> Duration {
        Duration::from_millis(self.inner.stall_ms.load(Ordering::Relaxed))
    }

    /// Records how many bytes the connection has queued now.
    pub fn note_queued(&self, bytes: usize) {
        self.inner.peak_queued.fetch_max(bytes, Ordering::Relaxed);
    }

    /// Records a connection closed for not reading.
    pub fn note_slow_close(&self) {
        self.inner.slow_closes.fetch_add(1, Ordering::Relaxed);
    }
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

    /// Sets the outgoing-queue budget and stall time of connections opened from now on.
    pub fn set_limits(&self, queue_bytes: usize, stall: Duration) {
        self.inner.queue_bytes.store(queue_bytes, Ordering::Relaxed);
        self.inner
            .stall_ms
            .store(stall.as_millis() as u64, Ordering::Relaxed);
    }

    /// The most bytes any connection has had queued for sending.
    pub fn peak_queued_bytes(&self) -> usize {
        self.inner.peak_queued.load(Ordering::Relaxed)
    }

    /// Connections closed because their peer stopped reading.
    pub fn slow_closes(&self) -> u64 {
        self.inner.slow_closes.load(Ordering::Relaxed)
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
