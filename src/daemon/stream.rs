//! The doorbell: a `workAvailable` subscription over WebSocket (graphql-transport-ws),
//! kept open across server restarts and network failures. Each signal, and each
//! (re)connection, rings the bell; the loop then asks `daemonWork`. After a reconnect
//! the subscription resumes from the last cursor it saw, so no signal is lost.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::Shutdown;
use super::backoff::Backoff;
use super::client::Client;

const SUBPROTOCOL: &str = "graphql-transport-ws";
const WORK_AVAILABLE: &str =
    "subscription($after: String) { workAvailable(after: $after) { cursor } }";

/// Why a connection ended.
enum Ended {
    /// The daemon is stopping.
    Stopping,
    /// Anything else: reconnect.
    Lost(String),
    /// The server refused the key (close 4403, or a FORBIDDEN/UNAUTHENTICATED error):
    /// reconnecting cannot help soon, but the key may be fixed; retry slowly.
    Refused(String),
}

/// Keeps the subscription open until `shutdown`, ringing `bell` on each signal and
/// each (re)connection.
pub async fn doorbell(client: Client, bell: Arc<Notify>, shutdown: Shutdown) {
    let mut cursor: Option<String> = None;
    let mut backoff = Backoff::new();
    loop {
        let ended = tokio::select! {
            ended = connection(&client, &bell, &mut cursor, &mut backoff) => ended,
            _ = shutdown.stopped() => Ended::Stopping,
        };
        let wait = match ended {
            Ended::Stopping => return,
            Ended::Lost(why) => {
                let wait = backoff.next_delay();
                tracing::warn!(reason = %why, retry_in = ?wait, "doorbell lost; reconnecting");
                wait
            }
            Ended::Refused(why) => {
                // Jump to the cap: a refused key will not be accepted a moment later.
                let mut wait = backoff.next_delay();
                for _ in 0..8 {
                    wait = backoff.next_delay();
                }
                tracing::error!(reason = %why, retry_in = ?wait, "doorbell refused");
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.stopped() => return,
        }
    }
}

/// One connection: connects, initialises, subscribes after `cursor`, and reads until
/// it ends. Resets `backoff` once the server acknowledged the connection.
async fn connection(
    client: &Client,
    bell: &Notify,
    cursor: &mut Option<String>,
    backoff: &mut Backoff,
) -> Ended {
    let url = client.endpoint.ws_url();
    let mut request = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return Ended::Lost(format!("bad WebSocket URL {url}: {e}")),
    };
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (mut ws, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(pair) => pair,
        Err(e) => return Ended::Lost(format!("cannot connect to {url}: {e}")),
    };
    let init = json!({
        "type": "connection_init",
        "payload": { "Authorization": format!("Bearer {}", client.key()) },
    });
    if let Err(e) = ws.send(Message::Text(init.to_string().into())).await {
        return Ended::Lost(format!("cannot send connection_init: {e}"));
    }
    let mut subscribed = false;
    while let Some(frame) = ws.next().await {
        let text = match frame {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                let why = format!("closed with {code} {reason}");
                return if code == 4403 || code == 4401 {
                    Ended::Refused(why)
                } else {
                    Ended::Lost(why)
                };
            }
            Ok(_) => continue,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            return Ended::Lost(format!("not JSON: {text}"));
        };
        let reply = match message["type"].as_str() {
            Some("connection_ack") if !subscribed => {
                subscribed = true;
                backoff.reset();
                tracing::info!(after = ?cursor, "doorbell connected");
                // Whatever happened while no connection was open: look now.
                bell.notify_one();
                Some(json!({
                    "id": "work",
                    "type": "subscribe",
                    "payload": { "query": WORK_AVAILABLE, "variables": { "after": cursor } },
                }))
            }
            Some("ping") => Some(json!({ "type": "pong" })),
            Some("next") => {
                if let Some(errors) = message["payload"]["errors"].as_array() {
                    return refusal(errors, cursor);
                }
                if let Some(c) = message["payload"]["data"]["workAvailable"]["cursor"].as_str() {
                    tracing::debug!(cursor = c, "work may be available");
                    *cursor = Some(c.to_owned());
                    bell.notify_one();
                }
                None
            }
            Some("error") => {
                let errors = message["payload"].as_array().map_or(&[][..], Vec::as_slice);
                return refusal(errors, cursor);
            }
            Some("complete") => return Ended::Lost("the server completed the subscription".into()),
            _ => None,
        };
        if let Some(reply) = reply
            && let Err(e) = ws.send(Message::Text(reply.to_string().into())).await
        {
            return Ended::Lost(format!("cannot send: {e}"));
        }
    }
    Ended::Lost("the connection ended".into())
}

/// An error result of the subscription. A cursor the server does not accept is
/// forgotten (the next connection starts live, and its bell covers the gap).
fn refusal(errors: &[Value], cursor: &mut Option<String>) -> Ended {
    let code = errors
        .first()
        .and_then(|e| e["extensions"]["code"].as_str())
        .unwrap_or("UNKNOWN");
    let why = format!("{code}: {}", Value::from(errors.to_vec()));
    if code == "BAD_USER_INPUT" {
        *cursor = None;
    }
    if matches!(code, "FORBIDDEN" | "UNAUTHENTICATED") {
        Ended::Refused(why)
    } else {
        Ended::Lost(why)
    }
}
