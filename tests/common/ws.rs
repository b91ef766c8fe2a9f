//! A real server on a TCP port and a real WebSocket client speaking both GraphQL
//! subprotocols, for the subscription tests.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use makima::server::AppState;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

/// How long a test waits for one message before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// makima served on 127.0.0.1 (an ephemeral port) until `shutdown`.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                makima::server::serve(listener, state, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            }
        });
        Self {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Shuts down as on SIGTERM and waits until the server has stopped.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops")
                .expect("server task");
        }
    }

    /// Waits until the server has at least `n` open subscriptions.
    pub async fn subscribers_at_least(&self, n: usize) {
        let mut count = self.state.events.subscribers();
        tokio::time::timeout(WAIT, count.wait_for(|c| *c >= n))
            .await
            .expect("subscriptions start")
            .expect("fan-out alive");
    }
}

impl TestApp {
    /// Serves this app's router on a TCP port (sharing its database and fan-out).
    pub async fn serve(&self) -> TestServer {
        TestServer::start(self.state.clone()).await
    }

    /// The newest timeline cursor the default owner sees (a start point for `after`).
    pub async fn last_cursor(&self) -> String {
        self.last_cursor_as(&self.key.clone()).await
    }

    pub async fn last_cursor_as(&self, key: &str) -> String {
        let data = self
            .ok_as(
                key,
                "{ timeline(last: 1) { pageInfo { endCursor } } }",
                json!({}),
            )
            .await;
        data["timeline"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(start_cursor)
    }

    /// Every cursor of the owner's timeline after `after`, oldest first.
    pub async fn timeline_after(&self, key: &str, after: &str) -> Vec<String> {
        let mut out = vec![];
        let mut after = after.to_owned();
        loop {
            let data = self
                .ok_as(
                    key,
                    "query($a: String) { timeline(first: 100, after: $a) { nodes { cursor } pageInfo { hasNextPage endCursor } } }",
                    json!({ "a": after }),
                )
                .await;
            let t = &data["timeline"];
            for n in t["nodes"].as_array().unwrap() {
                out.push(n["cursor"].as_str().unwrap().to_owned());
            }
            if !t["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                return out;
            }
            after = t["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
        }
    }
}

/// The cursor before every event (`tl:0.0`).
pub fn start_cursor() -> String {
    use makima::graphql::cursor::Cursor;
    makima::store::history::TimelineCursor { tx_id: 0, seq: 0 }.encode()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// graphql-transport-ws (the graphql-ws library).
    TransportWs,
    /// The legacy graphql-ws (subscriptions-transport-ws).
    Legacy,
}

impl Proto {
    pub const BOTH: [Proto; 2] = [Proto::TransportWs, Proto::Legacy];

    pub fn name(self) -> &'static str {
        match self {
            Proto::TransportWs => "graphql-transport-ws",
            Proto::Legacy => "graphql-ws",
        }
    }
    fn subscribe(self) -> &'static str {
        match self {
            Proto::TransportWs => "subscribe",
            Proto::Legacy => "start",
        }
    }
    fn stop(self) -> &'static str {
        match self {
            Proto::TransportWs => "complete",
            Proto::Legacy => "stop",
        }
    }
    fn next(self) -> &'static str {
        match self {
            Proto::TransportWs => "next",
            Proto::Legacy => "data",
        }
    }
}

/// What the server sent.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Close(u16, String),
    /// The connection ended without a close frame.
    Gone,
}

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub proto: Proto,
}

impl WsClient {
    /// Opens a WebSocket on `path`, offering `proto`.
    pub async fn connect(addr: SocketAddr, path: &str, proto: Proto) -> Self {
        let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", proto.name().parse().unwrap());
        let (ws, res) = tokio_tungstenite::connect_async(req)
            .await
            .expect("WebSocket handshake");
        assert_eq!(
            res.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(proto.name()),
            "the server picks the offered subprotocol"
        );
        Self { ws, proto }
    }

    /// Connects to `/graphql` and initialises with `Authorization: Bearer <key>`.
    pub async fn open(addr: SocketAddr, proto: Proto, key: &str) -> Self {
        let mut c = Self::connect(addr, "/graphql", proto).await;
        match c
            .init(json!({ "Authorization": format!("Bearer {key}") }))
            .await
        {
            Frame::Json(v) if v["type"] == "connection_ack" => c,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// The next message, skipping keep-alives.
    pub async fn recv(&mut self) -> Frame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message within the time limit");
            match msg {
                None | Some(Err(_)) => return Frame::Gone,
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON message");
                    if v["type"] == "ka" {
                        continue;
                    }
                    return Frame::Json(v);
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) => Frame::Close(u16::from(f.code), f.reason.to_string()),
                        None => Frame::Close(1005, String::new()),
                    };
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Sends `connection_init` with `payload` (or none for `Value::Null`) and returns
    /// the answer.
    pub async fn init(&mut self, payload: Value) -> Frame {
        let msg = if payload.is_null() {
            json!({ "type": "connection_init" })
        } else {
            json!({ "type": "connection_init", "payload": payload })
        };
        self.send(msg).await;
        self.recv().await
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let msg = json!({ "type": self.proto.subscribe(), "id": id,
            "payload": { "query": query, "variables": variables } });
        self.send(msg).await;
    }

    pub async fn stop(&mut self, id: &str) {
        let msg = json!({ "type": self.proto.stop(), "id": id });
        self.send(msg).await;
    }

    /// The `data` of the next result of operation `id`; fails on anything else.
    pub async fn next_data(&mut self, id: &str) -> Value {
        match self.recv().await {
            Frame::Json(v) if v["type"] == self.proto.next() && v["id"] == id => {
                assert!(
                    v["payload"].get("errors").is_none(),
                    "unexpected errors: {v}"
                );
                v["payload"]["data"].clone()
            }
            other => panic!("expected a result of {id}, got {other:?}"),
        }
    }

    /// The next message, which must be an `error` for `id`; returns its first error's
    /// code.
    pub async fn error_code(&mut self, id: &str) -> String {
        match self.recv().await {
            Frame::Json(v) if v["type"] == "error" && v["id"] == id => {
                v["payload"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            }
            other => panic!("expected an error for {id}, got {other:?}"),
        }
    }

    /// The close frame the server sends next (after any other messages).
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.recv().await {
                Frame::Close(code, reason) => return (code, reason),
                Frame::Gone => panic!("connection ended without a close frame"),
                Frame::Json(_) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
