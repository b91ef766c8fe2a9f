//! GraphQL over HTTP: our own request parsing and response, for content negotiation,
//! status codes, the 1 MiB body limit (413), refusing batches and mutations by GET,
//! and `extensions.code` on transport errors.

use std::time::Instant;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{ServerError, Value};
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::Instrument;

use super::AppState;
use super::auth::key_from_headers;
use crate::error::AppError;
use crate::graphql::extension::{PARSE_FAILED, VALIDATION_FAILED};
use crate::graphql::request_data;

pub const MAX_BODY: usize = 1024 * 1024;
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The fields of a GraphQL-over-HTTP request.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostBody {
    query: Option<String>,
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
}

/// The media type to answer with: graphql-response+json when the client accepts it
/// (or says nothing), else application/json.
fn response_type(headers: &HeaderMap) -> &'static str {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.is_empty() || accept.contains(GRAPHQL_RESPONSE) {
        GRAPHQL_RESPONSE
    } else if accept.contains(JSON) || accept.contains("*/*") {
        JSON
    } else {
        GRAPHQL_RESPONSE
    }
}

fn json_response(status: StatusCode, media: &'static str, body: Vec<u8>) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    res
}

/// A request that never reached execution.
fn error_response(status: StatusCode, media: &'static str, message: &str, code: &str) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    json_response(status, media, body.to_string().into_bytes())
}

fn app_error_response(err: AppError, media: &'static str) -> Response {
    let status = match err {
        AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    if let AppError::Internal(detail) = &err {
        tracing::error!(%detail, "internal error");
    }
    error_response(status, media, &err.public_message(), err.code())
}

fn bad_request(media: &'static str, message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, media, message, "BAD_REQUEST")
}

fn is_mutation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let ty = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    };
    ty == Some(OperationType::Mutation)
}

fn parse_variables(
    value: Option<serde_json::Value>,
) -> Result<async_graphql::Variables, &'static str> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(Default::default()),
        Some(v @ serde_json::Value::Object(_)) => Ok(async_graphql::Variables::from_json(v)),
        Some(_) => Err("variables must be a JSON object"),
    }
}

/// Errors that async-graphql raises without a code get one here, so every error a
/// client sees carries `extensions.code`.
pub(super) fn complete_codes(errors: &mut [ServerError]) {
    for err in errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if !has_code {
            let code = if err.path.is_empty() {
                VALIDATION_FAILED
            } else {
                "BAD_USER_INPUT"
            };
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", Value::from(code));
        }
    }
}

pub async fn graphql(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
    body: Body,
) -> Response {
    let media = response_type(&headers);
    let (query, operation_name, variables) = if method == Method::GET {
        let wants_html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if params.query.is_none() && wants_html {
            return super::graphiql::page();
        }
        let variables = match params
            .variables
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
        {
            Ok(v) => v,
            Err(_) => return bad_request(media, "variables must be JSON"),
        };
        let _ = params.extensions;
        (params.query, params.operation_name, variables)
    } else {
        let bytes = match to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    media,
                    "request body is larger than 1 MiB",
                    "BAD_REQUEST",
                );
            }
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with(JSON) && !content_type.is_empty() {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                media,
                "send the request as application/json",
                "BAD_REQUEST",
            );
        }
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return bad_request(
                media,
                "batched requests are not supported; send one operation per request",
            );
        }
        match serde_json::from_slice::<PostBody>(&bytes) {
            Ok(b) => (b.query, b.operation_name, b.variables),
            Err(_) => return bad_request(media, "the body must be a JSON object with a query"),
        }
    };
    let Some(query) = query else {
        return bad_request(media, "the request has no query");
    };
    let variables = match parse_variables(variables) {
        Ok(v) => v,
        Err(msg) => return bad_request(media, msg),
    };
    if method == Method::GET && is_mutation(&query, operation_name.as_deref()) {
        let mut res = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "mutations must be sent with POST",
            "BAD_REQUEST",
        );
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }

    let viewer = match state.auth.viewer(key_from_headers(&headers)).await {
        Ok(v) => v,
        Err(err) => return app_error_response(err, media),
    };
    let span = tracing::info_span!(
        "graphql",
        operation = operation_name.as_deref().unwrap_or(""),
        owner = %viewer.owner,
    );
    let started = Instant::now();
    let (viewer, loaders) = request_data(&state.app, viewer);
    let mut request = async_graphql::Request::new(query)
        .variables(variables)
        .data(viewer)
        .data(loaders);
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    if let Some(doc) = state.documents.get(&request.query) {
        request.set_parsed_query(doc);
    }
    let mut response = state.schema.execute(request).instrument(span.clone()).await;
    complete_codes(&mut response.errors);
    let failed_before_running = response.data == Value::Null
        && response.errors.iter().any(|e| {
            let code = e.extensions.as_ref().and_then(|x| x.get("code"));
            matches!(code, Some(Value::String(c)) if c == PARSE_FAILED || c == VALIDATION_FAILED)
        });
    let status = if failed_before_running && media == GRAPHQL_RESPONSE {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    span.in_scope(|| {
        tracing::info!(
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            errors = response.errors.len(),
            "request"
        )
    });
    match serde_json::to_vec(&response) {
        Ok(body) => json_response(status, media, body),
        Err(e) => app_error_response(
            AppError::internal(format!("serialising response: {e}")),
            media,
        ),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        app_error_response(self, JSON)
    }
}
