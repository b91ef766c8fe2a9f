//! A WebSocket client that subscribes and then stops reading, on a socket with a small
//! receive buffer, so that the server's writes back up quickly.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What a client reading at last found: the results of its operation, then the close.
pub struct Drained {
    pub results: Vec<Value>,
    /// `(code, reason)` of the close frame; `None` when the connection just ended.
    pub close: Option<(u16, String)>,
}

pub struct SilentClient {
    ws: WebSocketStream<TcpStream>,
}

impl SilentClient {
    /// Connects to `/graphql` (graphql-transport-ws) with a tiny receive buffer and
    /// initialises with `key`.
    pub async fn open(addr: SocketAddr, key: &str) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect");
        let mut req = format!("ws://{addr}/graphql")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (ws, _) = tokio_tungstenite::client_async(req, stream)
            .await
            .expect("WebSocket handshake");
        let mut client = Self { ws };
        let init = json!({ "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {key}") } });
        client.send(init).await;
        match client.ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("connection_ack") => client,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// Subscribes (and reads nothing until `drain`).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let msg = json!({ "type": "subscribe", "id": id,
            "payload": { "query": query, "variables": variables } });
        self.send(msg).await;
    }

    /// Reads everything the server sent, up to its close frame or the end.
    pub async fn drain(mut self, wait: Duration) -> Drained {
        let mut results = vec![];
        loop {
            let msg = tokio::time::timeout(wait, self.ws.next())
                .await
                .expect("the server sends or closes within the time limit");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON message");
                    if v["type"] == "next" {
                        results.push(v["payload"]["data"].clone());
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    return Drained { results, close };
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    return Drained {
                        results,
                        close: None,
                    };
                }
            }
        }
    }
}
