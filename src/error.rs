//! A2A errors and the one place where runtime errors become gRPC statuses.
//!
//! Every A2A error travels as a gRPC status whose `grpc-status-details-bin` trailer holds a
//! `google.rpc.Status` with a `google.rpc.ErrorInfo` detail (domain [`A2A_ERROR_DOMAIN`], reason
//! [`A2aErrorKind::reason`]); invalid requests carry a `google.rpc.BadRequest` with one field
//! violation per problem (A2A v1.0, "Error handling"; gRPC binding, "Error mapping").

use std::{collections::HashMap, fmt};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every A2A error.
pub const A2A_ERROR_DOMAIN: &str = "a2a-protocol.org";

/// The A2A v1.0 errors, with their codes on each binding (A2A v1.0, error code table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum A2aErrorKind {
    /// The task id is unknown (or no longer retained).
    TaskNotFound,
    /// The task is in a terminal state and cannot be canceled.
    TaskNotCancelable,
    /// The agent does not support push notifications.
    PushNotificationNotSupported,
    /// The operation is not supported, e.g. a message to a terminal task.
    UnsupportedOperation,
    /// A media type of the request is not supported.
    ContentTypeNotSupported,
    /// The agent produced a response that breaks the protocol.
    InvalidAgentResponse,
    /// `GetExtendedAgentCard` was called, but the agent has no extended card.
    ExtendedAgentCardNotConfigured,
    /// The agent requires an extension the client did not declare.
    ExtensionSupportRequired,
    /// The requested A2A protocol version is not served.
    VersionNotSupported,
}

impl A2aErrorKind {
    /// Every kind, in code order (-32001 …).
    pub const ALL: [Self; 9] = [
        Self::TaskNotFound,
        Self::TaskNotCancelable,
        Self::PushNotificationNotSupported,
        Self::UnsupportedOperation,
        Self::ContentTypeNotSupported,
        Self::InvalidAgentResponse,
        Self::ExtendedAgentCardNotConfigured,
        Self::ExtensionSupportRequired,
        Self::VersionNotSupported,
    ];

    /// The `ErrorInfo.reason`, e.g. `"TASK_NOT_FOUND"`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TaskNotFound => "TASK_NOT_FOUND",
            Self::TaskNotCancelable => "TASK_NOT_CANCELABLE",
            Self::PushNotificationNotSupported => "PUSH_NOTIFICATION_NOT_SUPPORTED",
            Self::UnsupportedOperation => "UNSUPPORTED_OPERATION",
            Self::ContentTypeNotSupported => "CONTENT_TYPE_NOT_SUPPORTED",
            Self::InvalidAgentResponse => "INVALID_AGENT_RESPONSE",
            Self::ExtendedAgentCardNotConfigured => "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            Self::ExtensionSupportRequired => "EXTENSION_SUPPORT_REQUIRED",
            Self::VersionNotSupported => "VERSION_NOT_SUPPORTED",
        }
    }

    /// The kind whose [`reason`](Self::reason) is `reason`.
    pub fn from_reason(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.reason() == reason)
    }

    /// The JSON-RPC error code, -32001 … -32009.
    pub fn json_rpc_code(self) -> i32 {
        match self {
            Self::TaskNotFound => -32001,
            Self::TaskNotCancelable => -32002,
            Self::PushNotificationNotSupported => -32003,
            Self::UnsupportedOperation => -32004,
            Self::ContentTypeNotSupported => -32005,
            Self::InvalidAgentResponse => -32006,
            Self::ExtendedAgentCardNotConfigured => -32007,
            Self::ExtensionSupportRequired => -32008,
            Self::VersionNotSupported => -32009,
        }
    }

    /// The kind whose [`json_rpc_code`](Self::json_rpc_code) is `code`.
    pub fn from_json_rpc_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.json_rpc_code() == code)
    }

    /// The gRPC status code.
    pub fn grpc_code(self) -> Code {
        match self {
            Self::TaskNotFound => Code::NotFound,
            Self::ContentTypeNotSupported => Code::InvalidArgument,
            Self::InvalidAgentResponse => Code::Internal,
            _ => Code::FailedPrecondition,
        }
    }

    /// The HTTP status of the HTTP+JSON binding.
    pub fn http_status(self) -> u16 {
        match self {
            Self::TaskNotFound => 404,
            Self::InvalidAgentResponse => 500,
            _ => 400,
        }
    }
}

impl fmt::Display for A2aErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// One invalid field of a request: its path (e.g. `message.parts[0]`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the request, in snake_case proto names.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

impl FieldError {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// An error of an RPC served by the runtime. Converts into a [`Status`] in exactly one place
/// (`From<RpcError> for Status`); internal details are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// An A2A protocol error, sent with its `ErrorInfo`.
    #[error("{message}")]
    A2a {
        /// Which error.
        kind: A2aErrorKind,
        /// Human-readable message.
        message: String,
        /// `ErrorInfo.metadata` (e.g. `taskId`).
        metadata: HashMap<String, String>,
    },
    /// The request is malformed; sent as INVALID_ARGUMENT with a `BadRequest`.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldError>),
    /// Something other than a task was not found (NOT_FOUND without an A2A reason).
    #[error("{0}")]
    NotFound(String),
    /// A size or rate limit was exceeded (RESOURCE_EXHAUSTED).
    #[error("{0}")]
    ResourceExhausted(String),
    /// The agent is at its limit of concurrent executions (RESOURCE_EXHAUSTED with
    /// `grpc-retry-pushback-ms`, gRFC A6): nothing was started, the call may be made again
    /// after `retry_after`, here or on another replica.
    #[error("{message}")]
    Overloaded {
        /// Human-readable message.
        message: String,
        /// When to come back.
        retry_after: std::time::Duration,
    },
    /// The caller's deadline expired (DEADLINE_EXCEEDED).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The server cannot serve the call right now, e.g. it is draining (UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
    /// A failure inside the server. The client sees only "internal error".
    #[error("internal error: {0}")]
    Internal(String),
}

/// The violations as one line, `field: description; …`, for a status or error message.
pub fn describe(violations: &[FieldError]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl RpcError {
    /// An A2A error of `kind` with `message`.
    pub fn a2a(kind: A2aErrorKind, message: impl Into<String>) -> Self {
        Self::A2a {
            kind,
            message: message.into(),
            metadata: HashMap::new(),
        }
    }

    /// TASK_NOT_FOUND for `task_id`.
    pub fn task_not_found(task_id: &str) -> Self {
        let mut metadata = HashMap::new();
        metadata.insert("taskId".to_owned(), task_id.to_owned());
        Self::A2a {
            kind: A2aErrorKind::TaskNotFound,
            message: format!("task {task_id:?} not found"),
            metadata,
        }
    }

    /// UNSUPPORTED_OPERATION with `message`.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::a2a(A2aErrorKind::UnsupportedOperation, message)
    }

    /// INVALID_ARGUMENT for one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldError::new(field, description)])
    }

    /// The gRPC code this error is sent with.
    pub fn code(&self) -> Code {
        match self {
            Self::A2a { kind, .. } => kind.grpc_code(),
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::ResourceExhausted(_) | Self::Overloaded { .. } => Code::ResourceExhausted,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Internal(_) => Code::Internal,
        }
    }
}

/// Longest `grpc-message` the runtime sends, in bytes: it travels in an HTTP/2 header.
pub const MAX_STATUS_MESSAGE_BYTES: usize = 2 * crate::limits::MAX_ID_BYTES + 256;

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl From<RpcError> for Status {
    /// The status, its `grpc-message` cut to [`MAX_STATUS_MESSAGE_BYTES`] and every
    /// `ErrorInfo.metadata` value to [`MAX_ID_BYTES`](crate::limits::MAX_ID_BYTES): both
    /// travel in HTTP/2 headers, which a peer may refuse when they grow large — never echo
    /// unbounded client input there.
    fn from(err: RpcError) -> Self {
        let cut = |m: String| truncate(&m, MAX_STATUS_MESSAGE_BYTES);
        match err {
            RpcError::A2a {
                kind,
                message,
                metadata,
            } => Status::with_error_details(
                kind.grpc_code(),
                cut(message),
                ErrorDetails::with_error_info(
                    kind.reason(),
                    A2A_ERROR_DOMAIN,
                    metadata
                        .into_iter()
                        .map(|(k, v)| (k, truncate(&v, crate::limits::MAX_ID_BYTES)))
                        .collect::<HashMap<_, _>>(),
                ),
            ),
            RpcError::InvalidArgument(violations) => {
                let message = describe(&violations);
                let violations: Vec<FieldViolation> = violations
                    .into_iter()
                    .map(|v| {
                        let max = crate::limits::MAX_ID_BYTES;
                        FieldViolation::new(truncate(&v.field, max), truncate(&v.description, max))
                    })
                    .collect();
                Status::with_error_details(
                    Code::InvalidArgument,
                    cut(format!("invalid request: {message}")),
                    ErrorDetails::with_bad_request(violations),
                )
            }
            RpcError::NotFound(m) => Status::not_found(cut(m)),
            RpcError::ResourceExhausted(m) => Status::resource_exhausted(cut(m)),
            RpcError::Overloaded {
                message,
                retry_after,
            } => {
                let mut status = Status::resource_exhausted(cut(message));
                status.metadata_mut().insert(
                    crate::resilience::retry::PUSHBACK,
                    tonic::metadata::MetadataValue::from(retry_after.as_millis() as u64),
                );
                status
            }
            RpcError::DeadlineExceeded(m) => Status::deadline_exceeded(cut(m)),
            RpcError::Unavailable(m) => Status::unavailable(cut(m)),
            RpcError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// Reads the A2A error of a status received from an agent: its `ErrorInfo.reason` when the
/// status carries one in the A2A domain.
pub fn a2a_error_kind(status: &Status) -> Option<A2aErrorKind> {
    let details = status.get_error_details();
    let info = details.error_info()?;
    if info.domain != A2A_ERROR_DOMAIN {
        return None;
    }
    A2aErrorKind::from_reason(&info.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a2a_errors_round_trip_through_grpc_status() {
        for kind in A2aErrorKind::ALL {
            let status = Status::from(RpcError::a2a(kind, "boom"));
            assert_eq!(status.code(), kind.grpc_code());
            assert_eq!(status.message(), "boom");
            assert_eq!(a2a_error_kind(&status), Some(kind));
            assert_eq!(
                A2aErrorKind::from_json_rpc_code(kind.json_rpc_code()),
                Some(kind)
            );
        }
    }

    #[test]
    fn bad_request_lists_every_field() {
        let status = Status::from(RpcError::InvalidArgument(vec![
            FieldError::new("message.message_id", "required"),
            FieldError::new("message.parts", "at least one part is required"),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .expect("bad request detail")
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["message.message_id", "message.parts"]);
        assert!(
            status
                .message()
                .contains("message.parts: at least one part")
        );
    }

    #[test]
    fn statuses_never_carry_unbounded_input() {
        let long = "é".repeat(20_000);
        let status = Status::from(RpcError::task_not_found(&long));
        assert!(status.message().len() <= MAX_STATUS_MESSAGE_BYTES);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert!(info.metadata["taskId"].len() <= crate::limits::MAX_ID_BYTES);
        let status = Status::from(RpcError::invalid("x", long));
        assert!(status.message().len() <= MAX_STATUS_MESSAGE_BYTES);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request");
        assert!(bad.field_violations[0].description.len() <= crate::limits::MAX_ID_BYTES);
    }

    #[test]
    fn internal_details_are_not_sent() {
        let status = Status::from(RpcError::Internal("disk /var/x is full".into()));
        assert_eq!(status.message(), "internal error");
    }
}
