//! GraphQL over WebSocket on `/graphql` (next to GraphQL over HTTP) and
//! `/graphql/ws`, in both subprotocols, with our own connection handling: small
//! buffers (1,000 idle subscribers must stay cheap), auth in `connection_init` with
//! close code 4403, and a registry that closes every connection on shutdown.

mod connection;
mod outbox;
pub mod protocol;
mod registry;

use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use outbox::{TOO_SLOW, TOO_SLOW_REASON};
pub use registry::{DEFAULT_QUEUE_BYTES, DEFAULT_STALL, Registry};

use super::AppState;
use super::auth::key_from_headers;
use protocol::Protocol;

/// tungstenite reads into a 128 KiB buffer per connection by default.
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 4 * 1024;
/// The same limit as an HTTP body.
const MAX_MESSAGE: usize = super::http::MAX_BODY;

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `GET /graphql`: a WebSocket upgrade, else GraphQL over HTTP (or GraphiQL).
pub async fn graphql_get(State(state): State<AppState>, req: Request) -> Response {
    if is_upgrade(req.headers()) {
        upgrade(state, req).await
    } else {
        super::http::graphql.call(req, state).await
    }
}

/// `GET /graphql/ws`: WebSocket only.
pub async fn ws_only(State(state): State<AppState>, req: Request) -> Response {
    upgrade(state, req).await
}

async fn upgrade(state: AppState, req: Request) -> Response {
    if state.ws.open_connections() >= state.limits.max_websockets {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket connections; try again later",
        )
            .into_response();
    }
    let (mut parts, _) = req.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let offered: Vec<String> = ws
        .requested_protocols()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let Some(protocol) = Protocol::choose(offered.iter().map(String::as_str)) else {
        return (
            StatusCode::BAD_REQUEST,
            "unsupported WebSocket subprotocol: use graphql-transport-ws or graphql-ws",
        )
            .into_response();
    };
    // A key on the upgrade request itself (non-browser clients) counts when the
    // connection_init payload carries none.
    let header_key = key_from_headers(&parts.headers).map(str::to_owned);
    ws.protocols([protocol.name()])
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| connection::run(socket, state, protocol, header_key))
}

impl AppState {
    /// Open WebSocket connections.
    pub fn open_websockets(&self) -> usize {
        self.ws.open_connections()
    }
}
