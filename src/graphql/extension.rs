//! Codes for documents that fail before they run (`GRAPHQL_PARSE_FAILED`,
//! `GRAPHQL_VALIDATION_FAILED`) and the alias limit, as an async-graphql extension.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, ValidationResult, Value, Variables};

use super::MAX_ALIASES;
use crate::error::AppError;

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

pub struct DocumentRules;

impl ExtensionFactory for DocumentRules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentRules)
    }
}

pub fn with_code(mut err: ServerError, code: &str) -> ServerError {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", Value::from(code));
    }
    err
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
fn failure_code(query: &str) -> &'static str {
    match async_graphql::parser::parse_query(query) {
        Ok(_) | Err(async_graphql::parser::Error::RecursionLimitExceeded) => VALIDATION_FAILED,
        Err(_) => PARSE_FAILED,
    }
}

/// Selection sets nested too deep break the depth limit (a validation failure, as for
/// any document deeper than 20); values nested too deep are refused as unparseable.
pub fn nesting_code(too_deep: &super::nesting::TooDeep) -> &'static str {
    match too_deep {
        super::nesting::TooDeep::Selections => VALIDATION_FAILED,
        super::nesting::TooDeep::Values => PARSE_FAILED,
    }
}

#[async_trait::async_trait]
impl Extension for DocumentRules {
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
            return Err(with_code(ServerError::new(too_deep.message(), None), code));
        }
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, failure_code(query)))?;
        if super::nul::found(&doc, variables) {
            let err = AppError::bad_input(super::nul::MESSAGE);
            return Err(with_code(
                ServerError::new(err.public_message(), None),
                err.code(),
            ));
        }
        if let Err(message) = super::cost::check_fields(&doc) {
            return Err(with_code(
                ServerError::new(message, None),
                VALIDATION_FAILED,
            ));
        }
        if alias_count(&doc) > MAX_ALIASES {
            return Err(with_code(
                ServerError::new(
                    format!("the document uses more than {MAX_ALIASES} aliases"),
                    None,
                ),
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
            return Err(vec![with_code(
                ServerError::new(message, None),
                VALIDATION_FAILED,
            )]);
        }
        Ok(result)
    }
}
