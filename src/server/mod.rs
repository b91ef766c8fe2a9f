//! The HTTP server: `/graphql` (GraphQL over HTTP and GraphiQL), `/graphiql/*`
//! assets, `/healthz` and `/readyz`.

pub mod auth;
mod graphiql;
mod http;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::domain::App;
use crate::graphql::{MakimaSchema, schema};

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub schema: MakimaSchema,
    pub auth: Arc<auth::Authenticator>,
}

impl AppState {
    pub fn new(app: App) -> Self {
        let auth = Arc::new(auth::Authenticator::new(app.store.clone()));
        Self {
            schema: schema(Some(app.clone())),
            app,
            auth,
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(http::graphql).post(http::graphql))
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
