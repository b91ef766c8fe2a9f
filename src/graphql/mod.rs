//! The GraphQL API: schema roots, one type per file, loaders, pagination and the error
//! mapping. Resolvers stay thin: parse arguments, call `domain` or `store`, convert.

pub mod connection;
pub mod cost;
pub mod cursor;
mod daemon_scope;
pub mod error;
pub mod extension;
pub mod loaders;
pub mod mutation;
pub mod nesting;
mod nul;
pub mod query;
pub mod subscription;
pub mod types;

use async_graphql::{Context, Schema};
use uuid::Uuid;

use crate::domain::{App, Viewer};
use crate::entities::ids::OwnerId;
use crate::error::{AppError, AppResult};
use crate::events::Events;
use loaders::Loaders;

pub type MakimaSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Limits of API.md: depth 20, complexity 1,000 fields (GraphiQL's introspection needs
/// at least depth 15 and complexity 230), 30 aliases (see `extension`), and the cost of
/// the answer by page sizes (see `cost`).
pub const MAX_DEPTH: usize = 20;
pub const MAX_ALIASES: usize = 30;

pub fn schema(app: Option<App>) -> MakimaSchema {
    build(app, None)
}

/// The schema a server runs: with the live fan-out that subscriptions read.
pub fn live_schema(app: App, events: Events) -> MakimaSchema {
    build(Some(app), Some(events))
}

fn build(app: Option<App>, events: Option<Events>) -> MakimaSchema {
    let mut builder = Schema::build(
        query::Query,
        mutation::Mutation::default(),
        subscription::Subscription,
    )
    .limit_depth(MAX_DEPTH)
    .extension(extension::DocumentRules);
    if let Some(app) = app {
        builder = builder.data(app);
    }
    if let Some(events) = events {
        builder = builder.data(events);
    }
    builder.finish()
}

/// The SDL as `makima export-schema` prints it and `schema.graphql` stores it.
pub fn sdl() -> String {
    schema(None).sdl()
}

/// Per-request data: who is asking, and loaders scoped to them.
pub fn request_data(app: &App, viewer: Viewer) -> (Viewer, Loaders) {
    let loaders = Loaders::new(&app.store, viewer.owner_id);
    (viewer, loaders)
}

pub fn app<'a>(ctx: &Context<'a>) -> &'a App {
    ctx.data_unchecked::<App>()
}

pub fn viewer<'a>(ctx: &Context<'a>) -> AppResult<&'a Viewer> {
    ctx.data_opt::<Viewer>().ok_or(AppError::Unauthenticated)
}

pub fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    let loaders = ctx.data_unchecked::<Loaders>();
    loaders.activity.bump();
    loaders
}

pub fn owner(ctx: &Context<'_>) -> AppResult<OwnerId> {
    Ok(viewer(ctx)?.owner_id)
}

/// Parses an ID argument into the id type the caller names (`TaskId`, `ContractId`, …);
/// a malformed one is `BAD_USER_INPUT`.
pub fn parse_id<I: From<Uuid>>(id: &async_graphql::ID, what: &str) -> AppResult<I> {
    Uuid::parse_str(id.as_str())
        .map(I::from)
        .map_err(|_| AppError::bad_input(format!("malformed {what} ID")))
}

pub fn parse_opt_id<I: From<Uuid>>(
    id: Option<&async_graphql::ID>,
    what: &str,
) -> AppResult<Option<I>> {
    id.map(|id| parse_id(id, what)).transpose()
}

pub fn to_id(id: impl Into<Uuid>) -> async_graphql::ID {
    async_graphql::ID(id.into().to_string())
}

/// Stored JSON text as the `JSON` scalar.
pub fn json(text: &str) -> AppResult<async_graphql::Json<serde_json::Value>> {
    Ok(async_graphql::Json(serde_json::from_str(text)?))
}
