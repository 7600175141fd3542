//! Request validation: every problem of a request becomes one field violation of an
//! INVALID_ARGUMENT status (`google.rpc.BadRequest`), reported all at once (at most
//! [`MAX_VIOLATIONS`](crate::limits::MAX_VIOLATIONS)); the bounds of [`crate::limits`] come
//! first.

use crate::{
    error::RpcError,
    limits::{Bounded, Violations},
    pb::a2a::{
        ListTasksRequest, Message, Part, Role, SendMessageRequest, TaskPushNotificationConfig,
        TaskState, part,
    },
    store::{PageCursor, TaskQuery},
    task::timestamp_micros,
};

/// Default `ListTasks` page size (A2A v1.0 "ListTasks").
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest `ListTasks` page size.
pub(crate) const MAX_PAGE_SIZE: u32 = 100;

fn finish(v: Violations) -> Result<(), RpcError> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(RpcError::InvalidArgument(v.into_vec()))
    }
}

/// Any request: its ids, names and free-form values within the bounds of [`crate::limits`].
pub(crate) fn bounded(req: &(impl Bounded + ?Sized)) -> Result<(), RpcError> {
    let mut v = Violations::default();
    req.check_bounds(&mut v);
    finish(v)
}

/// SendMessage / SendStreamingMessage / a Converse `send`.
pub(crate) fn send_request(req: &SendMessageRequest) -> Result<(), RpcError> {
    let mut v = Violations::default();
    req.check_bounds(&mut v);
    match &req.message {
        None => v.add("message", "is required"),
        Some(m) => message(&mut v, "message", m),
    }
    if let Some(c) = &req.configuration {
        if c.history_length.is_some_and(|h| h < 0) {
            v.add("configuration.history_length", "must be 0 or more");
        }
        if let Some(p) = &c.task_push_notification_config {
            push_url(&mut v, "configuration.task_push_notification_config.url", p);
        }
    }
    finish(v)
}

fn message(v: &mut Violations, path: &str, m: &Message) {
    if m.message_id.trim().is_empty() {
        v.add(format!("{path}.message_id"), "is required");
    }
    match Role::try_from(m.role) {
        Ok(Role::User) => {}
        Ok(Role::Unspecified) => v.add(format!("{path}.role"), "is required (ROLE_USER)"),
        Ok(Role::Agent) => v.add(
            format!("{path}.role"),
            "must be ROLE_USER for a message sent to an agent",
        ),
        Err(_) => v.add(
            format!("{path}.role"),
            format!("unknown enum value {}", m.role),
        ),
    }
    if m.parts.is_empty() {
        v.add(format!("{path}.parts"), "at least one part is required");
    }
    for (i, p) in m.parts.iter().enumerate() {
        part_content(v, &format!("{path}.parts[{i}]"), p);
    }
}

fn part_content(v: &mut Violations, path: &str, p: &Part) {
    match &p.content {
        None => v.add(path, "has no content (set one of text, raw, url, data)"),
        Some(part::Content::Url(u)) if u.trim().is_empty() => {
            v.add(format!("{path}.url"), "must not be empty");
        }
        Some(part::Content::Data(d)) if d.kind.is_none() => {
            v.add(format!("{path}.data"), "must hold a value");
        }
        _ => {}
    }
}

fn push_url(v: &mut Violations, field: &str, p: &TaskPushNotificationConfig) {
    let url = p.url.trim();
    if url.is_empty() {
        v.add(field, "is required");
    } else if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        v.add(field, "must be an absolute http:// or https:// URL");
    }
}

/// A required identifier of at most [`MAX_ID_BYTES`](crate::limits::MAX_ID_BYTES) bytes.
pub(crate) fn id(field: &str, value: &str) -> Result<(), RpcError> {
    if value.trim().is_empty() {
        return Err(RpcError::invalid(field, "is required"));
    }
    let mut v = Violations::default();
    v.id(field, value);
    finish(v)
}

/// The `last-event-id` of a resumed subscription: a decimal sequence number (digits only, as
/// the SSE `id:` fields it comes from).
pub(crate) fn last_event_id(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// An optional `history_length`.
pub(crate) fn history_length(value: Option<i32>) -> Result<(), RpcError> {
    match value {
        Some(h) if h < 0 => Err(RpcError::invalid("history_length", "must be 0 or more")),
        _ => Ok(()),
    }
}

/// ListTasks: filters, page size (1..=100, default 50) and page token.
pub(crate) fn list_request(req: &ListTasksRequest) -> Result<TaskQuery, RpcError> {
    let mut v = Violations::default();
    let page_size = match req.page_size {
        None => DEFAULT_PAGE_SIZE,
        Some(n) if (1..=MAX_PAGE_SIZE as i32).contains(&n) => n as u32,
        Some(n) => {
            v.add(
                "page_size",
                format!("{n} is out of range 1..={MAX_PAGE_SIZE}"),
            );
            DEFAULT_PAGE_SIZE
        }
    };
    let state = match TaskState::try_from(req.status) {
        Ok(TaskState::Unspecified) => None,
        Ok(s) => Some(s),
        Err(_) => {
            v.add("status", format!("unknown enum value {}", req.status));
            None
        }
    };
    let after = if req.page_token.is_empty() {
        None
    } else {
        let c = PageCursor::from_token(&req.page_token);
        if c.is_none() {
            v.add("page_token", "is not a token this server issued");
        }
        c
    };
    if req.history_length.is_some_and(|h| h < 0) {
        v.add("history_length", "must be 0 or more");
    }
    finish(v)?;
    Ok(TaskQuery {
        context_id: Some(req.context_id.clone()).filter(|c| !c.is_empty()),
        state,
        status_after_micros: req.status_timestamp_after.as_ref().map(timestamp_micros),
        page_size,
        after,
        max_bytes: None,
    })
}

/// CreateTaskPushNotificationConfig.
pub(crate) fn push_config(c: &TaskPushNotificationConfig) -> Result<(), RpcError> {
    let mut v = Violations::default();
    if c.task_id.trim().is_empty() {
        v.add("task_id", "is required");
    }
    push_url(&mut v, "url", c);
    if let Some(a) = &c.authentication
        && a.scheme.trim().is_empty()
    {
        v.add("authentication.scheme", "is required");
    }
    finish(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::a2a::SendMessageConfiguration;

    fn fields(r: Result<(), RpcError>) -> Vec<String> {
        match r {
            Err(RpcError::InvalidArgument(v)) => v.into_iter().map(|f| f.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_message_passes() {
        let req = SendMessageRequest {
            message: Some(Message::user_text("hi")),
            ..Default::default()
        };
        assert!(send_request(&req).is_ok());
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let req = SendMessageRequest {
            message: Some(Message {
                role: 42,
                parts: vec![Part::default(), Part::text("ok")],
                ..Default::default()
            }),
            configuration: Some(SendMessageConfiguration {
                history_length: Some(-1),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            fields(send_request(&req)),
            [
                "message.message_id",
                "message.role",
                "message.parts[0]",
                "configuration.history_length"
            ]
        );
        assert_eq!(
            fields(send_request(&SendMessageRequest::default())),
            ["message"]
        );
    }

    #[test]
    fn list_requests_are_bounded() {
        let q = list_request(&ListTasksRequest::default()).expect("defaults are valid");
        assert_eq!(q.page_size, DEFAULT_PAGE_SIZE);
        let bad = ListTasksRequest {
            page_size: Some(101),
            status: 99,
            page_token: "nonsense".into(),
            ..Default::default()
        };
        let err = list_request(&bad).map(drop);
        assert_eq!(fields(err), ["page_size", "status", "page_token"]);
    }
}
