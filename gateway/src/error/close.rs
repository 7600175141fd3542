//! The WebSocket edge: how an [`ApiError`] ends a session — one close code per error
//! (RFC 6455 §7.4; 4000–4999 is the private range).
//!
//! | error | close code |
//! |---|---|
//! | (the agent ended the session with OK, or the client closed) | 1000 normal |
//! | the gateway is draining | 1001 going away |
//! | a WebSocket protocol error (bad framing, unmasked frame, bad opcode, …) | 1002 protocol error |
//! | a binary frame | 1003 unsupported data |
//! | a text frame that is not UTF-8, not JSON or not a valid `ConverseRequest` (RFC 6455 §7.4.1: data inconsistent with the message type) | 1007 invalid payload |
//! | PERMISSION_DENIED, UNAUTHENTICATED; a client too slow to read | 1008 policy violation |
//! | a message over `ws_max_message_bytes` | 1009 message too big |
//! | INTERNAL, UNKNOWN, DATA_LOSS | 1011 internal error |
//! | UNAVAILABLE (agent down, its connection broken, or draining), RESOURCE_EXHAUSTED | 1013 try again later |
//! | any other gRPC status `c` (e.g. DEADLINE_EXCEEDED, a missed heartbeat) | 4000 + `c` (e.g. 4004) |
//!
//! The close reason is the client-safe message, cut to the 123 bytes a close frame holds.

use axum::extract::ws::CloseFrame;
use tonic::Code;

use super::ApiError;

/// Normal closure.
pub(crate) const NORMAL: u16 = 1000;

/// The close code of `error`.
pub(crate) fn close_code(error: &ApiError) -> u16 {
    match error {
        ApiError::Draining => 1001,
        ApiError::WsProtocol(_) => 1002,
        ApiError::UnsupportedFrame => 1003,
        ApiError::InvalidFrame(_) => 1007,
        ApiError::SlowClient => 1008,
        ApiError::FrameTooLarge { .. } => 1009,
        other => match other.code() {
            Code::PermissionDenied | Code::Unauthenticated => 1008,
            Code::Internal | Code::Unknown | Code::DataLoss => 1011,
            Code::Unavailable | Code::ResourceExhausted => 1013,
            c => 4000 + c as u16,
        },
    }
}

/// The close frame ending a session because of `error`.
pub(crate) fn close_frame(error: &ApiError) -> CloseFrame {
    CloseFrame {
        code: close_code(error),
        reason: truncate(&error.client_message(), 123).into(),
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use tonic::Status;

    use super::*;

    #[test]
    fn codes_follow_the_table() {
        let up = |s: Status| ApiError::Upstream {
            agent: "a".into(),
            status: s,
        };
        assert_eq!(close_code(&ApiError::Draining), 1001);
        assert_eq!(close_code(&ApiError::InvalidFrame("x".into())), 1007);
        assert_eq!(close_code(&ApiError::WsProtocol("x".into())), 1002);
        assert_eq!(close_code(&ApiError::FrameTooLarge { limit: 1 }), 1009);
        assert_eq!(close_code(&up(Status::internal("x"))), 1011);
        assert_eq!(close_code(&up(Status::unavailable("x"))), 1013);
        assert_eq!(close_code(&up(Status::permission_denied("x"))), 1008);
        assert_eq!(close_code(&up(Status::deadline_exceeded("x"))), 4004);
        assert_eq!(close_code(&up(Status::not_found("x"))), 4005);
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        let long = "é".repeat(100);
        let cut = truncate(&long, 123);
        assert!(cut.len() <= 123 && long.starts_with(&cut));
    }
}
