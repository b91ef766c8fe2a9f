//! The one error type of makima. Handlers return `Result<T, AppError>` and use `?` on
//! database calls; `graphql::error` maps it to `extensions.code` in one place.

use sea_orm::{DbErr, TransactionError};

pub type AppResult<T> = Result<T, AppError>;

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
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(msg.into())
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal(detail.into())
    }

    /// The `extensions.code` of the API contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
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
