//! Lambda's error answers, as the AWS SDKs and the aws CLI read them (REST-JSON): the
//! status, the code in the `x-amzn-ErrorType` header and `{"Type": "User", "Message": ...}`
//! as the body, so `botocore` raises e.g. `ResourceNotFoundException` with Lambda's text.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::running::refusal::Refusal;

/// One error answer.
#[derive(Debug, PartialEq, Eq)]
pub struct LambdaError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl LambdaError {
    /// A request body that is not a JSON object.
    pub fn unreadable_body(why: impl std::fmt::Display) -> LambdaError {
        LambdaError {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidRequestContentException",
            message: format!("Could not parse request body into json: {why}"),
        }
    }
}

impl From<Refusal> for LambdaError {
    fn from(refusal: Refusal) -> LambdaError {
        let (status, code, message) = match refusal {
            Refusal::InvalidParameter(m) => {
                (StatusCode::BAD_REQUEST, "InvalidParameterValueException", m)
            }
            Refusal::Validation(m) => (StatusCode::BAD_REQUEST, "ValidationException", m),
            Refusal::NotFound(m) => (StatusCode::NOT_FOUND, "ResourceNotFoundException", m),
            Refusal::Conflict(m) => (StatusCode::CONFLICT, "ResourceConflictException", m),
            Refusal::Service(m) => (StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", m),
        };
        LambdaError {
            status,
            code,
            message,
        }
    }
}

impl IntoResponse for LambdaError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"Type": "User", "Message": self.message})),
        )
            .into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.code));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_lambdas_code_and_status() {
        let cases = [
            (
                Refusal::InvalidParameter("m".into()),
                400,
                "InvalidParameterValueException",
            ),
            (Refusal::Validation("m".into()), 400, "ValidationException"),
            (Refusal::no_such_mapping(), 404, "ResourceNotFoundException"),
            (
                Refusal::Conflict("m".into()),
                409,
                "ResourceConflictException",
            ),
            (Refusal::Service("m".into()), 500, "ServiceException"),
        ];
        for (refusal, status, code) in cases {
            let error = LambdaError::from(refusal);
            assert_eq!((error.status.as_u16(), error.code), (status, code));
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()["x-amzn-errortype"], code);
        }
    }
}
