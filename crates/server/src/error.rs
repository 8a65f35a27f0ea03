//! One table of error codes: each maps to an HTTP status and a type, and every error body is
//! `{message, code, type, link}`. Client errors show their message; internal ones are logged
//! and answered with a generic message, so nothing about the database leaks.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stratum_store::StoreError;

/// Declares the error codes once: the `ErrorCode` enum (so a code that is not in the table
/// cannot compile) and `ERROR_CODES`, the table docs/API.md and the OpenAPI document list.
macro_rules! error_codes {
    ($($variant:ident = ($code:literal, $status:literal, $kind:literal, $when:literal)),* $(,)?) => {
        /// A stable error code of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($variant),*
        }

        /// Every error code the API answers with: (code, HTTP status, type, when).
        pub const ERROR_CODES: &[(&str, u16, &str, &str)] = &[$(($code, $status, $kind, $when)),*];

        impl ErrorCode {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code),*
                }
            }

            /// HTTP status and type.
            pub fn entry(self) -> (u16, &'static str) {
                match self {
                    $(ErrorCode::$variant => ($status, $kind)),*
                }
            }
        }
    };
}

error_codes! {
    MissingApiKey = ("missing_api_key", 401, "auth", "no `Authorization: Bearer KEY` header"),
    InvalidApiKey = ("invalid_api_key", 401, "auth", "the key is unknown, revoked, or its user disabled"),
    Forbidden = ("forbidden", 403, "auth", "the key's role may not do this, or an agent asked for another agent's customer"),
    TooManyAttempts = ("too_many_attempts", 429, "auth", "too many failed key checks for this key id or client address within a minute"),
    RouteNotFound = ("route_not_found", 404, "invalid_request", "no such route"),
    MethodNotAllowed = ("method_not_allowed", 405, "invalid_request", "the route exists with another method"),
    CustomerNotFound = ("customer_not_found", 404, "invalid_request", "the customer is not in the served run"),
    RunNotFound = ("run_not_found", 404, "invalid_request", "no such run, or no run recorded yet"),
    BenefitNotFound = ("benefit_not_found", 404, "invalid_request", "the policy's catalog has no such benefit"),
    RedemptionNotFound = ("redemption_not_found", 404, "invalid_request", "no such redemption"),
    UserNotFound = ("user_not_found", 404, "invalid_request", "no such user, or it is disabled already"),
    NotFound = ("not_found", 404, "invalid_request", "the named thing does not exist"),
    InvalidJson = ("invalid_json", 400, "invalid_request", "the body is not valid JSON of the expected shape"),
    InvalidRequest = ("invalid_request", 400, "invalid_request", "a value is out of range or missing"),
    PayloadTooLarge = ("payload_too_large", 413, "invalid_request", "the body is larger than 64 KiB"),
    NotEligible = ("not_eligible", 422, "invalid_request", "the customer's level has no quota for the benefit"),
    QuotaExceeded = ("quota_exceeded", 409, "invalid_request", "the period's quota is used up; nothing was written"),
    IdempotencyConflict = ("idempotency_conflict", 422, "invalid_request", "the idempotency key was used for a different request"),
    RunInProgress = ("run_in_progress", 409, "invalid_request", "a run started through the API is still going"),
    InvalidPolicy = ("invalid_policy", 422, "invalid_request", "the draft policy does not compile; the message lists each error with its line"),
    RunFailed = ("run_failed", 422, "invalid_request", "the run stopped on the data (a bad row, a missing file or column); nothing was recorded"),
    Busy = ("busy", 503, "invalid_request", "another simulation or recomputed explanation is running; try again shortly"),
    Timeout = ("timeout", 503, "invalid_request", "the request or its evaluation took longer than the server's limit"),
    Internal = ("internal", 500, "internal", "a server or database fault; it is logged"),
}

/// Every error's `link`: its entry in the server's own OpenAPI document.
const DOCS: &str = "/openapi.json#/components/x-error-codes/";

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the request body is larger than {} KiB",
                crate::BODY_LIMIT / 1024
            ),
        )
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }

    fn entry(&self) -> (u16, &'static str) {
        self.code.entry()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.entry();
        let body = serde_json::json!({
            "message": self.message,
            "code": self.code.as_str(),
            "type": kind,
            "link": format!("{DOCS}{}", self.code.as_str()),
        });
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::QuotaExceeded { .. } => {
                ApiError::new(ErrorCode::QuotaExceeded, e.to_string())
            }
            StoreError::IdempotencyConflict(m) => {
                ApiError::new(ErrorCode::IdempotencyConflict, m.clone())
            }
            StoreError::NotFound(m) => ApiError::new(ErrorCode::NotFound, m.clone()),
            StoreError::Invalid(m) => ApiError::invalid(m.clone()),
            // Refused by the caller's own check before the commit: a run that could not
            // write its files.
            StoreError::Aborted(_) => ApiError::new(ErrorCode::RunFailed, e.to_string()),
            StoreError::Connect { .. }
            | StoreError::Schema { .. }
            | StoreError::Internal(_)
            | StoreError::Corrupt(_)
            | StoreError::Database(_)
            | StoreError::Migrate(_) => ApiError::internal(e),
        }
    }
}

impl From<stratum_runner::RunError> for ApiError {
    fn from(e: stratum_runner::RunError) -> Self {
        use stratum_runner::RunError as E;
        match e {
            E::Store(e) => e.into(),
            E::Policy(d) => ApiError::new(ErrorCode::InvalidPolicy, d.to_string()),
            e @ (E::AsOf(_) | E::AsOfOutOfRange { .. } | E::Refused(_)) => {
                ApiError::invalid(e.to_string())
            }
            e @ E::Locked { .. } => ApiError::new(ErrorCode::RunInProgress, e.to_string()),
            E::Engine(e) if !e.is_user_error() => ApiError::internal(e),
            E::Eval(e) if !e.is_user_error() => ApiError::internal(e),
            e @ (E::Engine(_)
            | E::Eval(_)
            | E::PolicyFile { .. }
            | E::Overrides { .. }
            | E::NonFinite(_)
            | E::UnknownCustomer(_)
            | E::TooManyRejects { .. }
            | E::Shrunk { .. }
            | E::NeverPlaced(_)
            | E::EmptyHistory(_)
            | E::OneRun(_)
            | E::OtherPolicy { .. }
            | E::PoliciesDiffer { .. }
            | E::NoChurnRule(_)
            | E::SinceNotBefore { .. }
            | E::OwnerNotText(_)) => ApiError::new(ErrorCode::RunFailed, e.to_string()),
            e @ (E::Output { .. } | E::Internal(_)) => ApiError::internal(e),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::new(ErrorCode::InvalidJson, r.body_text())
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::invalid(r.body_text())
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::invalid(r.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::invalid(r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_has_a_real_status() {
        let mut seen = std::collections::HashSet::new();
        for (code, status, kind, _) in ERROR_CODES {
            assert!(seen.insert(code), "{code} twice");
            assert!(StatusCode::from_u16(*status).is_ok(), "{code}: {status}");
            assert!(
                ["auth", "invalid_request", "internal"].contains(kind),
                "{code}"
            );
        }
        assert_eq!(ErrorCode::TooManyAttempts.as_str(), "too_many_attempts");
        assert_eq!(ErrorCode::TooManyAttempts.entry(), (429, "auth"));
    }
}
