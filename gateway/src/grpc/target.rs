//! Which agent and which RPC a gRPC request is for.
//!
//! The agent is named either by the path prefix `/agents/<name>/<package.Service>/<Method>`
//! (the prefix is stripped before the call is forwarded; for clients that take a base URL,
//! such as gRPC-Web and Connect clients, and the only form A2A cards can carry) or by the
//! metadata header `x-switchyard-agent: <name>` on the plain gRPC path
//! `/<package.Service>/<Method>` (for clients that dial `host:port`, such as grpcurl, grpcio
//! and tonic). Both at once must agree.

use http::HeaderMap;

use crate::error::ApiError;

/// The metadata header that names the agent of a call.
pub(crate) const AGENT_HEADER: &str = "x-switchyard-agent";

/// The services the gateway forwards: the agent's two APIs, its health and reflection (so
/// that grpcurl can list and describe an agent's services through the gateway).
pub(crate) const SERVICES: [&str; 5] = [
    "lf.a2a.v1.A2AService",
    "switchyard.v1.AgentService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The methods whose request or response is a stream: they get no default deadline and ride a
/// lane (see [`crate::lanes`]) instead of the agent's shared connection.
const STREAMING: [(&str, &str); 8] = [
    ("lf.a2a.v1.A2AService", "SendStreamingMessage"),
    ("lf.a2a.v1.A2AService", "SubscribeToTask"),
    ("switchyard.v1.AgentService", "SendStreamingMessage"),
    ("switchyard.v1.AgentService", "SendMessageParts"),
    ("switchyard.v1.AgentService", "Converse"),
    ("grpc.health.v1.Health", "Watch"),
    (
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
    ),
];

/// One call's destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The agent's name.
    pub(crate) agent: String,
    /// The gRPC path the agent sees: `/<package.Service>/<Method>`.
    pub(crate) path: String,
    /// Whether the method streams (client, server or both).
    pub(crate) streaming: bool,
}

/// The gRPC path of a request path, without an `/agents/<name>` prefix, and that name.
pub(crate) fn split(path: &str) -> (Option<&str>, &str) {
    match path.strip_prefix("/agents/") {
        Some(below) => match below.find('/') {
            Some(i) => (Some(&below[..i]), &below[i..]),
            None => (Some(below), ""),
        },
        None => (None, path),
    }
}

/// Whether `path` (with or without an `/agents/<name>` prefix) is a method of a forwarded
/// service: how CORS preflights, which carry no content type, are recognised.
pub(crate) fn is_grpc_path(path: &str) -> bool {
    let (_, rpc) = split(path);
    rpc.trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(service, method)| {
            SERVICES.contains(&service) && !method.is_empty() && !method.contains('/')
        })
}

/// The destination of a request for `path` with `headers`.
///
/// # Errors
/// - [`ApiError::GrpcUnimplemented`] (UNIMPLEMENTED) for a path that is not
///   `/<package.Service>/<Method>` of a forwarded service;
/// - [`ApiError::InvalidRequest`] (INVALID_ARGUMENT) when no agent is named, the header is
///   repeated or not ASCII, or the path and the header name different agents.
pub(crate) fn target(path: &str, headers: &HeaderMap) -> Result<Target, ApiError> {
    let (in_path, rpc) = split(path);
    let (service, method) = rpc
        .strip_prefix('/')
        .and_then(|r| r.split_once('/'))
        .filter(|(s, m)| !s.is_empty() && !m.is_empty() && !m.contains('/'))
        .ok_or_else(|| {
            ApiError::GrpcUnimplemented(format!(
                "{path:?} is not a gRPC method path: call /<package.Service>/<Method> with the \
                 {AGENT_HEADER} header, or /agents/<agent>/<package.Service>/<Method>"
            ))
        })?;
    if !SERVICES.contains(&service) {
        return Err(ApiError::GrpcUnimplemented(format!(
            "the gateway does not forward service {service:?}; it forwards {}",
            SERVICES.join(", ")
        )));
    }
    let mut values = headers.get_all(AGENT_HEADER).iter();
    let in_header = match (values.next(), values.next()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(format!(
                "the {AGENT_HEADER} header is repeated; name one agent"
            )));
        }
        (Some(v), None) => Some(v.to_str().map_err(|_| {
            ApiError::InvalidRequest(format!("the {AGENT_HEADER} header is not ASCII"))
        })?),
        (None, _) => None,
    };
    let agent = match (in_path, in_header) {
        (Some(p), Some(h)) if p != h.trim() => {
            return Err(ApiError::InvalidRequest(format!(
                "the path names agent {p:?} but the {AGENT_HEADER} header names {h:?}"
            )));
        }
        (Some(p), _) => p,
        (None, Some(h)) => h.trim(),
        (None, None) => "",
    };
    if agent.is_empty() {
        return Err(ApiError::InvalidRequest(format!(
            "no agent named: send the metadata header `{AGENT_HEADER}: <agent>`, or call \
             /agents/<agent>/{service}/{method}"
        )));
    }
    Ok(Target {
        agent: agent.to_owned(),
        path: rpc.to_owned(),
        streaming: STREAMING.contains(&(service, method)),
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with_agent(name: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AGENT_HEADER, HeaderValue::from_static(name));
        h
    }

    #[test]
    fn the_header_or_the_path_names_the_agent() {
        let t = target("/lf.a2a.v1.A2AService/GetTask", &with_agent("echo")).expect("ok");
        assert_eq!(t.agent, "echo");
        assert_eq!(t.path, "/lf.a2a.v1.A2AService/GetTask");
        assert!(!t.streaming);
        let t = target(
            "/agents/echo/switchyard.v1.AgentService/Converse",
            &HeaderMap::new(),
        )
        .expect("ok");
        assert_eq!(
            (t.agent.as_str(), t.path.as_str(), t.streaming),
            ("echo", "/switchyard.v1.AgentService/Converse", true)
        );
        let same = target(
            "/agents/echo/switchyard.v1.AgentService/Converse",
            &with_agent("echo"),
        );
        assert!(same.is_ok());
    }

    #[test]
    fn bad_destinations_say_what_is_wrong() {
        let e = target("/lf.a2a.v1.A2AService/GetTask", &HeaderMap::new()).expect_err("none");
        assert!(e.to_string().contains(AGENT_HEADER), "{e}");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = target("/agents/a/lf.a2a.v1.A2AService/GetTask", &with_agent("b"))
            .expect_err("two agents");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = target("/other.Service/X", &with_agent("a")).expect_err("service");
        assert_eq!(e.code(), tonic::Code::Unimplemented);
        for path in ["/", "/lf.a2a.v1.A2AService", "/agents/a/x/y/z", "/agents/a"] {
            let e = target(path, &with_agent("a")).expect_err(path);
            assert_eq!(e.code(), tonic::Code::Unimplemented, "{path}");
        }
        let mut two = with_agent("a");
        two.append(AGENT_HEADER, HeaderValue::from_static("b"));
        let e = target("/grpc.health.v1.Health/Check", &two).expect_err("repeated");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn preflights_are_recognised_by_path() {
        assert!(is_grpc_path("/lf.a2a.v1.A2AService/SendMessage"));
        assert!(is_grpc_path(
            "/agents/echo/switchyard.v1.AgentService/Converse"
        ));
        assert!(!is_grpc_path("/agents/echo/message:send"));
        assert!(!is_grpc_path("/agents/echo/tasks/t1"));
        assert!(!is_grpc_path("/agents"));
    }
}
