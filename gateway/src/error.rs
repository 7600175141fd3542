//! [`ApiError`]: the one error type of the request path, and [`Failure`], the one
//! `IntoResponse` type every handler and layer returns errors through.
//!
//! An error becomes bytes on the wire in exactly one place per edge:
//! [`json_rpc::error_object`] (JSON-RPC), [`rest::envelope`] (REST, and every other HTTP
//! answer), [`close::close_code`] (WebSocket) and [`grpc::status`] (native gRPC and
//! gRPC-Web). What the edges share lives here: the gRPC
//! code, the client-safe message and the `details` (`google.rpc.ErrorInfo`, `BadRequest`).

pub(crate) mod close;
mod failure;
pub(crate) mod grpc;
pub(crate) mod json_rpc;
pub(crate) mod rest;

pub(crate) use failure::{Failure, Front, log};

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};
use switchyard::{
    client::code_name,
    error::{A2A_ERROR_DOMAIN, A2aErrorKind, FieldError, describe},
};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// `ErrorInfo.domain` of the errors the gateway raises itself.
pub(crate) const GATEWAY_DOMAIN: &str = "switchyard.dev";

const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The agent answered with an error status (an agent that cannot be reached included, as
    /// UNAVAILABLE).
    #[error("agent {agent:?} answered {}: {}", code_name(.status.code()), .status.message())]
    Upstream { agent: String, status: Status },
    /// The call to the agent broke at the transport level: no gRPC status came from the agent
    /// (an HTTP/2 or hyper error — a reset connection, a protocol error, a header list over the
    /// limit). `status` is tonic's local report, with the transport error as its source; it is
    /// logged, never sent. UNAVAILABLE, HTTP 502.
    #[error("agent {agent:?} failed to answer: {}", .status.message())]
    AgentFailed {
        agent: String,
        #[source]
        status: Status,
    },
    /// No agent has this name.
    #[error("no agent is named {0:?}; GET /agents lists the agents")]
    UnknownAgent(String),
    /// The body is not JSON (JSON-RPC -32700).
    #[error("parse error: {0}")]
    Parse(String),
    /// The body is JSON but not a valid request (JSON-RPC -32600).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No such JSON-RPC method or REST route.
    #[error("{0}")]
    MethodNotFound(String),
    /// The REST route exists but not with this HTTP method.
    #[error("method {method} is not allowed here; use {allowed}")]
    MethodNotAllowed {
        method: http::Method,
        allowed: &'static str,
    },
    /// The params (body, path or query) do not fit the request message (JSON-RPC -32602).
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// Fields of the request break a bound of [`switchyard::limits`] (JSON-RPC -32602, HTTP
    /// 400, with a `google.rpc.BadRequest` naming each field).
    #[error("invalid params: {}", describe(.0))]
    BadRequest(Vec<FieldError>),
    /// An A2A error the gateway raises itself (version, content type, streaming capability).
    #[error("{message}")]
    A2a { kind: A2aErrorKind, message: String },
    /// The request body is larger than the limit.
    #[error("the request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The request body did not arrive in time.
    #[error("the request body was not received within {0:?}")]
    BodyTimeout(Duration),
    /// The gateway is at its concurrency limit.
    #[error("the gateway is overloaded; retry later")]
    Overloaded,
    /// The gateway is shutting down.
    #[error("the gateway is shutting down; retry on another instance or reconnect")]
    Draining,
    /// The request's deadline expired at the gateway.
    #[error("the deadline expired")]
    DeadlineExceeded,
    /// The client did not read its stream for too long.
    #[error("the client read too slowly; the stream was ended (resume with Last-Event-ID)")]
    SlowClient,
    /// WebSocket: a text frame that is not UTF-8, not JSON or not a `ConverseRequest`.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
    /// WebSocket: the client broke the WebSocket protocol (RFC 6455 §7.4.1: 1002).
    #[error("WebSocket protocol error: {0}")]
    WsProtocol(String),
    /// WebSocket: a binary frame (the session speaks JSON text frames).
    #[error("binary frames are not supported; send JSON text frames")]
    UnsupportedFrame,
    /// WebSocket: a message larger than the limit.
    #[error("a message exceeds the limit of {limit} bytes")]
    FrameTooLarge { limit: usize },
    /// WebSocket: a browser page whose `Origin` may not open sessions (see `crate::origin`).
    #[error(
        "WebSocket sessions from origin {0:?} are not allowed; add it to the gateway's cors_origins"
    )]
    OriginNotAllowed(String),
    /// WebSocket: the client sent nothing, not even a pong, for too long.
    #[error("no frame or pong received within {0:?}")]
    HeartbeatTimeout(Duration),
    /// The agent does not serve `AgentService/GetAgentCard` and has no card URL configured:
    /// 503 (no `Retry-After`: retrying does not help until the gateway is configured), the
    /// message saying what to configure ([`switchyard::registry::CardError::NoCardUrl`]).
    #[error("{hint}")]
    CardNotConfigured { agent: String, hint: String },
    /// gRPC: a service the gateway does not forward, or a call it cannot serve (UNIMPLEMENTED).
    #[error("{0}")]
    GrpcUnimplemented(String),
    /// gRPC: a request body that breaks the gRPC framing (a length prefix cut short, a
    /// compressed message without `grpc-encoding`, bad base64 in gRPC-Web text): INTERNAL, as
    /// gRPC's status code table prescribes for protocol errors.
    #[error("malformed gRPC request: {0}")]
    MalformedGrpc(String),
    /// The request carries no valid credentials (HTTP 401, UNAUTHENTICATED); the reason never
    /// holds the credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// The authenticated caller may not call this agent (HTTP 403, PERMISSION_DENIED).
    #[error("{0}")]
    PermissionDenied(String),
    /// gRPC: one message larger than the limit (RESOURCE_EXHAUSTED, as gRPC servers answer).
    #[error("a request message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { size: u64, limit: usize },
}

/// `ErrorInfo` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Info {
    pub(crate) reason: String,
    pub(crate) domain: String,
    pub(crate) metadata: BTreeMap<String, String>,
}

impl Info {
    fn new(reason: &str, domain: &str) -> Self {
        Self {
            reason: reason.to_owned(),
            domain: domain.to_owned(),
            metadata: BTreeMap::new(),
        }
    }

    fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.metadata.insert(key.to_owned(), value.to_string());
        self
    }
}

/// Codes whose message may carry internal details: the client gets a generic one.
fn is_internal(code: Code) -> bool {
    matches!(code, Code::Internal | Code::Unknown | Code::DataLoss)
}

impl ApiError {
    /// The gRPC code the error stands for.
    pub(crate) fn code(&self) -> Code {
        match self {
            Self::Upstream { status, .. } => status.code(),
            Self::UnknownAgent(_) | Self::MethodNotFound(_) => Code::NotFound,
            Self::Parse(_)
            | Self::InvalidRequest(_)
            | Self::InvalidParams(_)
            | Self::BadRequest(_)
            | Self::WsProtocol(_)
            | Self::InvalidFrame(_)
            | Self::UnsupportedFrame => Code::InvalidArgument,
            Self::MethodNotAllowed { .. } => Code::Unimplemented,
            Self::OriginNotAllowed(_) | Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::A2a { kind, .. } => kind.grpc_code(),
            Self::BodyTooLarge { .. }
            | Self::Overloaded
            | Self::SlowClient
            | Self::FrameTooLarge { .. }
            | Self::MessageTooLarge { .. } => Code::ResourceExhausted,
            Self::GrpcUnimplemented(_) => Code::Unimplemented,
            Self::MalformedGrpc(_) => Code::Internal,
            Self::BodyTimeout(_) | Self::DeadlineExceeded | Self::HeartbeatTimeout(_) => {
                Code::DeadlineExceeded
            }
            Self::Draining | Self::CardNotConfigured { .. } | Self::AgentFailed { .. } => {
                Code::Unavailable
            }
        }
    }

    /// The A2A error, by `ErrorInfo.reason` in the A2A domain.
    pub(crate) fn a2a_kind(&self) -> Option<A2aErrorKind> {
        match self {
            Self::A2a { kind, .. } => Some(*kind),
            Self::Upstream { status, .. } => switchyard::error::a2a_error_kind(status),
            _ => None,
        }
    }

    /// The message sent to the client: never internal details.
    pub(crate) fn client_message(&self) -> String {
        match self {
            Self::Upstream { agent, status } => {
                if status.code() == Code::Unavailable {
                    format!("agent {agent:?} is unavailable; retry later")
                } else if is_internal(status.code()) && self.a2a_kind().is_none() {
                    "internal error".to_owned()
                } else {
                    status.message().to_owned()
                }
            }
            Self::AgentFailed { agent, .. } => {
                format!("agent {agent:?} failed to answer; retry later")
            }
            other => other.to_string(),
        }
    }

    /// The seconds of the answer's `Retry-After`: the agent's `grpc-retry-pushback-ms`
    /// rounded up to whole seconds (RFC 9110 §10.2.3 has no finer unit), else
    /// [`failure::RETRY_AFTER_SECS`].
    pub(crate) fn retry_after_secs(&self) -> u64 {
        let pushback = match self {
            Self::Upstream { status, .. } => status
                .metadata()
                .get(switchyard::resilience::retry::PUSHBACK)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok()),
            _ => None,
        };
        pushback.map_or(u64::from(failure::RETRY_AFTER_SECS), |ms| {
            ms.div_ceil(1000).max(1)
        })
    }

    /// Whether the answer carries `Retry-After`.
    pub(crate) fn retry_after(&self) -> bool {
        matches!(self.code(), Code::Unavailable | Code::ResourceExhausted)
            && !matches!(
                self,
                Self::BodyTooLarge { .. }
                    | Self::FrameTooLarge { .. }
                    | Self::MessageTooLarge { .. }
                    | Self::CardNotConfigured { .. }
            )
    }

    /// Whether the error is the gateway's or the agent's fault (logged at warn), not the
    /// client's.
    pub(crate) fn is_server_side(&self) -> bool {
        !matches!(self, Self::MalformedGrpc(_))
            && matches!(
                self.code(),
                Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable
            )
            || matches!(self, Self::Overloaded)
    }

    /// The `ErrorInfo` of the error.
    pub(crate) fn info(&self) -> Info {
        let a2a = |reason: &str| Info::new(reason, A2A_ERROR_DOMAIN);
        let ours = |reason: &str| Info::new(reason, GATEWAY_DOMAIN);
        match self {
            Self::Upstream { agent, status } => upstream_info(agent, status),
            Self::AgentFailed { agent, .. } => ours("AGENT_FAILED").with("agent", agent),
            Self::UnknownAgent(agent) => ours("AGENT_NOT_FOUND").with("agent", agent),
            Self::Parse(_) | Self::InvalidRequest(_) => a2a("INVALID_REQUEST"),
            Self::MethodNotFound(_) | Self::MethodNotAllowed { .. } => a2a("METHOD_NOT_FOUND"),
            Self::InvalidParams(_) | Self::BadRequest(_) => a2a("INVALID_PARAMS"),
            Self::A2a { kind, .. } => a2a(kind.reason()),
            Self::BodyTooLarge { limit } => ours("REQUEST_TOO_LARGE").with("limitBytes", limit),
            Self::BodyTimeout(_) => ours("REQUEST_TIMEOUT"),
            Self::Overloaded => ours("OVERLOADED"),
            Self::Draining => ours("DRAINING"),
            Self::DeadlineExceeded | Self::HeartbeatTimeout(_) => ours("DEADLINE_EXCEEDED"),
            Self::SlowClient => ours("SLOW_CLIENT"),
            Self::InvalidFrame(_) => ours("INVALID_FRAME"),
            Self::WsProtocol(_) => ours("PROTOCOL_ERROR"),
            Self::UnsupportedFrame => ours("UNSUPPORTED_FRAME"),
            Self::FrameTooLarge { limit } => ours("FRAME_TOO_LARGE").with("limitBytes", limit),
            Self::CardNotConfigured { agent, .. } => {
                ours("AGENT_CARD_NOT_CONFIGURED").with("agent", agent)
            }
            Self::OriginNotAllowed(origin) => ours("ORIGIN_NOT_ALLOWED").with("origin", origin),
            Self::GrpcUnimplemented(_) => ours("METHOD_NOT_FOUND"),
            Self::Unauthenticated(_) => ours("UNAUTHENTICATED"),
            Self::PermissionDenied(_) => ours("PERMISSION_DENIED"),
            Self::MalformedGrpc(_) => ours("MALFORMED_MESSAGE"),
            Self::MessageTooLarge { limit, .. } => {
                ours("MESSAGE_TOO_LARGE").with("limitBytes", limit)
            }
        }
    }

    /// `details` of the REST envelope and `data` of a JSON-RPC error: the `ErrorInfo`, then a
    /// `BadRequest` when the agent named invalid fields.
    pub(crate) fn details(&self) -> Vec<Value> {
        let info = self.info();
        let mut out = vec![json!({
            "@type": ERROR_INFO_TYPE,
            "reason": info.reason,
            "domain": info.domain,
            "metadata": info.metadata,
        })];
        if let Self::BadRequest(violations) = self {
            let violations: Vec<Value> = violations
                .iter()
                .map(|v| json!({"field": v.field, "description": v.description}))
                .collect();
            out.push(json!({"@type": BAD_REQUEST_TYPE, "fieldViolations": violations}));
        }
        if let Self::Upstream { status, .. } = self {
            let details = status.get_error_details();
            if let Some(bad) = details.bad_request() {
                let violations: Vec<Value> = bad
                    .field_violations
                    .iter()
                    .map(|v| json!({"field": v.field, "description": v.description}))
                    .collect();
                out.push(json!({"@type": BAD_REQUEST_TYPE, "fieldViolations": violations}));
            }
        }
        out
    }
}

/// The agent's own `ErrorInfo`, or one made from the status: the A2A reason the status code
/// stands for (NOT_FOUND → TASK_NOT_FOUND, INVALID_ARGUMENT → INVALID_PARAMS,
/// UNIMPLEMENTED → UNSUPPORTED_OPERATION, as A2A.md maps them), else the gRPC code name.
fn upstream_info(agent: &str, status: &Status) -> Info {
    if status.code() == Code::Unavailable {
        return Info::new("AGENT_UNAVAILABLE", GATEWAY_DOMAIN).with("agent", agent);
    }
    if let Some(i) = status.get_error_details().error_info() {
        return Info {
            reason: i.reason.clone(),
            domain: i.domain.clone(),
            metadata: i
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
    }
    match status.code() {
        Code::NotFound => Info::new("TASK_NOT_FOUND", A2A_ERROR_DOMAIN),
        Code::InvalidArgument => Info::new("INVALID_PARAMS", A2A_ERROR_DOMAIN),
        Code::Unimplemented => Info::new("UNSUPPORTED_OPERATION", A2A_ERROR_DOMAIN),
        c => Info::new(code_name(c), GATEWAY_DOMAIN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agents_pushback_sets_retry_after_in_whole_seconds() {
        let mut status = Status::resource_exhausted("busy");
        status.metadata_mut().insert(
            switchyard::resilience::retry::PUSHBACK,
            "1200".parse().expect("value"),
        );
        let e = ApiError::Upstream {
            agent: "a".into(),
            status,
        };
        assert!(e.retry_after());
        assert_eq!(e.retry_after_secs(), 2);
        let e = ApiError::Upstream {
            agent: "a".into(),
            status: Status::unavailable("down"),
        };
        assert_eq!(e.retry_after_secs(), 1);
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let e = ApiError::Upstream {
            agent: "a".into(),
            status: Status::internal("disk /var/x is full"),
        };
        assert_eq!(e.client_message(), "internal error");
        let e = ApiError::Upstream {
            agent: "a".into(),
            status: Status::unavailable("tcp connect error: 127.0.0.1:9 refused"),
        };
        assert_eq!(
            e.client_message(),
            "agent \"a\" is unavailable; retry later"
        );
        assert!(e.retry_after());
    }

    #[test]
    fn upstream_statuses_without_error_info_get_one() {
        let info = |s: Status| {
            ApiError::Upstream {
                agent: "a".into(),
                status: s,
            }
            .info()
        };
        assert_eq!(info(Status::not_found("x")).reason, "TASK_NOT_FOUND");
        assert_eq!(info(Status::invalid_argument("x")).reason, "INVALID_PARAMS");
        let i = info(Status::permission_denied("x"));
        assert_eq!(
            (i.reason.as_str(), i.domain.as_str()),
            ("PERMISSION_DENIED", GATEWAY_DOMAIN)
        );
    }
}
