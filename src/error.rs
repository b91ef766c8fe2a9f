//! The one error type of makima and the one list of the codes a client can see.
//! Handlers return `Result<T, AppError>` and use `?` on database calls; every
//! `extensions.code` the server sends, from a resolver or from the transport, is an
//! `ErrorCode`.

use sea_orm::{DbErr, TransactionError};

pub type AppResult<T> = Result<T, AppError>;

/// Every `extensions.code` of the API contract (API.md, Conventions). Ownership is
/// never a refusal of its own (another owner's row is `NOT_FOUND`); `FORBIDDEN` is what
/// a daemon key gets outside its daemon's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    /// A daemon key asking for something that is not its daemon's work.
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    InternalServerError,
    /// A document that does not parse.
    GraphqlParseFailed,
    /// A document that parses but fails validation or a limit.
    GraphqlValidationFailed,
    /// A request refused at the transport (405, 413, 415, a body that is not a
    /// GraphQL request).
    BadRequest,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::BadRequest => "BAD_REQUEST",
        }
    }
}

/// What went wrong, in the terms of the API contract. Deliberately not `Display`:
/// conversion to a GraphQL error must go through the mapping that sets the code.
#[derive(Clone, Debug)]
pub enum AppError {
    Unauthenticated,
    Forbidden(String),
    NotFound(String),
    BadInput(String),
    Conflict(String),
    /// Details go to the log only; the client sees a generic message.
    Internal(String),
}

impl AppError {
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Self::BadInput(msg.into())
    }
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::Forbidden(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(msg.into())
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal(detail.into())
    }

    /// The `extensions.code` of the API contract.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadInput(_) => ErrorCode::BadUserInput,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Internal(_) => ErrorCode::InternalServerError,
        }
    }

    /// Logs the detail of an internal error, which the client never sees. Called once
    /// where a response is finished (the GraphQL extension, the transport), never by a
    /// conversion.
    pub fn log(&self) {
        if let Self::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
    }

    /// The message a client may see: never SQL, paths or internal details.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unauthenticated => {
                "a valid API key is required (Authorization: Bearer <key> or X-Api-Key)".into()
            }
            Self::Forbidden(m) | Self::NotFound(m) | Self::BadInput(m) | Self::Conflict(m) => {
                m.clone()
            }
            Self::Internal(_) => "internal server error".into(),
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        Self::Internal(format!("database: {err}"))
    }
}

impl From<TransactionError<AppError>> for AppError {
    fn from(err: TransactionError<AppError>) -> Self {
        match err {
            TransactionError::Connection(db) => db.into(),
            TransactionError::Transaction(app) => app,
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(err: serde_json::Error) -> Self {
        Self::Internal(format!("json: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spelling of each code, as API.md lists it. The match makes a new code
    /// without a line here a compile error.
    fn api_spelling(code: ErrorCode) -> &'static str {
        match code {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::BadRequest => "BAD_REQUEST",
        }
    }

    #[test]
    fn every_code_has_its_api_spelling_and_every_error_its_code() {
        let all = [
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::BadUserInput,
            ErrorCode::Conflict,
            ErrorCode::InternalServerError,
            ErrorCode::GraphqlParseFailed,
            ErrorCode::GraphqlValidationFailed,
            ErrorCode::BadRequest,
        ];
        for code in all {
            assert_eq!(code.as_str(), api_spelling(code));
        }
        let mut spellings: Vec<_> = all.iter().map(|c| c.as_str()).collect();
        spellings.sort_unstable();
        spellings.dedup();
        assert_eq!(spellings.len(), all.len(), "codes are distinct");

        let errors = [
            (AppError::Unauthenticated, ErrorCode::Unauthenticated),
            (AppError::forbidden("x"), ErrorCode::Forbidden),
            (AppError::not_found("task"), ErrorCode::NotFound),
            (AppError::bad_input("x"), ErrorCode::BadUserInput),
            (AppError::conflict("x"), ErrorCode::Conflict),
            (AppError::internal("x"), ErrorCode::InternalServerError),
        ];
        for (err, code) in errors {
            assert_eq!(err.code(), code);
        }
    }
}
