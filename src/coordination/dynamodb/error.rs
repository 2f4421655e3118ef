//! A DynamoDB SDK error as the lease table's callers see it: one function, so every
//! operation's failures mean the same to the keeper.
//!
//! It reads errors only through `aws` (`error_code`, `classify`, `describe`), as the stream
//! sources do: a failed condition (`ConditionalCheckFailedException`) is a `Conflict`;
//! what `aws::classify` calls transient is `Throttled` when the service answered with a
//! status below 500 (DynamoDB's throttles, ProvisionedThroughputExceeded, Throttling and
//! RequestLimitExceeded, come as 400s with their code, or as a 429) and `Unavailable`
//! otherwise (a 5xx, a timeout, a connection that failed); everything else (access denied,
//! bad credentials, no such table after `prepare`, a validation error) is `Fatal`, with the
//! table, the operation and the service's own words.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::aws::{self, ErrorClass};
use crate::coordination::table::TableError;

/// `error` from `operation` (e.g. "UpdateItem") on the lease table `table`.
pub(super) fn table_error<E>(
    error: &SdkError<E, HttpResponse>,
    operation: &str,
    table: &str,
) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if aws::error_code(error) == Some("ConditionalCheckFailedException") {
        return TableError::Conflict;
    }
    let text = aws::describe(error);
    match aws::classify(error) {
        ErrorClass::Transient => {
            let answered_below_500 = match error {
                SdkError::ServiceError(context) => context.raw().status().as_u16() < 500,
                _ => false,
            };
            let text = format!("{table:?}: {operation}: {text}");
            if answered_below_500 {
                TableError::Throttled(text)
            } else {
                TableError::Unavailable(text)
            }
        }
        ErrorClass::NotFound | ErrorClass::Permanent => {
            TableError::Fatal(format!("lease table {table:?}: {operation}: {text}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    /// The service's answer `code` with HTTP `status`, classified as PutItem's.
    fn answered(status: u16, code: &str) -> TableError {
        let metadata = ErrorMetadata::builder()
            .code(code)
            .message("the service's words")
            .build();
        let status = StatusCode::try_from(status).expect("a status");
        let error = SdkError::service_error(
            PutItemError::generic(metadata),
            HttpResponse::new(status, SdkBody::empty()),
        );
        table_error(&error, "PutItem", "esm-sim-leases")
    }

    #[test]
    fn a_failed_condition_is_a_conflict() {
        assert_eq!(
            answered(400, "ConditionalCheckFailedException"),
            TableError::Conflict
        );
    }

    #[test]
    fn throttles_are_throttled_with_the_table_and_operation_named() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            assert_eq!(
                answered(400, code),
                TableError::Throttled(format!(
                    "\"esm-sim-leases\": PutItem: {code}: the service's words"
                ))
            );
        }
        assert!(matches!(
            answered(429, "SlowDown"),
            TableError::Throttled(_)
        ));
    }

    #[test]
    fn refusals_are_fatal_in_the_services_words() {
        for code in [
            "AccessDeniedException",
            "UnrecognizedClientException",
            "ResourceNotFoundException",
            "ValidationException",
        ] {
            assert_eq!(
                answered(400, code),
                TableError::Fatal(format!(
                    "lease table \"esm-sim-leases\": PutItem: {code}: the service's words"
                ))
            );
        }
    }

    #[test]
    fn server_errors_timeouts_and_lost_connections_are_unavailable() {
        for status in [500, 503] {
            let error = answered(status, "InternalServerError");
            assert!(
                matches!(&error, TableError::Unavailable(t) if t.contains("InternalServerError")),
                "{status}: {error:?}"
            );
        }
        let timeout = SdkError::<PutItemError, HttpResponse>::timeout_error("30 s elapsed");
        let error = table_error(&timeout, "Scan", "t");
        assert!(
            matches!(&error, TableError::Unavailable(t) if t.starts_with("\"t\": Scan: ")),
            "{error:?}"
        );
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let dispatch = SdkError::<PutItemError, HttpResponse>::dispatch_failure(
            ConnectorError::io(Box::new(refused)),
        );
        let error = table_error(&dispatch, "GetItem", "t");
        assert!(
            matches!(&error, TableError::Unavailable(t) if t.contains("refused")),
            "{error:?}"
        );
    }
}
