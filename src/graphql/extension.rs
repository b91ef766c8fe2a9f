//! The rules every document and response goes through, as an async-graphql
//! extension: codes for documents that fail before they run (`GRAPHQL_PARSE_FAILED`,
//! `GRAPHQL_VALIDATION_FAILED`), the alias limit, and the one place where the detail of
//! an internal error is logged, as a response leaves the schema.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::MAX_ALIASES;
use super::error::{app_error, server_error, with_code};
use crate::error::{AppError, ErrorCode};

const PARSE_FAILED: ErrorCode = ErrorCode::GraphqlParseFailed;
const VALIDATION_FAILED: ErrorCode = ErrorCode::GraphqlValidationFailed;

pub struct DocumentRules;

impl ExtensionFactory for DocumentRules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentRules)
    }
}

/// Logs the internal errors of a response that is about to reach a client.
fn log_internal(response: &Response) {
    for err in &response.errors {
        if let Some(app) = app_error(err) {
            app.log();
        }
    }
}

fn aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => aliases(&f.node.selection_set.node),
            // Fragments are counted where they are defined, once.
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

fn alias_count(doc: &ExecutableDocument) -> usize {
    let operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| aliases(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| aliases(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

/// Why a document failed the parse step: it does not parse (`PARSE_FAILED`), or it
/// parses but nests deeper than async-graphql's recursion limit, a depth limit like
/// ours (`VALIDATION_FAILED`).
fn failure_code(query: &str) -> ErrorCode {
    match async_graphql::parser::parse_query(query) {
        Ok(_) | Err(async_graphql::parser::Error::RecursionLimitExceeded) => VALIDATION_FAILED,
        Err(_) => PARSE_FAILED,
    }
}

/// Selection sets nested too deep break the depth limit (a validation failure, as for
/// any document deeper than 20); values nested too deep are refused as unparseable.
pub fn nesting_code(too_deep: &super::nesting::TooDeep) -> ErrorCode {
    match too_deep {
        super::nesting::TooDeep::Selections => VALIDATION_FAILED,
        super::nesting::TooDeep::Values => PARSE_FAILED,
    }
}

#[async_trait::async_trait]
impl Extension for DocumentRules {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        log_internal(&response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).inspect(log_internal).boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // Every transport reaches the parser through here (WebSocket included), so the
        // nesting bound that keeps the parser's recursion finite is applied here too.
        if let Err(too_deep) = super::nesting::check(query) {
            let code = nesting_code(&too_deep);
            return Err(server_error(too_deep.message(), code));
        }
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, failure_code(query)))?;
        if super::nul::found(&doc, variables) {
            let err = AppError::bad_input(super::nul::MESSAGE);
            return Err(server_error(err.public_message(), err.code()));
        }
        if let Err(message) = super::cost::check_fields(&doc) {
            return Err(server_error(message, VALIDATION_FAILED));
        }
        if let Some(viewer) = ctx.data_opt::<crate::domain::Viewer>()
            && viewer.daemon.is_some()
            && let Some(field) = super::daemon_scope::refused_root_field(&doc)
        {
            let err = AppError::forbidden(format!(
                "a daemon key may only take and report its own daemon's work, not `{field}`"
            ));
            return Err(server_error(err.public_message(), err.code()));
        }
        if alias_count(&doc) > MAX_ALIASES {
            return Err(server_error(
                format!("the document uses more than {MAX_ALIASES} aliases"),
                VALIDATION_FAILED,
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, VALIDATION_FAILED))
                .collect::<Vec<_>>()
        })?;
        if let Err(message) = super::cost::check_cost(result.complexity) {
            return Err(vec![server_error(message, VALIDATION_FAILED)]);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Mutex;

    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    struct Failing;

    #[Object]
    impl Failing {
        async fn broken(&self) -> async_graphql::Result<Option<i32>> {
            Err(AppError::internal("SELECT secret FROM t at /srv/db").into())
        }
        async fn missing(&self) -> async_graphql::Result<Option<i32>> {
            Err(AppError::not_found("task").into())
        }
    }

    #[tokio::test]
    async fn an_internal_detail_is_logged_once_and_never_sent() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let schema = Schema::build(Failing, EmptyMutation, EmptySubscription)
            .extension(DocumentRules)
            .finish();

        let response = schema.execute("{ broken missing }").await;
        let sent = serde_json::to_string(&response).unwrap();
        assert!(!sent.contains("secret"), "{sent}");
        assert!(sent.contains("\"internal server error\""), "{sent}");
        assert!(sent.contains("INTERNAL_SERVER_ERROR"), "{sent}");
        assert!(sent.contains("NOT_FOUND"), "{sent}");
        let logged = log.text();
        assert_eq!(logged.matches("SELECT secret").count(), 1, "{logged}");
        assert!(!logged.contains("task not found"), "{logged}");

        // The WebSocket transport runs documents as streams.
        let responses: Vec<Response> = schema.execute_stream("{ broken }").collect().await;
        let sent = serde_json::to_string(&responses).unwrap();
        assert!(!sent.contains("secret"), "{sent}");
        assert_eq!(log.text().matches("SELECT secret").count(), 2);
    }
}
