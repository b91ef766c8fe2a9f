//! The one place where an `AppError` becomes a GraphQL error with `extensions.code`.
//! The `AppError` rides along as the error's source (never serialised), so that the
//! extension that finishes responses can log an internal detail once.

use std::sync::Arc;

use async_graphql::{Error, ErrorExtensionValues, ServerError, Value};

use crate::error::{AppError, ErrorCode};

impl From<AppError> for Error {
    fn from(err: AppError) -> Self {
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", err.code().as_str());
        Error {
            message: err.public_message(),
            source: Some(Arc::new(err)),
            extensions: Some(extensions),
        }
    }
}

/// Sets `code` on an error that has none yet.
pub fn with_code(mut err: ServerError, code: ErrorCode) -> ServerError {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", Value::from(code.as_str()));
    }
    err
}

/// A server error that carries no source, for refusals that are not an `AppError`.
pub fn server_error(message: impl Into<String>, code: ErrorCode) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// The `AppError` behind a server error, if it came from one.
pub fn app_error(err: &ServerError) -> Option<&AppError> {
    err.source::<AppError>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(err: AppError) -> (String, String) {
        let e: Error = err.into();
        let code = e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        (e.message, code.map(|c| c.to_string()).unwrap_or_default())
    }

    #[test]
    fn every_kind_maps_to_its_code() {
        for err in [
            AppError::Unauthenticated,
            AppError::not_found("task"),
            AppError::bad_input("x"),
            AppError::conflict("x"),
            AppError::internal("x"),
        ] {
            let expected = format!("\"{}\"", err.code().as_str());
            assert_eq!(code_of(err).1, expected);
        }
    }

    #[test]
    fn internal_details_never_reach_the_message() {
        let err: Error = AppError::internal("SELECT * FROM secrets at /srv/x").into();
        assert_eq!(err.message, "internal server error");
        let json = serde_json::to_string(&err).unwrap();
        assert!(!json.contains("secrets"), "{json}");
        // The detail stays on the server side, for the log.
        match err
            .source
            .as_ref()
            .and_then(|s| s.downcast_ref::<AppError>())
        {
            Some(AppError::Internal(detail)) => assert!(detail.contains("secrets")),
            other => panic!("source lost: {other:?}"),
        }
        let (message, _) = code_of(sea_orm::DbErr::Custom("relation tasks".into()).into());
        assert_eq!(message, "internal server error");
    }
}
