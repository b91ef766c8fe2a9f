//! The outgoing side of a WebSocket connection: frames wait in a queue that a writer
//! task drains to the socket, so a peer that stops reading blocks only the writer.
//! The queue is bounded in bytes: the connection stops taking results from its
//! subscriptions while the queue is full (they fall behind their channels and catch up
//! from the database, holding nothing), and a queue that stays full with no frame
//! accepted for the stall time closes the connection with `TOO_SLOW`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// The close code of a connection closed because its peer stopped reading.
pub const TOO_SLOW: u16 = 4008;
/// Its reason: the client reconnects and resumes its subscriptions with `after`.
pub const TOO_SLOW_REASON: &str = "subscriber too slow: replay from your last cursor";

/// A peer that takes this long to accept one frame is gone.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(30);

enum Out {
    Frame(Message, usize),
    Close(CloseFrame),
}

/// What the connection and its writer share.
#[derive(Default)]
struct Flow {
    /// Bytes of the frames queued and not yet accepted by the socket.
    queued: AtomicUsize,
    /// A frame left the queue, or the writer stopped.
    progress: Notify,
    /// The connection is closing: stop waiting on the socket.
    abandon: Notify,
    /// Drop queued frames instead of sending them.
    discard: AtomicBool,
    /// The writer stopped (the peer is gone or the connection closed).
    gone: AtomicBool,
}

pub(super) struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    flow: Arc<Flow>,
    writer: JoinHandle<()>,
    budget: usize,
}

impl Outbox {
    /// Starts the writer over `sink`, with a queue of at most `budget` bytes.
    pub fn start(sink: SplitSink<WebSocket, Message>, budget: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let flow = Arc::new(Flow::default());
        let writer = tokio::spawn(write(sink, rx, flow.clone()));
        Self {
            tx,
            flow,
            writer,
            budget,
        }
    }

    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.flow.queued.load(Ordering::Acquire)
    }

    /// Whether a frame of `len` bytes fits in the queue now (one always fits in an
    /// empty queue, so a frame larger than the budget is still delivered).
    pub fn fits(&self, len: usize) -> bool {
        let queued = self.queued();
        queued == 0 || queued + len <= self.budget
    }

    /// Queues a frame whatever the budget (small protocol messages); false when the
    /// writer has stopped.
    pub fn push(&self, message: Message) -> bool {
        let len = match &message {
            Message::Text(t) => t.len(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Close(_) => 0,
        };
        self.flow.queued.fetch_add(len, Ordering::AcqRel);
        !self.is_gone() && self.tx.send(Out::Frame(message, len)).is_ok()
    }

    pub fn is_gone(&self) -> bool {
        self.flow.gone.load(Ordering::Acquire)
    }

    /// Waits until a frame leaves the queue or the writer stops.
    pub async fn progressed(&self) {
        self.flow.progress.notified().await
    }

    /// Sends a close frame after the queued frames (or instead of them when `discard`)
    /// and waits for the writer to finish.
    pub async fn close(self, frame: CloseFrame, discard: bool) {
        if discard {
            self.flow.discard.store(true, Ordering::Release);
            self.flow.abandon.notify_one();
        }
        let _ = self.tx.send(Out::Close(frame));
        let mut writer = self.writer;
        if tokio::time::timeout(SEND_TIMEOUT + Duration::from_secs(5), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
}

async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    flow: Arc<Flow>,
) {
    while let Some(out) = rx.recv().await {
        match out {
            Out::Frame(message, len) => {
                let sent = flow.discard.load(Ordering::Acquire)
                    || tokio::select! {
                        r = tokio::time::timeout(SEND_TIMEOUT, sink.send(message)) => matches!(r, Ok(Ok(()))),
                        // Closing: what the socket has buffered goes out before the close.
                        _ = flow.abandon.notified() => true,
                    };
                flow.queued.fetch_sub(len, Ordering::AcqRel);
                if !sent {
                    break;
                }
                flow.progress.notify_one();
            }
            Out::Close(frame) => {
                let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame))))
                    .await;
                break;
            }
        }
    }
    flow.gone.store(true, Ordering::Release);
    flow.progress.notify_one();
}
