//! GraphQL over HTTP: our own request parsing and response, for content negotiation,
//! status codes, the 1 MiB body limit (413), refusing batches and mutations by GET,
//! and `extensions.code` on transport errors.

use std::time::Instant;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{ServerError, Value};
use axum::body::{Body, to_bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::Instrument;

use super::AppState;
use super::auth::key_from_headers;
use crate::error::{AppError, ErrorCode};
use crate::graphql::extension::nesting_code;
use crate::graphql::{nesting, request_data};

pub const MAX_BODY: usize = 1024 * 1024;
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The longest query string a GET may carry; longer documents go by POST.
pub const MAX_GET_QUERY: usize = 32 * 1024;

/// The fields of a GraphQL-over-HTTP GET request.
#[derive(Default)]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

impl GetParams {
    /// Parses a query string; a parameter given twice is refused rather than
    /// resolved by an order the client cannot see.
    fn parse(raw: &str) -> Result<Self, &'static str> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw).map_err(|_| "the query string is malformed")?;
        let mut params = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "query" => &mut params.query,
                "operationName" => &mut params.operation_name,
                "variables" => &mut params.variables,
                "extensions" => &mut params.extensions,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err("a query parameter is given more than once");
            }
        }
        Ok(params)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostBody {
    query: Option<String>,
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    extensions: Option<serde_json::Value>,
}

/// A request's GraphQL fields, from either method.
struct Fields {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
    extensions: Option<serde_json::Value>,
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
fn error_response(
    status: StatusCode,
    media: &'static str,
    message: &str,
    code: ErrorCode,
) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    json_response(status, media, body.to_string().into_bytes())
}

fn app_error_response(err: AppError, media: &'static str) -> Response {
    let status = match err {
        AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    err.log();
    error_response(status, media, &err.public_message(), err.code())
}

fn bad_request(media: &'static str, message: &str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        media,
        message,
        ErrorCode::BadRequest,
    )
}

/// Whether the operation a request runs is a mutation (a document that does not
/// parse runs nothing).
fn is_mutation(doc: Option<&ExecutableDocument>, operation_name: Option<&str>) -> bool {
    let Some(doc) = doc else {
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

/// A document refused before it was parsed: the status the GraphQL-over-HTTP spec
/// gives a document error (400 under graphql-response+json, 200 under json).
fn document_error(media: &'static str, message: &str, code: ErrorCode) -> Response {
    let status = if media == GRAPHQL_RESPONSE {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    error_response(status, media, message, code)
}

/// `extensions` must be a JSON object when given (GraphQL over HTTP).
fn check_extensions(value: Option<&serde_json::Value>) -> Result<(), &'static str> {
    match value {
        None | Some(serde_json::Value::Null | serde_json::Value::Object(_)) => Ok(()),
        Some(_) => Err("extensions must be a JSON object"),
    }
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
                ErrorCode::GraphqlValidationFailed
            } else {
                ErrorCode::BadUserInput
            };
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", Value::from(code.as_str()));
        }
    }
}

/// The GraphQL fields of a GET request.
fn get_fields(raw: Option<&str>, media: &'static str) -> Result<Fields, Box<Response>> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_GET_QUERY {
        return Err(Box::new(error_response(
            StatusCode::URI_TOO_LONG,
            media,
            "the query string is longer than 32 KiB; send the request by POST",
            ErrorCode::BadRequest,
        )));
    }
    let params = GetParams::parse(raw).map_err(|msg| Box::new(bad_request(media, msg)))?;
    let json = |text: Option<String>, what: &'static str| {
        text.as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| Box::new(bad_request(media, what)))
    };
    Ok(Fields {
        variables: json(params.variables, "variables must be JSON")?,
        extensions: json(params.extensions, "extensions must be JSON")?,
        query: params.query,
        operation_name: params.operation_name,
    })
}

/// The GraphQL fields of a POST request, read within the body timeout and size limit.
async fn post_fields(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    media: &'static str,
) -> Result<Fields, Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(JSON) && !content_type.is_empty() {
        return Err(Box::new(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "send the request as application/json",
            ErrorCode::BadRequest,
        )));
    }
    let bytes =
        match tokio::time::timeout(state.limits.body_timeout, to_bytes(body, MAX_BODY)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                return Err(Box::new(error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    media,
                    "request body is larger than 1 MiB",
                    ErrorCode::BadRequest,
                )));
            }
            Err(_) => {
                let mut res = error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    media,
                    "the request body did not arrive in time",
                    ErrorCode::BadRequest,
                );
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Err(Box::new(res));
            }
        };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Box::new(bad_request(
            media,
            "batched requests are not supported; send one operation per request",
        )));
    }
    let body = serde_json::from_slice::<PostBody>(&bytes).map_err(|_| {
        Box::new(bad_request(
            media,
            "the body must be a JSON object with a query",
        ))
    })?;
    Ok(Fields {
        query: body.query,
        operation_name: body.operation_name,
        variables: body.variables,
        extensions: body.extensions,
    })
}

pub async fn graphql(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    body: Body,
) -> Response {
    let media = response_type(&headers);
    if method == Method::GET {
        let wants_html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if raw_query.is_none() && wants_html {
            return super::graphiql::page();
        }
    }
    // Nothing a client sent is parsed before its key is known to be good.
    let viewer = match state.auth.viewer(key_from_headers(&headers)).await {
        Ok(v) => v,
        Err(err) => return app_error_response(err, media),
    };
    let fields = if method == Method::GET {
        get_fields(raw_query.as_deref(), media)
    } else {
        post_fields(&state, &headers, body, media).await
    };
    let Fields {
        query,
        operation_name,
        variables,
        extensions,
    } = match fields {
        Ok(f) => f,
        Err(res) => return *res,
    };
    if let Err(msg) = check_extensions(extensions.as_ref()) {
        return bad_request(media, msg);
    }
    let Some(query) = query else {
        return bad_request(media, "the request has no query");
    };
    let variables = match parse_variables(variables) {
        Ok(v) => v,
        Err(msg) => return bad_request(media, msg),
    };
    if let Err(too_deep) = nesting::check(&query) {
        return document_error(media, &too_deep.message(), nesting_code(&too_deep));
    }
    let parsed = state.documents.get(&query);
    if method == Method::GET && is_mutation(parsed.as_ref(), operation_name.as_deref()) {
        let mut res = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "mutations must be sent with POST",
            ErrorCode::BadRequest,
        );
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
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
    if let Some(doc) = parsed {
        request.set_parsed_query(doc);
    }
    let mut response = state.schema.execute(request).instrument(span.clone()).await;
    complete_codes(&mut response.errors);
    let failed_before_running = response.data == Value::Null
        && response.errors.iter().any(|e| {
            let code = e.extensions.as_ref().and_then(|x| x.get("code"));
            let before_running = [
                ErrorCode::GraphqlParseFailed,
                ErrorCode::GraphqlValidationFailed,
            ];
            matches!(code, Some(Value::String(c)) if before_running.iter().any(|b| c == b.as_str()))
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
