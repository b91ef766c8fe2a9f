//! The two GraphQL-over-WebSocket subprotocols, as their client libraries speak them:
//! `graphql-transport-ws` (the `graphql-ws` library) and the legacy `graphql-ws`
//! (`subscriptions-transport-ws`). Client messages in, server messages out.

use async_graphql::{Response, ServerError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;

/// Close codes of graphql-transport-ws (the legacy protocol uses 4403 too).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`.
    TransportWs,
    /// The legacy `graphql-ws`.
    Legacy,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::Legacy => "graphql-ws",
        }
    }

    /// The protocol to speak given the client's offer, most current first. With no
    /// offer at all, `graphql-transport-ws`; with only unknown ones, none.
    pub fn choose<'a>(offered: impl Iterator<Item = &'a str>) -> Option<Self> {
        let offered: Vec<&str> = offered.map(str::trim).collect();
        if offered.is_empty() {
            return Some(Self::TransportWs);
        }
        [Self::TransportWs, Self::Legacy]
            .into_iter()
            .find(|p| offered.iter().any(|o| o.eq_ignore_ascii_case(p.name())))
    }
}

/// What a client sends (both protocols; `start`/`stop` are the legacy names).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    #[serde(alias = "start")]
    Subscribe {
        id: String,
        payload: Value,
    },
    #[serde(alias = "stop")]
    Complete {
        id: String,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<Value>,
    },
    ConnectionTerminate,
}

impl ClientMessage {
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// The API key in a `connection_init` payload: `authorization` (`Bearer <key>`),
/// `apiKey` or `x-api-key`, keys matched case-insensitively (GraphiQL sends its header
/// editor's `Authorization`), also inside a nested `headers` object.
pub fn key_from_init(payload: Option<&Value>) -> Option<String> {
    let obj = payload?.as_object()?;
    let direct = obj.iter().find_map(|(k, v)| {
        let v = v.as_str()?.trim();
        if k.eq_ignore_ascii_case("authorization") {
            let key = match v.get(..7) {
                Some(p) if p.eq_ignore_ascii_case("bearer ") => &v[7..],
                _ => v,
            };
            Some(key.trim().to_owned())
        } else if k.eq_ignore_ascii_case("apikey") || k.eq_ignore_ascii_case("x-api-key") {
            Some(v.to_owned())
        } else {
            None
        }
    });
    direct.or_else(|| {
        let (_, headers) = obj
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("headers"))?;
        key_from_init(Some(headers))
    })
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    ConnectionAck,
    ConnectionError {
        payload: &'a Value,
    },
    Next {
        id: &'a str,
        payload: &'a Response,
    },
    Data {
        id: &'a str,
        payload: &'a Response,
    },
    Error {
        id: &'a str,
        payload: &'a [ServerError],
    },
    Complete {
        id: &'a str,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<&'a Value>,
    },
}

fn text(message: &ServerMessage<'_>) -> String {
    serde_json::to_string(message).expect("server messages serialise")
}

pub fn ack() -> String {
    text(&ServerMessage::ConnectionAck)
}

pub fn pong(payload: Option<&Value>) -> String {
    text(&ServerMessage::Pong { payload })
}

pub fn complete(id: &str) -> String {
    text(&ServerMessage::Complete { id })
}

/// The legacy protocol's refusal of a `connection_init`.
pub fn connection_error(message: &str, code: ErrorCode) -> String {
    let payload =
        serde_json::json!({ "message": message, "extensions": { "code": code.as_str() } });
    text(&ServerMessage::ConnectionError { payload: &payload })
}

/// One result of an operation: `next` (`data` in the legacy protocol), or, for a
/// result with errors and no data (the operation failed as a whole), `error`, after
/// which the operation is over.
pub fn result(protocol: Protocol, id: &str, response: &Response) -> (String, bool) {
    if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
        let msg = ServerMessage::Error {
            id,
            payload: &response.errors,
        };
        return (text(&msg), true);
    }
    let msg = match protocol {
        Protocol::TransportWs => ServerMessage::Next {
            id,
            payload: response,
        },
        Protocol::Legacy => ServerMessage::Data {
            id,
            payload: response,
        },
    };
    (text(&msg), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_key_however_it_is_spelled() {
        for payload in [
            json!({ "Authorization": "Bearer k1" }),
            json!({ "authorization": "bearer k1" }),
            json!({ "apiKey": "k1" }),
            json!({ "APIKEY": "k1" }),
            json!({ "X-Api-Key": "k1" }),
            json!({ "headers": { "Authorization": "Bearer k1" } }),
        ] {
            assert_eq!(
                key_from_init(Some(&payload)).as_deref(),
                Some("k1"),
                "{payload}"
            );
        }
        assert_eq!(key_from_init(Some(&json!({ "other": "k1" }))), None);
        assert_eq!(key_from_init(Some(&json!("k1"))), None);
        assert_eq!(key_from_init(None), None);
    }

    #[test]
    fn chooses_the_current_protocol_first() {
        let p = |o: &[&str]| Protocol::choose(o.iter().copied());
        assert_eq!(p(&[]), Some(Protocol::TransportWs));
        assert_eq!(p(&["graphql-ws"]), Some(Protocol::Legacy));
        assert_eq!(
            p(&["graphql-ws", "graphql-transport-ws"]),
            Some(Protocol::TransportWs)
        );
        assert_eq!(p(&["mqtt"]), None);
    }

    #[test]
    fn parses_both_vocabularies() {
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"start","id":"1","payload":{"query":"{a}"}}"#),
            Some(ClientMessage::Subscribe { .. })
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"stop","id":"1"}"#),
            Some(ClientMessage::Complete { .. })
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"connection_init"}"#),
            Some(ClientMessage::ConnectionInit { payload: None })
        ));
        assert!(ClientMessage::parse(r#"{"type":"nope"}"#).is_none());
    }
}
