//! The HTTP server: `/graphql` (GraphQL over HTTP and GraphiQL), `/graphiql/*`
//! assets, `/healthz` and `/readyz`.

pub mod auth;
mod documents;
mod graphiql;
mod http;
mod listen;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::domain::App;
use crate::events::Events;
use crate::graphql::{MakimaSchema, live_schema};
pub use http::MAX_BODY;
pub use listen::{Limits, serve};

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub schema: MakimaSchema,
    pub auth: Arc<auth::Authenticator>,
    /// The live fan-out that subscriptions read.
    pub events: Events,
    /// Open WebSocket connections, closed on shutdown.
    pub ws: ws::Registry,
    /// Parsed documents of recent requests.
    pub documents: Arc<documents::Documents>,
    /// Timeouts and connection caps of the transport.
    pub limits: Limits,
}

impl AppState {
    pub fn new(app: App) -> Self {
        let events = Events::start(app.store.clone());
        Self::with_events(app, events)
    }

    /// A state over a fan-out made elsewhere (tests tune its channel).
    pub fn with_events(app: App, events: Events) -> Self {
        let auth = Arc::new(auth::Authenticator::new(app.store.clone()));
        Self {
            schema: live_schema(app.clone(), events.clone()),
            app,
            auth,
            events,
            ws: ws::Registry::default(),
            documents: Default::default(),
            limits: Limits::default(),
        }
    }

    /// The same state with other transport limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(ws::graphql_get).post(http::graphql))
        .route("/graphql/ws", get(ws::ws_only))
        .route("/graphiql/{name}", get(graphiql::asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.app.store.ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}
