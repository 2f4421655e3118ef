//! Why the running set refused a change, worded as Lambda words it. The Lambda API
//! (`admin::lambda_api`) turns each kind into its error code and HTTP status.

/// A refused create, update, delete or read, with Lambda's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// InvalidParameterValueException (400).
    InvalidParameter(String),
    /// ValidationException (400): the API model's own constraints.
    Validation(String),
    /// ResourceNotFoundException (404): the message says what is missing.
    NotFound(String),
    /// ResourceConflictException (409): a duplicate mapping, or a change under way.
    Conflict(String),
    /// ServiceException (500): esm-sim could not do it (the state directory failed).
    Service(String),
}

/// Lambda's message for an unknown UUID.
pub const NO_SUCH_MAPPING: &str = "The resource you requested does not exist.";

impl Refusal {
    pub fn no_such_mapping() -> Refusal {
        Refusal::NotFound(NO_SUCH_MAPPING.to_string())
    }

    /// `1 validation error detected: Value null at 'field' failed to satisfy constraint:
    /// Member must not be null.`
    pub fn missing(field: &str) -> String {
        format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null.")
    }
}
