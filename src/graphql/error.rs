//! The one place where an `AppError` becomes a GraphQL error with `extensions.code`.

use async_graphql::{Error, ErrorExtensions};

use crate::error::AppError;

impl From<AppError> for Error {
    fn from(err: AppError) -> Self {
        if let AppError::Internal(detail) = &err {
            tracing::error!(%detail, "internal error");
        }
        Error::new(err.public_message()).extend_with(|_, ext| ext.set("code", err.code()))
    }
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
        assert_eq!(code_of(AppError::Unauthenticated).1, "\"UNAUTHENTICATED\"");
        assert_eq!(code_of(AppError::Forbidden("no".into())).1, "\"FORBIDDEN\"");
        assert_eq!(code_of(AppError::not_found("task")).1, "\"NOT_FOUND\"");
        assert_eq!(code_of(AppError::bad_input("x")).1, "\"BAD_USER_INPUT\"");
        assert_eq!(code_of(AppError::conflict("x")).1, "\"CONFLICT\"");
        assert_eq!(
            code_of(AppError::internal("x")).1,
            "\"INTERNAL_SERVER_ERROR\""
        );
    }

    #[test]
    fn internal_details_never_reach_the_message() {
        let (message, _) = code_of(AppError::internal("SELECT * FROM secrets at /srv/x"));
        assert_eq!(message, "internal server error");
        let (message, _) = code_of(sea_orm::DbErr::Custom("relation tasks".into()).into());
        assert_eq!(message, "internal server error");
    }
}
