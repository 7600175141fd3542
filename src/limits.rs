//! Bounds on what one client may send, checked at every edge — the gateway before it calls an
//! agent, and the agent's gRPC services before anything else — so that one client's request
//! can never hurt another's:
//!
//! - every id and name field (task, context, message, push-config and reference task ids,
//!   tenant, page token, extension URIs, accepted output modes, part file names and media
//!   types) holds at most [`MAX_ID_BYTES`] bytes. Errors may name an id (`ErrorInfo.metadata`,
//!   `grpc-message`), and those travel in HTTP/2 headers: an unbounded id there broke the
//!   connection it travelled on for every call sharing it;
//! - free-form JSON values (`metadata` of requests, messages and parts, and `data` parts:
//!   `google.protobuf.Struct` / `Value`) nest at most [`MAX_JSON_DEPTH`] levels, so that every
//!   accepted request, and every task holding it, decodes everywhere (protobuf decoders stop
//!   at 100 nested messages, about three per JSON level).
//!
//! A request over a bound fails with INVALID_ARGUMENT and a `google.rpc.BadRequest` naming
//! each field (JSON-RPC -32602, HTTP 400); the value itself is never echoed.

use std::fmt;

use pbjson_types::{Struct, Value, value::Kind};

use crate::{
    error::FieldError,
    pb::{
        a2a::{
            CancelTaskRequest, DeleteTaskPushNotificationConfigRequest,
            GetExtendedAgentCardRequest, GetTaskPushNotificationConfigRequest, GetTaskRequest,
            ListTaskPushNotificationConfigsRequest, ListTasksRequest, Message, Part,
            SendMessageRequest, SubscribeToTaskRequest, TaskPushNotificationConfig,
        },
        agent::{
            ConverseRequest, SendMessagePartsRequest, converse_request, send_message_parts_request,
        },
    },
};

/// Largest id or name field, in bytes (UTF-8). Server-made ids are 36-byte UUIDs.
pub const MAX_ID_BYTES: usize = 1024;

/// Deepest nesting of a free-form JSON value (`Struct` / `Value`): `{}` and `[]` are one
/// level, `{"a":{}}` two; scalars add none.
pub const MAX_JSON_DEPTH: usize = 24;

/// Most field violations reported for one request; the rest are summed up in one more.
pub const MAX_VIOLATIONS: usize = 16;

/// A request whose fields can be checked against the bounds.
pub trait Bounded {
    /// Adds one violation per field over a bound (paths in snake_case proto names).
    fn check_bounds(&self, out: &mut Violations);
}

/// The violations found so far, at most [`MAX_VIOLATIONS`] kept.
#[derive(Debug, Default)]
pub struct Violations {
    kept: Vec<FieldError>,
    dropped: usize,
}

impl Violations {
    /// Records that `field` breaks a bound.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.kept.len() < MAX_VIOLATIONS {
            self.kept.push(FieldError::new(field, description));
        } else {
            self.dropped += 1;
        }
    }

    /// Checks an id or name field.
    pub fn id(&mut self, field: &str, value: &str) {
        if value.len() > MAX_ID_BYTES {
            self.add(
                field,
                format!(
                    "is {} bytes long; ids and names hold at most {MAX_ID_BYTES} bytes",
                    value.len()
                ),
            );
        }
    }

    /// Checks every item of a repeated id or name field.
    pub fn ids(&mut self, field: &str, values: &[String]) {
        self.ids_in(&"", field, values);
    }

    /// Checks id field `name` of the message at `path` (written out only for a violation:
    /// checking a request within bounds formats nothing).
    fn id_in(&mut self, path: &dyn fmt::Display, name: &str, value: &str) {
        if value.len() > MAX_ID_BYTES {
            self.id(&format!("{path}{name}"), value);
        }
    }

    /// As [`ids`](Self::ids), for the field `name` of the message at `path`.
    fn ids_in(&mut self, path: &dyn fmt::Display, name: &str, values: &[String]) {
        for (i, v) in values.iter().enumerate() {
            if v.len() > MAX_ID_BYTES {
                self.id(&format!("{path}{name}[{i}]"), v);
            }
        }
    }

    /// As [`object`](Self::object), for the field `name` of the message at `path`.
    fn object_in(&mut self, path: &dyn fmt::Display, name: &str, value: Option<&Struct>) {
        if let Some(depth) = value.map(struct_depth)
            && depth > MAX_JSON_DEPTH
        {
            self.depth(&format!("{path}{name}"), depth);
        }
    }

    /// Checks the nesting of a free-form object.
    pub fn object(&mut self, field: &str, value: Option<&Struct>) {
        if let Some(s) = value {
            self.depth(field, struct_depth(s));
        }
    }

    /// Checks the nesting of a free-form value.
    pub fn value(&mut self, field: &str, value: &Value) {
        self.depth(field, value_depth(value));
    }

    fn depth(&mut self, field: &str, depth: usize) {
        if depth > MAX_JSON_DEPTH {
            self.add(
                field,
                format!("nests deeper than {MAX_JSON_DEPTH} levels of JSON objects and arrays"),
            );
        }
    }

    /// The violations, the last one summing up those not kept.
    pub fn into_vec(mut self) -> Vec<FieldError> {
        if self.dropped > 0 {
            self.kept.push(FieldError::new(
                "(more)",
                format!("{} more fields are invalid", self.dropped),
            ));
        }
        self.kept
    }

    /// Whether none was found.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

/// The fields of `request` over a bound (empty when it is within every bound).
pub fn violations(request: &(impl Bounded + ?Sized)) -> Vec<FieldError> {
    let mut v = Violations::default();
    request.check_bounds(&mut v);
    v.into_vec()
}

/// The nesting depth of a JSON value (see [`MAX_JSON_DEPTH`]). Iterative: safe on any input.
pub fn value_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        match &v.kind {
            Some(Kind::StructValue(s)) => {
                deepest = deepest.max(depth + 1);
                stack.extend(s.fields.values().map(|c| (c, depth + 1)));
            }
            Some(Kind::ListValue(l)) => {
                deepest = deepest.max(depth + 1);
                stack.extend(l.values.iter().map(|c| (c, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// The nesting depth of a JSON object (at least 1).
pub fn struct_depth(s: &Struct) -> usize {
    1 + s.fields.values().map(value_depth).max().unwrap_or(0)
}

// `path` is the message's place in the request (with its trailing `.`, or empty), written
// out only when one of its fields breaks a bound.

fn message(v: &mut Violations, path: &dyn fmt::Display, m: &Message) {
    v.id_in(path, "message_id", &m.message_id);
    v.id_in(path, "context_id", &m.context_id);
    v.id_in(path, "task_id", &m.task_id);
    v.ids_in(path, "reference_task_ids", &m.reference_task_ids);
    v.ids_in(path, "extensions", &m.extensions);
    v.object_in(path, "metadata", m.metadata.as_ref());
    for (i, p) in m.parts.iter().enumerate() {
        part(v, &format_args!("{path}parts[{i}]."), p);
    }
}

fn part(v: &mut Violations, path: &dyn fmt::Display, p: &Part) {
    v.id_in(path, "filename", &p.filename);
    v.id_in(path, "media_type", &p.media_type);
    v.object_in(path, "metadata", p.metadata.as_ref());
    if let Some(crate::pb::a2a::part::Content::Data(d)) = &p.content {
        let depth = value_depth(d);
        if depth > MAX_JSON_DEPTH {
            v.depth(&format!("{path}data"), depth);
        }
    }
}

fn push_config(v: &mut Violations, path: &str, c: &TaskPushNotificationConfig) {
    v.id_in(&path, "tenant", &c.tenant);
    v.id_in(&path, "id", &c.id);
    v.id_in(&path, "task_id", &c.task_id);
    if let Some(a) = &c.authentication {
        v.id_in(&path, "authentication.scheme", &a.scheme);
    }
}

impl Bounded for SendMessageRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
        if let Some(m) = &self.message {
            message(v, &"message.", m);
        }
        if let Some(c) = &self.configuration {
            v.ids(
                "configuration.accepted_output_modes",
                &c.accepted_output_modes,
            );
            if let Some(p) = &c.task_push_notification_config {
                push_config(v, "configuration.task_push_notification_config.", p);
            }
        }
        v.object("metadata", self.metadata.as_ref());
    }
}

impl Bounded for GetTaskRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
        v.id("id", &self.id);
    }
}

impl Bounded for ListTasksRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
        v.id("context_id", &self.context_id);
        v.id("page_token", &self.page_token);
    }
}

impl Bounded for CancelTaskRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
        v.id("id", &self.id);
        v.object("metadata", self.metadata.as_ref());
    }
}

impl Bounded for SubscribeToTaskRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
        v.id("id", &self.id);
    }
}

impl Bounded for TaskPushNotificationConfig {
    fn check_bounds(&self, v: &mut Violations) {
        push_config(v, "", self);
    }
}

impl Bounded for GetTaskPushNotificationConfigRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
        v.id("task_id", &self.task_id);
        v.id("id", &self.id);
    }
}

impl Bounded for DeleteTaskPushNotificationConfigRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
        v.id("task_id", &self.task_id);
        v.id("id", &self.id);
    }
}

impl Bounded for ListTaskPushNotificationConfigsRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
        v.id("task_id", &self.task_id);
        v.id("page_token", &self.page_token);
    }
}

impl Bounded for GetExtendedAgentCardRequest {
    fn check_bounds(&self, v: &mut Violations) {
        v.id("tenant", &self.tenant);
    }
}

impl Bounded for ConverseRequest {
    fn check_bounds(&self, v: &mut Violations) {
        match &self.request {
            Some(converse_request::Request::Send(s)) => s.check_bounds(v),
            Some(converse_request::Request::Cancel(c)) => c.check_bounds(v),
            None => {}
        }
    }
}

impl Bounded for SendMessagePartsRequest {
    fn check_bounds(&self, v: &mut Violations) {
        match &self.frame {
            Some(send_message_parts_request::Frame::Header(h)) => h.check_bounds(v),
            Some(send_message_parts_request::Frame::Part(p)) => part(v, &"part.", p),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Value {
        let mut v = Value::from("leaf");
        for i in 0..levels {
            v = if i % 2 == 0 {
                Value::from(vec![v])
            } else {
                let mut s = Struct::default();
                s.fields.insert("k".into(), v);
                Value {
                    kind: Some(Kind::StructValue(s)),
                }
            };
        }
        v
    }

    #[test]
    fn depth_counts_objects_and_arrays() {
        assert_eq!(value_depth(&Value::from(1.0)), 0);
        assert_eq!(value_depth(&nested(1)), 1);
        assert_eq!(value_depth(&nested(30)), 30);
        assert_eq!(struct_depth(&Struct::default()), 1);
    }

    #[test]
    fn long_ids_and_deep_values_are_named() {
        let mut m = Message::user_text("hi");
        m.task_id = "t".repeat(MAX_ID_BYTES + 1);
        m.parts.push(Part {
            content: Some(crate::pb::a2a::part::Content::Data(nested(
                MAX_JSON_DEPTH + 1,
            ))),
            ..Default::default()
        });
        let req = SendMessageRequest {
            message: Some(m),
            ..Default::default()
        };
        let fields: Vec<String> = violations(&req).into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["message.task_id", "message.parts[1].data"]);
        let ok = GetTaskRequest {
            id: "t".repeat(MAX_ID_BYTES),
            ..Default::default()
        };
        assert!(violations(&ok).is_empty());
    }

    fn objects(levels: usize) -> Struct {
        let mut s = Struct::default();
        for _ in 1..levels {
            let mut outer = Struct::default();
            outer.fields.insert("k".into(), Value::from(s));
            s = outer;
        }
        s
    }

    /// Everything within the bounds decodes, even where it sits deepest: a data part of a
    /// status message of a task in a list reply.
    #[test]
    fn values_at_the_limit_decode_everywhere() {
        use prost::Message as _;

        use crate::pb::a2a::{ListTasksResponse, Task, TaskStatus};
        let deepest = objects(MAX_JSON_DEPTH);
        assert_eq!(struct_depth(&deepest), MAX_JSON_DEPTH);
        let mut m = Message::user_text("hi");
        m.metadata = Some(deepest.clone());
        m.parts.push(Part {
            content: Some(crate::pb::a2a::part::Content::Data(Value::from(deepest))),
            metadata: Some(objects(MAX_JSON_DEPTH)),
            ..Default::default()
        });
        let list = ListTasksResponse {
            tasks: vec![Task {
                status: Some(TaskStatus {
                    message: Some(m),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = list.encode_to_vec();
        assert!(ListTasksResponse::decode(bytes.as_slice()).is_ok());
        // … and the bound is not far below what protobuf decoders accept.
        let mut too_deep = Message::user_text("hi");
        too_deep.metadata = Some(objects(2 * MAX_JSON_DEPTH));
        let bytes = too_deep.encode_to_vec();
        assert!(Message::decode(bytes.as_slice()).is_err());
    }

    #[test]
    fn every_field_over_a_bound_is_named_by_its_path() {
        use crate::pb::a2a::{SendMessageConfiguration, TaskPushNotificationConfig};
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let deep = objects(MAX_JSON_DEPTH + 1);
        let mut m = Message::user_text("hi");
        m.message_id.clone_from(&long);
        m.context_id.clone_from(&long);
        m.reference_task_ids = vec![String::new(), long.clone()];
        m.extensions = vec![long.clone()];
        m.metadata = Some(deep.clone());
        m.parts[0].filename.clone_from(&long);
        m.parts[0].media_type.clone_from(&long);
        m.parts[0].metadata = Some(deep.clone());
        let req = SendMessageRequest {
            tenant: long.clone(),
            message: Some(m),
            configuration: Some(SendMessageConfiguration {
                accepted_output_modes: vec![long.clone()],
                task_push_notification_config: Some(TaskPushNotificationConfig {
                    id: long.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            metadata: Some(deep),
        };
        let fields: Vec<String> = violations(&req).into_iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            [
                "tenant",
                "message.message_id",
                "message.context_id",
                "message.reference_task_ids[1]",
                "message.extensions[0]",
                "message.metadata",
                "message.parts[0].filename",
                "message.parts[0].media_type",
                "message.parts[0].metadata",
                "configuration.accepted_output_modes[0]",
                "configuration.task_push_notification_config.id",
                "metadata",
            ]
        );
        let frame = SendMessagePartsRequest {
            frame: Some(send_message_parts_request::Frame::Part(Part {
                filename: long,
                ..Default::default()
            })),
        };
        let fields: Vec<String> = violations(&frame).into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["part.filename"]);
    }

    #[test]
    fn violations_are_capped() {
        let mut m = Message::user_text("hi");
        m.reference_task_ids = vec!["x".repeat(MAX_ID_BYTES + 1); 100];
        let req = SendMessageRequest {
            message: Some(m),
            ..Default::default()
        };
        let v = violations(&req);
        assert_eq!(v.len(), MAX_VIOLATIONS + 1);
        assert!(v[MAX_VIOLATIONS].description.contains("84 more"));
    }
}
