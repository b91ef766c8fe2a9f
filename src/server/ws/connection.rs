//! One WebSocket connection: `connection_init` and auth, then operations until either
//! side closes or the server shuts down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, Response};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{AbortHandle, Abortable, BoxStream, SelectAll, SplitStream};
use futures_util::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use super::outbox::{Outbox, TOO_SLOW, TOO_SLOW_REASON};
use super::protocol::{self, ClientMessage, Protocol, close};
use super::registry::{DEFAULT_QUEUE_BYTES, Registered};
use crate::error::{AppError, ErrorCode};
use crate::graphql::request_data;
use crate::server::AppState;

/// graphql-transport-ws closes a connection that sends no `connection_init` (4408).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSocket pings keep proxies from dropping idle connections and find dead peers:
/// a peer silent for two intervals is closed.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// Operations one connection may run at once.
const MAX_OPERATIONS: usize = 100;

enum Output {
    Result(Arc<str>, Box<Response>),
    End(Arc<str>),
}

struct Conn {
    stream: SplitStream<WebSocket>,
    out: Outbox,
    protocol: Protocol,
    shutdown: watch::Receiver<bool>,
}

impl Conn {
    fn new(
        socket: WebSocket,
        protocol: Protocol,
        shutdown: watch::Receiver<bool>,
        queue_bytes: usize,
    ) -> Self {
        let (sink, stream) = socket.split();
        Self {
            stream,
            out: Outbox::start(sink, queue_bytes),
            protocol,
            shutdown,
        }
    }

    /// Queues a text message; false when the peer is gone.
    async fn send(&mut self, text: String) -> bool {
        self.out.push(Message::Text(text.into()))
    }

    /// Sends a close frame after what is queued, then reads until the peer's close
    /// (briefly), so that unread input does not turn the close into a reset that loses
    /// the frame.
    async fn close<T>(self, code: u16, reason: &str) -> Option<T> {
        self.close_with(code, reason, false).await
    }

    /// As `close`; with `discard`, the queued frames are dropped, not sent.
    async fn close_with<T>(mut self, code: u16, reason: &str, discard: bool) -> Option<T> {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        self.out.close(frame, discard).await;
        let drain = async { while let Some(Ok(_)) = self.stream.next().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        None
    }
}

pub(super) async fn run(
    socket: WebSocket,
    state: AppState,
    protocol: Protocol,
    header_key: Option<String>,
) {
    let Some(registered) = state.ws.register() else {
        let mut conn = Conn::new(
            socket,
            protocol,
            watch::channel(true).1,
            DEFAULT_QUEUE_BYTES,
        );
        conn.shutdown.mark_unchanged();
        conn.close::<()>(close::GOING_AWAY, "server shutting down")
            .await;
        return;
    };
    let conn = Conn::new(
        socket,
        protocol,
        registered.shutdown.clone(),
        registered.queue_bytes(),
    );
    let Some((conn, session)) = handshake(conn, &state, header_key).await else {
        return;
    };
    let _ = operate(conn, &state, session, &registered).await;
    drop(registered);
}

/// Waits for `connection_init` and authenticates it; the session data of the
/// connection, or `None` when it was closed.
async fn handshake(
    mut conn: Conn,
    state: &AppState,
    header_key: Option<String>,
) -> Option<(Conn, Arc<Data>)> {
    let deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(deadline);
    let payload = loop {
        let msg = tokio::select! {
            _ = &mut deadline => return conn.close(close::INIT_TIMEOUT, "Connection initialisation timeout").await,
            _ = conn.shutdown.changed() => return conn.close(close::GOING_AWAY, "server shutting down").await,
            msg = conn.stream.next() => msg,
        };
        let text = match msg {
            Some(Err(err)) if too_big(&err) => {
                return conn.close(close::TOO_BIG, "message too large").await;
            }
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return conn
                    .close(close::BAD_REQUEST, "Invalid message received")
                    .await;
            }
            Some(Ok(Message::Text(t))) => t,
        };
        match ClientMessage::parse(&text) {
            Some(ClientMessage::ConnectionInit { payload }) => break payload,
            Some(ClientMessage::Ping { payload }) => {
                if !conn.send(protocol::pong(payload.as_ref())).await {
                    return None;
                }
            }
            Some(ClientMessage::Pong { .. }) => {}
            Some(ClientMessage::ConnectionTerminate) => {
                return conn.close(close::NORMAL, "").await;
            }
            Some(ClientMessage::Subscribe { .. } | ClientMessage::Complete { .. }) => {
                return conn.close(close::UNAUTHORIZED, "Unauthorized").await;
            }
            None => {
                return conn
                    .close(close::BAD_REQUEST, "Invalid message received")
                    .await;
            }
        }
    };
    let key = protocol::key_from_init(payload.as_ref()).or(header_key);
    match state.auth.viewer(key.as_deref()).await {
        Ok(viewer) => {
            let (viewer, loaders) = request_data(&state.app, viewer);
            let mut data = Data::default();
            data.insert(viewer);
            data.insert(loaders);
            if !conn.send(protocol::ack()).await {
                return None;
            }
            Some((conn, Arc::new(data)))
        }
        Err(AppError::Unauthenticated) => {
            let message = AppError::Unauthenticated.public_message();
            if conn.protocol == Protocol::Legacy {
                let refusal =
                    protocol::connection_error(&message, AppError::Unauthenticated.code());
                if !conn.send(refusal).await {
                    return None;
                }
            }
            conn.close(close::FORBIDDEN, "Forbidden: a valid API key is required")
                .await
        }
        Err(err) => {
            err.log();
            conn.close(close::INTERNAL, "internal server error").await
        }
    }
}

/// Runs operations until the connection ends. A result goes to the outgoing queue
/// when it fits; else it waits, and no further result is taken, until the socket
/// accepts queued frames; a socket that accepts none for the stall time is closed.
async fn operate(
    mut conn: Conn,
    state: &AppState,
    session: Arc<Data>,
    registered: &Registered,
) -> Option<()> {
    let mut outputs: SelectAll<BoxStream<'static, Output>> = SelectAll::new();
    let mut running: HashMap<Arc<str>, AbortHandle> = HashMap::new();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.tick().await;
    let mut heard = true;
    // A result that did not fit in the queue, and since when the queue has not moved.
    let mut waiting: Option<String> = None;
    let mut stalled_since = Instant::now();
    let stall = registered.stall();
    loop {
        registered.note_queued(conn.out.queued());
        tokio::select! {
            msg = conn.stream.next() => {
                heard = true;
                let text = match msg {
                    Some(Err(err)) if too_big(&err) => {
                        return conn.close(close::TOO_BIG, "message too large").await;
                    }
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        return conn.close(close::BAD_REQUEST, "Invalid message received").await;
                    }
                    Some(Ok(Message::Text(t))) => t,
                };
                let Some(message) = ClientMessage::parse(&text) else {
                    return conn.close(close::BAD_REQUEST, "Invalid message received").await;
                };
                match message {
                    ClientMessage::Subscribe { id, payload } => {
                        let id: Arc<str> = id.into();
                        if let Some(old) = running.remove(&id) {
                            if conn.protocol == Protocol::TransportWs {
                                let reason = format!("Subscriber for {id} already exists");
                                return conn.close(close::DUPLICATE_ID, &reason).await;
                            }
                            old.abort();
                        }
                        if running.len() >= MAX_OPERATIONS {
                            let err = crate::graphql::error::server_error(
                                "too many operations on one connection",
                                ErrorCode::BadRequest,
                            );
                            let (text, _) = protocol::result(conn.protocol, &id, &Response::from_errors(vec![err]));
                            if !conn.send(text).await { break }
                            continue;
                        }
                        let Some(stream) = execute(state, &session, id.clone(), payload) else {
                            return conn.close(close::BAD_REQUEST, "Invalid subscribe payload").await;
                        };
                        let (handle, registration) = AbortHandle::new_pair();
                        running.insert(id, handle);
                        outputs.push(Abortable::new(stream, registration).boxed());
                    }
                    ClientMessage::Complete { id } => {
                        if let Some(handle) = running.remove(id.as_str()) {
                            handle.abort();
                            // The legacy protocol confirms a `stop`.
                            if conn.protocol == Protocol::Legacy && !conn.send(protocol::complete(&id)).await {
                                break;
                            }
                        }
                    }
                    ClientMessage::Ping { payload } => {
                        if !conn.send(protocol::pong(payload.as_ref())).await { break }
                    }
                    ClientMessage::Pong { .. } => {}
                    ClientMessage::ConnectionInit { .. } => {
                        return conn.close(close::TOO_MANY_INITS, "Too many initialisation requests").await;
                    }
                    ClientMessage::ConnectionTerminate => {
                        return conn.close(close::NORMAL, "").await;
                    }
                }
            }
            Some(output) = outputs.next(), if waiting.is_none() && !outputs.is_empty() => {
                let text = match output {
                    Output::Result(id, mut response) => {
                        crate::server::http::complete_codes(&mut response.errors);
                        let (text, failed) = protocol::result(conn.protocol, &id, &response);
                        if failed && let Some(handle) = running.remove(&id) {
                            handle.abort();
                        }
                        text
                    }
                    Output::End(id) => {
                        if running.remove(&id).is_none() {
                            continue;
                        }
                        protocol::complete(&id)
                    }
                };
                if conn.out.fits(text.len()) {
                    if !conn.send(text).await { break }
                } else {
                    waiting = Some(text);
                    stalled_since = Instant::now();
                }
            }
            _ = conn.out.progressed() => {
                if conn.out.is_gone() { break }
                stalled_since = Instant::now();
                if let Some(text) = waiting.take_if(|t| conn.out.fits(t.len()))
                    && !conn.send(text).await
                {
                    break;
                }
            }
            _ = tokio::time::sleep_until(stalled_since + stall), if waiting.is_some() => {
                registered.note_slow_close();
                return conn.close_with(TOO_SLOW, TOO_SLOW_REASON, true).await;
            }
            _ = conn.shutdown.changed() => {
                return conn.close(close::GOING_AWAY, "server shutting down").await;
            }
            _ = keepalive.tick() => {
                if !heard {
                    return conn.close(close::GOING_AWAY, "no answer to pings").await;
                }
                heard = false;
                if !conn.out.push(Message::Ping(Default::default())) { break }
            }
        }
    }
    None
}

/// Whether a receive failed because the message was larger than the limit (the
/// peer then gets 1009, as RFC 6455 asks, instead of a dropped connection).
fn too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// The outputs of one operation: its results, then its end.
fn execute(
    state: &AppState,
    session: &Arc<Data>,
    id: Arc<str>,
    payload: Value,
) -> Option<BoxStream<'static, Output>> {
    let request: async_graphql::Request = serde_json::from_value(payload).ok()?;
    let end = Output::End(id.clone());
    let results = state
        .schema
        .execute_stream_with_session_data(request, session.clone())
        .map(move |r| Output::Result(id.clone(), Box::new(r)));
    Some(results.chain(stream::once(async move { end })).boxed())
}
